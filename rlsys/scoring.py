"""Sampling and scoring a set of prompts over the pools: a training step's rollout, or an evaluation.

Scoring streams behind generation: each chunk of groups an engine finishes goes to every scoring pool at once,
while the other engines still sample. Rewards come back per chunk in the order the chunk listed its samples
and are placed by (prompt index, sample index), so they land on their own samples whatever order the
engines and scorers finish in.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from rlsys.abstention import calibration_error, calibration_points
from rlsys.errors import PoolError
from rlsys.metrics import answer_metrics, eval_tool_metrics
from rlsys.protocols import Pending, Pools, RolloutPool, ScorePool
from rlsys.types import Prompt, Reward, Sample, Sampling


@dataclass(frozen=True)
class ScoredRollout:
    """Groups of samples and their rewards, in prompt order, with where the time went."""

    groups: list[list[Sample]]
    rewards: list[list[Reward]]
    generate_s: float  # until the last engine finished
    score_wait_s: float  # scoring that did not overlap generation: what scoring added to the rollout
    prompts_sampled: int  # prompts sent to the engines (the rollout pool's backlog)
    score_queued: tuple[int, ...]  # per scorer, in order: samples still unscored when generation finished


def sample_and_score(
    rollout: RolloutPool,
    scorers: Sequence[ScorePool],
    prompts: Sequence[Prompt],
    sampling: Sampling,
    seeds: Sequence[int | None],
) -> ScoredRollout:
    """`sampling.n` samples of each prompt, each scored by every pool in `scorers` (rewards combined)."""
    start = time.perf_counter()
    groups: list[list[Sample] | None] = [None] * len(prompts)
    calls: list[tuple[list[tuple[int, int]], list[Pending[list[Reward]]]]] = []
    for chunk in rollout.generate(prompts, sampling, seeds):
        places = [(index, j) for index, group in chunk for j in range(len(group))]
        samples = [sample for _, group in chunk for sample in group]
        chunk_prompts = [prompts[index] for index, _ in places]
        for index, group in chunk:
            groups[index] = group
        calls.append((places, [scorer.score(chunk_prompts, samples) for scorer in scorers]))
    generated = time.perf_counter()
    missing = [prompts[i].id for i, group in enumerate(groups) if group is None]
    if missing:
        raise PoolError(f"the rollout pool returned no samples for prompts {missing[:5]}")
    queued = tuple(
        sum(len(places) for places, pendings in calls if not pendings[k].done()) for k in range(len(scorers))
    )
    rewards: list[list[Reward | None]] = [[None] * len(group) for group in groups]
    for places, pendings in calls:
        parts = [pending.result() for pending in pendings]
        for k, (index, j) in enumerate(places):
            rewards[index][j] = Reward.combine([part[k] for part in parts])
    return ScoredRollout(
        groups=groups,
        rewards=rewards,
        generate_s=generated - start,
        score_wait_s=time.perf_counter() - generated,
        prompts_sampled=len(prompts),
        score_queued=queued,
    )


def with_signal(
    first: tuple[list[Prompt], ScoredRollout],
    more: Callable[[int], tuple[list[Prompt], ScoredRollout]],
    useful: Callable[[ScoredRollout], list[bool]],
    *,
    wanted: int,
    rounds: int,
) -> tuple[list[Prompt], ScoredRollout, int]:
    """DAPO's dynamic sampling (Yu et al. 2025, "DAPO", sec. 3.2): while fewer than `wanted` groups carry
    signal (`useful`), sample round r = 1..`rounds` of extra prompts (`more(r)`); keep the first `wanted`
    useful groups in the order they were drawn (fewer when the rounds run out). Returns the prompts, their
    rollout and the rounds taken."""
    prompts, scored = first
    taken = 0
    while sum(useful(scored)) < wanted and taken < rounds:
        taken += 1
        extra_prompts, extra = more(taken)
        prompts, scored = prompts + extra_prompts, _joined(scored, extra)
    if taken == 0:
        return prompts, scored, 0
    picked = [i for i, keep in enumerate(useful(scored)) if keep][:wanted]
    trimmed = replace(
        scored, groups=[scored.groups[i] for i in picked], rewards=[scored.rewards[i] for i in picked]
    )
    return [prompts[i] for i in picked], trimmed, taken


def _joined(first: ScoredRollout, second: ScoredRollout) -> ScoredRollout:
    """Two rollouts of one step as one: groups in order, times and backlogs added."""
    return ScoredRollout(
        groups=first.groups + second.groups,
        rewards=first.rewards + second.rewards,
        generate_s=first.generate_s + second.generate_s,
        score_wait_s=first.score_wait_s + second.score_wait_s,
        prompts_sampled=first.prompts_sampled + second.prompts_sampled,
        score_queued=tuple(a + b for a, b in zip(first.score_queued, second.score_queued, strict=True)),
    )


@dataclass(frozen=True)
class Evaluation:
    """An evaluation's `eval/*` metrics, and with the `abstain` reward one (confidence, outcome) per question
    for the calibration plot (`rlsys.abstention.calibration_points`; empty otherwise)."""

    metrics: dict[str, float]
    calibration: list[tuple[float, str]]


def evaluate(
    pools: Pools, prompts: Sequence[Prompt], *, greedy: Sampling, sampled: Sampling, seeds: Sequence[int]
) -> Evaluation:
    """Held-out accuracy: one greedy answer per prompt, and `sampled.n` samples each (scored by the verifiers
    alone: accuracy is theirs to judge); with tool calls, how the answers use the tool."""
    scorers = pools.scorers(with_reward_model=False)
    first = sample_and_score(pools.rollout, scorers, prompts, greedy, [None] * len(prompts))
    second = sample_and_score(pools.rollout, scorers, prompts, sampled, seeds)
    greedy_samples = [group[0] for group in first.groups]
    greedy_rewards = [rewards[0] for rewards in first.rewards]
    metrics = answer_metrics(
        greedy_samples, greedy_rewards, [r for rewards in second.rewards for r in rewards]
    )
    if greedy.max_tool_calls:
        sampled_samples = [s for group in second.groups for s in group]
        metrics.update(eval_tool_metrics(greedy_samples, greedy_rewards, sampled_samples))
    points = calibration_points(greedy_samples, greedy_rewards, second.groups)
    if points:
        metrics["eval/calibration_error"] = calibration_error(points)
    return Evaluation(metrics, points)
