"""What the reward-hacking monitor sees at one step: greedy answers to held-out prompts, scored twice.

The learner loop samples one greedy answer per held-out prompt and scores it with the job's own reward (the
verifiers plus the reward model: what RL optimises, the *proxy*). This module turns that into the monitor's
`StepStats`, adding the *gold* score: the quickstart's hidden preference (`rlsys.rlhf.preference`), or a
verifier reward the job computes anyway (weight 0 logs it without optimising it). Pure functions: no Ray.
"""

from collections.abc import Sequence

from rlsys.config import HIDDEN_PREFERENCE
from rlsys.rlhf.monitor import StepStats
from rlsys.rlhf.preference import preference_scores
from rlsys.types import Prompt, Reward, Sample


def gold_scores(
    gold: str, prompts: Sequence[Prompt], responses: Sequence[str], rewards: Sequence[Reward]
) -> list[float]:
    """The gold score of each response: `hidden_preference`, or the verifier component named `gold`."""
    if gold == HIDDEN_PREFERENCE:
        questions = [prompt.messages[-1]["content"] for prompt in prompts]  # the user's question
        return preference_scores(questions, responses, [prompt.gold for prompt in prompts])
    return [reward.components[gold] for reward in rewards]


def step_stats(
    step: int,
    prompts: Sequence[Prompt],
    samples: Sequence[Sample],
    rewards: Sequence[Reward],
    *,
    gold: str | None,
    reward_model: str | None,
    kl: float | None,
) -> StepStats:
    """The monitor's view of one answer per prompt (aligned lists).

    proxy: the mean total reward (what RL maximises); rm_scores: the reward model's component, when the job
    has one (its outliers are a degeneration signal); kl: per-token KL to the reference, when measured.
    """
    if not (len(prompts) == len(samples) == len(rewards)):
        raise ValueError(
            f"{len(prompts)} prompts, {len(samples)} answers, {len(rewards)} rewards: "
            "pass one answer per prompt"
        )
    responses = tuple(sample.text for sample in samples)
    golds = gold_scores(gold, prompts, responses, rewards) if gold is not None else None
    return StepStats(
        step=step,
        proxy=_mean([reward.score for reward in rewards]),
        gold=_mean(golds) if golds is not None else None,
        responses=responses,
        lengths=tuple(len(sample.token_ids) for sample in samples),
        kl=kl,
        rm_scores=tuple(r.components[reward_model] for r in rewards) if reward_model is not None else (),
    )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
