"""The GRPO objective over one micro-batch: clipped policy gradient plus an optional KL penalty.

    J = sum_t mask_t * [ L^clip_t + beta * k3_t ] / N_tokens

where N_tokens counts the response tokens of the whole global batch (see `losses.masked_token_sum`), so the
sum of this over micro-batches and ranks is the per-token mean over the step's batch (DAPO-style token-level
aggregation: long answers weigh by their tokens, not as one sequence).
"""

import torch

from rlsys.algorithms.losses import clipped_policy_loss, kl_k3, masked_token_sum


def grpo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    num_tokens: float,
    clip_eps: float,
    kl_coef: float = 0.0,
    ref_logprobs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one micro-batch and its metrics, each already divided by the global token count.

    Shapes: logprobs, old_logprobs, mask, ref_logprobs (B, T); advantages (B,). Summing the returned metrics
    over all micro-batches and ranks gives global per-token means.
    """
    per_token, stats = clipped_policy_loss(logprobs, old_logprobs, advantages, clip_eps=clip_eps)
    metrics = {
        "clip_fraction": masked_token_sum(stats["clipped"], mask, num_tokens).item(),
        "ratio": masked_token_sum(stats["ratio"], mask, num_tokens).item(),
    }
    policy_loss = masked_token_sum(per_token, mask, num_tokens)
    loss = policy_loss
    if ref_logprobs is not None:
        kl = masked_token_sum(kl_k3(logprobs, ref_logprobs), mask, num_tokens)
        loss = loss + kl_coef * kl
        metrics["kl"] = kl.item()
    metrics["policy_loss"] = policy_loss.item()
    return loss, metrics
