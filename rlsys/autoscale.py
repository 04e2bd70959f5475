"""When an elastic pool should grow or shrink: one pure rule for every pool, over its measured backlog.

Each elastic pool (rollout engines, verifiers, reward-model scorers) is measured once a step, between
rollouts (at the weight sync, where no pool holds work):
- `queued`: the work that waited on the pool in the step. For the engines, the prompts of the step's rollout
  (sent all at once). For a scoring pool, the samples still unscored when generation ended: scoring overlaps
  generation, so only what trails it holds the step up.
- `rate`: items one replica completes per second, from the seconds its actors spent on the step's calls.
- `budget_s`: how long the pool may take to clear `queued` without holding the step up. For the engines,
  the learner's own work in the step (train and sync: what a rollout run ahead hides behind, and what
  generation should not dwarf); for a scoring pool, `SCORING_SLACK` of the generation time.

`drain_s = queued / (rate * replicas)` is the time the backlog takes at the measured throughput. A replica
is added when drain_s passes `grow_above * budget_s` for `grow_after` steps in a row, and removed when, with
one replica fewer, it would stay under `shrink_below * budget_s` for `shrink_after` steps in a row. A budget
below `min_budget_s` counts as `min_budget_s`: a backlog that clears in a fraction of a second is not worth
an actor (or a node), and at that scale timing noise alone would make the pool flap. The gap
between the two thresholds (hysteresis: shrink_below < grow_above) keeps a pool at the edge from flapping: a
pool shrunk to n-1 replicas is, by the measurement that shrank it, far from growing back. After a resize the
size holds for `cooldown` steps, so the new size is judged on steps it served (a new replica starts
meanwhile), and a pool whose new replica is still starting does not grow again.
On a cluster the Ray autoscaler then adds or removes the nodes the replicas' resources ask for.
"""

import math
from dataclasses import dataclass

SCORING_SLACK = 0.1  # scoring may trail generation by this share of the generation time unnoticed


@dataclass(frozen=True)
class ScalingRule:
    min_replicas: int
    max_replicas: int
    grow_above: float = 1.0  # drain time / budget that adds a replica
    shrink_below: float = 0.5  # drain time with one replica fewer / budget that removes one
    min_budget_s: float = 0.5  # a smaller budget counts as this much
    grow_after: int = 1  # steps in a row over grow_above before a replica is added
    shrink_after: int = 3  # steps in a row under shrink_below before one is removed
    cooldown: int = 2  # steps after a resize during which the size holds

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError(
                f"need 1 <= min_replicas <= max_replicas, got {self.min_replicas} and {self.max_replicas}"
            )
        if not 0 <= self.shrink_below < self.grow_above:
            raise ValueError(
                f"shrink_below ({self.shrink_below}) must be below grow_above ({self.grow_above}), or the "
                "pool could shrink into a size that grows back at once"
            )


@dataclass(frozen=True)
class Backlog:
    """What one step measured of one pool."""

    queued: float  # items that waited on the pool (prompts, samples)
    rate: float  # items per second one replica completed (0: nothing measured)
    budget_s: float  # seconds the pool may take to clear `queued`

    def drain_s(self, replicas: int) -> float:
        """Seconds `replicas` replicas take to clear the backlog at the measured rate (inf with none)."""
        if self.queued <= 0:
            return 0.0
        if replicas <= 0 or self.rate <= 0:
            return math.inf
        return self.queued / (self.rate * replicas)


@dataclass(frozen=True)
class ScalingState:
    """A pool's size and the rule's memory: steps in a row over / under the thresholds, and the cool-down."""

    replicas: int
    over: int = 0
    under: int = 0
    cooldown: int = 0


def decide(rule: ScalingRule, state: ScalingState, backlog: Backlog, starting: int = 0) -> ScalingState:
    """The state after one step's measurement; its `replicas` is the size to have (changes by at most one,
    stays within [min, max]). A backlog with work but no measured rate changes nothing.

    `starting`: how many of `state.replicas` are still starting. The pool does not grow again until they
    serve: a start can outlast the cool-down by far (a node to launch first), and growing again on steps
    they did not serve would overshoot. It may still shrink, and gives back a start it no longer needs."""
    if state.cooldown > 0:
        return ScalingState(state.replicas, cooldown=state.cooldown - 1)
    if backlog.queued > 0 and backlog.rate <= 0:
        return state
    budget_s = max(backlog.budget_s, rule.min_budget_s)
    over = state.over + 1 if backlog.drain_s(state.replicas) > rule.grow_above * budget_s else 0
    fewer = backlog.drain_s(state.replicas - 1)
    under = state.under + 1 if fewer < rule.shrink_below * budget_s or backlog.queued <= 0 else 0
    if over >= rule.grow_after and state.replicas < rule.max_replicas and not starting:
        return ScalingState(state.replicas + 1, cooldown=rule.cooldown)
    if under >= rule.shrink_after and state.replicas > rule.min_replicas:
        return ScalingState(state.replicas - 1, cooldown=rule.cooldown)
    return ScalingState(state.replicas, over, under)
