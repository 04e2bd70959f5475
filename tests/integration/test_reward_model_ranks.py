"""Two reward-model ranks, one ranking per forward, take the very update one rank takes scoring the whole
batch in one forward, for ZeRO-2 and ZeRO-3 and for both losses (their denominators differ: ordered pairs,
rankings), even when the rankings split unevenly or leave a rank nothing to train on; and they report the
same training and held-out metrics."""

import pytest
import torch
from safetensors.torch import load_file

from actors.trainer_pools import RayRewardModelPool
from rlsys.rlhf.config import RMLearnerConfig
from rlsys.rlhf.reward_model import EncodedRanking

pytestmark = pytest.mark.integration


def _ranking(first: int, lengths: tuple[int, ...], ranks: tuple[int, ...]) -> EncodedRanking:
    """A ranking of responses made of made-up token ids (no pad id among them) of the given lengths."""
    return EncodedRanking(tuple(tuple(range(first + i, first + i + n)) for i, n in enumerate(lengths)), ranks)


# On two ranks, one ranking per micro-batch: three split 1 + 2 (rank 0 runs one idle forward and backward);
# one leaves rank 1 only an idle pass. Ties and sizes differ, so the pair and ranking counts differ too.
UNEVEN = [
    _ranking(30, (5, 3, 4), (0, 1, 1)),
    _ranking(40, (6, 2), (1, 0)),
    _ranking(50, (3, 4, 5, 2), (2, 0, 1, 3)),
]
LONE = [_ranking(60, (4, 6, 3), (1, 0, 2))]
HELDOUT = [_ranking(70, (4, 5), (0, 1)), _ranking(80, (3, 3, 6), (0, 2, 1))]


def _pool(model_dir: str, zero_stage: int, loss: str, replicas: int) -> RayRewardModelPool:
    """One rank scores a step in one forward; two take a ranking per forward, so a loss divided by anything
    but the whole step's count would weigh the rankings differently."""
    config = RMLearnerConfig(
        replicas=replicas,
        num_cpus=0.25,
        torch_threads=1,
        lr=0.01,
        micro_batch_size=8 if replicas == 1 else 1,
        zero_stage=zero_stage,
    )
    return RayRewardModelPool(model_dir, config, loss=loss, dtype="float32", seed=0)


def _saved_weights(pool: RayRewardModelPool, directory) -> dict[str, torch.Tensor]:
    pool.save_reward_model(str(directory), {"max_length": 64})
    return load_file(directory / "model.safetensors")


@pytest.mark.parametrize("zero_stage, loss", [(2, "bradley_terry"), (3, "plackett_luce")])
def test_two_ranks_take_the_update_of_one(tiny_model_dir, ray_runtime, tmp_path, zero_stage, loss):
    ray = ray_runtime
    one, two = (_pool(str(tiny_model_dir), zero_stage, loss, replicas) for replicas in (1, 2))
    try:
        ray.get([*one.ready_refs(), *two.ready_refs()])
        start = _saved_weights(one, tmp_path / "start")
        for step, batch in enumerate((UNEVEN, LONE)):
            single, sharded = one.train_step(batch), two.train_step(batch)
            for key in ("loss", "pair_accuracy", "margin", "pairs", "grad_norm", "lr"):
                assert sharded[key] == pytest.approx(single[key], rel=1e-4, abs=1e-7), key
            weights = {
                name: _saved_weights(pool, tmp_path / f"{name}-{step}")
                for name, pool in (("1", one), ("2", two))
            }
            # Padded and unpadded forwards round differently, and Adam turns a near-zero gradient's rounding
            # into a visible step: 1e-5 stays three orders of magnitude below a step's change (lr 0.01).
            for tensor in weights["1"]:
                torch.testing.assert_close(weights["2"][tensor], weights["1"][tensor], rtol=1e-4, atol=1e-5)
        moved = max((weights["1"][k] - start[k]).abs().max().item() for k in start)
        assert moved > 1e-4  # the steps trained: equal because both moved alike, not because neither moved
        held_one, held_two = one.evaluate(HELDOUT), two.evaluate(HELDOUT)
        assert held_two == pytest.approx(held_one, rel=1e-4, abs=1e-6)
        assert held_one["pairs"] == 4
    finally:
        one.shutdown()
        two.shutdown()
