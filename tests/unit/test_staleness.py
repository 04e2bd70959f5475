"""Stale samples' correction (rlsys.algorithms.staleness): only rows with staleness > 0 are touched."""

import math

import pytest
import torch

from rlsys.algorithms.staleness import stale_correction

# Two rows of three tokens; row 1 was sampled one update ago. The learner now gives every token log-prob -1.
LOGPROBS = torch.full((2, 3), -1.0)
SAMPLER = torch.tensor([[-1.2, -0.9, -1.0], [-1.5, -0.2, -1.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
STALENESS = torch.tensor([0, 1])


def _correct(correction: str, *, is_cap: float = 2.0, band: float = 2.0):
    return stale_correction(
        LOGPROBS, SAMPLER, MASK, STALENESS, correction=correction, is_cap=is_cap, band=band
    )


@pytest.mark.parametrize("correction", ["clip", "truncated_is", "mask"])
def test_on_policy_rows_take_their_own_logprobs_and_weight_one(correction):
    old, weights, stats = _correct(correction)
    assert torch.equal(old[0], LOGPROBS[0]) and torch.equal(weights[0], torch.ones(3))
    assert stats["stale"][0].sum() == 0 and stats["stale"][1].sum() == 3


def test_clip_takes_the_samplers_logprobs_as_old_for_stale_rows():
    old, weights, _ = _correct("clip")
    assert torch.equal(old[1], SAMPLER[1]) and torch.equal(weights[1], torch.ones(3))


def test_truncated_is_weights_stale_tokens_by_the_capped_ratio():
    old, weights, stats = _correct("truncated_is", is_cap=2.0)
    assert torch.equal(old[1], LOGPROBS[1])  # ratio 1 in the loss: the weight carries the correction
    # exp(-1 - (-1.5)) = 1.65; exp(-1 - (-0.2)) = 0.45; the padded token's log ratio is masked to 0: weight 1.
    expected = torch.tensor([math.exp(0.5), math.exp(-0.8), 1.0])
    torch.testing.assert_close(weights[1], expected)
    _, capped, _ = stale_correction(
        LOGPROBS, SAMPLER, MASK, STALENESS, correction="truncated_is", is_cap=1.2, band=2.0
    )
    torch.testing.assert_close(capped[1], torch.tensor([1.2, math.exp(-0.8), 1.0]))
    assert torch.equal(stats["is_weight"][0], torch.zeros(3))


def test_mask_drops_a_stale_row_whose_mean_ratio_leaves_the_band():
    # Row 1's mean log ratio over its two tokens: (0.5 - 0.8) / 2 = -0.15, outside a band of 1.1 (log 0.095).
    _, weights, stats = _correct("mask", band=1.1)
    assert torch.equal(weights[1], torch.zeros(3)) and stats["masked"][1].sum() == 3
    _, kept, _ = _correct("mask", band=1.2)  # |log ratio| 0.15 < log 1.2 = 0.18: kept
    assert torch.equal(kept[1], torch.ones(3))
    # The same ratios on an on-policy row are never masked.
    assert torch.equal(weights[0], torch.ones(3))


def test_weights_carry_no_gradient():
    logprobs = LOGPROBS.clone().requires_grad_()
    old, weights, _ = stale_correction(
        logprobs, SAMPLER, MASK, STALENESS, correction="truncated_is", is_cap=2.0, band=2.0
    )
    assert not old.requires_grad and not weights.requires_grad
