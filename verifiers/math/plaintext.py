r"""Plain-text mathematics rewritten as the LaTeX the parser reads.

Instruct models outside LaTeX write `3*pi/4`, `exp(2) + 1`, `sqrt(5)/2`, `2√3`, `x²`. The LaTeX
parser reads a bare `pi` as the product `p·i` and `exp(2)` as `e·x·p·2`, so a right answer would
score 0. Here function and constant names become commands (`pi` -> `\pi`), their parenthesised
arguments braces where the grammar needs them (`sqrt(5)` -> `\sqrt{5}`, `abs(x)` -> `|x|`), and
Unicode symbols their commands (`√`, `π`, `≤`, superscript digits, vulgar fractions).

A name is only rewritten as a whole word, so `spin` or `pie` in prose stay words. `log` is
rewritten to `\log`, which the parser reads as it reads the LaTeX spelling (base 10); a reader
sees the same notation either way.
"""

from __future__ import annotations

import re

_FUNCTIONS = "arcsin arccos arctan sinh cosh tanh sin cos tan cot sec csc log ln exp sqrt".split()
_CONSTANTS = "pi theta alpha beta phi".split()
# Words that are mathematics, not prose or units, in an answer.
MATH_NAMES = frozenset([*_FUNCTIONS, *_CONSTANTS, "infty", "inf", "infinity", "oo", "abs"])
# Whole words only: no letter on either side, and not already a command (`\pi`); a function name
# only with an argument after it, so the unit `12 sec` stays a unit.
_NAME = re.compile(
    r"(?<![A-Za-z\\])(?:("
    + "|".join(_FUNCTIONS)
    + r")(?=\s*[(\[{^\w\\])|("
    + "|".join(_CONSTANTS)
    + r"))(?![A-Za-z])"
)
_INFINITY = re.compile(r"(?<![A-Za-z\\])(?:infinity|inf)(?![A-Za-z])", re.IGNORECASE)
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_SUPERSCRIPT_RUN = re.compile(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+")
_SYMBOLS = {
    "π": "\\pi ",
    "∞": "\\infty ",
    "×": "\\times ",
    "·": "\\cdot ",
    "⋅": "\\cdot ",
    "÷": "\\div ",
    "−": "-",
    "–": "-",
    "≤": "\\le ",
    "⩽": "\\le ",
    "≥": "\\ge ",
    "⩾": "\\ge ",
    "≠": "\\neq ",
    "≈": "\\approx ",
    "∪": "\\cup ",
    "∩": "\\cap ",
    "∈": "\\in ",
    "±": "\\pm ",
    "θ": "\\theta ",
    "α": "\\alpha ",
    "β": "\\beta ",
    "½": "\\frac{1}{2}",
    "⅓": "\\frac{1}{3}",
    "⅔": "\\frac{2}{3}",
    "¼": "\\frac{1}{4}",
    "¾": "\\frac{3}{4}",
}
# `√5`, `√x`, `√(x+1)`, `√{2}`: the radical's argument is the next number, letter or group.
_RADICAL = re.compile(r"√\s*(\d+(?:\.\d+)?|[A-Za-z]|\\[A-Za-z]+)")
# A function whose parenthesised argument the LaTeX grammar wants in braces (or bars).
_BRACED_ARGUMENT = re.compile(r"\\sqrt\(|(?<![A-Za-z\\])abs\(")


def plain_to_latex(text: str) -> str:
    """Rewrite plain-text names, functions and Unicode symbols in `text` as LaTeX (see the module doc)."""
    text = _SUPERSCRIPT_RUN.sub(lambda m: "^{" + m.group(0).translate(_SUPERSCRIPTS) + "}", text)
    text = _RADICAL.sub(r"\\sqrt{\1}", text)
    text = text.replace("√", "\\sqrt")  # `√(x+1)` and `√{2}`: the group follows
    for symbol, command in _SYMBOLS.items():
        text = text.replace(symbol, command)
    text = _NAME.sub(lambda m: "\\" + m.group(0), text)
    text = _INFINITY.sub(r"\\infty ", text)
    return _braced_arguments(text)


def _braced_arguments(text: str) -> str:
    r"""`\sqrt(x+1)` -> `\sqrt{x+1}` and `abs(x)` -> `|x|`, matching the parentheses (nested ones too)."""
    start = 0
    while (found := _BRACED_ARGUMENT.search(text, start)) is not None:
        close = _closing_paren(text, found.end() - 1)
        if close is None:
            break
        left, right = ("\\sqrt{", "}") if found.group(0) != "abs(" else ("|", "|")
        text = text[: found.start()] + left + text[found.end() : close] + right + text[close + 1 :]
        start = found.start() + 1  # an argument may hold another one: `sqrt(sqrt(2))`
    return text


def _closing_paren(text: str, open_index: int) -> int | None:
    """Index of the parenthesis closing the one at `open_index`, or None when it never closes."""
    depth = 0
    for i in range(open_index, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return None
