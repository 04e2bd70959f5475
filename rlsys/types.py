"""The plain data that crosses pool boundaries: prompts, samples and rewards.

Every arrow between the learner loop and the pools carries these types, so a pool can be a Ray actor, a local
object or a fake in a unit test.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Prompt:
    """One task instance: chat messages to complete and what a correct answer is."""

    id: str
    messages: tuple[dict[str, str], ...]
    gold: str
    kind: str = "math"


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
class Reward:
    """The score of one sample: the weighted total and the named components it was made of."""

    score: float
    components: dict[str, float] = field(default_factory=dict)
    correct: bool = False  # the verifiable verdict, for accuracy metrics
    verdict: str = ""  # the verifier's status word ("correct", "no_answer", "timeout", ...)
    elapsed_s: float = 0.0
