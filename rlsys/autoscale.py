"""When a scoring pool should grow or shrink: a pure rule over what the last steps measured.

Verification overlaps generation (chunks are scored while other engines still sample), so the cost a slow
verifier pool adds to a step is the wait *after* generation ends. The pool grows while that wait is a
noticeable share of the step and shrinks after several steps without any. On a cluster the Ray autoscaler
then adds or removes the nodes that the replicas' resources ask for.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ScalingRule:
    min_replicas: int
    max_replicas: int
    grow_above: float = 0.1  # verify wait / generate time that adds a replica
    idle_below_s: float = 0.05  # a wait this short counts as idle
    idle_steps: int = 5  # consecutive idle steps that remove a replica


def target_replicas(
    rule: ScalingRule, replicas: int, wait_s: float, generate_s: float, idle_streak: int
) -> int:
    """The replica count for the next step (changes by at most one per step, within [min, max])."""
    if wait_s > rule.grow_above * generate_s and replicas < rule.max_replicas:
        return replicas + 1
    if idle_streak >= rule.idle_steps and replicas > rule.min_replicas:
        return replicas - 1
    return replicas
