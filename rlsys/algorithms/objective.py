"""The training objective of one micro-batch: a policy loss, its aggregation, and the KL to the reference.

    J = Agg( L^policy(A) ) + beta * Agg( KL )          KL as a loss term (GRPO: k3)
    J = Agg( L^policy(A - beta * KL-to-go) )           KL as a per-token reward (REINFORCE++: k1)

`Agg` divides by counts of the whole global batch (`aggregation.GlobalCounts`), so the sum of J over every
micro-batch and rank is the objective of the step's batch: sharding changes nothing.

`objective_for` reads the `algorithm.*` keys once and binds the functions they name; the learner calls the
result per micro-batch without knowing which algorithm it runs.
"""

from collections.abc import Callable
from functools import partial

import torch

from rlsys.algorithms.advantages import kl_penalized_advantages
from rlsys.algorithms.aggregation import Aggregation, GlobalCounts, aggregation, token_mean
from rlsys.algorithms.losses import KL_ESTIMATORS, PolicyLoss, cispo_loss, gspo_loss, nll_loss, ppo_clip_loss
from rlsys.config import AlgorithmConfig


def policy_objective(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    counts: GlobalCounts,
    *,
    policy_loss: PolicyLoss,
    aggregate: Aggregation,
    kl_estimator: str = "k3",
    kl_in_reward: bool = False,
    kl_coef: float = 0.0,
    ref_logprobs: torch.Tensor | None = None,
    token_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one micro-batch and its metrics, each already divided by global counts.

    Shapes: logprobs, old_logprobs, mask, ref_logprobs (B, T); advantages (B,). `policy_loss` is one of
    `rlsys.algorithms.losses` with its clip range bound; `aggregate` one of `rlsys.algorithms.aggregation`.
    With `ref_logprobs`, the KL estimate `kl_estimator` is weighted by `kl_coef`: added to the loss, or, with
    `kl_in_reward`, charged to the advantages as a per-token reward of the policy that sampled (old_logprobs).
    `token_weights` (B, T), detached, scale each token's policy loss (stale samples' importance weights,
    `rlsys.algorithms.staleness`).

    Metrics: `policy_loss` aggregated like the loss; `ratio`, `clip_fraction` (= low + high),
    `clip_fraction_low`, `clip_fraction_high` and `kl` as per-token means over the global batch. Summing
    each over all micro-batches and ranks gives its value for the step.
    """
    kl = None
    if ref_logprobs is not None:
        estimate = KL_ESTIMATORS[kl_estimator]
        kl = estimate(logprobs, ref_logprobs)
        if kl_in_reward:
            penalty = estimate(old_logprobs, ref_logprobs).detach()
            advantages = kl_penalized_advantages(advantages, penalty, mask, kl_coef=kl_coef)
    per_token, stats = policy_loss(logprobs, old_logprobs, advantages, mask)
    if token_weights is not None:
        per_token = per_token * token_weights
    policy = aggregate(per_token, mask, counts)
    loss = policy
    low, high = (
        token_mean(stats["clipped_low"], mask, counts),
        token_mean(stats["clipped_high"], mask, counts),
    )
    metrics = {
        "policy_loss": policy.item(),
        "ratio": token_mean(stats["ratio"], mask, counts).item(),
        "clip_fraction": (low + high).item(),
        "clip_fraction_low": low.item(),
        "clip_fraction_high": high.item(),
    }
    if kl is not None:
        if not kl_in_reward:
            loss = loss + kl_coef * aggregate(kl, mask, counts)
        metrics["kl"] = token_mean(kl.detach(), mask, counts).item()
    return loss, metrics


def objective_for(algorithm: AlgorithmConfig) -> Callable[..., tuple[torch.Tensor, dict[str, float]]]:
    """`policy_objective` with the policy loss, aggregation and KL placement that `algorithm` selects; call
    it as `(logprobs, old_logprobs, advantages, mask, counts, kl_coef=..., ref_logprobs=...)`."""
    low, high = algorithm.clip_range
    policy_losses: dict[str, PolicyLoss] = {
        "ppo_clip": partial(ppo_clip_loss, clip_low=low, clip_high=high),
        "gspo": partial(gspo_loss, clip_low=low, clip_high=high),
        "cispo": partial(cispo_loss, clip_low=low, clip_high=high),
        "nll": nll_loss,
    }
    return partial(
        policy_objective,
        policy_loss=policy_losses[algorithm.policy_loss],
        aggregate=aggregation(algorithm.aggregation, max_response_tokens=algorithm.max_response_tokens),
        kl_estimator=algorithm.kl_estimator,
        kl_in_reward=algorithm.kl_in_reward,
    )
