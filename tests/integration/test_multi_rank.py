"""Two learner ranks take the very update one rank takes on the same batch, for ZeRO-2 and ZeRO-3, even when
the batch splits unevenly or leaves a rank nothing to train on (it then runs zero-weight padding, so both
ranks still issue the same collectives instead of waiting on each other for ever)."""

import pytest
import torch

from actors.pools import RayLearnerPool
from rlsys.batch import plan_micro_batches
from rlsys.config import AlgorithmConfig, LearnerConfig
from rlsys.types import TrainSequence

pytestmark = pytest.mark.integration


def _sequence(length: int, advantage: float, staleness: int = 0) -> TrainSequence:
    tokens = tuple(range(30, 30 + length))
    return TrainSequence((5, 6, 7), tokens, advantage, (-2.5,) * length, staleness=staleness)


# One sequence per micro-batch: three split 2 + 1 over two ranks; one leaves rank 1 only padding.
UNEVEN = [_sequence(3, 1.0), _sequence(6, -1.0, staleness=1), _sequence(4, 0.5)]
LONE = [_sequence(5, -1.0)]


def _pool(model_dir: str, zero_stage: int, replicas: int) -> RayLearnerPool:
    config = LearnerConfig(
        replicas=replicas, num_cpus=0.25, torch_threads=1, lr=0.01, micro_batch_size=1, zero_stage=zero_stage
    )
    # A sequence-level loss averaged per answer: its denominators are the global sequence counts.
    algorithm = AlgorithmConfig(name="gspo", off_policy_correction="truncated_is")
    return RayLearnerPool(model_dir, config, algorithm, dtype="float32", seed=0)


def test_the_plans_split_unevenly_and_leave_a_rank_only_padding():
    uneven = plan_micro_batches(UNEVEN, ranks=2, size=1)
    assert [len(plan) for plan in uneven] == [2, 2]
    assert sum(s.padding for plan in uneven for chunk in plan for s in chunk) == 1
    lone = plan_micro_batches(LONE, ranks=2, size=1)
    assert [[s.padding for chunk in plan for s in chunk] for plan in lone] == [[False], [True]]


@pytest.mark.parametrize("zero_stage", [2, 3])
def test_two_ranks_take_the_update_of_one(tiny_model_dir, ray_runtime, zero_stage):
    ray = ray_runtime
    one, two = (_pool(str(tiny_model_dir), zero_stage, replicas) for replicas in (1, 2))
    try:
        ray.get([*one.ready_refs(), *two.ready_refs()])
        start = dict(ray.get(one.weights()).tensors())
        for batch, stale_tokens in ((UNEVEN, 6 / 13), (LONE, 0.0)):
            single = one.train_step(batch, kl_coef=0.0)
            assert single["stale_share"] == pytest.approx(stale_tokens)
            sharded = two.train_step(batch, kl_coef=0.0)
            for key in ("policy_loss", "entropy", "logprob_mismatch", "stale_share"):
                assert sharded[key] == pytest.approx(single[key], rel=1e-4, abs=1e-7), key
            weights = {
                name: dict(ray.get(pool.weights()).tensors()) for name, pool in (("1", one), ("2", two))
            }
            for tensor in weights["1"]:
                torch.testing.assert_close(weights["2"][tensor], weights["1"][tensor], rtol=1e-4, atol=1e-6)
        moved = max((weights["1"][k] - start[k]).abs().max().item() for k in start)
        assert moved > 1e-4  # the step trained: equal because both moved alike, not because neither moved
    finally:
        one.shutdown()
        two.shutdown()
