"""Per-token policy losses, the KL estimator, and the reduction that turns them into one scalar.

Losses return per-token values; `masked_token_sum` reduces them with an explicit denominator, so sharding a
batch across learner ranks does not change the gradient (each rank divides by the *global* token count).
"""

import torch


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    *,
    clip_eps: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate per token (Schulman et al. 2017, eq. 7), as used by GRPO.

        ratio_t = exp(logp_t - logp_old_t)
        L_t     = -min(ratio_t * A, clip(ratio_t, 1 - eps, 1 + eps) * A)

    Args:
        logprobs: (B, T) log-probabilities of the sampled tokens under the policy being trained.
        old_logprobs: (B, T) the same under the policy that sampled them (detached).
        advantages: (B,) one advantage per sequence, broadcast over its tokens, or (B, T).
    Returns:
        (B, T) per-token loss, and per-token `ratio` and `clipped` (1.0 where the clip was active).
    """
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    loss = -torch.minimum(unclipped, clipped)
    return loss, {"ratio": ratio.detach(), "clipped": (clipped < unclipped).float().detach()}


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from samples of the policy (Schulman 2020, "k3").

        k3_t = exp(ref_t - logp_t) - (ref_t - logp_t) - 1

    Unbiased, always >= 0, and lower variance than -log ratio. Shapes: (B, T) -> (B, T).
    """
    log_ratio = ref_logprobs - logprobs
    return torch.exp(log_ratio) - log_ratio - 1.0


def masked_token_sum(values: torch.Tensor, mask: torch.Tensor, num_tokens: float) -> torch.Tensor:
    """sum_t(values_t * mask_t) / num_tokens.

    `num_tokens` is the count of response tokens in the whole global batch (all ranks, all micro-batches), not
    in this tensor: then the sum over micro-batches and ranks equals the token mean over the full batch, which
    is what makes sharded training match unsharded training.
    """
    if num_tokens <= 0:
        raise ValueError("num_tokens must be positive")
    return (values * mask).sum() / num_tokens
