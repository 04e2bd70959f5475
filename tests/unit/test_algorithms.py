"""Closed-form checks of the GRPO math: advantages, clipped loss, k3 KL, token reduction."""

import math

import pytest
import torch

from rlsys.algorithms.advantages import group_normalized_advantages, informative_groups
from rlsys.algorithms.logprobs import token_entropy, token_logprobs
from rlsys.algorithms.losses import clipped_policy_loss, kl_k3, masked_token_sum
from rlsys.algorithms.objective import grpo_loss


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


def test_group_advantages_reject_flat_input():
    with pytest.raises(ValueError, match="num_prompts, group_size"):
        group_normalized_advantages(torch.zeros(4))


@pytest.mark.parametrize(
    "ratio, advantage, expected_loss, clipped",
    [
        (1.0, 2.0, -2.0, False),  # on-policy: plain policy gradient
        (1.5, 1.0, -1.2, True),  # positive advantage, ratio above 1+eps: capped at 1.2
        (0.5, 1.0, -0.5, False),  # positive advantage, ratio below 1-eps: the unclipped term is smaller
        (0.5, -1.0, 0.8, True),  # negative advantage, ratio below 1-eps: capped at 0.8
        (1.5, -1.0, 1.5, False),  # negative advantage, ratio above: pessimistic unclipped term
    ],
)
def test_clipped_policy_loss_closed_form(ratio, advantage, expected_loss, clipped):
    old = torch.zeros(1, 1)
    new = torch.full((1, 1), math.log(ratio))
    loss, stats = clipped_policy_loss(new, old, torch.tensor([advantage]), clip_eps=0.2)
    assert loss.item() == pytest.approx(expected_loss, abs=1e-6)
    assert stats["clipped"].item() == float(clipped)


def test_clipped_loss_gradient_flows_only_when_unclipped():
    logprobs = torch.tensor([[math.log(1.5), 0.0]], requires_grad=True)
    loss, _ = clipped_policy_loss(logprobs, torch.zeros(1, 2), torch.tensor([1.0]), clip_eps=0.2)
    loss.sum().backward()
    # Clipped token: no gradient. On-policy token: d(-ratio*A)/dlogp = -A * ratio = -1.
    assert logprobs.grad[0].tolist() == pytest.approx([0.0, -1.0])


def test_kl_k3_closed_form_and_nonnegative():
    logp = torch.tensor([[math.log(0.5), math.log(0.2)]])
    ref = torch.tensor([[math.log(0.25), math.log(0.2)]])
    kl = kl_k3(logp, ref)
    # r = ref/p = 0.5: k3 = 0.5 - log(0.5) - 1; equal probabilities give 0.
    assert kl[0, 0].item() == pytest.approx(0.5 - math.log(0.5) - 1)
    assert kl[0, 1].item() == pytest.approx(0.0, abs=1e-7)
    assert (kl_k3(torch.randn(50, 7), torch.randn(50, 7)) >= 0).all()


def test_k3_is_unbiased_estimate_of_kl():
    torch.manual_seed(0)
    p = torch.tensor([0.6, 0.3, 0.1])
    q = torch.tensor([0.2, 0.5, 0.3])
    draws = torch.multinomial(p, 200_000, replacement=True)
    estimate = kl_k3(p.log()[draws], q.log()[draws]).mean().item()
    exact = (p * (p / q).log()).sum().item()
    assert estimate == pytest.approx(exact, rel=0.02)


def test_masked_token_sum_is_sharding_invariant():
    torch.manual_seed(0)
    values, mask = torch.randn(6, 5), (torch.rand(6, 5) > 0.3).float()
    total = mask.sum().item()
    whole = masked_token_sum(values, mask, total)
    shards = sum(masked_token_sum(values[i : i + 2], mask[i : i + 2], total) for i in range(0, 6, 2))
    assert whole.item() == pytest.approx(shards.item())
    assert whole.item() == pytest.approx((values * mask).sum().item() / total)
    with pytest.raises(ValueError):
        masked_token_sum(values, mask, 0)


def test_grpo_loss_sharded_gradient_equals_unsharded():
    torch.manual_seed(0)
    logits = torch.randn(4, 6, requires_grad=True)
    advantages, mask = torch.randn(4), (torch.rand(4, 6) > 0.2).float()
    total = mask.sum().item()

    def loss_of(rows):
        lp = torch.log_softmax(logits[rows], dim=-1)
        return grpo_loss(lp, lp.detach(), advantages[rows], mask[rows], num_tokens=total, clip_eps=0.2)[0]

    loss_of(slice(0, 4)).backward()
    whole = logits.grad.clone()
    logits.grad = None
    (loss_of(slice(0, 1)) + loss_of(slice(1, 4))).backward()
    assert torch.allclose(logits.grad, whole, atol=1e-6)


def test_grpo_loss_adds_kl_term():
    logp = torch.full((1, 2), math.log(0.5))
    ref = torch.full((1, 2), math.log(0.25))
    mask = torch.ones(1, 2)
    base, _ = grpo_loss(logp, logp, torch.tensor([0.0]), mask, num_tokens=2, clip_eps=0.2)
    with_kl, metrics = grpo_loss(
        logp, logp, torch.tensor([0.0]), mask, num_tokens=2, clip_eps=0.2, kl_coef=0.1, ref_logprobs=ref
    )
    k3 = 0.5 - math.log(0.5) - 1
    assert metrics["kl"] == pytest.approx(k3)
    assert (with_kl - base).item() == pytest.approx(0.1 * k3)


def test_token_logprobs_and_entropy_match_definitions():
    torch.manual_seed(0)
    logits, targets = torch.randn(2, 3, 5), torch.randint(0, 5, (2, 3))
    expected = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(token_logprobs(logits, targets), expected, atol=1e-6)
    uniform = token_entropy(torch.zeros(1, 1, 4))
    assert uniform.item() == pytest.approx(math.log(4))
