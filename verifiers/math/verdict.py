"""The result object of a math verification: a small, picklable, frozen record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["correct", "incorrect", "no_answer", "timeout", "error"]
STATUSES: tuple[Status, ...] = ("correct", "incorrect", "no_answer", "timeout", "error")


@dataclass(frozen=True)
class MathVerdict:
    """What the verifier decided about one (gold, response) pair.

    `status` is one of `STATUSES`:
    - `correct` / `incorrect`: the extracted answer was compared with the gold answer;
    - `no_answer`: no final answer could be found in the response;
    - `timeout`: parsing or comparing took longer than the limit (the worker was killed);
    - `error`: the gold answer could not be understood, or the worker failed (see `detail`).

    `gold_parsed` and `answer_parsed` are string forms of the parsed objects (sympy `str`, or the
    normalised literal on the fast path), so the verdict stays small and crosses process boundaries.
    """

    status: Status
    extracted: str | None = None
    gold_parsed: str | None = None
    answer_parsed: str | None = None
    elapsed_s: float = 0.0
    detail: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def correct(self) -> bool:
        """True only for a `correct` verdict; a timeout or error never counts as correct."""
        return self.status == "correct"
