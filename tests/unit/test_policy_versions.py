"""The version rule: a step trains on samples no more than train.max_staleness updates behind, or fails naming
the pool."""

from dataclasses import replace

import pytest

from rlsys.errors import PoolError
from rlsys.versions import staleness_of
from tests.fakes import answers


def _groups(*versions: int) -> list[list]:
    _, samples = answers(["1"] * len(versions), ["#### 1"] * len(versions))
    return [[replace(sample, policy_version=v)] for sample, v in zip(samples, versions, strict=True)]


@pytest.mark.parametrize(
    ("step", "versions", "max_staleness", "lags"),
    [
        (1, (0, 0), 0, [0, 0]),  # the first step samples the initial weights
        (5, (4, 4), 0, [0, 0]),
        (5, (3, 3), 1, [1, 1]),  # sampled while step 4 trained
        (5, (4, 4), 1, [0, 0]),  # the first step of a resumed run has nothing to be ahead of
        (9, (5, 8, 6), 3, [3, 0, 2]),  # versions may mix inside the window
    ],
)
def test_each_samples_staleness_inside_the_window(step, versions, max_staleness, lags):
    assert staleness_of(_groups(*versions), step, max_staleness=max_staleness) == lags


@pytest.mark.parametrize(
    ("step", "versions", "max_staleness", "message"),
    [
        (5, (3, 3), 0, "policy versions [3], expected 4:"),  # a stale engine, on-policy
        (5, (2, 3), 1, "policy versions [2], expected 3..4 (train.max_staleness)"),
        (5, (4, 0), 0, "policy versions [0], expected 4"),  # one engine restarted with its initial weights
        (5, (5, 5), 2, "policy versions [5]"),  # from the future: a sync ran early
    ],
)
def test_samples_outside_the_window_fail_the_step_naming_the_pool(step, versions, max_staleness, message):
    with pytest.raises(PoolError, match="^rollout pool: ") as raised:
        staleness_of(_groups(*versions), step, max_staleness=max_staleness)
    assert message in str(raised.value)
