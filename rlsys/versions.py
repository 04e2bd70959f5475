"""Which policy version a step's samples must come from, and the check that they do.

The loop syncs the weights of step s to the engines as policy version s, so step s trains on samples of
version s-1 (on-policy). With `train.generate_ahead` the engines sample step s+1 while step s trains, from
the weights of version s-1: one update behind. The first step of a run, or of a resumed run, has nothing to
sample ahead of, so it is on-policy even then. Anything else (samples of several versions, or older ones)
means an engine served weights it should not have: the step fails instead of training on them.
"""

from collections.abc import Sequence

from rlsys.errors import PoolError
from rlsys.types import Sample


def policy_lag(groups: Sequence[Sequence[Sample]], step: int, *, generate_ahead: bool) -> int:
    """Updates the samples of `step` are behind the weights being trained (0, or 1 when generating ahead).

    Raises `PoolError` when the samples come from more than one version, or from one the rule forbids.
    """
    versions = sorted({sample.policy_version for group in groups for sample in group})
    if len(versions) != 1:
        raise PoolError(
            f"rollout pool: step {step}'s samples come from policy versions {versions}; every sample of a "
            "step must come from one version"
        )
    lag = step - 1 - versions[0]
    allowed = (0, 1) if generate_ahead else (0,)
    if lag not in allowed:
        expected = " or ".join(str(step - 1 - a) for a in allowed)
        why = " (train.generate_ahead)" if generate_ahead else ""
        raise PoolError(
            f"rollout pool: step {step}'s samples come from policy version {versions[0]}, expected "
            f"{expected}{why}: an engine served weights it should not have"
        )
    return lag
