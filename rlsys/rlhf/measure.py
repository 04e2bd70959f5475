"""What the reward-hacking monitor sees at one step: greedy answers to held-out prompts, scored twice.

The monitor samples one greedy answer per held-out prompt and scores it with the job's own reward (the
verifiers plus the reward model: what RL optimises, the *proxy*). This module turns that into the monitor's
`StepStats`; the *gold* score is a reward component the job computes anyway (a verifier reward, or the
quickstart's hidden preference, at weight 0 when RL must not optimise it). Pure functions: no Ray.
"""

from collections.abc import Sequence

from rlsys.metrics import mean
from rlsys.rlhf.monitor import StepStats
from rlsys.types import Reward, Sample


def step_stats(
    step: int,
    samples: Sequence[Sample],
    rewards: Sequence[Reward],
    *,
    gold: str | None,
    reward_model: str | None,
    kl: float | None,
) -> StepStats:
    """The monitor's view of one answer per prompt (aligned lists).

    proxy: the mean total reward (what RL maximises); gold: the mean of the component named `gold`;
    rm_scores: the reward model's component, when the job has one (its outliers are a degeneration signal);
    kl: per-token KL to the reference, when measured.
    """
    if len(samples) != len(rewards):
        raise ValueError(f"{len(samples)} answers but {len(rewards)} rewards: pass one reward per answer")
    return StepStats(
        step=step,
        proxy=mean(reward.score for reward in rewards),
        gold=mean(reward.components[gold] for reward in rewards) if gold is not None else None,
        responses=tuple(sample.text for sample in samples),
        lengths=tuple(len(sample.token_ids) for sample in samples),
        kl=kl,
        rm_scores=tuple(r.components[reward_model] for r in rewards) if reward_model is not None else (),
    )
