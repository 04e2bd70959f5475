"""Work dispatched to a pool's Ray actors, with a deadline on every call and recovery of lost actors.

A pool is a list of slots: one actor each, with the calls in flight to it in the order it runs them (Ray runs
an actor's calls one at a time, in the order they were sent). The call an actor is working on is therefore
the first of its slot, and it started when the one before it finished: its deadline runs from then, not from
when it was sent, so work queued behind a start-up or a busy actor is not blamed for the wait.

What can go wrong with a call, and what the pool does:
- it overruns its deadline (`call_timeout_s`; `start_timeout_s` for a start or restart): the actor is killed,
  Ray restarts it, and its calls fail as lost;
- its actor is lost (died, killed, killed for memory, its node died) or an object it needed was lost: the
  work is dispatched again, to the next actor, up to `max_attempts` dispatches in all, then `PoolError`;
- after a loss the pool sends the actor a probe (`_recovery_call`: its `ready`, or a weight re-sync) that runs
  before any later work on it, and checks the probe's answer before it accepts a later result from that
  actor. Ray answers a call to an actor it is restarting with `ActorUnavailableError`: the probe is sent
  again until the actor is back (within `start_timeout_s`). A probe that finds the actor dead is Ray saying
  it will not restart it (past `max_restarts`, or its node is gone): the actor is replaced by a fresh one.
  An actor that cannot start is dropped from the rotation with a note; with none left the pool fails with
  `PoolError` giving the reason.

The pool sees a call finish when it next waits on or dispatches to that actor, so a deadline is never early
and at most one wait late. A pool is used by one thread at a time.

Work calls report the seconds the actor spent on them (timed inside the actor, so a result the driver reads
late still counts its true time): with the items they held (the length of their first argument: prompts,
samples) they give the pool's measured throughput, on which elastic pools resize (`actors.elastic`).
"""

import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import ray
from ray.exceptions import (
    ActorUnavailableError,
    NodeDiedError,
    ObjectLostError,
    OutOfMemoryError,
    RayActorError,
    WorkerCrashedError,
)

from rlsys.config import PoolConfig
from rlsys.console import note
from rlsys.errors import PoolError

# The actor, its process or its node is gone: the calls it held fail; Ray restarts it within max_restarts.
ACTOR_LOST = (RayActorError, OutOfMemoryError, NodeDiedError, WorkerCrashedError)
# An object a call needed or made is gone (ObjectReconstructionFailedError, OwnerDiedError are kinds of it).
OBJECT_LOST = (ObjectLostError,)
# `ray.get` of a ref `ray.wait` found ready returns at once; the bound is only there so no wait has none.
READY_GET_S = 60.0

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")
_WORKER = re.compile(r"\(pid=(\d+), ip=([^,)]+)")


def _timed(actor: Any, method: str, *args) -> tuple[Any, float]:
    """Runs inside the actor (through `__ray_call__`): the method's result and the seconds it took there."""
    start = time.perf_counter()
    result = getattr(actor, method)(*args)
    return result, time.perf_counter() - start


def cause_line(err: BaseException) -> str:
    """The library's own reason in a Ray error: the last line naming an exception (`ValueError: ...`) in its
    text (an actor-death cause carries the actor's whole traceback), else its last line."""
    lines = [line.strip() for line in _ANSI.sub("", str(err)).splitlines() if line.strip()]
    named = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return (named or lines or [type(err).__name__])[-1]


def log_hint(err: BaseException) -> str:
    """Where the full log of the actor behind `err` is: the Ray session's log directory on its node."""
    try:
        logs = ray._private.worker._global_node.get_logs_dir_path()  # no public API names it
    except AttributeError:
        logs = "/tmp/ray/session_latest/logs"
    found = _WORKER.search(_ANSI.sub("", str(err)))
    return f"{logs}/worker-*-{found[1]}.err on {found[2]}" if found else logs


def actor_failure(pool: str, actor: str, doing: str, err: BaseException) -> str:
    """One line for an actor that failed: the pool, the actor, the library's reason, the full log's place."""
    return f"{pool} pool: {actor} failed {doing}: {cause_line(err)} (full log: {log_hint(err)})"


@dataclass(eq=False)
class Call:
    ref: ray.ObjectRef
    method: str
    timeout_s: float
    key: str  # the config key of the deadline, for messages
    probe: bool = False  # the pool's own call (start, restart, re-sync), checked by the pool when it finishes


@dataclass(eq=False)
class Slot:
    number: int  # the actor's name in messages ("engine 1"); a replacement keeps it
    actor: Any
    calls: deque[Call] = field(default_factory=deque)
    since: float = 0.0  # when the first of `calls` started, as the pool saw it (never earlier than it did)
    restarting_since: float | None = None  # when its probes began meeting a restarting actor
    killed: bool = False  # killed for a missed deadline; its calls have not failed yet
    start_ref: ray.ObjectRef | None = None  # its actor's start call

    def deadline(self) -> float:
        return self.since + self.calls[0].timeout_s if self.calls else math.inf

    def recovering(self) -> bool:
        return any(call.probe for call in self.calls)


@dataclass(eq=False)
class Task:
    """A piece of the caller's work on one actor; a re-dispatched copy keeps `index`."""

    index: int
    method: str
    args: tuple
    slot: Slot
    call: Call
    attempt: int


class ActorPool:
    """Round-robin dispatch over actors with deadlines, re-dispatch of lost work, and recovery of lost
    actors. `spawn(number)` makes a new actor; pools hook in `_recovery_call`, `_probe_passed`, `_accept`
    and `_recoverable`."""

    noun = "actor"
    section: str | None = None  # the pool's section of the job config, when it is not named as the pool

    def __init__(self, name: str, config: PoolConfig, spawn: Callable[[int], Any], replicas: int) -> None:
        self.name, self.config, self._spawn = name, config, spawn
        self.slots: list[Slot] = []
        self._numbers = count()
        self._next = count()
        self.retried_tasks = 0
        self.deadline_kills = 0
        self.replaced_actors = 0
        self.items_done = 0  # items of the work calls finished since `take_throughput`
        self.busy_s = 0.0  # seconds the actors spent on them
        for _ in range(replicas):
            self.add()

    @property
    def actors(self) -> list:
        return [slot.actor for slot in self.slots]

    def key(self, name: str) -> str:
        """The config key `name` of this pool's section, as messages name it: `reward_model.max_attempts`."""
        return f"{self.section or self.name}.{name}"

    def size(self) -> int:
        return len(self.slots)

    def add(self) -> Slot:
        """A new actor at the end of the rotation; its start is its first call."""
        slot = Slot(next(self._numbers), None)
        self._start(slot)
        self.slots.append(slot)
        return slot

    def shutdown(self) -> None:
        for slot in self.slots:
            ray.kill(slot.actor)
        self.slots.clear()

    def ready_refs(self) -> list[ray.ObjectRef]:
        """Each actor's start call, in rotation order: it returns once the actor has started."""
        return [slot.start_ref for slot in self.slots]

    def metrics(self) -> dict[str, float]:
        return {
            f"pool/{self.name}_replicas": self.size(),
            "pool/retried_tasks": self.retried_tasks,
            "pool/deadline_kills": self.deadline_kills,
            "pool/replaced_actors": self.replaced_actors,
        }

    # Dispatch.

    def submit(self, index: int, method: str, *args, after: Slot | None = None, attempt: int = 0) -> Task:
        """Send `method(*args)` to the next actor in the rotation (after `after`'s, for a re-dispatch),
        preferring actors that are not starting or recovering."""
        slot = self._pick(after)
        ref = slot.actor.__ray_call__.remote(_timed, method, *args)
        call = self._enqueue(slot, ref, method, self.config.call_timeout_s, "call_timeout_s")
        return Task(index, method, args, slot, call, attempt)

    def as_completed(self, tasks: list[Task]) -> Iterator[tuple[int, object]]:
        """Yield (task index, result) as results arrive; lost or late work runs again on another actor."""
        pending = {task.call.ref: task for task in tasks}
        while pending:
            for task in self._orphans(pending):
                del pending[task.call.ref]
                retry = self._retry(task, "its actor left the pool")
                pending[retry.call.ref] = retry
            slots = {task.slot for task in pending.values()}
            heads = [slot.calls[0].ref for slot in slots if slot.calls]  # each actor's current call
            deadline = min(slot.deadline() for slot in slots)
            ready, _ = ray.wait(
                [*pending, *(ref for ref in heads if ref not in pending)],
                num_returns=1,
                timeout=self._until(deadline),
            )
            if not ready or ready[0] not in pending:
                self._enforce(slots)
                continue
            task = pending.pop(ready[0])
            self._observe(task.slot)  # what ran before it on that actor (a re-sync) is checked first
            try:
                result, seconds = ray.get(task.call.ref, timeout=READY_GET_S)
            except Exception as err:
                if not self._recoverable(task, err):
                    raise
                retry = self._retry(task, err)
                pending[retry.call.ref] = retry
                continue
            accepted = self._accept(task, result)
            self.items_done += len(task.args[0])
            self.busy_s += seconds
            yield task.index, accepted

    def take_throughput(self) -> float:
        """Items per second one actor completed over the work finished since the last call (0: none)."""
        rate = self.items_done / self.busy_s if self.busy_s > 0 else 0.0
        self.items_done, self.busy_s = 0, 0.0
        return rate

    def gather(self, tasks: list[Task]) -> list:
        """Every task's result, in index order."""
        results = dict(self.as_completed(tasks))
        return [results[i] for i in sorted(results)]

    # Hooks.

    def _recovery_call(self, slot: Slot) -> tuple[ray.ObjectRef, str, float]:
        """What a restarted or fresh actor runs before new work: (ref, method, deadline in seconds)."""
        return slot.actor.ready.remote(), "ready", self.config.start_timeout_s

    def _after_start(self, slot: Slot) -> None:
        """Queue what a fresh replacement needs after its start, before new work (nothing by default)."""

    def _probe_passed(self, slot: Slot, call: Call, result: Any) -> None:
        """A probe answered; raise to reject its answer."""

    def _accept(self, task: Task, result: Any) -> Any:
        """A task's result, checked before it is handed out."""
        return result

    def _recoverable(self, task: Task, err: Exception) -> bool:
        """Whether `err` from `task` is worth dispatching the task again (after accounting for it)."""
        if isinstance(err, ACTOR_LOST):
            self._lost(task.slot)
            return True
        return isinstance(err, OBJECT_LOST)

    # Bookkeeping.

    def _start(self, slot: Slot) -> None:
        slot.actor = self._spawn(slot.number)
        slot.start_ref = slot.actor.ready.remote()
        self._enqueue(
            slot, slot.start_ref, "start", self.config.start_timeout_s, "start_timeout_s", probe=True
        )

    def _enqueue(
        self, slot: Slot, ref: ray.ObjectRef, method: str, timeout_s: float, key: str, probe: bool = False
    ) -> Call:
        if not slot.calls:
            slot.since = time.monotonic()
        call = Call(ref, method, timeout_s, key, probe)
        slot.calls.append(call)
        return call

    def _recover(self, slot: Slot) -> None:
        """Queue the probe a restarted or unsynced actor answers before it takes new work (its deadline
        covers a restart)."""
        ref, method, timeout_s = self._recovery_call(slot)
        self._enqueue(slot, ref, method, timeout_s, "start_timeout_s", probe=True)

    def _pick(self, after: Slot | None) -> Slot:
        for slot in list(self.slots):
            self._observe(slot)
        if not self.slots:
            raise PoolError(f"{self.name} pool: no {self.noun} left")
        self._until_one_is_back()
        if after is not None and after in self.slots:
            start = self.slots.index(after) + 1
        else:
            start = next(self._next)
        order = [self.slots[(start + i) % len(self.slots)] for i in range(len(self.slots))]
        return next((slot for slot in order if not slot.recovering()), order[0])

    def _until_one_is_back(self) -> None:
        """With every actor restarting or re-syncing, wait for the first to be back before dispatching: Ray
        answers a call to an actor it is restarting at once with `ActorUnavailableError`, so work sent then
        would spend its `max_attempts` in a moment (seen with one engine restarting after a crash while the
        other was killed for a deadline). The probes keep their deadlines (`start_timeout_s`)."""
        while self.slots and all(slot.recovering() for slot in self.slots):
            probes = [call.ref for slot in self.slots for call in slot.calls if call.probe]
            deadline = min(slot.deadline() for slot in self.slots)
            ray.wait(probes, num_returns=1, timeout=min(self._until(deadline), 1.0))
            for slot in list(self.slots):
                self._observe(slot)  # a probe that met a restarting actor is sent again
            self._enforce(set(self.slots))
            time.sleep(0.2)  # a restarting actor answers a probe at once: ask a few times a second
        if not self.slots:
            raise PoolError(f"{self.name} pool: no {self.noun} left")

    def _observe(self, slot: Slot) -> None:
        """Take the calls that finished off an actor's queue and check the pool's own among them."""
        if not slot.calls:
            return
        done, _ = ray.wait([call.ref for call in slot.calls], num_returns=len(slot.calls), timeout=0)
        if not done:
            return
        finished = set(done)
        probes = [call for call in slot.calls if call.probe and call.ref in finished]
        slot.calls = deque(call for call in slot.calls if call.ref not in finished)
        slot.since = time.monotonic()
        slot.killed = False  # calls finished: a kill, if there was one, took effect
        failures = []
        for call in probes:  # every one is checked, even after one fails
            try:
                self._check_probe(slot, call)
            except PoolError as err:
                failures.append(err)
        if failures:
            raise failures[0]

    def _check_probe(self, slot: Slot, call: Call) -> None:
        if slot not in self.slots:
            return
        try:
            result = ray.get(call.ref, timeout=READY_GET_S)
        except ActorUnavailableError:
            self._restarting(slot)  # Ray is restarting it: ask again
            return
        except ACTOR_LOST as err:
            slot.killed = False
            if getattr(err, "actor_init_failed", False):
                self._drop(slot, cause_line(err), err)
            else:
                self._replace(slot)  # Ray will not restart it
            return
        except OBJECT_LOST as err:
            raise PoolError(actor_failure(self.name, f"{self.noun} {slot.number}", call.method, err)) from err
        slot.restarting_since = None
        self._probe_passed(slot, call, result)

    def _enforce(self, slots: set[Slot]) -> None:
        """Kill the actors whose current call is past its deadline (their calls then fail as lost)."""
        now = time.monotonic()
        for slot in slots:
            if slot not in self.slots:
                continue
            self._observe(slot)
            if not slot.calls or now < slot.deadline():
                continue
            call = slot.calls[0]
            if slot.killed:
                raise PoolError(
                    f"{self.name} pool: {self.noun} {slot.number} was killed for overrunning {call.method} "
                    f"but its calls did not fail within another {call.timeout_s:g}s"
                )
            note(
                f"{self.name} pool: {self.noun} {slot.number} did not finish {call.method} within "
                f"{self.key(call.key)} ({call.timeout_s:g}s); killing it and dispatching its work again"
            )
            ray.kill(slot.actor, no_restart=False)
            slot.killed, slot.since = True, now
            self.deadline_kills += 1

    def _lost(self, slot: Slot) -> None:
        """A call failed with its actor: probe it (once, however many calls it failed) before new work."""
        if slot in self.slots:
            slot.killed = False
            if not slot.recovering():
                self._recover(slot)

    def _restarting(self, slot: Slot) -> None:
        """A probe met an actor Ray is restarting: ask again, until `start_timeout_s` has passed."""
        now = time.monotonic()
        slot.restarting_since = slot.restarting_since or now
        if now - slot.restarting_since > self.config.start_timeout_s:
            note(
                f"{self.name} pool: {self.noun} {slot.number} did not come back within "
                f"{self.key('start_timeout_s')} ({self.config.start_timeout_s:g}s)"
            )
            self._replace(slot)
        else:
            self._recover(slot)

    def _replace(self, slot: Slot) -> None:
        """A fresh actor in the slot of one Ray will not restart; the old one's calls all fail."""
        index = self.slots.index(slot)
        ray.kill(slot.actor, no_restart=True)
        fresh = Slot(slot.number, None)
        self._start(fresh)
        self.slots[index] = fresh
        self.replaced_actors += 1
        note(
            f"{self.name} pool: {self.noun} {slot.number} is gone for good "
            f"(past {self.key('max_restarts')} = {self.config.max_restarts}, or its node is gone); "
            "replaced by a fresh one"
        )
        self._after_start(fresh)

    def _drop(self, slot: Slot, why: str, err: BaseException) -> None:
        self.slots.remove(slot)
        ray.kill(slot.actor, no_restart=True)
        if not self.slots:
            raise PoolError(
                f"{self.name} pool: no {self.noun} left: {self.noun} {slot.number} cannot start: {why} "
                f"(full log: {log_hint(err)})"
            )
        note(
            f"{self.name} pool: {self.noun} {slot.number} cannot start ({why}); going on with "
            f"{len(self.slots)} {self.noun}s"
        )

    def _retry(self, task: Task, why: object) -> Task:
        if task.attempt + 1 >= self.config.max_attempts:
            reason = cause_line(why) if isinstance(why, BaseException) else why
            raise PoolError(
                f"{self.name} pool: {task.method} failed on {self.config.max_attempts} dispatches "
                f"({self.key('max_attempts')}); the last, on {self.noun} {task.slot.number}: {reason}"
            )
        self.retried_tasks += 1
        return self.submit(task.index, task.method, *task.args, after=task.slot, attempt=task.attempt + 1)

    def _orphans(self, pending: dict[ray.ObjectRef, Task]) -> list[Task]:
        """Unfinished tasks of actors that left the pool (replaced or dropped): their work is lost."""
        gone = [task for task in pending.values() if task.slot not in self.slots]
        if not gone:
            return []
        done, _ = ray.wait([task.call.ref for task in gone], num_returns=len(gone), timeout=0)
        return [task for task in gone if task.call.ref not in set(done)]

    def _until(self, deadline: float) -> float:
        """Seconds to wait for `deadline`; with none (every call awaited has finished: the wait returns at
        once), a call's deadline all the same."""
        if math.isinf(deadline):
            return self.config.call_timeout_s
        return max(0.0, deadline - time.monotonic())
