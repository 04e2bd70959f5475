"""Generalized Advantage Estimation over token-level rewards (Schulman et al. 2016, "High-Dimensional
Continuous Control Using Generalized Advantage Estimation", eqs. 11-16), for PPO with a value network.

    delta_t = r_t + gamma * V_{t+1} - V_t                   (V after the last response token is 0)
    A_t     = delta_t + gamma * lambda * A_{t+1}            = sum_l (gamma lambda)^l delta_{t+l}
    R_t     = A_t + V_t                                     (the value network's regression target)

lambda = 1 gives the Monte-Carlo return minus V_t (unbiased, high variance); lambda = 0 the one-step TD error
(low variance, biased by V).

t runs over the policy's own tokens only. In a response with tool calls the tool's output is not an action
but part of the next state: its tokens are off the mask, and the token before them takes the next policy
token's value as V_{t+1} and its advantage as A_{t+1}, as if the output were not there.

Worked example, one answer of 3 tokens, outcome reward 1 on its last token, gamma = 1, lambda = 0.5:

    r     = [0,   0,   1  ]      V = [0.5, 0.6, 0.8]
    delta = [0.1, 0.2, 0.2]      (0 + 0.6 - 0.5,  0 + 0.8 - 0.6,  1 + 0 - 0.8)
    A     = [0.25, 0.3, 0.2]     (A_3 = 0.2,  A_2 = 0.2 + 0.5 * 0.2,  A_1 = 0.1 + 0.5 * 0.3)
    R     = [0.75, 0.9, 1.0]
"""

import torch


def gae_advantages(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, *, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns of each response token.

    Args:
        rewards: (B, T) per-token rewards (an outcome reward sits on the last response token; a KL penalty
            on every token).
        values: (B, T) the value network's estimate at each position.
        mask: (B, T) 1.0 on the policy's response tokens: off it are the prompt, the padding, and tool
            output between the policy's turns (which the recursion passes over).
    Returns:
        (advantages, returns), both (B, T) and 0 off the mask.
    """
    if not (0.0 <= gamma <= 1.0 and 0.0 <= lam <= 1.0):
        raise ValueError(f"gamma and lam must lie in [0, 1], got gamma={gamma}, lam={lam}")
    advantages = torch.zeros_like(rewards)
    # A_{t+1} and V_{t+1} of the next policy token; 0 past the end of the response.
    running = torch.zeros_like(rewards[:, 0])
    next_value = torch.zeros_like(running)
    for t in reversed(range(rewards.shape[1])):
        on = mask[:, t] > 0
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = torch.where(on, delta + gamma * lam * running, running)
        next_value = torch.where(on, values[:, t], next_value)
        advantages[:, t] = running * mask[:, t]
    return advantages, (advantages + values) * mask
