"""Which policy versions a step's samples may come from, and the check that they do.

The loop syncs the weights of step s to the engines as policy version s, so step s trains the weights of
version s-1; a sample of version v is (s-1) - v updates stale. With `train.max_staleness` K the engines
sample up to K steps ahead, so a step's samples may be 0..K updates stale (the first steps of a run, or of a
resumed run, have fewer steps to run ahead of). Anything outside that window (an older version, or a
newer one than the learner's) means an engine served weights it should not have: the step fails instead of
training on them.
"""

from collections.abc import Sequence

from rlsys.errors import PoolError
from rlsys.types import Sample


def staleness_of(groups: Sequence[Sequence[Sample]], step: int, *, max_staleness: int) -> list[int]:
    """Each sample's staleness (updates behind the weights step `step` trains), in sample order.

    Raises `PoolError` naming the versions when any sample lies outside [step-1-max_staleness, step-1].
    """
    newest = step - 1
    lags = [newest - sample.policy_version for group in groups for sample in group]
    outside = sorted({newest - lag for lag in lags if not 0 <= lag <= max_staleness})
    if outside:
        oldest = newest - max_staleness
        window = f"{newest}" if max_staleness == 0 else f"{oldest}..{newest} (train.max_staleness)"
        raise PoolError(
            f"rollout pool: step {step}'s samples come from policy versions {outside}, expected {window}: "
            "an engine served weights it should not have"
        )
    return lags
