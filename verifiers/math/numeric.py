r"""Plain numeric literals and the rule for comparing numbers.

Most RL rewards compare an integer with an integer. Parsing `42`, `-1,000`, `0.25` or `\frac{3}{4}`
needs no sympy and cannot hang (the input length is bounded and there is no exponentiation), so
these pairs are decided in the caller's process (`fastpath`), in microseconds.

A decimal is graded as the value it rounds (`0.667` for `2/3`) when it shows at least
`MIN_ROUNDED_DIGITS` significant digits, here for plain numbers and in `symbolic` for decimals
inside expressions (`decimal_allowances`); `1,22` is read with a decimal comma only when the other
side is a single number, the one reading under which the two could be equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from verifiers.math.verdict import Rule

# Longer literals go to the worker; this bounds the cost of Fraction arithmetic here.
_MAX_LITERAL_CHARS = 60
# Numbers written as decimals are measurements or roundings: equal within this relative tolerance,
# or (see `rounding_tolerance`) when the decimal is the other value rounded to its places.
DECIMAL_REL_TOL = Fraction(1, 10**6)

# Fewer significant digits than this and a decimal is not graded as a rounding (see `rounding_tolerance`).
MIN_ROUNDED_DIGITS = 3

# A decimal point between digits, or before one (`.5`): the answer was written with decimals.
DECIMAL_POINT = re.compile(r"\d\.\d|(?<!\d)\.\d")
_WRITTEN_DECIMAL = re.compile(r"(?<![\d.])\d*\.\d+(?![\d.])")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
# A thousands group never starts with 0 (`0,111` is a decimal).
_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+")
_DECIMAL = re.compile(r"([+-]?)([1-9]\d{0,2}(?:,\d{3})+|\d*)(?:\.(\d+))?")
_FRACTION = re.compile(r"([+-]?)\\[dt]?frac\{([+-]?\d+)\}\{([+-]?\d+)\}|([+-]?)(\d+)/(\d+)")
# Spacing commands and currency signs; a plain space is kept (`32, 349` is a list, not 32349).
_IGNORED = re.compile(r"\\[!,;: ]|\\\$|\$|\\left|\\right")


@dataclass(frozen=True)
class NumberLiteral:
    """A parsed literal: its exact value, and its decimal places when it was written as a decimal."""

    value: Fraction
    decimals: int | None = None

    def __str__(self) -> str:
        if self.decimals is None:
            return str(self.value)
        return f"{float(self.value):.{max(self.decimals, 1)}f}"


def parse_number_literal(text: str) -> NumberLiteral | None:
    r"""Parse an integer, decimal (thousands separators allowed) or simple fraction; else None."""
    if len(text) > _MAX_LITERAL_CHARS:
        return None
    text = _IGNORED.sub("", text).replace("{,}", ",").strip()
    match = _DECIMAL.fullmatch(text)
    if match and (match.group(2) or match.group(3)):
        sign, whole, frac = match.groups()
        value = Fraction(int((whole or "0").replace(",", "")))
        if frac:
            value += Fraction(int(frac), 10 ** len(frac))
        return NumberLiteral(-value if sign == "-" else value, len(frac) if frac else None)
    match = _FRACTION.fullmatch(text)
    if match:
        sign, num, den = match.group(1, 2, 3) if match.group(2) else match.group(4, 5, 6)
        if int(den) == 0:
            return None
        value = Fraction(int(num), int(den))
        return NumberLiteral(-value if sign == "-" else value)
    return None


def numbers_match(gold: NumberLiteral, answer: NumberLiteral) -> Rule | None:
    """`exact` for equal values; when either side is a decimal, `numeric_tolerance` if it is the other
    rounded to its places (see `rounding_tolerance`) or the two agree within `DECIMAL_REL_TOL`; else None."""
    if gold.value == answer.value:
        return "exact"
    if gold.decimals is None and answer.decimals is None:
        return None
    gap = abs(gold.value - answer.value)
    # The coarser decimal is read as the other value rounded to its places.
    allowance = max(rounding_tolerance(n) or 0 for n in (gold, answer))
    if gap <= allowance or gap <= DECIMAL_REL_TOL * max(abs(gold.value), abs(answer.value)):
        return "numeric_tolerance"
    return None


def rounding_tolerance(number: NumberLiteral) -> Fraction | None:
    """Half a unit in the last written place of a decimal with `MIN_ROUNDED_DIGITS` significant digits.

    A decimal answer is read as a value rounded to the places it shows (`0.866` for `sqrt(3)/2`,
    `0.667` for `2/3`, but not the truncation `0.666`). Too few significant digits say too little
    to be graded that way (`0.5` would pass for `0.47`), so those get None (no rounding allowance).
    """
    if not number.decimals:
        return None
    digits = len(str(abs(number.value.numerator * 10**number.decimals // number.value.denominator)))
    if number.value == 0 or digits < MIN_ROUNDED_DIGITS:
        return None
    return Fraction(1, 2 * 10**number.decimals)


def decimal_allowances(text: str) -> dict[float, Fraction]:
    """For each decimal written in `text` with a rounding allowance (see `rounding_tolerance`): its
    absolute value as a float, mapped to that allowance (the larger, if written twice).

    The written form is read from the text because a parsed float forgets trailing zeros: `12.50`
    claims two places, `12.5` one."""
    allowances: dict[float, Fraction] = {}
    for match in _WRITTEN_DECIMAL.finditer(text):
        literal = parse_number_literal(match.group(0))
        tolerance = rounding_tolerance(literal) if literal is not None else None
        if tolerance is not None:
            key = float(literal.value)
            allowances[key] = max(tolerance, allowances.get(key, tolerance))
    return allowances


def decimal_comma(text: str) -> NumberLiteral | None:
    """`1,22` or `1000,99` read with a decimal comma; None for other text and thousands (`1,000`).

    A comma between digits is ambiguous (a list `1, 22` or the European `1.22`); callers use this
    reading only when the other side is a single number, where the list reading cannot match.
    """
    match = _DECIMAL_COMMA.fullmatch(text.strip())
    if match is None or _THOUSANDS.fullmatch(text.strip()):
        return None
    return parse_number_literal(text.strip().replace(",", "."))
