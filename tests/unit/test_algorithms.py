"""Closed-form checks of the estimators, policy losses and KL estimators, each against hand-computed values,
and a gradient-flow test per loss."""

import math

import pytest
import torch

from rlsys.algorithms.advantages import (
    accepted_samples,
    batch_normalized_advantages,
    group_normalized_advantages,
    informative_groups,
    kl_penalized_advantages,
    leave_one_out_advantages,
    overlong_penalty,
)
from rlsys.algorithms.logprobs import token_entropy, token_logprobs
from rlsys.algorithms.losses import cispo_loss, gspo_loss, kl_k1, kl_k2, kl_k3, nll_loss, ppo_clip_loss


def test_group_advantages_hand_computed():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
    adv = group_normalized_advantages(rewards, eps=0.0)
    # Group 1: mean 0.5, population std 0.5 -> ±1. Group 2: mean 0.75, std sqrt(3)/4.
    assert torch.allclose(adv[0], torch.tensor([1.0, -1.0, -1.0, 1.0]))
    std = math.sqrt(3) / 4
    assert torch.allclose(adv[1], torch.tensor([0.25, 0.25, 0.25, -0.75]) / std)


def test_group_advantages_without_std_scaling_and_uniform_group():
    rewards = torch.tensor([[2.0, 0.0], [3.0, 3.0]])
    assert torch.equal(
        group_normalized_advantages(rewards, scale_by_std=False), torch.tensor([[1.0, -1.0], [0.0, 0.0]])
    )
    assert torch.equal(group_normalized_advantages(rewards)[1], torch.zeros(2))
    assert informative_groups(rewards).tolist() == [True, False]


@pytest.mark.parametrize(
    "estimate",
    [
        group_normalized_advantages,
        leave_one_out_advantages,
        lambda rewards: batch_normalized_advantages(rewards, torch.ones_like(rewards), rewards >= 0),
    ],
)
def test_estimators_reject_flat_input(estimate):
    with pytest.raises(ValueError, match="num_prompts, group_size"):
        estimate(torch.zeros(4))


def test_leave_one_out_hand_computed():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
    # Sample 1 of group 1: r=1, the others average 1/3 -> 2/3. Sample 4 of group 2: 1 - 0 = 1; the zeros:
    # 0 - 1/3.
    expected = torch.tensor([[2 / 3, -2 / 3, -2 / 3, 2 / 3], [-1 / 3, -1 / 3, -1 / 3, 1.0]])
    assert torch.allclose(leave_one_out_advantages(rewards), expected)
    # The same as the group-centred reward scaled by G/(G-1).
    assert torch.allclose(
        leave_one_out_advantages(rewards), group_normalized_advantages(rewards, scale_by_std=False) * 4 / 3
    )
    with pytest.raises(ValueError, match="at least 2"):
        leave_one_out_advantages(torch.ones(3, 1))


def test_batch_normalized_advantages_weigh_tokens():
    rewards = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    lengths = torch.tensor([[1, 3], [2, 2]])
    everything = torch.ones(2, 2, dtype=torch.bool)
    # Group-centred: [[0.5, -0.5], [0, 0]]. Over 8 tokens: mean (0.5 - 1.5) / 8 = -1/8, variance
    # (0.625^2 + 3 * 0.375^2 + 4 * 0.125^2) / 8 = 7/64, std sqrt(7)/8.
    expected = torch.tensor([[5.0, -3.0], [1.0, 1.0]]) / math.sqrt(7)
    assert torch.allclose(batch_normalized_advantages(rewards, lengths, everything, eps=0.0), expected)
    # Statistics over the kept samples only: group 1 alone, 4 tokens, mean -1/4, std sqrt(3)/4.
    first = torch.tensor([[True, True], [False, False]])
    adv = batch_normalized_advantages(rewards, lengths, first, eps=0.0)
    assert torch.allclose(adv[0], torch.tensor([math.sqrt(3), -1 / math.sqrt(3)]))
    assert (adv[0] * lengths[0]).sum().item() == pytest.approx(0.0, abs=1e-6)  # token-weighted mean 0


def test_overlong_penalty_ramps_over_the_buffer():
    lengths = torch.tensor([5, 6, 7, 8, 10, 12])
    # L_max 10, buffer 4: no penalty up to 6 tokens, then -1/4 per token, -1 at and past the budget.
    penalty = overlong_penalty(lengths, max_tokens=10, buffer_tokens=4)
    assert penalty.tolist() == pytest.approx([0.0, 0.0, -0.25, -0.5, -1.0, -1.0])
    with pytest.raises(ValueError, match="buffer_tokens"):
        overlong_penalty(lengths, max_tokens=10, buffer_tokens=0)


def test_kl_penalized_advantages_charge_the_kl_to_go():
    kl = torch.tensor([[0.1, 0.2, 0.3, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    # KL to go: [0.6, 0.5, 0.3, 0] (the masked 9.0 is not a response token), times beta 0.5.
    adv = kl_penalized_advantages(torch.tensor([1.0]), kl, mask, kl_coef=0.5)
    assert adv[0].tolist() == pytest.approx([0.7, 0.75, 0.85, 1.0])


def test_rejection_sampling_accepts_at_the_threshold():
    rewards = torch.tensor([[1.0, 0.5, 1.5], [0.0, 0.99, 1.0]])
    assert accepted_samples(rewards, min_reward=1.0).tolist() == [[True, False, True], [False, False, True]]


def _ratio_logprobs(ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full((1, 1), math.log(ratio)), torch.zeros(1, 1)


@pytest.mark.parametrize(
    "ratio, advantage, expected_loss, low, high",
    [
        (1.0, 2.0, -2.0, False, False),  # on-policy: plain policy gradient
        (1.5, 1.0, -1.28, False, True),  # positive advantage, ratio above 1+eps_high: capped at 1.28
        (1.25, 1.0, -1.25, False, False),  # inside the raised ceiling (a symmetric 0.2 would clip it)
        (0.5, 1.0, -0.5, False, False),  # positive advantage, ratio below the floor: unclipped is smaller
        (0.5, -1.0, 0.8, True, False),  # negative advantage, ratio below 1-eps_low: capped at 0.8
        (1.5, -1.0, 1.5, False, False),  # negative advantage, ratio above: pessimistic unclipped term
    ],
)
def test_ppo_clip_loss_closed_form(ratio, advantage, expected_loss, low, high):
    new, old = _ratio_logprobs(ratio)
    loss, stats = ppo_clip_loss(
        new, old, torch.tensor([advantage]), torch.ones(1, 1), clip_low=0.2, clip_high=0.28
    )
    assert loss.item() == pytest.approx(expected_loss, abs=1e-6)
    assert (stats["clipped_low"].item(), stats["clipped_high"].item()) == (float(low), float(high))
    assert stats["ratio"].item() == pytest.approx(ratio)


def test_ppo_clip_gradient_flows_only_when_unclipped():
    logprobs = torch.tensor([[math.log(1.5), 0.0]], requires_grad=True)
    loss, _ = ppo_clip_loss(
        logprobs, torch.zeros(1, 2), torch.tensor([1.0]), torch.ones(1, 2), clip_low=0.2, clip_high=0.2
    )
    loss.sum().backward()
    # Clipped token: no gradient. On-policy token: d(-ratio*A)/dlogp = -A * ratio = -1.
    assert logprobs.grad[0].tolist() == pytest.approx([0.0, -1.0])


def test_gspo_ratio_is_the_length_normalised_sequence_ratio():
    # Token log-ratios 0.1 and -0.1 average to 0 (the masked 5.0 is padding): ratio 1, loss -A everywhere.
    new = torch.tensor([[0.1, -0.1, 5.0]])
    loss, stats = gspo_loss(
        new,
        torch.zeros(1, 3),
        torch.tensor([2.0]),
        torch.tensor([[1.0, 1.0, 0.0]]),
        clip_low=3e-4,
        clip_high=4e-4,
    )
    assert loss[0].tolist() == pytest.approx([-2.0] * 3)
    assert stats["ratio"][0].tolist() == pytest.approx([1.0] * 3)
    # Log-ratios log 1.2 and 0: sequence ratio sqrt(1.2) > 1 + 4e-4, held at the ceiling.
    new = torch.tensor([[math.log(1.2), 0.0]])
    loss, stats = gspo_loss(
        new, torch.zeros(1, 2), torch.tensor([1.0]), torch.ones(1, 2), clip_low=3e-4, clip_high=4e-4
    )
    assert loss[0].tolist() == pytest.approx([-1.0004] * 2)
    assert stats["clipped_high"][0].tolist() == [1.0, 1.0] and stats["clipped_low"].sum() == 0
    assert stats["ratio"][0, 0].item() == pytest.approx(math.sqrt(1.2))
    with pytest.raises(ValueError, match="one advantage"):
        gspo_loss(new, new, torch.ones(1, 2), torch.ones(1, 2), clip_low=0.1, clip_high=0.1)


def test_gspo_gradient_spreads_the_sequence_ratio_over_its_tokens():
    logprobs = torch.tensor([[0.2, 0.0, 3.0]], requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    loss, _ = gspo_loss(logprobs, torch.zeros(1, 3), torch.tensor([2.0]), mask, clip_low=10.0, clip_high=10.0)
    # The sequence's loss is -s*A with s = exp(0.2 / 2); each response token moves log s by 1/2.
    ((loss * mask).sum() / 2).backward()
    s = math.exp(0.1)
    assert logprobs.grad[0].tolist() == pytest.approx([-2 * s / 2, -2 * s / 2, 0.0])


@pytest.mark.parametrize(
    "ratio, clip_low, weight, low, high",
    [
        (1.5, 1.0, 1.28, False, True),  # weight truncated at 1 + eps_high
        (0.5, 1.0, 0.5, False, False),  # eps_low = 1: no floor, as in the paper
        (0.5, 0.2, 0.8, True, False),  # with a floor
        (1.1, 1.0, 1.1, False, False),
    ],
)
def test_cispo_weight_is_clipped_and_the_gradient_kept(ratio, clip_low, weight, low, high):
    logprobs = torch.full((1, 1), math.log(ratio), requires_grad=True)
    loss, stats = cispo_loss(
        logprobs, torch.zeros(1, 1), torch.tensor([1.0]), torch.ones(1, 1), clip_low=clip_low, clip_high=0.28
    )
    assert loss.item() == pytest.approx(-weight * math.log(ratio))
    assert (stats["clipped_low"].item(), stats["clipped_high"].item()) == (float(low), float(high))
    loss.sum().backward()
    # Stop-gradient on the weight: d(-w * A * logp)/dlogp = -w * A, clipped or not (PPO's would be 0).
    assert logprobs.grad.item() == pytest.approx(-weight)


def test_nll_loss_is_weighted_negative_log_likelihood():
    logprobs = torch.tensor([[math.log(0.5), math.log(0.25)]], requires_grad=True)
    loss, stats = nll_loss(logprobs, logprobs.detach(), torch.tensor([1.0]), torch.ones(1, 2))
    assert loss[0].tolist() == pytest.approx([math.log(2), math.log(4)])
    assert stats["ratio"].tolist() == [[1.0, 1.0]] and stats["clipped_high"].sum() == 0
    loss.sum().backward()
    assert logprobs.grad[0].tolist() == pytest.approx([-1.0, -1.0])


def test_kl_estimators_closed_form_and_nonnegative():
    logp = torch.tensor([[math.log(0.5), math.log(0.2)]])
    ref = torch.tensor([[math.log(0.25), math.log(0.2)]])
    # p/ref = 2: k1 = log 2, k2 = (log 2)^2 / 2, k3 = 1/2 - log(1/2) - 1; equal probabilities give 0.
    assert kl_k1(logp, ref)[0].tolist() == pytest.approx([math.log(2), 0.0], abs=1e-7)
    assert kl_k2(logp, ref)[0].tolist() == pytest.approx([math.log(2) ** 2 / 2, 0.0], abs=1e-7)
    assert kl_k3(logp, ref)[0].tolist() == pytest.approx([0.5 - math.log(0.5) - 1, 0.0], abs=1e-7)
    noise = torch.randn(50, 7), torch.randn(50, 7)
    assert (kl_k3(*noise) >= 0).all() and (kl_k2(*noise) >= 0).all()


def test_k1_and_k3_are_unbiased_estimates_of_kl():
    torch.manual_seed(0)
    p = torch.tensor([0.6, 0.3, 0.1])
    q = torch.tensor([0.2, 0.5, 0.3])
    draws = torch.multinomial(p, 200_000, replacement=True)
    exact = (p * (p / q).log()).sum().item()
    for estimator in (kl_k1, kl_k3):
        assert estimator(p.log()[draws], q.log()[draws]).mean().item() == pytest.approx(exact, rel=0.02)


@pytest.mark.parametrize("estimator", [kl_k2, kl_k3])
def test_kl_loss_gradient_pulls_toward_the_reference(estimator):
    logprobs = torch.tensor([[math.log(0.5)]], requires_grad=True)
    estimator(logprobs, torch.tensor([[math.log(0.25)]])).sum().backward()
    assert logprobs.grad.item() > 0  # the policy's log-prob sits above the reference's: descent lowers it


def test_token_logprobs_and_entropy_match_definitions():
    torch.manual_seed(0)
    logits, targets = torch.randn(2, 3, 5), torch.randint(0, 5, (2, 3))
    expected = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(token_logprobs(logits, targets), expected, atol=1e-6)
    uniform = token_entropy(torch.zeros(1, 1, 4))
    assert uniform.item() == pytest.approx(math.log(4))
