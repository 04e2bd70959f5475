"""Units after a quantity, and times of day."""

import pytest

from verifiers.math import verify
from verifiers.math.clock import ClockTime, parse_clock

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("text", "time"),
    [
        ("09:15", ClockTime(9 * 3600 + 15 * 60)),
        ("9:15:30", ClockTime(9 * 3600 + 15 * 60 + 30, half_known=False)),
        ("9:15 A.M.", ClockTime(9 * 3600 + 15 * 60)),
        ("9:15\\text{ p.m.}", ClockTime(21 * 3600 + 15 * 60)),
        ("12:00 am", ClockTime(0)),
        ("21:15", ClockTime(21 * 3600 + 15 * 60)),
        ("9.15 pm", ClockTime(21 * 3600 + 15 * 60)),
        ("9.15", None),  # a decimal
        ("3:2", None),  # a ratio
        ("13:15 pm", None),
        ("9:75", None),
    ],
)
def test_parse_clock(text: str, time: ClockTime | None) -> None:
    assert parse_clock(text) == time


@pytest.mark.parametrize(
    ("gold", "response", "status"),
    [
        ("09:15", "09:15:00", "correct"),
        ("09:15", "9:15 A.M.", "correct"),
        ("09:15", "The meeting starts at 9:15 a.m.", "correct"),
        ("21:15", "9:15 PM", "correct"),
        ("9:15", "9:15 pm", "correct"),  # `9:15` leaves the half of the day open
        ("09:15", "9:15 PM", "incorrect"),  # `09:15` is on the 24-hour clock
        ("09:15", "09:16", "incorrect"),
        ("12:00", "1:00", "incorrect"),
    ],
)
def test_times(gold: str, response: str, status: str) -> None:
    verdict = verify(gold, response)
    assert verdict.status == status and verdict.rule == "clock"


@pytest.mark.parametrize(
    ("gold", "response", "status"),
    [
        ("12", "12 days", "correct"),
        ("12", "It takes 12 days.", "correct"),
        ("12 \\text{ days}", "\\boxed{12}", "correct"),
        ("5 \\text{ m}^2", "The area is 5 square meters.", "correct"),
        ("30", "\\boxed{30 \\text{ seconds}}", "correct"),
        ("12", "12 sec", "correct"),
        ("12", "13 days", "incorrect"),
    ],
)
def test_units(gold: str, response: str, status: str) -> None:
    assert verify(gold, response).status == status
