"""A job's prompts: a built-in generated task (`arithmetic`, `code`, `tools`: the embedded model's task
families), or dataset files (`rlsys.prompt_files`); either way the loop gets a `TaskData`: the training
prompts as a sequence read on demand, and the eval sets. The order training walks them in is `rlsys.order`'s.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlsys.config import TaskConfig, VerifierConfig
from rlsys.errors import ConfigError
from rlsys.reward_registry import gold_problem
from rlsys.tasks import arithmetic, code, tool_arithmetic
from rlsys.types import Prompt, TaskData


@dataclass(frozen=True)
class _Generated:
    """A built-in task: its problems by (split, n, seed), each problem's chat and gold, and the reward that
    scores it."""

    problems: Callable[[str, int, int], list[Any]]
    messages: Callable[[Any], list[dict[str, str]]]
    gold: Callable[[Any], str]
    reward: str


_GENERATED: dict[str, _Generated] = {
    "arithmetic": _Generated(arithmetic.problems, arithmetic.chat_messages, lambda p: str(p.answer), "math"),
    "code": _Generated(code.problems, code.chat_messages, lambda p: p.tests, "code"),
    "tools": _Generated(
        tool_arithmetic.problems, tool_arithmetic.chat_messages, lambda p: str(p.answer), "math"
    ),
}


def load_task(task: TaskConfig, verifier: VerifierConfig) -> TaskData:
    """The job's prompts: a generated task, or the dataset files, checked row by row against the job's
    rewards (raises `DataError` naming the file, the row and the fix; `ConfigError` when a reward cannot
    score a built-in task's answers)."""
    if task.kind == "dataset":
        from rlsys.prompt_files import load_dataset_task

        return load_dataset_task(task, verifier)
    train = task_prompts(task, "rl", task.train_size)
    evals = {"": task_prompts(task, "eval", task.eval_size)}
    _check_rewards(task.kind, evals[""][0].gold, verifier)
    report = [
        f"task: {task.kind}, {len(train)} training and {len(evals[''])} held-out problems (seed {task.seed})"
    ]
    generated = f"{task.kind} seed={task.seed}"
    sources = {"train": f"{generated} size={task.train_size}", "eval": f"{generated} size={task.eval_size}"}
    return TaskData(train, evals, report, sources)


def task_prompts(task: TaskConfig, split: str, n: int) -> list[Prompt]:
    """`n` prompts of the built-in task's `split` ("rl" for training, "eval" for held-out evaluation)."""
    family = _GENERATED[task.kind]
    return [
        Prompt(id=f"{split}-{index}", messages=tuple(family.messages(problem)), gold=family.gold(problem))
        for index, problem in enumerate(family.problems(split, n, task.seed))
    ]


def _check_rewards(kind: str, gold: str, verifier: VerifierConfig) -> None:
    """Every reward of the job must be able to score the task's answers (a `code` reward given arithmetic's
    `42` would pass any program)."""
    for key in verifier.rewards:
        problem = gold_problem(key, gold)
        if problem is not None:
            raise ConfigError(
                f"verifier.rewards: '{key}' cannot score task.kind={kind}: {problem}; the {kind} task is "
                f"scored with '{_GENERATED[kind].reward}'"
            )
