"""Turning rewards into advantages.

GRPO (Shao et al. 2024, "DeepSeekMath", §4.1) samples a group of G answers per prompt and uses the group as
its own baseline, so no value network is needed.
"""

import torch


def group_normalized_advantages(
    rewards: torch.Tensor, *, scale_by_std: bool = True, eps: float = 1e-6
) -> torch.Tensor:
    """Advantages relative to each prompt's group of samples.

        A_i = (r_i - mean(r_group)) / (std(r_group) + eps)      (scale_by_std=True, GRPO)
        A_i =  r_i - mean(r_group)                             (scale_by_std=False, Dr. GRPO)

    Args:
        rewards: (num_prompts, group_size) scalar reward of each sample.
    Returns:
        (num_prompts, group_size) advantages; a group whose rewards are all equal gets zeros.

    The std is the population std (unbiased=False): with G=2 and rewards {0, 1} that gives advantages ±1.
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be (num_prompts, group_size), got shape {tuple(rewards.shape)}")
    centered = rewards - rewards.mean(dim=1, keepdim=True)
    if not scale_by_std:
        return centered
    return centered / (rewards.std(dim=1, unbiased=False, keepdim=True) + eps)


def informative_groups(rewards: torch.Tensor, *, tol: float = 1e-8) -> torch.Tensor:
    """(num_prompts,) bool mask of the groups whose rewards differ.

    A group where every sample got the same reward has zero advantage everywhere: it adds nothing to the
    gradient but still dilutes the per-token mean, so the loop drops it before training.
    """
    return (rewards.max(dim=1).values - rewards.min(dim=1).values) > tol
