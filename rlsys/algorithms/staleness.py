"""Learning from stale samples: samples drawn by weights `staleness` updates older than the learner's.

The learner takes every sample's log-probs under its current weights (logp) and has the sampler's
(logp_old, what the engine recorded). On-policy samples use logp detached as their "old" log-probs (ratio
1), which spares them the small numeric gap between the engine's and the learner's forward. A stale sample's
tokens are corrected by `algorithm.off_policy_correction`:

    clip           ratio r_t = exp(logp_t - logp_old_t) in the policy loss, whose clip bounds the step
                   (PPO's own answer to off-policy data; the default)
    truncated_is   ratio 1 in the loss, each token weighted by w_t = min(exp(logp_t - logp_old_t), C)
                   (truncated importance sampling: "Your efficient RL framework secretly brings you
                   off-policy RL training", Yao et al. 2025; C = `algorithm.is_cap`)
    mask           the ratio as in `clip`, and a sample dropped (weight 0) when its mean per-token ratio,
                   exp(mean_t(logp_t - logp_old_t)), leaves [1/b, b] (b = `algorithm.mask_band`)

All weights are detached: they scale the gradient, they do not receive one.
"""

import torch


def stale_correction(
    logprobs: torch.Tensor,
    sampler_logprobs: torch.Tensor,
    mask: torch.Tensor,
    staleness: torch.Tensor,
    *,
    correction: str,
    is_cap: float,
    band: float,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """The "old" log-probs for the policy loss and a per-token weight, by `correction` (module docstring).

    Shapes: logprobs, sampler_logprobs, mask (B, T); staleness (B,) updates behind (0: on-policy).
    Returns (old_logprobs (B, T), weights (B, T), stats of (B, T) per-token values to aggregate: `stale`
    1.0 on stale tokens, `is_weight` the weight given to stale tokens, `masked` 1.0 on dropped ones).
    """
    current = logprobs.detach()
    stale = (staleness > 0).unsqueeze(1).expand_as(current)  # (B, T)
    log_ratio = (current - sampler_logprobs) * mask
    weights = torch.ones_like(current)
    if correction == "truncated_is":
        old = current
        weights = torch.where(stale, torch.exp(log_ratio).clamp(max=is_cap), weights)
    else:
        old = torch.where(stale, sampler_logprobs, current)
    dropped = torch.zeros_like(current, dtype=torch.bool)
    if correction == "mask":
        mean_log_ratio = log_ratio.sum(dim=1) / mask.sum(dim=1).clamp(min=1)  # (B,)
        outside = (mean_log_ratio.abs() > torch.log(torch.tensor(band))).unsqueeze(1)
        dropped = stale & outside
        weights = torch.where(dropped, torch.zeros_like(weights), weights)
    return old, weights, {"stale": stale.float(), "is_weight": weights * stale, "masked": dropped.float()}
