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

The `facts` task (`rlsys.tasks.facts`) is written the same way (its golds `[]` where no answer is right), as
`train` (both facts of every stated person and of `--train-size` unstated people, each in `--phrasings`
phrasings, shuffled), `eval_stated`
(one fact of each stated person, in a phrasing training does not use) and `eval_held_out` (people seen in
no stage): the files `scripts/abstain_quickstart.py` probes, fine-tunes and trains on.
"""

import os
import random
from pathlib import Path
from typing import Literal

from rlsys.tasks import facts
from rlsys.tasks.arithmetic import Problem, chat_messages, problems, worked_solution

Layout = Literal["verl", "trl", "plain", "sft"]
Format = Literal["parquet", "jsonl", "disk"]
LAYOUTS: tuple[Layout, ...] = ("verl", "trl", "plain", "sft")
FORMATS: tuple[Format, ...] = ("parquet", "jsonl", "disk")
_SPLITS = {"train": "rl", "eval": "eval"}  # file name -> the arithmetic split it holds
_SFT_SPLITS = {"train": "sft", "eval": "eval"}  # the same for the sft layout


def row(problem: Problem, layout: Layout, split: str, index: int) -> dict:
    """One arithmetic problem as a row of `layout`."""
    if layout == "sft":
        reply = {"role": "assistant", "content": worked_solution(problem)}
        return {"messages": [*chat_messages(problem), reply]}
    return question_row(chat_messages(problem), str(problem.answer), layout, "arithmetic", split, index)


def question_row(
    messages: list[dict[str, str]], gold: str, layout: Layout, source: str, split: str, index: int
) -> dict:
    """A question with its gold as a row of `layout` (verl, trl or plain)."""
    if layout == "verl":
        return {
            "data_source": source,
            "prompt": messages,
            "ability": "math" if source == "arithmetic" else "knowledge",
            "reward_model": {"style": "rule", "ground_truth": gold},
            "extra_info": {"split": split, "index": index},
        }
    if layout == "trl":
        return {"prompt": messages, "answer": gold}
    if layout == "sft":
        raise ValueError(f"the {source} task has no sft layout")
    return {"question": messages[-1]["content"], "answer": gold}


def export_task(
    out_dir: str | Path, *, layout: Layout, fmt: Format, train_size: int, eval_size: int, seed: int = 0
) -> dict[str, Path]:
    """Write `train` and `eval` files of the arithmetic task under `out_dir`; returns their paths."""
    files = {}
    for name, size in (("train", train_size), ("eval", eval_size)):
        split = (_SFT_SPLITS if layout == "sft" else _SPLITS)[name]
        files[name] = [
            row(problem, layout, split, i) for i, problem in enumerate(problems(split, size, seed))
        ]
    return write_files(out_dir, files, fmt)


def export_facts(
    out_dir: str | Path,
    *,
    layout: Layout,
    fmt: Format,
    train_size: int,
    eval_size: int,
    seed: int = 0,
    phrasings: int = 2,
) -> dict[str, Path]:
    """Write the facts task's `train`, `eval_stated` and `eval_held_out` files under `out_dir` (`train_size`
    unstated people in train, each fact asked in `phrasings` phrasings; at most `eval_size` questions per eval
    set); returns their paths. `seed` is the embedded facts model's build seed: it decides who the stated
    people are.

    More than one phrasing per fact teaches the probe's mix that whether to answer depends on the person, not
    on the wording: with one, the fine-tuned model declined 5.7% of stated facts asked in a new phrasing
    (seed 0), with two 2.7%."""
    rng = random.Random(f"facts-train-phrasings:{seed}")
    train = [
        question
        for group, n_people in (("stated", facts.STATED_PEOPLE), ("unstated", train_size))
        for person in facts.people(group, n_people, seed)
        for question in _asked(facts.phrasings(person, group == "stated"), phrasings, rng)
    ]
    random.Random(f"facts-train-order:{seed}").shuffle(train)
    # A stated person's eval question is one of the phrasings training does not use: the same fact, asked
    # afresh (a question in both would be refused as eval data leaking into training).
    asked = {q.question for q in train}
    phrasing = random.Random(f"facts-eval:{seed}")
    stated = [
        phrasing.choice([q for q in facts.phrasings(person, True) if q.question not in asked])
        for person in facts.people("stated", min(eval_size, facts.STATED_PEOPLE), seed)
    ]
    held_out = facts.questions("held_out", (eval_size + 1) // 2, seed)[:eval_size]
    files = {
        name: [
            question_row(facts.chat_messages(q), q.gold, layout, "facts", name, i)
            for i, q in enumerate(questions)
        ]
        for name, questions in (("train", train), ("eval_stated", stated), ("eval_held_out", held_out))
    }
    return write_files(out_dir, files, fmt)


def _asked(forms: list[facts.Question], phrasings: int, rng: random.Random) -> list[facts.Question]:
    """`phrasings` of a person's town questions and as many of the trade questions (`facts.phrasings`: the
    town's first, then as many of the trade's); at least one of each is left for the eval set."""
    per_fact = len(forms) // 2
    if not 1 <= phrasings < per_fact:
        raise ValueError(
            f"phrasings must be 1 to {per_fact - 1}: eval asks in a phrasing training leaves out"
        )
    return rng.sample(forms[:per_fact], phrasings) + rng.sample(forms[per_fact:], phrasings)


def write_files(out_dir: str | Path, files: dict[str, list[dict]], fmt: Format) -> dict[str, Path]:
    """Each {name: rows} as `out_dir/name.<fmt>` (a `save_to_disk` folder `out_dir/name` for disk)."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import datasets
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, rows in files.items():
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
