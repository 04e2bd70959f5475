"""Elastic pools: actors added and removed while a job runs, on the backlog each pool measures.

`ElasticPool.autoscale(queued, budget_s)` is called between rollouts, at the weight sync, where no pool holds
work. It weighs the step's `queued` items against the throughput the pool's actors showed
(`ActorPool.take_throughput`) and applies the one scaling rule of `rlsys.autoscale`:

- Growing starts a new actor outside the rotation (`joining`): a start can take long (a model to load, a node
  the cluster's autoscaler has to add first) and no step waits for it. The pool admits it where it can
  prepare it (`_admit`): the rollout pool at its next weight sync, which hands it the current weights and
  checks them like every engine's before it serves; a scoring pool at its next batch. An actor that cannot
  start, or has not started within `start_timeout_s`, is dropped with a note; the pool goes on at its size.
  While one is joining the pool does not grow again (`decide(..., starting=...)`).
- Shrinking stops a joining actor first, else the last actor with no call in flight: it has finished its
  work, none is lost. With every actor busy (a recovery probe) the shrink waits for the next step.
"""

import time
from dataclasses import replace

import ray
from ray.exceptions import RayError

from actors.dispatch import READY_GET_S, ActorPool, Slot, cause_line
from rlsys.autoscale import Backlog, ScalingRule, ScalingState, decide
from rlsys.config import ElasticPoolConfig
from rlsys.console import note


class ElasticPool(ActorPool):
    """A pool of `config.replicas` actors that grows up to `config.max_replicas` (null: fixed size)."""

    def __init__(self, name: str, config: ElasticPoolConfig, spawn) -> None:
        self.joining: list[Slot] = []  # started, not yet in the rotation
        self.rule = ScalingRule(config.replicas, config.max_replicas or config.replicas)
        self.scaling = ScalingState(config.replicas)
        self.backlog = Backlog(queued=0, rate=0.0, budget_s=0.0)  # the last step's measurement
        super().__init__(name, config, spawn, config.replicas)

    def autoscale(self, queued: float, budget_s: float) -> None:
        """Between rollouts: `queued` items waited on the pool this step, which it may take `budget_s` to
        clear; add or remove an actor as `rlsys.autoscale.decide` says."""
        self.backlog = Backlog(queued, self.take_throughput(), budget_s)
        current = self.size() + len(self.joining)
        state = replace(self.scaling, replicas=current)
        self.scaling = decide(self.rule, state, self.backlog, starting=len(self.joining))
        if self.scaling.replicas > current:
            self._grow()
        elif self.scaling.replicas < current and not self._shrink():
            self.scaling = replace(self.scaling, replicas=current)

    def metrics(self) -> dict[str, float]:
        drain_s = self.backlog.drain_s(self.size())
        return {
            **super().metrics(),
            f"pool/{self.name}_starting": len(self.joining),
            f"pool/{self.name}_backlog": self.backlog.queued,
            f"pool/{self.name}_throughput": self.backlog.rate,  # items per second, per actor
            **({f"pool/{self.name}_backlog_s": drain_s} if drain_s < float("inf") else {}),
        }

    def shutdown(self) -> None:
        for slot in self.joining:
            ray.kill(slot.actor)
        self.joining.clear()
        super().shutdown()

    def _grow(self) -> None:
        slot = Slot(next(self._numbers), None)
        self._start(slot)
        self.joining.append(slot)
        note(f"{self.name} pool: backlog {self._backlog_line()}; starting {self.noun} {slot.number}")

    def _shrink(self) -> bool:
        """Stop one actor that holds no work; False when none can go now."""
        if self.joining:
            slot = self.joining.pop()
        else:
            for slot in list(self.slots):
                self._observe(slot)
            idle = [slot for slot in self.slots if not slot.calls]
            if len(self.slots) <= 1 or not idle:
                return False
            slot = idle[-1]
            self.slots.remove(slot)
        ray.kill(slot.actor, no_restart=True)
        note(f"{self.name} pool: backlog {self._backlog_line()}; stopped {self.noun} {slot.number}")
        return True

    def _admit(self) -> list[Slot]:
        """Joining actors that have started enter the rotation (and are returned); those that failed to start,
        or overran `start_timeout_s`, are dropped with a note."""
        admitted = []
        for slot in list(self.joining):
            started, _ = ray.wait([slot.start_ref], timeout=0)
            if not started and time.monotonic() < slot.deadline():
                continue
            self.joining.remove(slot)
            why = f"did not start within {self.key('start_timeout_s')} ({self.config.start_timeout_s:g}s)"
            if started:
                try:
                    ray.get(slot.start_ref, timeout=READY_GET_S)
                except RayError as err:
                    why = f"could not start: {cause_line(err)}"
                else:
                    slot.calls.clear()  # its start, done
                    self.slots.append(slot)
                    admitted.append(slot)
                    continue
            ray.kill(slot.actor, no_restart=True)
            note(f"{self.name} pool: new {self.noun} {slot.number} {why}; going on with {self.size()}")
        return admitted

    def _backlog_line(self) -> str:
        backlog = self.backlog
        return (
            f"{backlog.queued:g} items at {backlog.rate:.3g}/s per {self.noun}, "
            f"{backlog.drain_s(self.size()):.2f}s against a budget of {backlog.budget_s:.2f}s"
        )
