"""Rollouts run ahead of training, at most `max_staleness` weight versions ahead.

`RolloutPipeline` produces each step's rollout, in step order, on a thread of its own. The rollout of step t
samples the weights the engines hold when it starts, and t may start only once those are version
t-1-max_staleness or newer, so its samples are at most max_staleness updates stale when step t trains
(`rlsys.versions`). With max_staleness 0 that is sample-then-train: rollout t waits for the weights of step
t-1. A rollout never overlaps a weight sync or an evaluation: those run inside `engines_idle`, which waits
for the rollout under way to finish and holds back the next one until they are done.

Every wait here ends: a rollout's own pool calls have deadlines, and the thread waiting for a version stops
when the pipeline is closed.
"""

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from contextlib import contextmanager
from functools import partial
from typing import Generic, TypeVar

Rollout = TypeVar("Rollout")


class RolloutPipeline(Generic[Rollout]):
    """`produce(step)` for each of `steps`, in order, in the background; `version` is the policy version the
    engines hold at the start."""

    def __init__(
        self, produce: Callable[[int], Rollout], steps: range, *, max_staleness: int, version: int
    ) -> None:
        self._produce = produce
        self._max_staleness = max_staleness
        self._version = version
        self._condition = threading.Condition()
        self._producing = False  # a rollout is under way on the engines
        self._idle_wanted = 0  # callers waiting in, or inside, engines_idle
        self._closed = False
        self._results: dict[int, Future[Rollout]] = {step: Future() for step in steps}
        self._thread = threading.Thread(target=self._run, args=(steps,), name="rollouts", daemon=True)
        self._thread.start()

    def take(self, step: int) -> Rollout:
        """Step `step`'s rollout, once produced; its error if producing it failed."""
        return self._results[step].result()

    @contextmanager
    def engines_idle(self) -> Iterator[None]:
        """Hold the engines: wait for the rollout under way, start no other until the block ends."""
        with self._condition:
            self._idle_wanted += 1
            self._condition.wait_for(lambda: not self._producing)
        try:
            yield
        finally:
            with self._condition:
                self._idle_wanted -= 1
                self._condition.notify_all()

    def advance(self, version: int) -> None:
        """The engines now hold policy version `version`: rollouts that waited for it may start."""
        with self._condition:
            self._version = version
            self._condition.notify_all()

    def close(self, *, wait: bool) -> None:
        """Start no further rollout; with `wait`, let the one under way finish first."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        if wait:
            self._thread.join()

    def _may_start(self, step: int) -> bool:
        return self._closed or (not self._idle_wanted and self._version >= step - 1 - self._max_staleness)

    def _run(self, steps: range) -> None:
        for step in steps:
            result = self._results[step]
            with self._condition:
                self._condition.wait_for(partial(self._may_start, step))
                if self._closed:
                    break
                self._producing = True
            try:
                result.set_result(self._produce(step))
            except BaseException as error:  # handed to the step that takes it; later steps never start
                result.set_exception(error)
                with self._condition:
                    self._closed = True
            finally:
                with self._condition:
                    self._producing = False
                    self._condition.notify_all()
        for result in self._results.values():
            if not result.done():
                result.set_exception(CancelledError("the rollout pipeline was closed before this step"))
