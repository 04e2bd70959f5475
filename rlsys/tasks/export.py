"""The built-in arithmetic task written as dataset files, in the layouts other RL frameworks read:

    verl    {"data_source": "arithmetic", "prompt": [messages], "ability": "math",
             "reward_model": {"style": "rule", "ground_truth": "42"},
             "extra_info": {"split": ..., "index": i}}
    trl     {"prompt": [messages], "answer": "42"}
    plain   {"question": "...", "answer": "42"}
    sft     {"messages": [user question, assistant worked solution ending "#### 42"]}

as Parquet, JSONL or a `Dataset.save_to_disk` folder. `rlsys run jobs/dataset_quickstart.yaml` trains from
such files exactly as from the built-in task (the same problems, in the same eval order). The `sft` layout
is conversations for `rlsys sft` (jobs/sft_quickstart.yaml), its train file from the task's SFT split, so
RL prompts (the `rl` split) stay fresh after it.
"""

import os
from pathlib import Path
from typing import Literal

from rlsys.tasks.arithmetic import Problem, chat_messages, problems, worked_solution

Layout = Literal["verl", "trl", "plain", "sft"]
Format = Literal["parquet", "jsonl", "disk"]
LAYOUTS: tuple[Layout, ...] = ("verl", "trl", "plain", "sft")
FORMATS: tuple[Format, ...] = ("parquet", "jsonl", "disk")
_SPLITS = {"train": "rl", "eval": "eval"}  # file name -> the arithmetic split it holds
_SFT_SPLITS = {"train": "sft", "eval": "eval"}  # the same for the sft layout


def row(problem: Problem, layout: Layout, split: str, index: int) -> dict:
    """One problem as a row of `layout`."""
    answer = str(problem.answer)
    if layout == "verl":
        return {
            "data_source": "arithmetic",
            "prompt": chat_messages(problem),
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": answer},
            "extra_info": {"split": split, "index": index},
        }
    if layout == "trl":
        return {"prompt": chat_messages(problem), "answer": answer}
    if layout == "sft":
        reply = {"role": "assistant", "content": worked_solution(problem)}
        return {"messages": [*chat_messages(problem), reply]}
    return {"question": problem.question, "answer": answer}


def export_task(
    out_dir: str | Path, *, layout: Layout, fmt: Format, train_size: int, eval_size: int, seed: int = 0
) -> dict[str, Path]:
    """Write `train` and `eval` files of the arithmetic task under `out_dir`; returns their paths."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import datasets
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, size in (("train", train_size), ("eval", eval_size)):
        split = (_SFT_SPLITS if layout == "sft" else _SPLITS)[name]
        rows = [row(problem, layout, split, i) for i, problem in enumerate(problems(split, size, seed))]
        dataset = datasets.Dataset.from_list(rows)
        path = out / (name if fmt == "disk" else f"{name}.{fmt}")
        if fmt == "parquet":
            dataset.to_parquet(str(path))
        elif fmt == "jsonl":
            dataset.to_json(str(path), lines=True)
        else:
            dataset.save_to_disk(str(path))
        written[name] = path
    return written
