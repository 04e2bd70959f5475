"""Result objects of a sandboxed run: one ``TestResult`` per test, one ``CodeVerdict`` per run."""

from dataclasses import dataclass
from typing import Literal

Status = Literal["pass", "fail", "timeout", "error"]


@dataclass(frozen=True)
class TestResult:
    """One test: an ``assert`` statement (or a top-level statement holding asserts) of the tests."""

    __test__ = False  # not a pytest test class

    name: str
    """Source of the statement, whitespace collapsed and truncated."""
    line: int
    """Line of the statement in the tests."""
    passed: bool | None
    """``None`` when the test did not run (the run ended before reaching it)."""
    detail: str = ""
    """Why it failed, e.g. ``AssertionError: `` or ``ValueError: bad input``."""


@dataclass(frozen=True)
class CodeVerdict:
    """Outcome of running a program against its tests.

    ``status``: ``pass`` every test ran and passed; ``fail`` the program loaded and a test failed or did not
    run (an exception, an unusable result, a crashed or exiting program); ``timeout`` the wall-clock or CPU
    limit ended the run; ``error`` the program could not be loaded (syntax error, exception at import) or
    the tests were malformed or the sandbox itself failed (see ``detail``).
    """

    status: Status
    tests: tuple[TestResult, ...]
    stdout: str
    stderr: str
    truncated: bool
    """Whether stdout or stderr exceeded ``SandboxConfig.output_limit_bytes``."""
    cpu_s: float
    """CPU seconds of the harness and the program's main process."""
    max_rss_mb: float
    """Peak resident memory of the largest process of the sandbox."""
    wall_s: float
    detail: str
    isolation: str
    """What was in force, e.g. ``namespaces(net,mount,pid,ipc,uts)+uid+rlimits``."""

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def pass_fraction(self) -> float:
        """Share of tests that passed (0 when there are none): a denser reward than ``passed``."""
        return sum(t.passed is True for t in self.tests) / len(self.tests) if self.tests else 0.0
