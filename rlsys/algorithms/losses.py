"""Per-token policy losses and KL estimators.

Every policy loss takes the same tensors and returns per-token values, (B, T), plus per-token statistics
(`ratio`, `clipped_low`, `clipped_high`); turning them into one scalar is the aggregation's job
(`rlsys.algorithms.aggregation`), which knows the global denominators. Shapes throughout:

    logprobs      (B, T) log-probabilities of the sampled tokens under the policy being trained
    old_logprobs  (B, T) the same under the policy that sampled them (detached)
    advantages    (B,) one per sequence, broadcast over its tokens, or (B, T) per token
    mask          (B, T) 1.0 on response tokens

A loss's values off the mask are arbitrary: the aggregation multiplies them by the mask.
"""

from collections.abc import Callable

import torch

Stats = dict[str, torch.Tensor]
PolicyLoss = Callable[..., tuple[torch.Tensor, Stats]]


def ppo_clip_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float,
    clip_high: float,
) -> tuple[torch.Tensor, Stats]:
    """PPO's clipped surrogate per token (Schulman et al. 2017, eq. 7), as GRPO uses it, with DAPO's
    decoupled clip range (Yu et al. 2025, "DAPO", eq. 10: a higher upper bound lets unlikely tokens grow).

        ratio_t = exp(logp_t - logp_old_t)
        L_t     = -min(ratio_t * A, clip(ratio_t, 1 - eps_low, 1 + eps_high) * A)

    `clipped_low` marks tokens held at 1 - eps_low (negative advantage), `clipped_high` those held at
    1 + eps_high (positive advantage): there the min picks the clipped term and no gradient flows.
    """
    advantages = _per_token(advantages)
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high) * advantages
    active = clipped < unclipped
    stats = {
        "ratio": ratio.detach(),
        "clipped_low": (active & (ratio < 1.0 - clip_low)).float(),
        "clipped_high": (active & (ratio > 1.0 + clip_high)).float(),
    }
    return -torch.minimum(unclipped, clipped), stats


def gspo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float,
    clip_high: float,
) -> tuple[torch.Tensor, Stats]:
    """GSPO: one importance ratio per sequence, clipped as a whole (Zheng et al. 2025, "Group Sequence Policy
    Optimization", eqs. 5-7).

        s_i = exp( 1/|y_i| * sum_t (logp_it - logp_old_it) )      (length-normalised sequence ratio)
        L_i = -min(s_i * A_i, clip(s_i, 1 - eps_low, 1 + eps_high) * A_i)

    Token-level ratios multiply noise over long answers; the geometric mean above keeps the ratio on one
    scale whatever the length, and the clip range is accordingly tiny (the paper: 3e-4 and 4e-4). L_i is
    returned on every token of sequence i, so `seq_mean_token_mean` aggregation gives the paper's
    1/G sum_i L_i. `advantages` must be one per sequence, (B,).
    """
    if advantages.dim() != 1:
        raise ValueError("gspo weighs each sequence by one advantage: pass advantages of shape (B,)")
    lengths = mask.sum(dim=1).clamp(min=1.0)
    log_ratio = ((logprobs - old_logprobs) * mask).sum(dim=1) / lengths  # (B,)
    seq_ratio = torch.exp(log_ratio)
    unclipped = seq_ratio * advantages
    clipped = torch.clamp(seq_ratio, 1.0 - clip_low, 1.0 + clip_high) * advantages
    active = clipped < unclipped
    per_sequence = -torch.minimum(unclipped, clipped)

    def tokens(values: torch.Tensor) -> torch.Tensor:
        return values.unsqueeze(1).expand_as(logprobs)

    stats = {
        "ratio": tokens(seq_ratio.detach()),
        "clipped_low": tokens((active & (seq_ratio < 1.0 - clip_low)).float()),
        "clipped_high": tokens((active & (seq_ratio > 1.0 + clip_high)).float()),
    }
    return tokens(per_sequence), stats


def cispo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float,
    clip_high: float,
) -> tuple[torch.Tensor, Stats]:
    """CISPO: clip the importance weight, not the update (MiniMax 2025, "MiniMax-M1", sec. 3.1, eq. 4).

        w_t = sg( clip(ratio_t, 1 - eps_low, 1 + eps_high) )
        L_t = -w_t * A * logp_t

    PPO's clip zeroes the gradient of a clipped token, and the tokens clipped most are rare ones that often
    matter ("However", "Wait"); here every token keeps a REINFORCE gradient and only its weight is bounded.
    The paper sets no lower bound (eps_low = 1: weights in [0, 1 + eps_high]). `clipped_low`/`clipped_high`
    mark tokens whose weight was truncated (their gradient still flows).
    """
    advantages = _per_token(advantages)
    ratio = torch.exp(logprobs - old_logprobs).detach()
    weight = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    stats = {
        "ratio": ratio,
        "clipped_low": (ratio < 1.0 - clip_low).float(),
        "clipped_high": (ratio > 1.0 + clip_high).float(),
    }
    return -weight * advantages * logprobs, stats


def nll_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
) -> tuple[torch.Tensor, Stats]:
    """Weighted negative log-likelihood, the supervised step of rejection-sampling fine-tuning.

        L_t = -A * logp_t

    With RFT's weights (1 on each accepted sample) this is plain SFT on the policy's own correct answers.
    No importance ratio and no clip: `ratio` is reported (how far the learner is from the sampler), the clip
    statistics are zero.
    """
    zeros = torch.zeros_like(logprobs)
    stats = {
        "ratio": torch.exp(logprobs - old_logprobs).detach(),
        "clipped_low": zeros,
        "clipped_high": zeros,
    }
    return -_per_token(advantages) * logprobs, stats


def kl_k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k1_t = logp_t - ref_t, the plain log ratio (Schulman 2020, "Approximating KL Divergence").

    Unbiased but often negative, and as a loss its gradient is zero in expectation: use it as a reward
    (`kl_in_reward`), as REINFORCE++ and the RLHF papers do. Shapes: (B, T) -> (B, T).
    """
    return logprobs - ref_logprobs


def kl_k2(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k2_t = (logp_t - ref_t)^2 / 2 (Schulman 2020): biased, low variance, >= 0; as a loss its gradient is
    the gradient of KL(policy || reference) in expectation. Shapes: (B, T) -> (B, T)."""
    return 0.5 * (logprobs - ref_logprobs) ** 2


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from samples of the policy (Schulman 2020, "k3").

        k3_t = exp(ref_t - logp_t) - (ref_t - logp_t) - 1

    Unbiased, always >= 0, and lower variance than -log ratio. Shapes: (B, T) -> (B, T).
    """
    log_ratio = ref_logprobs - logprobs
    return torch.exp(log_ratio) - log_ratio - 1.0


KL_ESTIMATORS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "k1": kl_k1,
    "k2": kl_k2,
    "k3": kl_k3,
}


def _per_token(advantages: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1), broadcasting over tokens; (B, T) unchanged."""
    return advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
