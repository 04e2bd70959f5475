"""A small pool of persistent, killable worker processes with a hard per-request time limit.

Workers are plain subprocesses (`python -m verifiers.math.worker`), not `multiprocessing`
children, so the pool works from any thread, inside Ray actors and under any start method,
and needs no signals. A request that overruns its limit gets its worker killed (SIGKILL) and
dropped; the next request that needs a worker starts a fresh one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from verifiers.math.wire import read_message, send_message

# Starting a worker imports sympy and the LaTeX parser; generous, because the machine may be loaded.
_STARTUP_TIMEOUT_S = 120.0
# The directory that holds the `verifiers` package, so a worker imports the same code as its pool.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class Outcome:
    """How one request went: `ok` (with the worker's reply), `timeout`, or `crashed` (with a reason)."""

    kind: Literal["ok", "timeout", "crashed"]
    reply: Any = None
    detail: str = ""


class _Worker:
    """One worker subprocess and its pipes."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "verifiers.math.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,  # a Ctrl-C aimed at the caller's terminal is the caller's business
        )
        try:
            read_message(self.process.stdout.fileno(), time.monotonic() + _STARTUP_TIMEOUT_S)
        except (TimeoutError, EOFError) as exc:
            self.kill()
            raise RuntimeError(f"math verifier worker failed to start ({type(exc).__name__})") from exc

    def call(self, request: Any, timeout_s: float) -> Outcome:
        try:
            send_message(self.process.stdin, request)
            return Outcome("ok", read_message(self.process.stdout.fileno(), time.monotonic() + timeout_s))
        except TimeoutError:
            return Outcome("timeout", detail=f"no verdict within {timeout_s:g} s; worker killed")
        except (EOFError, BrokenPipeError):
            code = self.process.poll()
            return Outcome("crashed", detail=f"worker exited with code {code}")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            stream.close()


class WorkerPool:
    """Up to `size` persistent workers shared by any number of threads."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"pool size must be at least 1, got {size}")
        self._size = size
        self._idle: list[_Worker] = []
        self._live = 0
        self._closed = False
        self._cond = threading.Condition()
        self.started = 0  # workers started over the pool's life; a replaced worker counts again

    @property
    def size(self) -> int:
        return self._size

    def grow(self, size: int) -> None:
        """Allow at least `size` workers (never shrinks)."""
        with self._cond:
            self._size = max(self._size, size)
            self._cond.notify_all()

    def run(self, request: Any, timeout_s: float) -> Outcome:
        """Send `request` to an idle worker; kill that worker if no reply comes within `timeout_s`."""
        worker = self._acquire()
        outcome = worker.call(request, timeout_s)
        self._release(worker, healthy=outcome.kind == "ok")
        return outcome

    def pids(self) -> list[int]:
        """Process ids of the idle workers (for tests and monitoring)."""
        with self._cond:
            return [w.process.pid for w in self._idle]

    def close(self) -> None:
        """Kill every idle worker; busy ones are killed when their request returns."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._live -= len(idle)
        for worker in idle:
            worker.kill()

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("worker pool is closed")
                if self._idle:
                    return self._idle.pop()
                if self._live < self._size:
                    self._live += 1
                    break
                self._cond.wait()
        try:
            worker = _Worker()
        except BaseException:
            with self._cond:
                self._live -= 1
                self._cond.notify()
            raise
        with self._cond:
            self.started += 1
        return worker

    def _release(self, worker: _Worker, healthy: bool) -> None:
        if healthy and not self._closed:
            with self._cond:
                self._idle.append(worker)
                self._cond.notify()
            return
        worker.kill()
        with self._cond:
            self._live -= 1
            self._cond.notify()
