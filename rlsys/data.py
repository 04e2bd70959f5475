"""A job's prompts: the built-in arithmetic task, or dataset files (`rlsys.prompt_files`); either way the
loop gets a `TaskData`: the training prompts as a sequence read on demand, and the eval sets. The order
training walks them in is `rlsys.order`'s.
"""

from rlsys.config import TaskConfig, VerifierConfig
from rlsys.tasks import arithmetic
from rlsys.types import Prompt, TaskData


def load_task(task: TaskConfig, verifier: VerifierConfig) -> TaskData:
    """The job's prompts: generated arithmetic problems, or the dataset files, checked row by row against
    the job's rewards (raises `DataError` naming the file, the row and the fix)."""
    if task.kind == "dataset":
        from rlsys.prompt_files import load_dataset_task

        return load_dataset_task(task, verifier)
    train = task_prompts(task, "rl", task.train_size)
    evals = {"": task_prompts(task, "eval", task.eval_size)}
    report = [
        f"task: arithmetic, {len(train)} training and {len(evals[''])} held-out problems (seed {task.seed})"
    ]
    generated = f"arithmetic seed={task.seed}"
    sources = {"train": f"{generated} size={task.train_size}", "eval": f"{generated} size={task.eval_size}"}
    return TaskData(train, evals, report, sources)


def task_prompts(task: TaskConfig, split: str, n: int) -> list[Prompt]:
    """`n` prompts of the arithmetic task's `split` ("rl" for training, "eval" for held-out evaluation)."""
    return [
        Prompt(
            id=f"{split}-{index}", messages=tuple(arithmetic.chat_messages(problem)), gold=str(problem.answer)
        )
        for index, problem in enumerate(arithmetic.problems(split, n, task.seed))
    ]
