"""GAE over token-level rewards: the module docstring's worked example, its two limits, and padding."""

import pytest
import torch

from rlsys.algorithms.gae import gae_advantages


def test_worked_example():
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 0.6, 0.8]])
    advantages, returns = gae_advantages(rewards, values, torch.ones(1, 3), gamma=1.0, lam=0.5)
    assert advantages[0].tolist() == pytest.approx([0.25, 0.3, 0.2])
    assert returns[0].tolist() == pytest.approx([0.75, 0.9, 1.0])


def test_lambda_one_is_the_discounted_return_minus_the_value():
    rewards = torch.tensor([[0.1, -0.2, 1.0]])
    values = torch.tensor([[0.3, 0.1, 0.4]])
    advantages, returns = gae_advantages(rewards, values, torch.ones(1, 3), gamma=0.9, lam=1.0)
    # Returns-to-go with gamma 0.9: [0.1 - 0.18 + 0.81, -0.2 + 0.9, 1.0].
    assert returns[0].tolist() == pytest.approx([0.73, 0.7, 1.0])
    assert advantages[0].tolist() == pytest.approx([0.43, 0.6, 0.6])


def test_lambda_zero_is_the_td_error():
    rewards = torch.tensor([[0.1, -0.2, 1.0]])
    values = torch.tensor([[0.3, 0.1, 0.4]])
    advantages, _ = gae_advantages(rewards, values, torch.ones(1, 3), gamma=0.9, lam=0.0)
    # delta_t = r_t + 0.9 V_{t+1} - V_t, and V after the last token is 0.
    assert advantages[0].tolist() == pytest.approx([0.1 + 0.09 - 0.3, -0.2 + 0.36 - 0.1, 1.0 - 0.4])


def test_prompt_and_padding_positions_neither_give_nor_take():
    # The response sits at positions 1-2 after a prompt token and before padding; what lies outside (large
    # rewards and values on purpose) must not leak into it, and the result is 0 there.
    rewards = torch.tensor([[5.0, 0.0, 1.0, 7.0]])
    values = torch.tensor([[9.0, 0.6, 0.8, 9.0]])
    mask = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    advantages, returns = gae_advantages(rewards, values, mask, gamma=1.0, lam=0.5)
    # The worked example's last two tokens: delta [0.2, 0.2], A [0.3, 0.2].
    assert advantages[0].tolist() == pytest.approx([0.0, 0.3, 0.2, 0.0])
    assert returns[0].tolist() == pytest.approx([0.0, 0.9, 1.0, 0.0])
    with pytest.raises(ValueError, match="lam"):
        gae_advantages(rewards, values, mask, gamma=1.0, lam=1.5)


def test_tool_output_between_turns_is_passed_over():
    # The worked example's 3 policy tokens with 2 tool-output tokens after the first (large rewards and
    # values on purpose): the policy tokens get the worked example's advantages, as if the output were not
    # there, and the tool tokens get nothing.
    rewards = torch.tensor([[0.0, 7.0, 7.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 9.0, 9.0, 0.6, 0.8]])
    mask = torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0]])
    advantages, returns = gae_advantages(rewards, values, mask, gamma=1.0, lam=0.5)
    assert advantages[0].tolist() == pytest.approx([0.25, 0.0, 0.0, 0.3, 0.2])
    assert returns[0].tolist() == pytest.approx([0.75, 0.0, 0.0, 0.9, 1.0])
