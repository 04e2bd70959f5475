"""Per-token log-probabilities and entropy from a causal LM's logits."""

import torch


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target_t | context) for each position.

    Args:
        logits: (B, T, V) scores for the token *at* each position (already shifted: logits[:, t] predicts
            targets[:, t]).
        targets: (B, T) token ids.
    Returns:
        (B, T) log-probabilities. Uses logsumexp rather than a full log_softmax so only one (B, T) gather of
        the (B, T, V) tensor is kept for backward.
    """
    picked = torch.gather(logits, dim=-1, index=targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H_t = -sum_v p_v log p_v of the next-token distribution, (B, T, V) -> (B, T). For metrics only."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    return -(log_p.exp() * log_p).sum(dim=-1)
