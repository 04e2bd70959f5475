"""The one scaling rule of the elastic pools (rollout engines, verifiers, reward-model scorers)."""

import math

import pytest

from rlsys.autoscale import Backlog, ScalingRule, ScalingState, decide

RULE = ScalingRule(1, 3, grow_above=1.0, shrink_below=0.5, grow_after=1, shrink_after=3, cooldown=2)


def _backlog(drain_s_one: float) -> Backlog:
    """A backlog one replica clears in `drain_s_one` seconds, against a budget of 1 s (0: nothing queued)."""
    return Backlog(queued=10, rate=10 / drain_s_one, budget_s=1.0) if drain_s_one else Backlog(0, 0.0, 1.0)


def test_elastic_drain_time_is_the_backlog_over_the_pools_throughput():
    backlog = Backlog(queued=12, rate=2.0, budget_s=1.0)
    assert backlog.drain_s(1) == 6.0 and backlog.drain_s(3) == 2.0
    assert Backlog(0, 0.0, 1.0).drain_s(1) == 0.0  # nothing waited: nothing to clear
    assert math.isinf(Backlog(5, 0.0, 1.0).drain_s(1))  # work and no measured rate


@pytest.mark.parametrize(
    "state, drain_s_one, expected",
    [
        (ScalingState(1), 1.5, ScalingState(2, cooldown=2)),  # 1.5 s against a 1 s budget: grow
        (ScalingState(3), 9.0, ScalingState(3, over=1)),  # already at the maximum
        (ScalingState(2), 1.6, ScalingState(2)),  # 0.8 s with 2: within budget; 1.6 s with 1: keep both
        (ScalingState(2), 0.4, ScalingState(2, under=1)),  # 0.4 s with one fewer: under, once
        (ScalingState(2, under=2), 0.4, ScalingState(1, cooldown=2)),  # under for shrink_after steps: shrink
        (ScalingState(2, under=2), 0.0, ScalingState(1, cooldown=2)),  # nothing queued counts as under
        (ScalingState(1, under=5), 0.0, ScalingState(1, under=6)),  # already at the minimum
        (ScalingState(2, under=2), 0.6, ScalingState(2)),  # the streak breaks: count again
        (ScalingState(2, cooldown=1), 9.0, ScalingState(2)),  # cooling down: hold, forget the streaks
    ],
)
def test_elastic_decide(state, drain_s_one, expected):
    assert decide(RULE, state, _backlog(drain_s_one)) == expected


def test_elastic_budgets_under_a_floor_count_as_the_floor():
    # Scoring 16 samples in 31 ms against a budget of 13 ms (a tenth of a 0.13 s generation): noise, not load.
    noise = Backlog(queued=16, rate=16 / 0.031, budget_s=0.013)
    assert decide(ScalingRule(1, 2), ScalingState(1), noise) == ScalingState(1)
    assert decide(ScalingRule(1, 2, min_budget_s=0.0), ScalingState(1), noise).replicas == 2
    slow = Backlog(queued=16, rate=16 / 3.0, budget_s=0.013)  # a slow reward: 3 s a batch
    assert decide(ScalingRule(1, 2), ScalingState(1), slow).replicas == 2


def test_elastic_work_without_a_measured_rate_changes_nothing():
    state = ScalingState(2, over=0, under=2)
    assert decide(RULE, state, Backlog(queued=8, rate=0.0, budget_s=1.0)) == state


def test_elastic_grow_after_asks_for_a_streak():
    rule = ScalingRule(1, 3, grow_after=2)
    first = decide(rule, ScalingState(1), _backlog(5.0))
    assert first == ScalingState(1, over=1)
    assert decide(rule, first, _backlog(5.0)).replicas == 2


def test_elastic_no_growth_while_a_new_replica_is_starting():
    state = ScalingState(2, over=3)  # one of the two still starting, the backlog still over
    assert decide(RULE, state, _backlog(9.0), starting=1) == ScalingState(2, over=4)
    assert decide(RULE, state, _backlog(9.0)).replicas == 3  # once it serves, the pool may grow again
    # A start no longer needed is given back like any replica: the backlog cleared while it started.
    assert decide(RULE, ScalingState(2, under=2), _backlog(0.0), starting=1).replicas == 1


def _run(rule: ScalingRule, drains: list[float], replicas: int = 1) -> list[int]:
    """The pool's size after each step of a workload whose backlog one replica clears in drains[i] s."""
    state, sizes = ScalingState(replicas), []
    for drain in drains:
        state = decide(rule, state, _backlog(drain))
        sizes.append(state.replicas)
    return sizes


def test_elastic_backlog_grows_the_pool_to_its_maximum_then_idleness_shrinks_it_to_its_minimum():
    sizes = _run(RULE, [6.0] * 8 + [0.0] * 12)
    assert sizes[:7] == [2, 2, 2, 3, 3, 3, 3]  # one at a time, a cool-down between
    assert sizes[-1] == 1 and max(sizes) == 3
    shrinks = [i for i in range(1, len(sizes)) if sizes[i] < sizes[i - 1]]
    assert shrinks == [10, 15]  # after shrink_after idle steps; again after the cool-down and another streak


def test_elastic_hysteresis_keeps_a_pool_at_the_edge_from_flapping():
    # 1.6 s of work for one replica: 0.8 s with two, inside the 1 s budget; 1.6 s with one, outside it.
    sizes = _run(RULE, [1.6] * 30)
    assert sizes == [2] * 30  # grows once and stays: the smaller pool would not clear the budget
    # Work that makes a pool shrink cannot make the smaller pool grow back (0.4 s < 0.5 x budget < budget).
    sizes = _run(RULE, [0.4] * 30, replicas=3)
    assert sizes[-1] == 1 and sizes == sorted(sizes, reverse=True)


def test_elastic_rule_refuses_bounds_and_thresholds_that_cannot_work():
    with pytest.raises(ValueError, match="min_replicas"):
        ScalingRule(3, 2)
    with pytest.raises(ValueError, match="shrink_below"):
        ScalingRule(1, 2, grow_above=0.5, shrink_below=0.5)
