"""Adding the reward model's score to the verifiers' rewards: one more named, weighted component.

The verifier pool returns a `Reward` per sample (a weighted sum of named reward functions); the reward pool
returns one reward-model score per sample. The job's total is the verifiers' total plus weight * score,
and the score is kept as its own component so `reward/<name>` is logged next to the others.
"""

from collections.abc import Sequence
from dataclasses import replace

from rlsys.types import Reward


def add_component(
    rewards: Sequence[Reward], scores: Sequence[float], *, name: str, weight: float
) -> list[Reward]:
    """Each reward with `weight * score` added to its total and `score` recorded under `name`."""
    if len(rewards) != len(scores):
        raise ValueError(f"{len(rewards)} rewards but {len(scores)} scores; score every sample once")
    out = []
    for reward, value in zip(rewards, scores, strict=True):
        if name in reward.components:
            raise ValueError(f"reward component '{name}' is already set; give the reward model another name")
        components = {**reward.components, name: float(value)}
        out.append(replace(reward, score=reward.score + weight * float(value), components=components))
    return out
