"""Bradley–Terry and Plackett–Luce ranking losses against hand-computed values, ties, padding, gradients, and
a batch split into shards adding up to the whole batch's loss and gradient."""

import math

import pytest
import torch

from rlsys.rlhf.losses import (
    RANKING_LOSSES,
    bradley_terry_loss,
    loss_denominator,
    ordered_pairs,
    pair_metrics,
    plackett_luce_loss,
)


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def _batch(rewards, ranks, valid=None):
    rewards = torch.tensor(rewards, dtype=torch.float64, requires_grad=True)
    ranks = torch.tensor(ranks)
    valid = torch.ones_like(ranks, dtype=torch.bool) if valid is None else torch.tensor(valid)
    return rewards, ranks, valid


def test_bradley_terry_single_pair():
    # -log sigmoid(1 - 0) = softplus(-1) = 0.313262
    loss, metrics = bradley_terry_loss(*_batch([[1.0, 0.0]], [[0, 1]]))
    assert loss.item() == pytest.approx(_softplus(-1.0)) == pytest.approx(0.3132617, abs=1e-6)
    assert metrics == {
        "loss": pytest.approx(0.3132617, abs=1e-6),
        "pair_accuracy": 1.0,
        "margin": 1.0,
        "pairs": 1.0,
    }


def test_bradley_terry_over_all_pairs_of_a_ranking():
    # Ranking 0 > 1 > 2 with scores (2, 0, 1): pairs (0,1) d=2, (0,2) d=1, (1,2) d=-1.
    loss, metrics = bradley_terry_loss(*_batch([[2.0, 0.0, 1.0]], [[0, 1, 2]]))
    expected = (_softplus(-2.0) + _softplus(-1.0) + _softplus(1.0)) / 3
    assert loss.item() == pytest.approx(expected)  # = 0.6125
    assert metrics["pair_accuracy"] == pytest.approx(2 / 3)
    assert metrics["margin"] == pytest.approx((2 + 1 - 1) / 3)
    assert metrics["pairs"] == 3


def test_bradley_terry_ties_and_padding_give_no_pairs():
    # Row 0: responses 1 and 2 tie -> pairs (0,1), (0,2). Row 1: only 2 valid responses -> pair (0,1).
    rewards, ranks, valid = _batch(
        [[1.0, 0.0, 0.5], [0.0, 3.0, 99.0]], [[0, 1, 1], [0, 1, 0]], [[True, True, True], [True, True, False]]
    )
    loss, metrics = bradley_terry_loss(rewards, ranks, valid)
    expected = (_softplus(-1.0) + _softplus(-0.5) + _softplus(3.0)) / 3
    assert loss.item() == pytest.approx(expected)
    assert metrics["pairs"] == 3


def test_bradley_terry_all_tied_batch_is_zero_with_a_graph():
    rewards, ranks, valid = _batch([[1.0, 2.0]], [[0, 0]])
    loss, metrics = bradley_terry_loss(rewards, ranks, valid)
    loss.backward()
    assert loss.item() == 0.0 and metrics["pairs"] == 0 and torch.all(rewards.grad == 0)


def test_plackett_luce_equals_bradley_terry_for_pairs():
    batch = _batch([[0.3, -1.2], [2.0, 2.5]], [[0, 1], [1, 0]])
    bt, _ = bradley_terry_loss(*batch)
    pl, _ = plackett_luce_loss(*batch)
    # PL divides by rankings (2) and BT by pairs (2): with one pair per ranking they agree.
    assert pl.item() == pytest.approx(bt.item())


def test_plackett_luce_three_items_by_hand():
    # Order 0 > 1 > 2, scores (2, 0, 1):
    #   -log P = -[2 - log(e^2 + e^0 + e^1)] - [0 - log(e^0 + e^1)] - [1 - log e^1]
    loss, _ = plackett_luce_loss(*_batch([[2.0, 0.0, 1.0]], [[0, 1, 2]]))
    expected = -(2 - math.log(math.e**2 + 1 + math.e)) - (0 - math.log(1 + math.e))
    assert loss.item() == pytest.approx(expected)  # 0.40761 + 1.31326
    assert loss.item() == pytest.approx(1.72087, abs=1e-5)


def test_plackett_luce_ties_use_breslow_risk_sets():
    # Best is 0; 1 and 2 tie below it. Each tied item is scored against {1, 2}:
    #   -[r0 - lse(r0, r1, r2)] - [r1 - lse(r1, r2)] - [r2 - lse(r1, r2)]
    r = [1.0, 0.0, 0.5]
    loss, _ = plackett_luce_loss(*_batch([r], [[0, 1, 1]]))
    lse_all = math.log(sum(math.exp(x) for x in r))
    lse_tie = math.log(math.exp(0.0) + math.exp(0.5))
    assert loss.item() == pytest.approx(-(1.0 - lse_all) - (0.0 - lse_tie) - (0.5 - lse_tie))


def test_plackett_luce_fully_tied_pair_is_minimal_at_equal_scores():
    equal, _ = plackett_luce_loss(*_batch([[0.7, 0.7]], [[0, 0]]))
    apart, _ = plackett_luce_loss(*_batch([[0.7, -0.7]], [[0, 0]]))
    assert equal.item() == pytest.approx(2 * math.log(2))
    assert apart.item() > equal.item()


def test_plackett_luce_ignores_padding():
    padded, _ = plackett_luce_loss(*_batch([[2.0, 0.0, 50.0]], [[0, 1, 0]], [[True, True, False]]))
    plain, _ = plackett_luce_loss(*_batch([[2.0, 0.0]], [[0, 1]]))
    assert padded.item() == pytest.approx(plain.item())


@pytest.mark.parametrize("loss_fn", [bradley_terry_loss, plackett_luce_loss])
def test_gradient_raises_the_better_and_lowers_the_worse(loss_fn):
    rewards, ranks, valid = _batch([[0.0, 0.0, 0.0, 0.0]], [[0, 1, 2, 3]], [[True, True, True, False]])
    loss, _ = loss_fn(rewards, ranks, valid)
    loss.backward()
    grad = rewards.grad[0]
    assert torch.isfinite(rewards.grad).all()
    assert grad[0] < 0 < grad[2]  # gradient descent raises the best, lowers the worst
    assert grad[3] == 0  # padding gets no gradient


@pytest.mark.parametrize("loss_fn", [bradley_terry_loss, plackett_luce_loss])
def test_gradient_matches_finite_differences(loss_fn):
    rewards, ranks, valid = _batch([[0.4, -0.3, 1.1], [0.2, 0.0, -0.5]], [[0, 1, 1], [2, 0, 1]])
    assert torch.autograd.gradcheck(lambda r: loss_fn(r, ranks, valid)[0], (rewards,))


def test_pair_metrics_count_score_ties_as_half():
    rewards, ranks, valid = _batch([[1.0, 1.0, 0.0]], [[0, 1, 2]])
    metrics = pair_metrics(rewards, ranks, valid)
    assert metrics["pair_accuracy"] == pytest.approx((0.5 + 1 + 1) / 3)


def test_denominators_count_ordered_pairs_or_rankings():
    assert ordered_pairs((0, 1, 1)) == 2 and ordered_pairs((0, 0)) == 0 and ordered_pairs((2, 0, 1)) == 3
    ranks = [(0, 1, 1), (0, 0), (2, 0, 1)]
    assert loss_denominator("bradley_terry", ranks) == 5
    assert loss_denominator("plackett_luce", ranks) == 3


@pytest.mark.parametrize("loss", sorted(RANKING_LOSSES))
def test_shards_with_the_whole_denominator_add_up_to_the_whole_batch(loss):
    # Three rankings, the first with a tie, split 2 + 1 as two ranks would hold them.
    scores = [[0.4, -0.3, 1.1], [0.2, 0.0, -0.5], [1.5, 0.3, 0.0]]
    ranks = [[0, 1, 1], [2, 0, 1], [0, 2, 1]]
    whole_rewards, whole_ranks, valid = _batch(scores, ranks)
    whole, _ = RANKING_LOSSES[loss](whole_rewards, whole_ranks, valid)
    whole.backward()
    denominator = loss_denominator(loss, ranks)
    shards, grads = [], []
    for rows in (slice(0, 2), slice(2, 3)):
        rewards, shard_ranks, shard_valid = _batch(scores[rows], ranks[rows])
        shard, metrics = RANKING_LOSSES[loss](rewards, shard_ranks, shard_valid, denominator)
        shard.backward()
        shards.append(metrics["loss"])
        grads.append(rewards.grad)
    assert sum(shards) == pytest.approx(whole.item())
    torch.testing.assert_close(torch.cat(grads), whole_rewards.grad)
