"""The scoring pools' scaling rule."""

import pytest

from rlsys.autoscale import ScalingRule, target_replicas

RULE = ScalingRule(min_replicas=1, max_replicas=3, grow_above=0.1, idle_below_s=0.05, idle_steps=3)


@pytest.mark.parametrize(
    "replicas, wait_s, generate_s, idle_streak, expected",
    [
        (1, 0.5, 2.0, 0, 2),  # verification adds 25% to generation: grow
        (3, 0.5, 2.0, 0, 3),  # already at the maximum
        (2, 0.1, 2.0, 0, 2),  # 5%: tolerable, hold
        (2, 0.0, 2.0, 2, 2),  # idle, but not for long enough
        (2, 0.0, 2.0, 3, 1),  # idle for idle_steps: shrink
        (1, 0.0, 2.0, 9, 1),  # already at the minimum
    ],
)
def test_target_replicas(replicas, wait_s, generate_s, idle_streak, expected):
    assert target_replicas(RULE, replicas, wait_s, generate_s, idle_streak) == expected


def test_backlog_grows_pool_to_max_then_idle_shrinks_to_min():
    replicas, trace = 1, []
    for _ in range(4):  # a backed-up queue for four steps
        replicas = target_replicas(RULE, replicas, 1.0, 2.0, 0)
        trace.append(replicas)
    for streak in range(1, 10):  # then idle
        replicas = target_replicas(RULE, replicas, 0.0, 2.0, streak)
        trace.append(replicas)
    assert trace[:4] == [2, 3, 3, 3]
    assert trace[-1] == 1 and min(trace) == 1
