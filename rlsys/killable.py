"""A function call with a hard deadline: it runs in a spawned worker process, killed when it overruns.

A thread cannot be stopped and a forked child of a multi-threaded process (a Ray actor) can inherit held
locks, so the worker is a fresh spawned interpreter that imports the function by its `module:function`
name and serves calls over a pipe. It ends on its own when its parent goes away (the pipe closes).
"""

import importlib
import multiprocessing
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Literal

# Starting a worker imports the function's module: generous, because the machine may be loaded.
_STARTUP_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class CallOutcome:
    status: Literal["ok", "error", "timeout"]
    value: Any = None
    detail: str = ""  # the exception (last traceback line) or what overran


def import_target(target: str):
    """The object `module:attribute` names (`pkg.rewards:score`)."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _serve(connection, target: str) -> None:
    function = import_target(target)
    connection.send("ready")
    while True:
        try:
            args, kwargs = connection.recv()
        except EOFError:  # the parent is gone
            return
        try:
            connection.send(("ok", function(*args, **kwargs)))
        except Exception as err:
            where = traceback.extract_tb(err.__traceback__)[-1]
            connection.send(("error", f"{type(err).__name__}: {err} ({where.filename}:{where.lineno})"))


class KillableFunction:
    """`target` (`module:function`) called in a worker process; a call past its deadline kills the worker
    (a later call starts a new one) and is a `timeout` outcome, an exception an `error` outcome. Calls
    from several threads take turns: the worker serves one at a time."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._process = None
        self._connection = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the worker now rather than at the first call (a Ray runtime env may sweep the job's working
        dir from a node's cache while an actor lives, and a worker started later could not import from it)."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, self.target), daemon=True)
        self._process.start()
        child.close()
        if not self._connection.poll(_STARTUP_TIMEOUT_S):
            self.close()
            raise RuntimeError(f"the worker for {self.target} did not start in {_STARTUP_TIMEOUT_S:.0f}s")
        self._connection.recv()

    def __call__(self, *args, timeout_s: float, **kwargs) -> CallOutcome:
        with self._lock:
            return self._call(args, kwargs, timeout_s)

    def _call(self, args: tuple, kwargs: dict, timeout_s: float) -> CallOutcome:
        if self._process is None or not self._process.is_alive():
            try:
                self._start()
            except (EOFError, RuntimeError) as err:
                self.close()
                return CallOutcome("error", detail=f"could not start a worker for {self.target}: {err}")
        self._connection.send((args, kwargs))
        if not self._connection.poll(timeout_s):
            self.close()
            return CallOutcome("timeout", detail=f"no answer within {timeout_s:g}s")
        try:
            status, value = self._connection.recv()
        except EOFError:  # the worker died mid-call (a crash, or out of memory)
            self.close()
            return CallOutcome("error", detail="the worker process died")
        return CallOutcome(status, value) if status == "ok" else CallOutcome(status, detail=value)

    def close(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join()
        self._process = self._connection = None
