"""Turning rewards into advantages: one function per estimator, each over a step's (num_prompts, group_size)
rewards.

Every estimator here is critic-free: the samples of a prompt (GRPO, RLOO) or of the whole batch (REINFORCE++)
are the baseline. `rlsys.batch.training_batch` picks one by `algorithm.advantage`. GAE, which needs a value
network, is in `rlsys.algorithms.gae`.
"""

import torch


def group_normalized_advantages(
    rewards: torch.Tensor, *, scale_by_std: bool = True, eps: float = 1e-6
) -> torch.Tensor:
    """Advantages relative to each prompt's group of samples (`advantage=group_mean`).

        A_i = (r_i - mean(r_group)) / (std(r_group) + eps)      (scale_by_std=True: GRPO, Shao et al. 2024,
                                                                  "DeepSeekMath", sec. 4.1.2)
        A_i =  r_i - mean(r_group)                             (scale_by_std=False: Dr. GRPO, Liu et al.
                                                                  2025, "Understanding R1-Zero-Like Training")

    Args:
        rewards: (num_prompts, group_size) scalar reward of each sample.
    Returns:
        (num_prompts, group_size) advantages; a group whose rewards are all equal gets zeros.

    The std is the population std (unbiased=False): with G=2 and rewards {0, 1} that gives advantages ±1.
    Dr. GRPO drops the std because it weighs prompts by how unanimous their group is: an almost-solved prompt
    (one wrong answer in G) gets the largest advantages.
    """
    _check_groups(rewards)
    centered = rewards - rewards.mean(dim=1, keepdim=True)
    if not scale_by_std:
        return centered
    return centered / (rewards.std(dim=1, unbiased=False, keepdim=True) + eps)


def leave_one_out_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """RLOO: each sample's baseline is the mean reward of the *other* samples of its prompt (Kool et al. 2019,
    "Buy 4 REINFORCE Samples, Get a Baseline for Free!"; Ahmadian et al. 2024, "Back to Basics", eq. 7).

        A_i = r_i - 1/(G-1) * sum_{j != i} r_j  =  G/(G-1) * (r_i - mean(r_group))

    The baseline does not depend on r_i, so the gradient estimate stays unbiased (the group mean includes
    r_i and shrinks every advantage by (G-1)/G). Shapes: (num_prompts, G) -> (num_prompts, G), G >= 2.
    """
    _check_groups(rewards)
    group_size = rewards.shape[1]
    if group_size < 2:
        raise ValueError("a leave-one-out baseline needs at least 2 samples per prompt")
    others = (rewards.sum(dim=1, keepdim=True) - rewards) / (group_size - 1)
    return rewards - others


def batch_normalized_advantages(
    rewards: torch.Tensor, token_counts: torch.Tensor, keep: torch.Tensor, *, eps: float = 1e-6
) -> torch.Tensor:
    """REINFORCE++ with baseline (Hu et al. 2025, "REINFORCE++", eqs. 8-10): subtract each prompt's mean
    reward, then normalise over every response token of the batch.

        Ã_i = r_i - mean(r_group)
        A_i = (Ã_i - mean_tokens(Ã)) / (std_tokens(Ã) + eps)

    mean_tokens and std_tokens run over the response tokens of the kept samples: a sample of L tokens counts
    L times, as when the paper normalises its per-token advantages over the batch. The std is global, not
    per prompt, so a prompt whose samples barely differ keeps small advantages instead of being blown up to
    unit scale by its own small std.

    Args:
        rewards: (num_prompts, G) scalar rewards.
        token_counts: (num_prompts, G) response tokens of each sample.
        keep: (num_prompts, G) bool, the samples that will train; the statistics come from these alone
            (the others get values that are not used).
    """
    _check_groups(rewards)
    centered = rewards - rewards.mean(dim=1, keepdim=True)
    weights = token_counts.to(rewards.dtype) * keep
    total = weights.sum().clamp(min=1.0)
    mean = (weights * centered).sum() / total
    std = ((weights * (centered - mean) ** 2).sum() / total).sqrt()
    return (centered - mean) / (std + eps)


def overlong_penalty(token_counts: torch.Tensor, *, max_tokens: int, buffer_tokens: int) -> torch.Tensor:
    """DAPO's soft overlong punishment (Yu et al. 2025, "DAPO", eq. 13), added to the reward.

        R_length(y) = 0                                   |y| <= L_max - L_cache
                    = ((L_max - L_cache) - |y|) / L_cache    L_max - L_cache < |y| <= L_max
                    = -1                                   |y| >  L_max

    with L_max = `max_tokens` and L_cache = `buffer_tokens`. A truncated answer's reward says nothing about
    its reasoning, and a hard -1 at the limit punishes a sound answer cut one token short; the ramp tells
    the policy it is running long before the budget cuts it. Shape preserved; values in [-1, 0].
    """
    if not 0 < buffer_tokens <= max_tokens:
        raise ValueError(f"buffer_tokens must be in 1..max_tokens ({max_tokens}), got {buffer_tokens}")
    ramp = ((max_tokens - buffer_tokens) - token_counts.to(torch.float32)) / buffer_tokens
    return ramp.clamp(min=-1.0, max=0.0)


def kl_penalized_advantages(
    advantages: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, *, kl_coef: float
) -> torch.Tensor:
    """Per-token advantages with the KL to the reference paid as a per-token reward (REINFORCE++, eq. 8; the
    RLHF reward of Ouyang et al. 2022): each token is charged the KL of itself and every later token.

        A_t = A_seq - beta * sum_{s >= t} KL_s * mask_s        (gamma = 1)

    The paper normalises the sum (outcome and KL) over the batch; here the outcome part arrives normalised
    (`batch_normalized_advantages`) and the KL part is added as is, in units of that normalised advantage:
    normalising the sum would need every rank's reference forward before any backward (a second pass).

    Args:
        advantages: (B,) one advantage per sequence (already normalised over the batch).
        kl: (B, T) per-token KL estimate, detached (a reward, not a loss: no gradient flows through it).
        mask: (B, T) 1.0 on response tokens.
    Returns:
        (B, T) advantages.
    """
    to_go = (kl * mask).flip(-1).cumsum(-1).flip(-1)  # sum over s >= t, per row
    return advantages.unsqueeze(1) - kl_coef * to_go


def informative_groups(rewards: torch.Tensor, *, tol: float = 1e-8) -> torch.Tensor:
    """(num_prompts,) bool mask of the groups whose rewards differ.

    A group where every sample got the same reward has zero advantage everywhere under a group baseline: it
    adds nothing to the gradient but still dilutes the per-token mean, so the loop drops it before training.
    """
    return (rewards.max(dim=1).values - rewards.min(dim=1).values) > tol


def accepted_samples(rewards: torch.Tensor, *, min_reward: float) -> torch.Tensor:
    """Rejection sampling (`advantage=rejection`): the samples scoring at least `min_reward`, (P, G) bool.

    Rejection-sampling fine-tuning (expert iteration: Anthony et al. 2017; Yuan et al. 2023, "Scaling
    Relationship on Learning Mathematical Reasoning") takes a supervised step on the accepted samples alone,
    each with weight 1.
    """
    return rewards >= min_reward


def _check_groups(rewards: torch.Tensor) -> None:
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be (num_prompts, group_size), got shape {tuple(rewards.shape)}")
