"""Pairs decided without sympy, in the caller's process: plain numbers and clock times.

Most RL rewards compare an integer with an integer; parsing these needs no sympy and cannot hang,
so they are decided here in microseconds instead of in a worker.
"""

from __future__ import annotations

from verifiers.math.clock import ClockTime, parse_clock, same_time
from verifiers.math.numeric import decimal_comma, numbers_match, parse_number_literal
from verifiers.math.verdict import MathVerdict


def judge_fast(gold: str, answer: str) -> MathVerdict | None:
    """The verdict when both answers are plain numbers or both are clock times; else None."""
    gold_number = parse_number_literal(gold)
    answer_number = parse_number_literal(answer)
    # `1,22` against a single number can only be a decimal comma (a list never equals a number).
    if gold_number is None and answer_number is not None:
        gold_number = decimal_comma(gold)
    elif answer_number is None and gold_number is not None:
        answer_number = decimal_comma(answer)
    if gold_number is not None and answer_number is not None:
        accepted = numbers_match(gold_number, answer_number)
        both_exact = gold_number.decimals is None and answer_number.decimals is None
        rule = accepted or ("exact" if both_exact else "numeric_tolerance")  # the rule that rejected
        status = "correct" if accepted else "incorrect"
        return MathVerdict(
            status, answer, str(gold_number), str(answer_number), detail="fast path", rule=rule
        )
    gold_time, answer_time = parse_clock(gold), parse_clock(answer)
    if gold_time is None or answer_time is None:
        return None
    status = "correct" if same_time(gold_time, answer_time) else "incorrect"
    return MathVerdict(status, answer, _hms(gold_time), _hms(answer_time), detail="fast path", rule="clock")


def _hms(time: ClockTime) -> str:
    """`09:15:00`, or `9:15:00 am/pm` when the half of the day is open."""
    hours, minutes, seconds = time.seconds // 3600, time.seconds // 60 % 60, time.seconds % 60
    if time.half_known:
        return f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{hours % 12 or 12}:{minutes:02d}:{seconds:02d} am/pm"
