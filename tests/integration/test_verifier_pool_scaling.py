"""The verifier pool grows while its backlog outlasts its budget and shrinks back when idle, scoring all the
while (the rule itself: tests/unit/test_elastic_scaling.py)."""

import time

import pytest
from fakes import answers

from actors.pools import RayVerifierPool
from rlsys.config import VerifierConfig

pytestmark = pytest.mark.integration

GROW = {"queued": 1e6, "budget_s": 1e-3}  # far more than one verifier scores in the budget
IDLE = {"queued": 0, "budget_s": 1.0}


def _score_all(pool: RayVerifierPool, n: int) -> list[float]:
    calls = [pool.score(*answers([str(i)], [f"#### {i}"])) for i in range(n)]
    return [reward.score for call in calls for reward in call.result()]


def test_elastic_verifier_pool_follows_its_backlog(ray_runtime):
    pool = RayVerifierPool(VerifierConfig(replicas=1, max_replicas=3, num_cpus=0.1))
    assert pool.size() == 1
    try:
        sizes = []
        for _ in range(pool.rule.cooldown + 2):  # a backlog far past the budget, step after step
            assert _score_all(pool, 3) == [1.0] * 3  # the throughput the rule weighs the backlog against
            pool.autoscale(**GROW)
            sizes.append(pool.size() + len(pool.joining))
            deadline = time.monotonic() + 300
            while pool.joining:  # a new verifier joins at a batch once started; batches go on meanwhile
                assert time.monotonic() < deadline, "the new verifier never joined"
                assert _score_all(pool, 3) == [1.0] * 3
                time.sleep(0.5)
        assert sizes == [2] * (pool.rule.cooldown + 1) + [3]  # one at a time, a cool-down between
        assert pool.metrics()["pool/verifier_replicas"] == 3 and pool.metrics()["pool/verifier_starting"] == 0
        sizes = []
        for _ in range(2 * (pool.rule.cooldown + pool.rule.shrink_after)):
            pool.autoscale(**IDLE)
            sizes.append(pool.size())
        assert sizes[-1] == 1 and sizes == sorted(sizes, reverse=True)
        assert _score_all(pool, 3) == [1.0] * 3
    finally:
        pool.shutdown()
