"""Code verifier: run untrusted programs against tests in an isolated sandbox (threat model: ``sandbox``)."""

from verifiers.code.isolation import IsolationUnavailable
from verifiers.code.limits import SandboxConfig
from verifiers.code.program import ProgramRun, run_program
from verifiers.code.sandbox import CodeJob, run_tests, run_tests_batch
from verifiers.code.verdict import CodeVerdict, TestResult

__all__ = [
    "CodeJob",
    "CodeVerdict",
    "IsolationUnavailable",
    "ProgramRun",
    "SandboxConfig",
    "TestResult",
    "run_program",
    "run_tests",
    "run_tests_batch",
]
