r"""Plain numeric literals: the in-process fast path and the rule for comparing numbers.

Most RL rewards compare an integer with an integer. Parsing `42`, `-1,000`, `0.25` or `\frac{3}{4}`
needs no sympy and cannot hang (the input length is bounded and there is no exponentiation), so
these pairs are decided here, in the caller's process, in microseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

# Longer literals go to the worker; this bounds the cost of Fraction arithmetic here.
_MAX_LITERAL_CHARS = 60
# Numbers written as decimals are measurements or roundings, compared with this relative tolerance.
DECIMAL_REL_TOL = Fraction(1, 10**6)

_DECIMAL = re.compile(r"([+-]?)(\d{1,3}(?:,\d{3})+|\d*)(?:\.(\d+))?")
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


def numbers_match(gold: NumberLiteral, answer: NumberLiteral) -> bool:
    """Exact values must be equal; when either side is a decimal, equal within `DECIMAL_REL_TOL`."""
    if gold.value == answer.value:
        return True
    if gold.decimals is None and answer.decimals is None:
        return False
    return abs(gold.value - answer.value) <= DECIMAL_REL_TOL * max(abs(gold.value), abs(answer.value))
