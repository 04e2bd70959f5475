"""The verifier pool grows while scoring holds steps up and shrinks back when idle, scoring all the while."""

import pytest
from fakes import answers

from actors.pools import RayVerifierPool
from rlsys.config import VerifierConfig

pytestmark = pytest.mark.integration


def _score_all(pool: RayVerifierPool, n: int) -> list[float]:
    calls = [pool.score(*answers([str(i)], [f"#### {i}"])) for i in range(n)]
    return [reward.score for call in calls for reward in call.result()]


def test_verifier_pool_follows_its_backlog(ray_runtime):
    pool = RayVerifierPool(VerifierConfig(replicas=1, max_replicas=3, num_cpus=0.1))
    assert pool.size() == 1
    for expected in (2, 3, 3):  # verification adds half the generation time: grow to the maximum
        pool.autoscale(wait_s=1.0, generate_s=2.0)
        assert pool.size() == expected
    assert _score_all(pool, 6) == [1.0] * 6
    sizes = []
    for _ in range(3 * pool.rule.idle_steps):
        pool.autoscale(wait_s=0.0, generate_s=2.0)
        sizes.append(pool.size())
    assert sizes[-1] == 1 and sizes == sorted(sizes, reverse=True)
    assert _score_all(pool, 3) == [1.0] * 3
