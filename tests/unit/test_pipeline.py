"""The rollout pipeline: rollouts run ahead of training by at most max_staleness versions, never during a
weight sync or an evaluation, and a failed rollout fails its step and stops the rest."""

import threading
from concurrent.futures import CancelledError

import pytest

from rlsys.pipeline import RolloutPipeline

DEADLINE_S = 30  # a hang fails the test instead of stalling it


class Engines:
    """Records the version each rollout started from, and whether a rollout ever overlapped a held block."""

    def __init__(self) -> None:
        self.version = 0
        self.started: dict[int, int] = {}
        self.busy = False
        self.overlapped = False
        self.events = {step: threading.Event() for step in range(1, 30)}

    def produce(self, step: int) -> str:
        self.busy = True
        self.started[step] = self.version
        self.events[step].set()
        threading.Event().wait(0.01)  # a rollout takes a moment, so a held block would catch it running
        self.busy = False
        return f"rollout {step}"


def _train(pipeline: RolloutPipeline, engines: Engines, steps: range, max_staleness: int) -> list[str]:
    """The loop's side: take each step's rollout, then sync its weights with the engines idle."""
    taken = []
    for step in steps:
        taken.append(pipeline.take(step))
        ahead = step + max_staleness
        if ahead in engines.events and ahead <= steps[-1]:
            # Deterministic, not timed: the pipeline must have run ahead to the window's edge by now.
            assert engines.events[ahead].wait(DEADLINE_S), f"rollout {ahead} never started"
        with pipeline.engines_idle():
            engines.overlapped |= engines.busy
            engines.version = step
        pipeline.advance(step)
    return taken


@pytest.mark.parametrize("max_staleness", [0, 1, 3])
def test_rollouts_run_ahead_to_the_staleness_bound_and_no_further(max_staleness):
    engines, steps = Engines(), range(1, 13)
    pipeline = RolloutPipeline(engines.produce, steps, max_staleness=max_staleness, version=0)
    assert _train(pipeline, engines, steps, max_staleness) == [f"rollout {s}" for s in steps]
    pipeline.close(wait=True)
    lags = {step: (step - 1) - version for step, version in engines.started.items()}
    assert all(0 <= lag <= max_staleness for lag in lags.values()), lags
    # Past the first steps, every rollout ran as far ahead as allowed.
    assert {lags[s] for s in steps if s > max_staleness + 1} == {max_staleness}
    assert not engines.overlapped


def test_a_resumed_run_starts_from_its_checkpoints_version():
    engines, steps = Engines(), range(8, 12)
    engines.version = 7
    pipeline = RolloutPipeline(engines.produce, steps, max_staleness=2, version=7)
    _train(pipeline, engines, steps, 2)
    pipeline.close(wait=True)
    assert engines.started[8] == 7 and all(engines.started[s] >= s - 3 for s in steps)


def test_a_failed_rollout_fails_its_step_and_no_later_one_starts():
    started = []

    def produce(step: int) -> int:
        started.append(step)
        if step == 2:
            raise RuntimeError("engine lost")
        return step

    pipeline = RolloutPipeline(produce, range(1, 6), max_staleness=4, version=0)
    assert pipeline.take(1) == 1
    with pytest.raises(RuntimeError, match="engine lost"):
        pipeline.take(2)
    with pytest.raises(CancelledError):
        pipeline.take(3)
    pipeline.close(wait=True)
    assert started == [1, 2]


def test_closing_stops_a_pipeline_waiting_for_weights():
    pipeline = RolloutPipeline(lambda step: step, range(1, 6), max_staleness=0, version=0)
    assert pipeline.take(1) == 1  # step 2 now waits for version 1, which never comes
    pipeline.close(wait=True)  # returns: the waiting thread was released
    with pytest.raises(CancelledError):
        pipeline.take(2)
