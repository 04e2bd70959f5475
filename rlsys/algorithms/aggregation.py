"""Reducing per-token values to the step's scalar loss, each mode with its denominator named.

The learner splits a step's batch across ranks and, on each rank, into micro-batches, and adds up their
gradients. Each piece therefore divides by counts of the *whole* global batch (`GlobalCounts`), never by
its own: then the sum over pieces is exactly the loss of the unsharded batch, whatever the split. A mode that
needs a per-sequence quantity (its length) takes it from the sequence itself, which is never split.

    token_mean               sum_it v_it m_it / N_tokens                       (DAPO's token-level loss)
    seq_mean_token_mean      sum_i (sum_t v_it m_it / L_i) / N_sequences         (GRPO paper, GSPO)
    seq_mean_token_sum_norm  sum_it v_it m_it / (N_sequences * L_max)          (Dr. GRPO)

with L_i the response tokens of sequence i and L_max the response budget (`algorithm.max_response_tokens`).
`token_mean` weighs every token alike, so long answers weigh more; `seq_mean_token_mean` weighs every answer
alike, so a token of a long answer weighs less (which Dr. GRPO shows biases toward long wrong answers);
`seq_mean_token_sum_norm` divides by a constant, so neither bias remains.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch


@dataclass(frozen=True)
class GlobalCounts:
    """The denominators of a step: what the whole global batch holds, over every rank and micro-batch."""

    tokens: int  # response tokens (the loss mask's sum)
    sequences: int

    @classmethod
    def of(cls, response_lengths: Sequence[int]) -> "GlobalCounts":
        """The counts of a batch whose sequences have these response lengths."""
        return cls(tokens=sum(response_lengths), sequences=len(response_lengths))


Aggregation = Callable[[torch.Tensor, torch.Tensor, GlobalCounts], torch.Tensor]


def token_mean(values: torch.Tensor, mask: torch.Tensor, counts: GlobalCounts) -> torch.Tensor:
    """sum_t(values_t * mask_t) / counts.tokens: the per-token mean over the global batch.

    `counts.tokens` counts the response tokens of the whole global batch (all ranks, all micro-batches), not
    of this tensor: then the sum over micro-batches and ranks equals the token mean over the full batch.
    """
    _check_positive(counts.tokens, "tokens")
    return (values * mask).sum() / counts.tokens


def seq_mean_token_mean(values: torch.Tensor, mask: torch.Tensor, counts: GlobalCounts) -> torch.Tensor:
    """sum_i (sum_t values_it * mask_it / L_i) / counts.sequences: each sequence's token mean, averaged over
    the sequences of the global batch. L_i = sum_t mask_it is the sequence's own length (a sequence is never
    split across micro-batches); a sequence without response tokens contributes 0."""
    _check_positive(counts.sequences, "sequences")
    lengths = mask.sum(dim=1).clamp(min=1.0)
    return ((values * mask).sum(dim=1) / lengths).sum() / counts.sequences


def seq_mean_token_sum_norm(
    values: torch.Tensor, mask: torch.Tensor, counts: GlobalCounts, *, max_response_tokens: int
) -> torch.Tensor:
    """sum_it values_it * mask_it / (counts.sequences * max_response_tokens): each sequence's token sum over
    a constant length, averaged over the global batch's sequences (Dr. GRPO's fixed-length normalisation)."""
    _check_positive(counts.sequences, "sequences")
    _check_positive(max_response_tokens, "max_response_tokens")
    return (values * mask).sum() / (counts.sequences * max_response_tokens)


def aggregation(mode: str, *, max_response_tokens: int | None) -> Aggregation:
    """The reduction `mode` names (`algorithm.aggregation`), with its constant bound."""
    if mode == "seq_mean_token_sum_norm":
        if max_response_tokens is None:
            raise ValueError(
                "seq_mean_token_sum_norm divides by the response budget: set algorithm.max_response_tokens"
            )
        return partial(seq_mean_token_sum_norm, max_response_tokens=max_response_tokens)
    return AGGREGATIONS[mode]


AGGREGATIONS: dict[str, Callable[..., torch.Tensor]] = {
    "token_mean": token_mean,
    "seq_mean_token_mean": seq_mean_token_mean,
    "seq_mean_token_sum_norm": seq_mean_token_sum_norm,
}


def _check_positive(count: int, name: str) -> None:
    if count <= 0:
        raise ValueError(f"the global {name} count must be positive, got {count}")
