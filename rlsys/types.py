"""The plain data that crosses pool boundaries: prompts, sampling requests, samples and rewards.

Every arrow between the learner loop and the pools carries these types, so a pool can be a Ray actor, a local
object or a fake in a unit test (`tests/fakes.py`).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Prompt:
    """One task instance: chat messages to complete and what a correct answer is.

    `reward` names the one reward function that scores this prompt's samples (a dataset's per-row reward
    column); None: every reward function of the job. `columns` are the row's other fields, which reach the
    reward functions as keyword arguments.
    """

    id: str
    messages: tuple[dict[str, str], ...]
    gold: str
    reward: str | None = None
    columns: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sampling:
    """How to sample: `n` completions per prompt at `temperature` (0 means greedy).

    `max_new_tokens` bounds the whole response, tool output included; with `max_tool_calls` > 0 a response
    may call the tool that many times (`rlsys.tools`).
    """

    n: int
    temperature: float
    top_p: float = 1.0
    max_new_tokens: int = 128
    max_tool_calls: int = 0


@dataclass(frozen=True)
class ToolCall:
    """One tool call of a response: the snippet the policy wrote, what came back, and how long it took."""

    code: str
    output: str  # as the policy read it: stdout, then the error if any, truncated
    error: bool  # the snippet raised, timed out or was killed
    seconds: float


def trained_token_count(token_ids: Sequence[int], loss_mask: Sequence[int]) -> int:
    """Response tokens the loss covers: those the mask keeps (every token when there is no mask)."""
    return sum(loss_mask) if loss_mask else len(token_ids)


@dataclass(frozen=True)
class Sample:
    """One sampled completion of a prompt, with what the learner needs to score it against the sampler.

    A response with tool calls is one token sequence: the policy's turns and the tool turns between them,
    exactly as the engine saw them. `loss_mask` marks the policy's own tokens (1) against tool output (0);
    `text` is the last turn, the answer the rewards score.
    """

    prompt_id: str
    prompt_token_ids: tuple[int, ...]
    token_ids: tuple[int, ...]
    text: str
    logprobs: tuple[float, ...]  # sampler's log-probability of each generated token (0.0 on tool output)
    finish_reason: str  # "stop" (end-of-turn), "length" (max_new_tokens), "tool_limit" (a call too many)
    policy_version: int  # the weight version that generated it
    loss_mask: tuple[int, ...] = ()  # per token: 1 the policy's own, 0 tool output; (): every token
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class TrainSequence:
    """What the learner needs of one sample: its tokens, its advantage, and the sampler's log-probs.

    `loss_mask`: which tokens the loss covers, as on `Sample`. `staleness`: updates the sampler's weights
    were behind the learner's (0: on-policy). `padding`: a zero-weight stand-in that only lets a rank with
    too little work join the step's collectives.

    With a critic (PPO, `rlsys.batch.with_gae`) each response token has its own advantage, and the critic's
    regression targets and its values at sampling time travel with them, one per response token.
    """

    prompt_token_ids: tuple[int, ...]
    token_ids: tuple[int, ...]
    advantage: float  # one for every token, unless token_advantages is set
    sampler_logprobs: tuple[float, ...]
    loss_mask: tuple[int, ...] = ()
    staleness: int = 0
    padding: bool = False
    token_advantages: tuple[float, ...] | None = None  # per response token; replaces `advantage`
    returns: tuple[float, ...] | None = None  # the critic's targets per response token
    values: tuple[float, ...] | None = None  # the critic's values the advantages were computed with


@dataclass(frozen=True)
class Reward:
    """The score of one sample: the weighted total and the named components it was made of.

    Each scoring pool (verifiers, a reward model) gives a sample one `Reward`; `combine` adds them up.
    """

    score: float
    components: dict[str, float] = field(default_factory=dict)
    correct: bool | None = None  # the verifiable verdict, for accuracy metrics; None: nothing judged it
    verdict: str = ""  # the verifier's status word ("correct", "no_answer", "timeout", ...)
    elapsed_s: float = 0.0
    errors: tuple[str, ...] = ()  # "<function>: <what went wrong>" for each reward function that failed

    @classmethod
    def combine(cls, parts: Sequence["Reward"]) -> "Reward":
        """One sample's rewards from several scorers: totals add, components join (each name once), and it is
        correct when every part that judged correctness says so."""
        components: dict[str, float] = {}
        for part in parts:
            clash = set(components) & set(part.components)
            if clash:
                raise ValueError(
                    f"reward component(s) {sorted(clash)} scored twice; give each scorer its own name"
                )
            components.update(part.components)
        judged = [part.correct for part in parts if part.correct is not None]
        return cls(
            score=sum(part.score for part in parts),
            components=components,
            correct=all(judged) if judged else None,
            verdict=",".join(part.verdict for part in parts if part.verdict),
            elapsed_s=sum(part.elapsed_s for part in parts),
            errors=tuple(error for part in parts for error in part.errors),
        )


@dataclass(frozen=True)
class TaskData:
    """A job's prompts: the training set (read on demand) and the eval sets by name ('' is an unnamed set;
    the first is the primary one, logged as plain eval/* and watched by the monitor)."""

    train: Sequence[Prompt]
    evals: dict[str, list[Prompt]]
    report: list[str] = field(default_factory=list)  # how the data was read, for `--dry-run`
    sources: dict[str, str] = field(default_factory=dict)  # split -> where it came from (path and hash)
