"""Conversations for SFT from dataset files (read like prompts, `rlsys.prompt_files.read_dataset`):

    messages        [{role, content}, ...]          a whole conversation (TRL's `messages`, OpenAI's)
    conversations   [{from, value}, ...]             ShareGPT's (human / gpt / system)
    prompt + completion                              a string or messages each (TRL's prompt-completion);
                                                     question/answer, instruction/output... recognised

Every row is read and encoded once when the job starts, streamed in batches (never held in memory), and
checked: a conversation that is not a list of messages, that has no assistant reply to train on, that the
chat template cannot render turn by turn, or that is longer than `data.max_tokens`; eval rows that are also
training rows. Problems raise one `DataError` naming the file, the rows and the fix. The training rows are
then read on demand, a step's worth at a time.
"""

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rlsys.errors import DataError
from rlsys.prompt_files import PermutedRows, content_digest, read_dataset, row_batches
from rlsys.sft.config import SFTDataConfig
from rlsys.sft.tokens import Example, TemplateError, encode_chat

MESSAGES_KEYS = ("messages", "conversations")
PROMPT_KEYS = ("prompt", "question", "instruction", "query", "problem", "input")
COMPLETION_KEYS = ("completion", "response", "answer", "output", "solution")
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
_SHAREGPT_ROLES.update(system="system", tool="tool")
_MAX_REPORTED = 5  # rows named per problem

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class ChatLayout:
    """Which columns hold a conversation: one messages column, or a prompt and a completion column."""

    messages_key: str | None
    prompt_key: str | None
    completion_key: str | None
    resolved: str  # how the columns were found, for --dry-run

    def columns(self) -> list[str]:
        return [key for key in (self.messages_key, self.prompt_key, self.completion_key) if key]


def resolve_chat_layout(features, data: SFTDataConfig, path: str) -> ChatLayout:
    """The columns of a file's conversations: the job's keys, checked, or recognised."""
    columns = sorted(features)

    def given_or_found(key: str, given: str | None, candidates: tuple[str, ...]) -> tuple[str | None, str]:
        if given is not None:
            if given not in features:
                raise DataError(
                    f"data.{key}: '{path}' has no column '{given}' (columns: {columns}); set data.{key} to "
                    "one of them"
                )
            return given, f"'{given}' (data.{key})"
        found = next((c for c in candidates if c in features), None)
        return found, f"'{found}' (recognised)"

    if data.prompt_key is None and data.completion_key is None:
        messages, note = given_or_found("messages_key", data.messages_key, MESSAGES_KEYS)
        if messages is not None:
            return ChatLayout(messages, None, None, f"conversations from {note}")
    prompt, prompt_note = given_or_found("prompt_key", data.prompt_key, PROMPT_KEYS)
    completion, completion_note = given_or_found("completion_key", data.completion_key, COMPLETION_KEYS)
    if prompt is None or completion is None:
        raise DataError(
            f"'{path}': no conversation columns recognised among {columns}: expected a messages column "
            f"({list(MESSAGES_KEYS)}) or a prompt ({list(PROMPT_KEYS)}) and a completion "
            f"({list(COMPLETION_KEYS)}); set data.messages_key, or data.prompt_key and data.completion_key"
        )
    return ChatLayout(
        None, prompt, completion, f"prompt from {prompt_note}, completion from {completion_note}"
    )


def conversation(row: dict, layout: ChatLayout, system_prompt: str | None) -> Messages:
    """One row as chat messages (raises ValueError saying what is wrong with it)."""
    if layout.messages_key is not None:
        messages = _messages(row[layout.messages_key], "the conversation")
    else:
        messages = _messages(row[layout.prompt_key], "the prompt", role="user")
        messages += _messages(row[layout.completion_key], "the completion", role="assistant")
    if system_prompt is not None and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system_prompt}, *messages]
    return messages


def _messages(value: Any, what: str, role: str | None = None) -> Messages:
    """A string (one message of `role`, when a role is implied) or a list of messages, as {role, content}."""
    if isinstance(value, str) and role is not None:
        return [{"role": role, "content": value}]
    if not isinstance(value, list) or not value:
        raise ValueError(f"{what} is not a list of {{role, content}} messages")
    messages = []
    for message in value:
        if isinstance(message, dict) and isinstance(message.get("role"), str):
            content = message.get("content")
            speaker = message["role"]
        elif isinstance(message, dict) and isinstance(message.get("from"), str):  # ShareGPT
            content = message.get("value")
            speaker = _SHAREGPT_ROLES.get(message["from"], message["from"])
        else:
            raise ValueError(f"{what} holds a message without a role: {str(message)[:80]}")
        if not isinstance(content, str):
            raise ValueError(f"{what} holds a message whose content is not text: {str(message)[:80]}")
        messages.append({"role": speaker, "content": content})
    return messages


class ConversationRows(Sequence[Messages]):
    """Rows of a dataset as conversations, read on demand; `rows` maps a position to a row of the file."""

    def __init__(self, dataset, layout: ChatLayout, rows: Sequence[int], system_prompt: str | None) -> None:
        self.dataset, self.layout, self.rows, self.system_prompt = dataset, layout, rows, system_prompt

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, position):  # Sequence's index protocol; slices are not needed
        return conversation(self.dataset[self.rows[position]], self.layout, self.system_prompt)


@dataclass(frozen=True)
class SFTData:
    """A job's conversations: the training rows (read on demand, encoded a step at a time) and the held-out
    examples (encoded once)."""

    train: ConversationRows
    heldout: list[Example]
    report: list[str]  # how the data was read, for --dry-run
    sources: dict[str, str]  # split -> path and content hash
    train_tokens: int  # reply tokens in one pass over the training rows


def load_sft_data(data: SFTDataConfig, tokenizer, seed: int) -> SFTData:
    """The training and held-out conversations, every row read, encoded and checked (DataError otherwise)."""
    train = read_dataset(data.train, "data.train")
    layout = resolve_chat_layout(train.features, data, data.train)
    report = [
        f"data.train: {data.train}: {len(train)} rows, columns {sorted(train.features)}; {layout.resolved}"
    ]
    heldout: list[Example] = []
    lengths, trained = [], 0
    if data.eval_fraction is not None:
        held_out = max(1, round(data.eval_fraction * len(train)))
        if held_out >= len(train):
            raise DataError(
                f"data.eval_fraction: {data.eval_fraction} of {len(train)} rows leaves none to train on"
            )
        key = seed * 1_000_003 + 7919  # apart from the training order's keys
        train_rows: Sequence[int] = PermutedRows(len(train), key, held_out, len(train))
        excluded = set(PermutedRows(len(train), key, 0, held_out))
        evaluated = set(PermutedRows(len(train), key, 0, min(held_out, data.eval_size)))
        for row, _, example in _checked(train, layout, data.train, data, tokenizer):
            if row in evaluated:
                heldout.append(example)
            elif row not in excluded:
                lengths.append(len(example))
                trained += example.trained_tokens
        report.append(f"  data.eval_fraction {data.eval_fraction}: {held_out} rows held out")
    else:
        held = read_dataset(data.eval, "data.eval")
        held_layout = resolve_chat_layout(held.features, data, data.eval)
        report.append(f"data.eval: {data.eval}: {len(held)} rows; {held_layout.resolved}")
        seen: dict[str, int] = {}
        for row, messages, example in _checked(held, held_layout, data.eval, data, tokenizer):
            if row < data.eval_size:
                heldout.append(example)
                seen[json.dumps(messages, sort_keys=True)] = row
        train_rows = range(len(train))
        overlap = []
        for row, messages, example in _checked(train, layout, data.train, data, tokenizer):
            lengths.append(len(example))
            trained += example.trained_tokens
            other = seen.get(json.dumps(messages, sort_keys=True))
            if other is not None:
                overlap.append((row, other))
        if overlap:
            shown = "; ".join(f"train row {row} = eval row {other}" for row, other in overlap[:_MAX_REPORTED])
            raise DataError(
                f"{len(overlap)} training conversations are also held-out ones ({shown}): the held-out loss "
                f"would measure memory; remove them from {data.train} or {data.eval}"
            )
    report.append(
        f"  {len(lengths)} training conversations, {sum(lengths)} tokens of which {trained} trained (the "
        f"replies), the longest {max(lengths)} (data.max_tokens {data.max_tokens}); {len(heldout)} held out"
    )
    files = {"train": data.train, **({"eval": data.eval} if data.eval else {})}
    sources = {split: f"{path} sha256:{content_digest(path)}" for split, path in files.items()}
    rows = ConversationRows(train, layout, train_rows, data.system_prompt)
    return SFTData(rows, heldout, report, sources, trained)


def _checked(
    dataset, layout: ChatLayout, path: str, data: SFTDataConfig, tokenizer
) -> Iterator[tuple[int, Messages, Example]]:
    """(row, conversation, encoded) of every row, streamed; raises DataError listing every bad row."""
    problems: dict[str, list[int]] = {}
    for start, rows in row_batches(dataset, layout.columns()):
        for offset, row in enumerate(rows):
            number = start + offset
            try:
                messages = conversation(row, layout, data.system_prompt)
                example = encode_chat(tokenizer, messages)
            except (ValueError, TemplateError) as err:
                problems.setdefault(str(err), []).append(number)
                continue
            if len(example) > data.max_tokens:
                problems.setdefault(
                    f"longer than data.max_tokens ({data.max_tokens} tokens): raise data.max_tokens (up to "
                    "the model's context) or shorten them",
                    [],
                ).append(number)
                continue
            yield number, messages, example
    if problems:
        lines = [f"'{path}': {sum(len(rows) for rows in problems.values())} unusable rows:"]
        for problem, rows in problems.items():
            shown = ", ".join(map(str, rows[:_MAX_REPORTED])) + (" ..." if len(rows) > _MAX_REPORTED else "")
            lines.append(f"  rows {shown} ({len(rows)} in all): {problem}")
        lines.append("  fix or remove those rows, or point data.*_key at the right columns")
        raise DataError("\n".join(lines))
