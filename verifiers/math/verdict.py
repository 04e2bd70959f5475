"""The result object of a math verification: a small, picklable, frozen record."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Status = Literal["correct", "incorrect", "no_answer", "timeout", "error"]
STATUSES: tuple[Status, ...] = ("correct", "incorrect", "no_answer", "timeout", "error")

# Which comparison decided a verdict:
# - `exact`: the same text after normalisation, or the same number;
# - `text`: the same words, ignoring case and spacing;
# - `clock`: the same time of day (`09:15`, `9:15:00`, `9:15 a.m.`);
# - `choice`: the multiple-choice letter the response picks, or the text of the gold's option;
# - `symbolic`: sympy found the values equal, exactly or as an identity at every point;
# - `numeric_tolerance`: a decimal within half a unit of its last shown digit of the exact value.
Rule = Literal["", "exact", "text", "clock", "choice", "symbolic", "numeric_tolerance"]
# From the strictest to the loosest: a verdict built from several comparisons (a tuple, a matrix)
# reports the loosest rule it needed, so an accepted rounding anywhere shows in the verdict.
RULES: tuple[Rule, ...] = ("exact", "text", "clock", "choice", "symbolic", "numeric_tolerance")


@dataclass(frozen=True)
class MathVerdict:
    """What the verifier decided about one (gold, response) pair.

    `status` is one of `STATUSES`:
    - `correct` / `incorrect`: the extracted answer was compared with the gold answer;
    - `no_answer`: no final answer could be found in the response;
    - `timeout`: parsing or comparing took longer than the limit (the worker was killed);
    - `error`: the gold answer could not be understood, or the worker failed (see `detail`).

    `rule` names the comparison that decided a `correct` or `incorrect` verdict (one of `RULES`), so
    a reward can be audited; it is empty for the other statuses and for an answer that could not be
    parsed.

    `gold_parsed` and `answer_parsed` are string forms of the parsed objects (sympy `str`, or the
    normalised literal on the fast path), so the verdict stays small and crosses process boundaries.
    """

    status: Status
    extracted: str | None = None
    gold_parsed: str | None = None
    answer_parsed: str | None = None
    elapsed_s: float = 0.0
    detail: str = ""
    rule: Rule = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.rule and self.rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {self.rule!r}")

    @property
    def correct(self) -> bool:
        """True only for a `correct` verdict; a timeout or error never counts as correct."""
        return self.status == "correct"


def all_of(rules: Iterable[Rule | None]) -> Rule | None:
    """Combine the comparisons of the parts of an answer (None: a part differs): the loosest rule
    they needed (see `RULES`), or None as soon as one part differs; the iterable is consumed lazily."""
    needed: list[Rule] = []
    for rule in rules:
        if rule is None:
            return None
        needed.append(rule)
    return max(needed, key=RULES.index, default="exact")
