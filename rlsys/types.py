"""The plain data that crosses pool boundaries: prompts, sampling requests, samples and rewards.

Every arrow between the learner loop and the pools carries these types, so a pool can be a Ray actor, a local
object or a fake in a unit test (`tests/fakes.py`).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Prompt:
    """One task instance: chat messages to complete and what a correct answer is."""

    id: str
    messages: tuple[dict[str, str], ...]
    gold: str
    kind: str = "math"


@dataclass(frozen=True)
class Sampling:
    """How to sample: `n` completions per prompt at `temperature` (0 means greedy)."""

    n: int
    temperature: float
    top_p: float = 1.0
    max_new_tokens: int = 128


@dataclass(frozen=True)
class Sample:
    """One sampled completion of a prompt, with what the learner needs to score it against the sampler."""

    prompt_id: str
    prompt_token_ids: tuple[int, ...]
    token_ids: tuple[int, ...]
    text: str
    logprobs: tuple[float, ...]  # sampler's log-probability of each generated token
    finish_reason: str  # "stop" (end-of-turn token) or "length" (hit max_new_tokens)
    policy_version: int  # the weight version that generated it


@dataclass(frozen=True)
class TrainSequence:
    """What the learner needs of one sample: its tokens, its advantage, and the sampler's log-probs."""

    prompt_token_ids: tuple[int, ...]
    token_ids: tuple[int, ...]
    advantage: float
    sampler_logprobs: tuple[float, ...]


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
        )
