"""Preference data: rankings of k responses per prompt (ties allowed) and chosen/rejected pairs.

A ranking file is JSONL, one prompt per line:

    {"prompt": "What is 2 + 3?",                         # or chat messages [{"role": ..., "content": ...}]
     "responses": ["#### 5", "2 + 3 = 5\\n#### 5", "#### 6"],
     "ranking": [1, 0, 2],                               # response indices, best first
     "id": "optional-string"}

Tied responses share an inner list: `"ranking": [1, [0, 3], 2]` says 1 is best, 0 and 3 tie, 2 is worst.
A pairwise file (the common public format) holds `{"prompt": ..., "chosen": "...", "rejected": "..."}` per
line; chosen and rejected may also be whole conversations (lists of messages ending in the assistant's
reply), and then the prompt is the turns before that reply.

Both load into `Ranking`: a pair is a ranking of k=2 without ties. Every problem in a file is reported at
once, each naming the line, the field and how to fix it (`PreferenceDataError`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlsys.errors import DataError

Messages = tuple[dict[str, str], ...]

# Reporting stops after this many problems: a wholly wrong file should not print a million lines.
_MAX_REPORTED = 20


class PreferenceDataError(DataError):
    """A ranking or pairwise file is malformed; the message lists each problem with its line and field."""


@dataclass(frozen=True)
class Ranking:
    """One prompt and its responses with a rank each: 0 is best, tied responses share a rank.

    Ranks are dense (0, 1, 2, ... with no gaps), so `max(ranks) + 1` is the number of tie groups.
    """

    prompt: Messages
    responses: tuple[str, ...]
    ranks: tuple[int, ...]
    id: str = ""

    def __post_init__(self) -> None:
        if len(self.responses) != len(self.ranks):
            raise ValueError(f"{len(self.responses)} responses but {len(self.ranks)} ranks")


def preference_pairs(ranks: Iterable[int]) -> list[tuple[int, int]]:
    """Every (better, worse) index pair a ranking implies; tied responses give no pair.

    k responses without ties give k(k-1)/2 pairs; `[0, 1, 1]` gives (0, 1) and (0, 2) but not (1, 2).
    """
    ranks = list(ranks)
    return [(i, j) for i in range(len(ranks)) for j in range(len(ranks)) if ranks[i] < ranks[j]]


def ranks_from_order(order: list[Any], k: int) -> tuple[int, ...]:
    """Dense ranks from a best-first order of indices with tied groups as inner lists.

    `ranks_from_order([1, [0, 3], 2], 4) == (1, 0, 2, 1)`. Raises ValueError (saying what is wrong) when
    the flattened order is not a permutation of 0..k-1.
    """
    ranks: dict[int, int] = {}
    problems = []
    for rank, group in enumerate(order):
        members = group if isinstance(group, list) else [group]
        if not members:
            problems.append(f"position {rank} is an empty tie group")
        for index in members:
            if isinstance(index, bool) or not isinstance(index, int):
                problems.append(f"{index!r} is not a response index")
            elif not 0 <= index < k:
                problems.append(f"index {index} is out of range 0..{k - 1}")
            elif index in ranks:
                problems.append(f"index {index} appears twice")
            else:
                ranks[index] = rank
    missing = sorted(set(range(k)) - set(ranks))
    if missing:
        problems.append(f"indices {missing} are missing")
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(ranks[i] for i in range(k))


def ranking_from_record(record: Any) -> Ranking:
    """A `Ranking` from one parsed JSON line of a ranking file; ValueError names the field and the fix."""
    _require_object(record, ("prompt", "responses", "ranking"))
    prompt = _prompt(record["prompt"])
    responses = record["responses"]
    if not isinstance(responses, list) or len(responses) < 2:
        raise ValueError("field 'responses': give a list of at least 2 response strings")
    for i, response in enumerate(responses):
        if not isinstance(response, str):
            raise ValueError(f"field 'responses': item {i} is {type(response).__name__}, expected a string")
    order = record["ranking"]
    if not isinstance(order, list):
        raise ValueError("field 'ranking': give a list of response indices, best first, e.g. [2, 0, 1]")
    try:
        ranks = ranks_from_order(order, len(responses))
    except ValueError as err:
        raise ValueError(
            f"field 'ranking': not a permutation of 0..{len(responses) - 1} ({err}); list every response "
            f"index once, best first, with tied indices in an inner list like [0, [1, 2]]"
        ) from None
    if len(set(ranks)) == 1:
        raise ValueError("field 'ranking': every response ties, so it holds no preference to learn; drop it")
    return Ranking(prompt, tuple(responses), ranks, _id(record))


def pair_from_record(record: Any) -> Ranking:
    """A k=2 `Ranking` (chosen first) from one parsed JSON line of a pairwise file."""
    _require_object(record, ("chosen", "rejected"))
    chosen, rejected = record["chosen"], record["rejected"]
    if isinstance(chosen, list) and isinstance(rejected, list):
        prompt, chosen_reply = _split_conversation(chosen, "chosen")
        rejected_prompt, rejected_reply = _split_conversation(rejected, "rejected")
        if prompt != rejected_prompt:
            raise ValueError(
                "fields 'chosen'/'rejected': the turns before the final assistant reply differ; both must "
                "continue the same prompt"
            )
        if "prompt" in record and _prompt(record["prompt"]) != prompt:
            raise ValueError("field 'prompt': differs from the conversation in 'chosen'; drop one of them")
        return Ranking(prompt, (chosen_reply, rejected_reply), (0, 1), _id(record))
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise ValueError(
            "fields 'chosen'/'rejected': give two response strings (with a 'prompt'), or two conversations "
            "(lists of messages ending in the assistant's reply)"
        )
    if "prompt" not in record:
        raise ValueError("field 'prompt': missing; string responses need the prompt they answer")
    return Ranking(_prompt(record["prompt"]), (chosen, rejected), (0, 1), _id(record))


def load_rankings(path: str | Path) -> list[Ranking]:
    """Every ranking in a ranking JSONL file; raises `PreferenceDataError` listing all bad lines."""
    return _load(Path(path), ranking_from_record)


def load_pairs(path: str | Path) -> list[Ranking]:
    """Every pair in a chosen/rejected JSONL file, as k=2 rankings (chosen ranked first)."""
    return _load(Path(path), pair_from_record)


def ranking_record(ranking: Ranking) -> dict[str, Any]:
    """The JSON object of a ranking (inverse of `ranking_from_record`), for writing ranking files."""
    groups: list[list[int]] = [[] for _ in range(max(ranking.ranks) + 1)]
    for index, rank in enumerate(ranking.ranks):
        groups[rank].append(index)
    order = [group[0] if len(group) == 1 else group for group in groups]
    record: dict[str, Any] = {
        "prompt": list(ranking.prompt),
        "responses": list(ranking.responses),
        "ranking": order,
    }
    if ranking.id:
        record["id"] = ranking.id
    return record


def write_rankings(rankings: Iterable[Ranking], path: str | Path) -> None:
    """Write rankings as a ranking JSONL file."""
    with Path(path).open("w") as out:
        for ranking in rankings:
            out.write(json.dumps(ranking_record(ranking)) + "\n")


def _load(path: Path, parse) -> list[Ranking]:
    if not path.is_file():
        raise PreferenceDataError(f"{path}: no such file")
    items, problems = [], []
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                items.append(parse(json.loads(raw.decode("utf-8"))))
            except UnicodeDecodeError as err:
                problems.append(f"{path}:{number}: not UTF-8 text (byte {err.start}); save the file as UTF-8")
            except json.JSONDecodeError as err:
                problems.append(f"{path}:{number}: not valid JSON ({err.msg} at column {err.colno})")
            except RecursionError:
                problems.append(f"{path}:{number}: nested too deeply to read; a record is one flat object")
            except ValueError as err:
                problems.append(f"{path}:{number}: {err}")
            if len(problems) == _MAX_REPORTED:
                problems.append("(stopped after this many problems)")
                break
    if problems:
        raise PreferenceDataError("invalid preference data:\n  " + "\n  ".join(problems))
    if not items:
        raise PreferenceDataError(f"{path}: no records; the file is empty")
    return items


def _require_object(record: Any, fields: tuple[str, ...]) -> None:
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object with fields {list(fields)}, got {type(record).__name__}")
    missing = [name for name in fields if name not in record]
    if missing:
        raise ValueError(f"field '{missing[0]}': missing; every line needs {list(fields)}")


def _prompt(prompt: Any) -> Messages:
    """A prompt string becomes one user turn; a message list is checked and kept."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ValueError("field 'prompt': empty; give the question the responses answer")
        return ({"role": "user", "content": prompt},)
    if isinstance(prompt, list) and prompt:
        return tuple(_message(message, f"prompt[{i}]") for i, message in enumerate(prompt))
    raise ValueError("field 'prompt': give a string or a non-empty list of {role, content} messages")


def _message(message: Any, where: str) -> dict[str, str]:
    if (
        not isinstance(message, dict)
        or not isinstance(message.get("role"), str)
        or not isinstance(message.get("content"), str)
    ):
        raise ValueError(f"field '{where}': a message is an object with string 'role' and 'content'")
    return {"role": message["role"], "content": message["content"]}


def _split_conversation(conversation: list, field: str) -> tuple[Messages, str]:
    messages = tuple(_message(message, f"{field}[{i}]") for i, message in enumerate(conversation))
    if len(messages) < 2 or messages[-1]["role"] != "assistant":
        raise ValueError(
            f"field '{field}': a conversation needs at least one prompt turn and ends with the assistant's "
            f"reply"
        )
    return messages[:-1], messages[-1]["content"]


def _id(record: dict) -> str:
    return str(record.get("id", ""))


def split_heldout(rankings: list[Ranking], share: float) -> tuple[list[Ranking], list[Ranking]]:
    """Train and held-out rankings, split by a stable hash of the prompt: one prompt never lands in both."""

    def bucket(ranking: Ranking) -> float:
        text = json.dumps(ranking.prompt, sort_keys=True).encode()
        return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") / 2**64

    train = [r for r in rankings if bucket(r) >= share]
    heldout = [r for r in rankings if bucket(r) < share]
    if not train or not heldout:
        raise PreferenceDataError(
            f"{len(rankings)} rankings split into {len(train)} train and {len(heldout)} held-out; "
            f"add data or change data.heldout_share"
        )
    return train, heldout
