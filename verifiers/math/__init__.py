r"""Math answer verification: extract the final answer, normalise it, compare it with sympy.

    >>> from verifiers.math import verify
    >>> verify("42", "3 + 4 = 7\n7 * 6 = 42\n#### 42").correct
    True
    >>> verify("\\frac{3\\pi}{4}", "It is about 2.356.").rule
    'numeric_tolerance'

Each verdict names the rule that decided it (`RULES`: exact, text, clock, choice, symbolic,
numeric_tolerance), so a reward can be audited. Plain numbers, clock times and choice letters are
compared in-process; anything that needs sympy runs in a persistent pool of killable worker
processes, so a pathological answer costs at most `timeout_s` and yields a `timeout` verdict
instead of a hung caller.
"""

from verifiers.math.api import default_workers, shutdown, verify, verify_batch
from verifiers.math.extract import extract_answer
from verifiers.math.verdict import RULES, STATUSES, MathVerdict

__all__ = [
    "RULES",
    "STATUSES",
    "MathVerdict",
    "default_workers",
    "extract_answer",
    "shutdown",
    "verify",
    "verify_batch",
]
