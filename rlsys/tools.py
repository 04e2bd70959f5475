"""Tool calls in rollouts: multi-turn responses in which the policy runs Python.

The policy writes a snippet between two special tokens, `<|tool_call|>print(3817 * 46)<|/tool_call|>`; the
engine stops at the closing token; the snippet runs in the code sandbox (`verifiers.code.run_program`: time
and memory limits, no network); what it printed, or the error, comes back as a `tool` turn rendered with the
policy's chat template; the policy's next turn follows, up to `rollout.max_tool_calls` calls. The response is
one token sequence, exactly the ids the engine produced with the tool turns between them, and a loss mask
(1 on the policy's tokens, 0 on tool turns) keeps tool output out of the loss and the KL.

Everything here is plain Python, so it is tested without Ray or vLLM:
- `run_turns` drives any `TurnEngine` (vLLM's request-level engine in `actors.rollout`, a fake in the tests)
  and any `ToolRunner` (the verifier pool's actors in a job, `SandboxTools` in one process). While a
  response waits for its tool, the engine keeps stepping the others: tool time hides behind generation;
- `tool_turn_text` renders a tool turn with the chat template, the same text in SFT data and in rollouts;
- `run_tool` runs one call in the sandbox, wherever a `ToolRunner` sends it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from rlsys.errors import PoolError
from rlsys.types import ToolCall

if TYPE_CHECKING:  # the sandbox is imported where tools run
    from verifiers.code import SandboxConfig

TOOL_CALL_START = "<|tool_call|>"
TOOL_CALL_END = "<|/tool_call|>"
_TRUNCATED = " [output truncated]"
# Stands in for the assistant's content when the tool turn's text is cut out of a rendered chat.
_MARK = "\x00tool-turn-mark\x00"


@dataclass(frozen=True)
class ToolLimits:
    """What one tool call may use, and how much of its output the policy reads."""

    timeout_s: float
    memory_mb: int
    output_chars: int


def tool_output(stdout: str, stderr: str, error: str, limit: int) -> str:
    """What the policy reads of a run: its output (stdout, then stderr), then the error if any, at most
    `limit` characters (the cut is marked)."""
    text = "\n".join(part.rstrip("\n") for part in (stdout, stderr, error) if part.strip())
    return text if len(text) <= limit else text[:limit] + _TRUNCATED


def run_tool(code: str, limits: ToolLimits, sandbox: SandboxConfig | None) -> ToolCall:
    """Run one snippet in the calling thread's sandbox (emptied between runs). A snippet that raises, hangs,
    floods its output or breaks the sandbox's rules is an error the policy reads, not an exception; a host
    that cannot sandbox raises `IsolationUnavailable` (the tool cannot run anywhere there)."""
    from verifiers.code import run_program

    started = time.perf_counter()
    run = run_program(code, limits.timeout_s, limits.memory_mb, config=sandbox)
    output = tool_output(run.stdout, run.stderr, run.error, limits.output_chars)
    return ToolCall(code=code, output=output, error=bool(run.error), seconds=time.perf_counter() - started)


class ToolRunner(Protocol):
    """Runs tool calls somewhere (the verifier pool's actors, a local thread pool)."""

    def submit(self, code: str) -> Future[ToolCall]: ...


class SandboxTools:
    """Tool calls on a small thread pool in this process, each in its own sandbox."""

    def __init__(self, limits: ToolLimits, sandbox: SandboxConfig | None = None, threads: int = 4) -> None:
        self.limits, self.sandbox = limits, sandbox
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tool")

    def submit(self, code: str) -> Future[ToolCall]:
        return self.executor.submit(run_tool, code, self.limits, self.sandbox)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def tool_turn_text(apply_chat_template: Callable[..., str], output: str) -> str:
    """The text that follows the policy's tool call: the end of its turn, the tool turn holding `output`, and
    the start of its next turn, as the chat template renders them (ChatML: `<|im_end|>\\n<|im_start|>tool\\n
    175582<|im_end|>\\n<|im_start|>assistant\\n`). `apply_chat_template` is a tokenizer's, unbound."""
    chat = [
        {"role": "user", "content": "?"},
        {"role": "assistant", "content": _MARK},
        {"role": "tool", "content": output},
    ]
    rendered = apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    if rendered.count(_MARK) != 1:
        raise ValueError("the chat template does not render an assistant turn's content once, as written")
    return rendered.split(_MARK, 1)[1]


@dataclass(frozen=True)
class ToolFormat:
    """How tool calls look to one tokenizer: the two special tokens' ids, the decoder of a snippet's ids,
    and the token ids of the tool turn that answers with a given output."""

    start_id: int
    end_id: int
    decode: Callable[[Sequence[int]], str]
    tool_turn_ids: Callable[[str], list[int]]

    @classmethod
    def of(cls, tokenizer, start: str = TOOL_CALL_START, end: str = TOOL_CALL_END) -> ToolFormat:
        """The format of a Hugging Face tokenizer that knows `start` and `end` as special tokens (raises
        ValueError naming the token it does not know)."""
        ids = tokenizer.convert_tokens_to_ids([start, end])
        for token, token_id in zip((start, end), ids, strict=True):
            if (
                token_id is None
                or token_id == tokenizer.unk_token_id
                or token not in tokenizer.all_special_tokens
            ):
                raise ValueError(f"the tokenizer has no special token {token!r}")
        return cls(
            start_id=ids[0],
            end_id=ids[1],
            decode=lambda token_ids: tokenizer.decode(list(token_ids), skip_special_tokens=True),
            tool_turn_ids=lambda output: tokenizer.encode(
                tool_turn_text(tokenizer.apply_chat_template, output), add_special_tokens=False
            ),
        )

    def snippet(self, turn_ids: Sequence[int]) -> str:
        """The code of a turn that ended at the closing token: what follows the last opening token (the whole
        turn when there is none)."""
        body = list(turn_ids[:-1])
        start = len(body) - body[::-1].index(self.start_id) if self.start_id in body else 0
        return self.decode(body[start:])


@dataclass(frozen=True)
class Turn:
    """One finished engine request: the ids and log-probs it generated, its text, why it stopped."""

    key: str
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    text: str
    finish_reason: str  # "stop" (end of turn or the closing tool token) or "length"


class TurnEngine(Protocol):
    """An engine served request by request (vLLM's `LLMEngine`: `add_request` / `step`)."""

    def add(self, key: str, token_ids: list[int], max_tokens: int, seed: int | None) -> None:
        """Generate after `token_ids`, at most `max_tokens`, stopping at the end of turn or a tool call."""
        ...

    def step(self) -> list[Turn]:
        """One engine step over every running request; the requests that finished in it."""
        ...

    def busy(self) -> bool:
        """Whether any request is still running."""
        ...


@dataclass
class Trajectory:
    """One response as it grows: generated turns and tool turns, one token sequence with its loss mask."""

    prompt_index: int
    sample_index: int
    prompt_ids: list[int]
    seed: int | None
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    loss_mask: list[int] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    text: str = ""  # the last generated turn: the answer the rewards score
    finish_reason: str = ""

    def add_turn(self, turn: Turn) -> None:
        self.token_ids += turn.token_ids
        self.logprobs += turn.logprobs
        self.loss_mask += [1] * len(turn.token_ids)
        self.text = turn.text

    def add_tool(self, call: ToolCall, ids: Sequence[int]) -> None:
        self.calls.append(call)
        self.token_ids += ids
        self.logprobs += [0.0] * len(ids)  # the sampler did not sample tool output
        self.loss_mask += [0] * len(ids)


def turn_seed(seed: int | None, sample: int, turn: int) -> int | None:
    """The sampling seed of turn `turn` of sample `sample` of a prompt seeded `seed` (None: unseeded)."""
    return None if seed is None else (seed * 1_000_003 + sample * 10_007 + turn * 101) % (2**31 - 1)


def run_turns(
    engine: TurnEngine,
    tools: ToolRunner,
    prompts: Sequence[Sequence[int]],
    seeds: Sequence[int | None],
    *,
    n: int,
    max_new_tokens: int,
    max_tool_calls: int,
    tool_format: ToolFormat,
    tool_deadline_s: float,
) -> list[list[Trajectory]]:
    """`n` responses to each prompt (token ids), with up to `max_tool_calls` tool calls each; one list of
    trajectories per prompt, in order.

    Every response is a request of its own. When a turn ends at the closing tool token its snippet goes to
    `tools` and the engine goes on stepping the other requests; when the tool answers, the tool turn is
    appended and the response continues as a new request (its prefix is in the engine's prefix cache).
    `max_new_tokens` bounds a whole response, tool turns included. A call beyond `max_tool_calls` ends the
    response (`finish_reason` "tool_limit"). A tool that has not answered `tool_deadline_s` after it was sent
    raises `PoolError`: the sandbox ends every run by its own limit, so only a lost runner gets there.
    """
    trajectories = {
        f"{i}-{j}": Trajectory(i, j, list(ids), seeds[i]) for i, ids in enumerate(prompts) for j in range(n)
    }
    for key, t in trajectories.items():
        engine.add(f"{key}-0", t.prompt_ids, max_new_tokens, turn_seed(t.seed, t.sample_index, 0))
    waiting: dict[Future[ToolCall], tuple[str, float]] = {}
    while engine.busy() or waiting:
        finished = engine.step() if engine.busy() else []
        for turn in finished:
            key = turn.key.rsplit("-", 1)[0]
            t = trajectories[key]
            t.add_turn(turn)
            called = bool(turn.token_ids) and turn.token_ids[-1] == tool_format.end_id
            if not called:
                t.finish_reason = turn.finish_reason
            elif len(t.calls) >= max_tool_calls:
                t.finish_reason = "tool_limit"
            else:
                waiting[tools.submit(tool_format.snippet(turn.token_ids))] = (key, time.monotonic())
        if not engine.busy() and waiting:  # nothing to generate meanwhile: wait for the first tool back
            oldest = min(sent for _, sent in waiting.values())
            wait(
                list(waiting),
                timeout=max(0.0, oldest + tool_deadline_s - time.monotonic()),
                return_when=FIRST_COMPLETED,
            )
        for future in [f for f in waiting if f.done()]:
            key, _ = waiting.pop(future)
            _continue(engine, trajectories[key], future.result(), tool_format, max_new_tokens)
        late = [key for key, sent in waiting.values() if time.monotonic() - sent > tool_deadline_s]
        if late:
            raise PoolError(f"a tool call of response {late[0]} got no answer within {tool_deadline_s:g} s")
    grouped: list[list[Trajectory]] = [[] for _ in prompts]
    for t in trajectories.values():
        grouped[t.prompt_index].append(t)
    return grouped


def _continue(
    engine: TurnEngine, t: Trajectory, call: ToolCall, tool_format: ToolFormat, max_new_tokens: int
) -> None:
    """Append the tool turn answering `call` and start the response's next turn (or end it at the budget)."""
    room = max_new_tokens - len(t.token_ids)
    t.add_tool(call, tool_format.tool_turn_ids(call.output)[:room])
    room = max_new_tokens - len(t.token_ids)
    if room <= 0:
        t.text, t.finish_reason = "", "length"
        return
    seed = turn_seed(t.seed, t.sample_index, len(t.calls))
    engine.add(f"{t.prompt_index}-{t.sample_index}-{len(t.calls)}", t.prompt_ids + t.token_ids, room, seed)
