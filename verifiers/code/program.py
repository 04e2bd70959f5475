"""Run an untrusted program on its own (no tests) in the sandbox and keep what it printed: a tool call.

    run_program("print(3817 * 46)", timeout_s=5) -> ProgramRun(stdout="175582\n", error="", ...)

The program runs exactly as a program under test does (``sandbox.py``: namespaces, seccomp, limits, no
network), against tests that only require it to load. An exception, a time-out or a crash is ``error``, not
an exception here.
"""

import ast
from dataclasses import dataclass

from verifiers.code.limits import SandboxConfig
from verifiers.code.sandbox import run_tests

_LOAD_FAILED = "program failed to load: "


@dataclass(frozen=True)
class ProgramRun:
    """What a program printed and how it ended."""

    stdout: str
    stderr: str
    error: str
    """Empty when the program ran to its end; otherwise what stopped it, e.g. ``ZeroDivisionError: division by
    zero`` or ``time limit of 5.0 s exceeded``."""
    truncated: bool
    """Whether stdout or stderr passed ``SandboxConfig.output_limit_bytes`` (the rest was dropped)."""
    wall_s: float


def run_program(
    code: str, timeout_s: float, memory_mb: int = 256, *, config: SandboxConfig | None = None
) -> ProgramRun:
    """Run ``code`` in this thread's sandbox until it ends or ``timeout_s`` passes; raises
    ``IsolationUnavailable`` when the host lacks a mechanism ``config`` does not waive (as ``run_tests``
    does)."""
    verdict = run_tests(code, "pass", timeout_s, memory_mb, config=config)
    error = "" if verdict.status == "pass" else _error(verdict.detail)
    return ProgramRun(verdict.stdout, verdict.stderr, error, verdict.truncated, verdict.wall_s)


def _error(detail: str) -> str:
    """The harness's detail in the form Python prints an exception: ``program failed to load: ('NameError',
    "name 'x' is not defined")`` becomes ``NameError: name 'x' is not defined``."""
    if detail.startswith(_LOAD_FAILED):
        try:
            raised = ast.literal_eval(detail.removeprefix(_LOAD_FAILED))
        except (ValueError, SyntaxError):
            return detail
        if isinstance(raised, tuple) and len(raised) == 2 and all(isinstance(part, str) for part in raised):
            name, message = raised
            return f"{name}: {message}" if message else name
    return detail
