"""The critic's side of PPO (Schulman et al. 2017, "Proximal Policy Optimization Algorithms"; the RLHF setting
of Ouyang et al. 2022): token-level rewards, the value network's clipped regression loss, and how much of the
returns' variance its values explain.

An answer is one episode whose actions are its tokens. The verifier scores the whole answer, so the reward
sits on its last token and every other token earns 0; GAE (`rlsys.algorithms.gae`) then spreads it back over
the tokens with the critic's values as the baseline. Shapes throughout: (B, T) over the packed batch's target
positions, `mask` 1.0 on response tokens (`rlsys.batch.PackedBatch.response_mask`).
"""

import torch

from rlsys.algorithms.aggregation import GlobalCounts, token_mean


def token_level_rewards(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T) rewards: each row's sequence reward `scores` (B,) on its last token on `mask` (the policy's
    last own token), 0 elsewhere; a row without such tokens gets no reward.
    """
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(mask > 0, positions, -1).max(dim=1).values  # (B,) -1 for an empty row
    rewards = torch.zeros_like(mask, dtype=scores.dtype)
    rows = torch.nonzero(last >= 0).squeeze(1)
    rewards[rows, last[rows]] = scores[rows]
    return rewards


def clipped_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    counts: GlobalCounts,
    *,
    clip: float | None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The value network's loss, a token mean over the global batch (`token_mean`: sharding changes nothing):

        L^V = 1/2 * mean_t max( (V_t - R_t)^2,  (V_old_t + clip(V_t - V_old_t, -eps, eps) - R_t)^2 )

    (PPO's value clipping, as in OpenAI's baselines and OpenRLHF; without `clip` only the first term). The
    clipped term keeps one step from moving a value more than `eps` away from the value GAE used, the
    critic's counterpart of the policy's ratio clipping.

    Args:
        values: (B, T) the critic's values now (with gradient).
        old_values: (B, T) its values when the advantages were computed (detached).
        returns: (B, T) GAE's returns, the regression targets.
    Metrics, each a token mean over the global batch (their sums over micro-batches and ranks are the
    step's): `value_loss`, `value_clip_fraction` (tokens whose clipped term was the larger), `values`.
    """
    per_token = (values - returns) ** 2
    clipped_fraction = torch.zeros_like(per_token)
    if clip is not None:
        clipped_values = old_values + (values - old_values).clamp(-clip, clip)
        clipped = (clipped_values - returns) ** 2
        clipped_fraction = (clipped > per_token).float()
        per_token = torch.maximum(per_token, clipped)
    loss = 0.5 * token_mean(per_token, mask, counts)
    metrics = {
        "value_loss": loss.item(),
        "value_clip_fraction": token_mean(clipped_fraction, mask, counts).item(),
        "values": token_mean(values.detach(), mask, counts).item(),
    }
    return loss, metrics


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float | None:
    """1 - Var(R - V) / Var(R) over the response tokens: 1 when the values predict the returns, 0 when they
    do no better than the returns' mean, negative when worse. None when the returns do not vary (nothing to
    explain).

    Variances are population variances over the masked tokens of the whole batch.
    """
    selected = mask > 0
    target, residual = returns[selected], (returns - values)[selected]
    variance = target.var(unbiased=False)
    if variance.item() == 0.0:
        return None
    return 1.0 - (residual.var(unbiased=False) / variance).item()
