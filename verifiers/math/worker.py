"""The worker process: parses and compares answers with sympy, one request at a time.

It runs as `python -m verifiers.math.worker`, speaks length-prefixed pickles over its stdin and
stdout, and is killed by its pool when a request overruns the time limit. Keeping sympy work in
a separate process is what makes the limit hard: a sympy call stuck in C code or a huge integer
power cannot be interrupted from inside the process, but the process can always be killed.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from verifiers.math.wire import read_message, send_message

# A worker stops growing past this much memory (a MemoryError becomes an `error` verdict)
# instead of pushing the machine into swap before its timeout fires.
_MEMORY_LIMIT_BYTES = 4 * 1024**3
_PARENT_POLL_S = 1.0


def _exit_when_orphaned(parent_pid: int) -> None:
    """Exit if the pool's process dies, so no worker outlives its owner."""
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_S)
    os._exit(0)


def serve() -> None:
    """Answer `(gold, answer)` requests with `("ok", verdict)` or `("error", reason)` until stdin closes."""
    # Keep the protocol stream private: anything printed by libraries goes to stderr instead.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_LIMIT_BYTES, _MEMORY_LIMIT_BYTES))
    except (ImportError, ValueError, OSError):
        pass  # Not every platform allows it; the pool's timeout still bounds the work.

    from verifiers.math.equivalence import judge

    judge("1", "1")  # Load the parsers now, so the first real request is not charged for it.
    send_message(out, ("ready", os.getpid()))
    stdin_fd = sys.stdin.fileno()
    while True:
        try:
            gold, answer = read_message(stdin_fd, None)
        except EOFError:
            return
        try:
            reply = ("ok", judge(gold, answer))
        # On purpose: any failure inside sympy or the parser is a verdict about this pair,
        # and the worker must stay up for the next one.
        except Exception as exc:  # noqa: BLE001
            reply = ("error", f"{type(exc).__name__}: {exc}"[:500])
        send_message(out, reply)


if __name__ == "__main__":
    serve()
