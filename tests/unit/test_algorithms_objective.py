"""The aggregation modes and the objective every algorithm trains with: hand-computed reductions, and the
learner's sharding (ranks x micro-batches, each dividing by global counts) giving the unsharded loss,
metrics and gradient for every `algorithm.name`."""

import math
from functools import partial
from typing import get_args

import pytest
import torch

from rlsys.algorithms.aggregation import (
    GlobalCounts,
    aggregation,
    seq_mean_token_mean,
    seq_mean_token_sum_norm,
    token_mean,
)
from rlsys.algorithms.logprobs import token_logprobs
from rlsys.algorithms.losses import ppo_clip_loss
from rlsys.algorithms.objective import objective_for, policy_objective
from rlsys.config import ALGORITHM_PRESETS, AlgorithmConfig

VALUES = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
COUNTS = GlobalCounts(tokens=5, sequences=2)


def test_aggregations_hand_computed():
    # 5 response tokens summing to 18; answer means 1.5 and 5; answer sums 3 and 15.
    assert token_mean(VALUES, MASK, COUNTS).item() == pytest.approx(18 / 5)
    assert seq_mean_token_mean(VALUES, MASK, COUNTS).item() == pytest.approx((1.5 + 5) / 2)
    assert seq_mean_token_sum_norm(VALUES, MASK, COUNTS, max_response_tokens=4).item() == pytest.approx(
        18 / (2 * 4)
    )


def test_global_counts_of_a_batch():
    assert GlobalCounts.of([2, 3]) == COUNTS
    with pytest.raises(ValueError, match="tokens count must be positive"):
        token_mean(VALUES, MASK, GlobalCounts(tokens=0, sequences=2))
    with pytest.raises(ValueError, match="max_response_tokens"):
        aggregation("seq_mean_token_sum_norm", max_response_tokens=None)


@pytest.mark.parametrize("mode", get_args(AlgorithmConfig.model_fields["aggregation"].annotation))
def test_each_aggregation_is_sharding_invariant(mode):
    torch.manual_seed(0)
    values, mask = torch.randn(6, 5), _response_mask(6, 5)
    counts = GlobalCounts.of(mask.sum(dim=1).int().tolist())
    reduce = aggregation(mode, max_response_tokens=5)
    whole = reduce(values, mask, counts)
    pieces = sum(reduce(values[rows], mask[rows], counts) for rows in _SHARDS)
    assert pieces.item() == pytest.approx(whole.item(), abs=1e-6)


def test_grpo_objective_is_the_token_mean_of_the_clipped_loss_plus_k3():
    logp = torch.full((1, 2), math.log(0.5))
    ref = torch.full((1, 2), math.log(0.25))
    counts = GlobalCounts(tokens=2, sequences=1)
    grpo = objective_for(AlgorithmConfig(kl_coef=0.1))
    base, _ = grpo(logp, logp, torch.tensor([1.0]), torch.ones(1, 2), counts)
    with_kl, metrics = grpo(
        logp, logp, torch.tensor([1.0]), torch.ones(1, 2), counts, kl_coef=0.1, ref_logprobs=ref
    )
    k3 = 0.5 - math.log(0.5) - 1
    assert base.item() == pytest.approx(-1.0)  # on-policy: -ratio * A
    assert metrics["kl"] == pytest.approx(k3)
    assert (with_kl - base).item() == pytest.approx(0.1 * k3)
    assert metrics["policy_loss"] == pytest.approx(-1.0) and metrics["ratio"] == pytest.approx(1.0)


def test_clip_fractions_low_and_high_add_up():
    # Token ratios 1.5 (A>0, above the ceiling), 0.5 (A<0, below the floor), 1.0 (inside).
    logprobs = torch.tensor([[math.log(1.5), math.log(0.5), 0.0]])
    advantages = torch.tensor([[1.0, -1.0, 1.0]])
    loss_fn = partial(ppo_clip_loss, clip_low=0.2, clip_high=0.28)
    _, metrics = policy_objective(
        logprobs, torch.zeros(1, 3), advantages, torch.ones(1, 3), GlobalCounts(3, 1),
        policy_loss=loss_fn, aggregate=token_mean,
    )  # fmt: skip
    assert metrics["clip_fraction_high"] == pytest.approx(1 / 3)
    assert metrics["clip_fraction_low"] == pytest.approx(1 / 3)
    assert metrics["clip_fraction"] == pytest.approx(2 / 3)


def test_kl_in_reward_moves_into_the_advantages_not_the_loss():
    old = torch.tensor([[math.log(0.5), math.log(0.5)]])
    ref = torch.tensor([[math.log(0.25), math.log(0.5)]])
    counts, mask = GlobalCounts(tokens=2, sequences=1), torch.ones(1, 2)
    objective = objective_for(AlgorithmConfig(name="reinforce_pp", kl_coef=0.5))
    loss, metrics = objective(old, old, torch.tensor([1.0]), mask, counts, kl_coef=0.5, ref_logprobs=ref)
    # k1 per token: [log 2, 0]; KL to go [log 2, 0]; advantages 1 - 0.5 * [log 2, 0]; on-policy loss -A.
    assert loss.item() == pytest.approx(-((1 - 0.5 * math.log(2)) + 1) / 2)
    assert metrics["kl"] == pytest.approx(math.log(2) / 2)


def test_every_preset_names_an_implemented_choice():
    assert set(ALGORITHM_PRESETS) == set(get_args(AlgorithmConfig.model_fields["name"].annotation))
    for policy_loss in get_args(AlgorithmConfig.model_fields["policy_loss"].annotation):
        objective_for(AlgorithmConfig(policy_loss=policy_loss, max_response_tokens=4))


# The learner's split of six sequences: rank 0 takes rows 0-2 in micro-batches [0] and [1, 2]; rank 1 rows
# 3-5 in [3, 4] and [5].
_SHARDS = [[0], [1, 2], [3, 4], [5]]


def _response_mask(rows: int, width: int, seed: int = 1) -> torch.Tensor:
    """One contiguous run of response tokens per row (after a prompt, before padding), at least one."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.zeros(rows, width)
    for row in range(rows):
        start = int(torch.randint(0, width - 1, (1,), generator=generator))
        end = int(torch.randint(start + 1, width + 1, (1,), generator=generator))
        mask[row, start:end] = 1.0
    return mask


@pytest.mark.parametrize("off_policy", [False, True])
@pytest.mark.parametrize("name", list(ALGORITHM_PRESETS))
def test_two_ranks_give_the_update_of_one_for_every_algorithm(name, off_policy):
    """Summed over ranks and micro-batches with global counts, the loss, its metrics and its gradient equal
    the unsharded batch's: what lets a 2-rank learner take the 1-rank step."""
    torch.manual_seed(0)
    rows, width, vocab = 6, 7, 11
    logits = torch.randn(rows, width, vocab, requires_grad=True)
    targets = torch.randint(0, vocab, (rows, width))
    mask = _response_mask(rows, width)
    counts = GlobalCounts.of(mask.sum(dim=1).int().tolist())
    # PPO's advantages come per token (GAE over its critic's values); the others' per answer.
    advantages = torch.randn(rows, width) if name == "ppo" else torch.randn(rows)
    logprobs = token_logprobs(logits, targets)
    # Off-policy: the sampler's log-probs differ from the learner's, so ratios move and clips bind.
    old = logprobs.detach() + (0.3 * torch.randn(rows, width) if off_policy else 0.0)
    ref = logprobs.detach() + 0.2 * torch.randn(rows, width)
    objective = objective_for(AlgorithmConfig(name=name, max_response_tokens=width, kl_coef=0.1))

    def run(row_sets):
        logits.grad = None
        total, metrics = torch.zeros(()), {}
        for part in row_sets:
            lp = token_logprobs(logits[part], targets[part])
            loss, part_metrics = objective(
                lp, old[part], advantages[part], mask[part], counts, kl_coef=0.1, ref_logprobs=ref[part]
            )
            loss.backward()
            total = total + loss.detach()
            for key, value in part_metrics.items():
                metrics[key] = metrics.get(key, 0.0) + value
        return total.item(), metrics, logits.grad.clone()

    whole_loss, whole_metrics, whole_grad = run([list(range(rows))])
    sharded_loss, sharded_metrics, sharded_grad = run(_SHARDS)
    assert sharded_loss == pytest.approx(whole_loss, abs=1e-6)
    assert sharded_metrics == pytest.approx(whole_metrics, abs=1e-6)
    assert torch.allclose(sharded_grad, whole_grad, atol=1e-6)
    assert whole_grad.abs().sum() > 0  # the gradient flows into the logits
