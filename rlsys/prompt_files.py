"""Prompts from dataset files: local JSONL, JSON, Parquet or CSV files, or `Dataset.save_to_disk` folders,
read with Hugging Face `datasets` (Arrow, memory-mapped: a million rows are not loaded into memory).

Which column holds what is the job's `task.prompt_key` / `answer_key` / `reward_key`, or, with no key
given, recognised from the common layouts:

    verl    prompt: [chat messages]        reward_model.ground_truth                data_source, extra_info...
    TRL     prompt or messages             answer | solution | ground_truth         any other columns
    plain   question | problem | query     answer | solution | target

A prompt is a string (one user message) or a list of {role, content} messages; a conversation that ends
with the assistant's reply (TRL's `messages`) is the prompt without that reply. Every other column of a
row reaches the reward functions. Rows are checked as they are read, in batches: an empty or unusable gold,
a reward the job does not have, an eval prompt that is also a training prompt — each a `DataError` naming
the file, the row and the fix.
"""

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlsys.config import TaskConfig, VerifierConfig
from rlsys.errors import DataError
from rlsys.order import permuted_index
from rlsys.reward_registry import component_name, gold_problem
from rlsys.types import Prompt, TaskData

PROMPT_KEYS = ("prompt", "messages", "question", "problem", "query", "instruction", "input")
ANSWER_KEYS = (
    "reward_model.ground_truth",
    "answer",
    "ground_truth",
    "solution",
    "target",
    "label",
    "test",
    "tests",
)
_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
_COMPRESSION = {".gz", ".bz2", ".xz", ".zst"}
_BATCH_ROWS = 10_000  # rows per streamed check
_MAX_REPORTED = 5  # rows named per problem


@dataclass(frozen=True)
class Layout:
    """Which column holds what in a file's rows."""

    prompt_key: str
    answer_key: str  # may be dotted: reward_model.ground_truth
    reward_key: str | None
    resolved: str  # how the keys were found, for --dry-run


class PromptRows(Sequence[Prompt]):
    """Rows of a dataset as prompts, read on demand; `rows` maps a position to a row of the file."""

    def __init__(
        self, dataset, layout: Layout, *, name: str, rows: Sequence[int], system_prompt: str | None
    ) -> None:
        self.dataset, self.layout, self.name, self.rows = dataset, layout, name, rows
        self.system_prompt = system_prompt

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, position):  # Sequence's index protocol; slices are not needed
        row = self.rows[position]
        return to_prompt(self.dataset[row], self.layout, f"{self.name}-{row}", self.system_prompt)


class PermutedRows(Sequence[int]):
    """range(start, stop) of a keyed permutation of range(size): a split of a file no list has to hold."""

    def __init__(self, size: int, key: int, start: int, stop: int) -> None:
        self.size, self.key, self.start, self.stop = size, key, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, position):
        if not 0 <= position < len(self):
            raise IndexError(position)
        return permuted_index(self.start + position, self.size, self.key)


def read_dataset(path: str, key: str):
    """A local file or `save_to_disk` folder as a `datasets.Dataset`; `key` names the job key (`task.train`),
    for errors."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # local files only: never ask a hub
    import datasets
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    local = Path(path).expanduser()
    if not local.exists():
        raise DataError(
            f"{key}: no file or folder at '{path}'; give a local JSONL, JSON, Parquet or CSV file"
        )
    try:
        if local.is_dir():
            loaded = datasets.load_from_disk(str(local))
        else:
            # data.jsonl.gz reads like data.jsonl: datasets decompresses it
            suffixes = [s for s in local.suffixes if s not in _COMPRESSION]
            builder = _BUILDERS.get(suffixes[-1] if suffixes else "")
            if builder is None:
                raise DataError(
                    f"{key}: '{path}' is not a .jsonl, .json, .parquet or .csv file (or a folder "
                    f"written by Dataset.save_to_disk)"
                )
            loaded = datasets.load_dataset(builder, data_files=str(local), split="train")
    except DataError:
        raise
    except Exception as err:  # datasets raises many kinds for an unreadable file; all are the user's to fix
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{key}: cannot read '{path}': {first}") from None
    if isinstance(loaded, datasets.DatasetDict):
        if len(loaded) != 1:
            raise DataError(f"{key}: '{path}' holds the splits {sorted(loaded)}; point at one split's folder")
        loaded = next(iter(loaded.values()))
    if len(loaded) == 0:
        raise DataError(f"{key}: '{path}' has no rows")
    return loaded


def _field(row: dict, dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _has_path(features, dotted: str) -> bool:
    node = features
    for part in dotted.split("."):
        if not hasattr(node, "keys") or part not in node:  # a struct column's features are a dict
            return False
        node = node[part]
    return True


def resolve_layout(features, task: TaskConfig, path: str) -> Layout:
    """The prompt, answer and reward columns of a file: the job's keys, checked, or recognised."""
    columns = sorted(features)
    found = []
    for kind, given, candidates in (
        ("prompt", task.prompt_key, PROMPT_KEYS),
        ("answer", task.answer_key, ANSWER_KEYS),
    ):
        if given is not None:
            if not _has_path(features, given):
                raise DataError(
                    f"task.{kind}_key: '{path}' has no column '{given}' (columns: {columns}); set "
                    f"task.{kind}_key to one of them"
                )
            found.append((given, f"{kind} from '{given}' (task.{kind}_key)"))
            continue
        match = next((c for c in candidates if _has_path(features, c)), None)
        if match is None:
            raise DataError(
                f"'{path}': no {kind} column recognised among {columns} (looked for {list(candidates)}); "
                f"set task.{kind}_key"
            )
        found.append((match, f"{kind} from '{match}' (recognised)"))
    (prompt_key, prompt_note), (answer_key, answer_note) = found
    if task.reward_key is not None and not _has_path(features, task.reward_key):
        raise DataError(f"task.reward_key: '{path}' has no column '{task.reward_key}' (columns: {columns})")
    reward_note = f", reward from '{task.reward_key}'" if task.reward_key else ", every reward of the job"
    return Layout(prompt_key, answer_key, task.reward_key, f"{prompt_note}, {answer_note}{reward_note}")


def to_prompt(row: dict, layout: Layout, prompt_id: str, system_prompt: str | None) -> Prompt:
    """One row as a Prompt: chat messages, the gold as text, the row's reward name and its other columns."""
    messages = _messages(row[layout.prompt_key], prompt_id)
    if system_prompt is not None and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system_prompt}, *messages]
    gold = _field(row, layout.answer_key)
    used = {layout.prompt_key, layout.answer_key.split(".")[0], layout.reward_key}
    return Prompt(
        id=prompt_id,
        messages=tuple(messages),
        gold=gold if isinstance(gold, str) else ("" if gold is None else json.dumps(gold)),
        reward=None if layout.reward_key is None else str(_field(row, layout.reward_key)),
        columns={key: value for key, value in row.items() if key not in used},
    )


def _messages(value: Any, prompt_id: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if (
        isinstance(value, list)
        and value
        and all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in value)
    ):
        messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in value]
        if messages[-1]["role"] == "assistant" and len(messages) > 1:
            messages = messages[:-1]  # a whole conversation: the prompt is what comes before the reply
        return messages
    raise DataError(
        f"row {prompt_id}: the prompt is neither a string nor a list of {{role, content}} messages "
        f"(got {type(value).__name__})"
    )


def row_batches(dataset, columns: list[str]) -> Iterator[tuple[int, list[dict]]]:
    """(first row, rows) of `columns` in batches: the whole file streamed, never held."""
    for start in range(0, len(dataset), _BATCH_ROWS):
        batch = dataset.select_columns(columns)[start : start + _BATCH_ROWS]
        yield start, [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]


def check_rows(dataset, layout: Layout, path: str, verifier: VerifierConfig) -> dict[str, int]:
    """Every row's prompt, gold and reward name, streamed; raises DataError listing the bad rows. Returns the
    count of rows per reward name (or '*' for every reward)."""
    names = {component_name(key): key for key in verifier.rewards}
    problems: dict[str, list[int]] = {}
    routes: dict[str, int] = {}
    columns = sorted({layout.prompt_key, layout.answer_key.split(".")[0], layout.reward_key} - {None})
    for start, rows in row_batches(dataset, columns):
        for offset, row in enumerate(rows):
            number = start + offset
            try:
                prompt = to_prompt(row, layout, str(number), None)
            except DataError as err:
                problems.setdefault(str(err).partition(": ")[2], []).append(number)
                continue
            route = prompt.reward or "*"
            routes[route] = routes.get(route, 0) + 1
            if prompt.reward is not None and prompt.reward not in names:
                problems.setdefault(
                    f"its reward '{prompt.reward}' is not one of this job's ({sorted(names)}): add it to "
                    f"verifier.rewards or fix the column",
                    [],
                ).append(number)
                continue
            for name in [prompt.reward] if prompt.reward else names:
                problem = gold_problem(names[name], prompt.gold)
                if problem is not None:
                    problems.setdefault(f"{problem} (reward '{name}')", []).append(number)
    if problems:
        lines = [f"'{path}': {sum(len(rows) for rows in problems.values())} unusable rows:"]
        for problem, rows in problems.items():
            shown = ", ".join(map(str, rows[:_MAX_REPORTED])) + (" ..." if len(rows) > _MAX_REPORTED else "")
            lines.append(f"  rows {shown} ({len(rows)} in all): {problem}")
        lines.append("  fix or remove those rows, or point the key at the right column (task.*_key)")
        raise DataError("\n".join(lines))
    return routes


def _prompt_texts(dataset, layout: Layout, rows: Sequence[int] | None = None) -> Iterator[tuple[int, str]]:
    """(row, the prompt as canonical JSON) of every row (or of `rows`), for finding prompts in two sets."""
    if rows is not None:
        for row in rows:
            yield row, json.dumps(dataset[row][layout.prompt_key], sort_keys=True)
        return
    for start, batch in row_batches(dataset, [layout.prompt_key]):
        for offset, row in enumerate(batch):
            yield start + offset, json.dumps(row[layout.prompt_key], sort_keys=True)


def read_prompts(
    path: str,
    key: str,
    *,
    prompt_key: str | None,
    answer_key: str | None,
    system_prompt: str | None,
    verifier: VerifierConfig,
    limit: int | None = None,
) -> list[Prompt]:
    """The prompts of one file (the first `limit`), its keys resolved and every row checked as a training
    file's are: one set of questions for a job that is not a training run (`rlsys probe`). `key` names the
    job key for errors."""
    dataset = read_dataset(path, key)
    # Only the keys matter to the layout; a single file has no held-out split of its own.
    keys = TaskConfig(
        kind="dataset", train=path, eval_fraction=0.5, prompt_key=prompt_key, answer_key=answer_key
    )
    layout = resolve_layout(dataset.features, keys, path)
    check_rows(dataset, layout, path, verifier)
    rows = range(min(len(dataset), limit or len(dataset)))
    return list(PromptRows(dataset, layout, name="q", rows=rows, system_prompt=system_prompt))


def load_dataset_task(task: TaskConfig, verifier: VerifierConfig) -> TaskData:
    """The training rows and eval sets of `kind: dataset`, each file read, its keys resolved, every row
    checked; eval sets capped at `task.eval_size` rows each."""
    train = read_dataset(task.train, "task.train")
    train_layout = resolve_layout(train.features, task, task.train)
    routes = check_rows(train, train_layout, task.train, verifier)
    report = [f"task.train: {task.train}: {len(train)} rows, columns {sorted(train.features)}"]
    report.append(f"  {train_layout.resolved}; rows per reward: {routes}")
    evals: dict[str, list[Prompt]] = {}
    if task.eval_fraction is not None:
        held_out = max(1, round(task.eval_fraction * len(train)))
        if held_out >= len(train):
            raise DataError(
                f"task.eval_fraction: {task.eval_fraction} of {len(train)} rows leaves none to train on"
            )
        key = task.seed * 1_000_003 + 7919  # apart from the training order's keys
        train_rows = PermutedRows(len(train), key, held_out, len(train))
        eval_rows = PermutedRows(len(train), key, 0, min(held_out, task.eval_size))
        evals[""] = list(
            PromptRows(train, train_layout, name="eval", rows=eval_rows, system_prompt=task.system_prompt)
        )
        report.append(
            f"  eval_fraction {task.eval_fraction}: {held_out} rows held out, {len(eval_rows)} evaluated"
        )
    else:
        train_rows = range(len(train))
        seen: dict[str, tuple[str, int]] = {}
        for name, path in task.eval_files().items():
            key = f"eval.{name}" if name else "eval"
            data = read_dataset(path, f"task.{key}")
            layout = resolve_layout(data.features, task, path)
            check_rows(data, layout, path, verifier)
            rows = range(min(len(data), task.eval_size))
            evals[name] = list(
                PromptRows(data, layout, name=name or "eval", rows=rows, system_prompt=task.system_prompt)
            )
            seen.update({text: (path, row) for row, text in _prompt_texts(data, layout, rows)})
            report.append(f"task.{key}: {path}: {len(data)} rows ({len(rows)} evaluated); {layout.resolved}")
        overlap = [(row, seen[text]) for row, text in _prompt_texts(train, train_layout) if text in seen]
        if overlap:
            shown = "; ".join(
                f"train row {row} = {path} row {other}" for row, (path, other) in overlap[:_MAX_REPORTED]
            )
            raise DataError(
                f"{len(overlap)} training prompts are also eval prompts ({shown}): held-out accuracy would "
                f"measure memory; remove them from one of the files"
            )
    train_prompts = PromptRows(
        train, train_layout, name="train", rows=train_rows, system_prompt=task.system_prompt
    )
    files = {"train": task.train, **{f"eval.{n}" if n else "eval": p for n, p in task.eval_files().items()}}
    sources = {split: f"{path} sha256:{content_digest(path)}" for split, path in files.items()}
    return TaskData(train_prompts, evals, report, sources)


def content_digest(path: str | Path) -> str:
    """SHA-256 of a file, or of a folder's files (their relative paths and contents, in order): the
    data's identity for the lineage of the models trained on it."""
    root = Path(path).expanduser()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    sha = hashlib.sha256()
    for file in files:
        sha.update(file.relative_to(root).as_posix().encode() if file != root else b"")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
    return sha.hexdigest()
