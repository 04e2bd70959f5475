"""Ranking losses for a scalar reward model: Bradley–Terry over pairs, Plackett–Luce over whole rankings.

Both take a padded batch of rankings:

    rewards (B, K)  the reward model's score of each response
    ranks   (B, K)  dense rank of each response, 0 best; tied responses share a rank
    valid   (B, K)  False at padding (prompts with fewer than K responses)

and return `(loss, metrics)`, where metrics (floats) are computed the same way for both losses so runs with
either are comparable: `pair_accuracy` (share of strictly ordered pairs scored in the right order, a tie in
score counting one half), `margin` (mean r_better - r_worse over those pairs) and `pairs`.

A step split over several ranks passes each rank's loss the whole step's `denominator`
(`loss_denominator`): the ranks' losses, and their gradients, then add up to the unsharded step's.
"""

from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F


def _pair_mask(ranks: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(B, K, K): True at [b, i, j] when response i is ranked strictly above response j."""
    both = valid[:, :, None] & valid[:, None, :]
    return both & (ranks[:, :, None] < ranks[:, None, :])


def pair_metrics(rewards: torch.Tensor, ranks: torch.Tensor, valid: torch.Tensor) -> dict[str, float]:
    """Pairwise accuracy, mean margin and pair count over every strictly ordered pair of the batch."""
    with torch.no_grad():
        pairs = _pair_mask(ranks, valid)
        diff = (rewards[:, :, None] - rewards[:, None, :])[pairs]
        count = int(pairs.sum())
        if count == 0:
            return {"pair_accuracy": 0.0, "margin": 0.0, "pairs": 0.0}
        right = (diff > 0).float() + 0.5 * (diff == 0).float()
        return {"pair_accuracy": right.mean().item(), "margin": diff.mean().item(), "pairs": float(count)}


def bradley_terry_loss(
    rewards: torch.Tensor, ranks: torch.Tensor, valid: torch.Tensor, denominator: float | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Bradley–Terry loss over every pair a ranking implies (Ouyang et al. 2022, eq. 1).

        P(i > j) = sigmoid(r_i - r_j)
        L        = -(1 / N_pairs) * sum_{b, i, j: rank_bi < rank_bj} log sigmoid(r_bi - r_bj)

    Tied responses give no pair. The denominator N_pairs counts the strictly ordered pairs in the whole
    batch, so a ranking of k responses weighs k(k-1)/2 pairs (InstructGPT instead averages per prompt
    first; with a fixed k the two differ only by a constant factor). `denominator`: that count over a whole
    step this batch is a part of (None: this batch's own). A batch with no ordered pair returns a zero loss
    that still reaches every reward in the graph.
    """
    pairs = _pair_mask(ranks, valid)
    diff = rewards[:, :, None] - rewards[:, None, :]  # (B, K, K): r_i - r_j
    count = pairs.sum()
    if count == 0:
        return rewards.sum() * 0.0, {"loss": 0.0, **pair_metrics(rewards, ranks, valid)}
    loss = -F.logsigmoid(diff[pairs]).sum() / (count if denominator is None else denominator)
    return loss, {"loss": loss.item(), **pair_metrics(rewards, ranks, valid)}


def plackett_luce_loss(
    rewards: torch.Tensor, ranks: torch.Tensor, valid: torch.Tensor, denominator: float | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Plackett–Luce negative log-likelihood of each full ranking, ties by Breslow's rule.

    Without ties (order pi, best first) a ranking's likelihood is the chance of picking the best, then
    the best of the rest, and so on (Plackett 1975; Luce 1959):

        log P(pi) = sum_t [ r_pi(t) - log sum_{s >= t} exp r_pi(s) ]

    With ties each tied response is scored against the same risk set, every response not ranked strictly
    above it (Breslow 1974, as in Cox regression): for response i,

        term_i = r_i - log sum_{j: rank_j >= rank_i} exp r_j,      L = -(1 / B) * sum_b sum_i term_bi

    The denominator is the number of rankings B (`denominator`: of the whole step this batch is a part
    of; None: this batch's). For k = 2 without ties this equals Bradley–Terry; a fully
    tied pair costs 2·log 2 at equal scores (its minimum), so ties pull scores together instead of apart.
    """
    # (B, K, K): j is in the risk set of i. Padding rows keep themselves, so no row is all -inf (a NaN
    # gradient even where the row is masked out afterwards).
    itself = torch.eye(ranks.shape[1], dtype=torch.bool, device=ranks.device)
    candidates = (valid[:, None, :] & (ranks[:, None, :] >= ranks[:, :, None])) | itself
    scores = rewards[:, None, :].expand_as(candidates).masked_fill(~candidates, float("-inf"))
    log_norm = torch.logsumexp(scores, dim=-1)  # (B, K)
    terms = torch.where(valid, rewards - log_norm, torch.zeros_like(rewards))
    loss = -terms.sum() / (rewards.shape[0] if denominator is None else denominator)
    return loss, {"loss": loss.item(), **pair_metrics(rewards, ranks, valid)}


RANKING_LOSSES = {"bradley_terry": bradley_terry_loss, "plackett_luce": plackett_luce_loss}


def ordered_pairs(ranks: Sequence[int]) -> int:
    """Pairs of one ranking's responses ranked strictly apart: what Bradley–Terry averages over."""
    return sum(a < b for a in ranks for b in ranks)


# What each loss divides its sum by, counted per ranking: ordered pairs, or the ranking itself.
_DENOMINATOR_UNITS: dict[str, Callable[[Sequence[int]], int]] = {
    "bradley_terry": ordered_pairs,
    "plackett_luce": lambda ranks: 1,
}


def loss_denominator(loss: str, rankings: Iterable[Sequence[int]]) -> int:
    """The count `RANKING_LOSSES[loss]` divides by over these rankings (given by their ranks): what every
    rank of a sharded step passes as `denominator`, so the ranks' summed losses equal the whole step's."""
    return sum(_DENOMINATOR_UNITS[loss](ranks) for ranks in rankings)
