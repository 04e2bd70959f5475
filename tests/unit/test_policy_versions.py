"""The version rule: a step trains on samples of exactly the version it expects, or fails naming the pool."""

from dataclasses import replace

import pytest

from rlsys.errors import PoolError
from rlsys.versions import policy_lag
from tests.fakes import answers


def _groups(*versions: int) -> list[list]:
    _, samples = answers(["1"] * len(versions), ["#### 1"] * len(versions))
    return [[replace(sample, policy_version=v)] for sample, v in zip(samples, versions, strict=True)]


@pytest.mark.parametrize(
    ("step", "versions", "ahead", "lag"),
    [
        (1, (0, 0), False, 0),  # the first step samples the initial weights
        (5, (4, 4), False, 0),
        (5, (3, 3), True, 1),  # generated while step 4 trained
        (5, (4, 4), True, 0),  # the first step of a resumed run has nothing to be ahead of
    ],
)
def test_the_lag_of_samples_from_the_expected_version(step, versions, ahead, lag):
    assert policy_lag(_groups(*versions), step, generate_ahead=ahead) == lag


@pytest.mark.parametrize(
    ("step", "versions", "ahead", "message"),
    [
        (5, (3, 3), False, "policy version 3, expected 4"),  # a stale engine, on-policy
        (5, (2, 2), True, "expected 4 or 3 (train.generate_ahead)"),
        (5, (4, 0), False, "policy versions [0, 4]"),  # one engine restarted with its initial weights
        (5, (5, 5), False, "policy version 5"),  # from the future: a sync ran early
    ],
)
def test_samples_from_another_version_fail_the_step_naming_the_pool(step, versions, ahead, message):
    with pytest.raises(PoolError, match="^rollout pool: ") as raised:
        policy_lag(_groups(*versions), step, generate_ahead=ahead)
    assert message in str(raised.value)
