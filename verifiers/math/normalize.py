r"""String clean-up of an answer before parsing: one canonical spelling for LaTeX and plain text.

What is removed carries no mathematical content for grading (spacing commands, `\left`, dollar
signs, degree marks, trailing unit words, hedges such as "approximately", a dangling backslash);
what is rewritten is plain text or malformed LaTeX that the LaTeX parser would reject (`**`,
`1.5e3`, `sqrt(2)`, `3*pi/4`, `2 1/2`, thousands separators, see `plaintext`), an answer wrapped
whole in `\text{}` (its content is plain text: `\text{7}` is 7), `x \approx 2.24` (the value of
`x`, as `x = 2.24`; an approximation after a value is dropped when parsing) and a system of
equations in a `cases` or `aligned` environment (its rows become a comma list). A degree mark is
dropped (`30^\circ` answers "how many degrees"), except inside a trigonometric expression, where
it converts to radians so `\cos(90^\circ - x)` is `\sin x`. Percent signs are kept: whether
`50\%` means 50 or 0.5 is decided when comparing.
"""

from __future__ import annotations

import re

from verifiers.math.plaintext import MATH_NAMES, plain_to_latex

# The token that stands for an ellipsis (`\ldots`, `\cdots`, `...`) in a sequence.
ELLIPSIS = "…"

# `(?<!\\)`: the second backslash of a row break `\\ ` is not a spacing command.
_SPACING = re.compile(r"(?<!\\)\\[,;: ]|\\q?quad|\\displaystyle|\\limits|\\left\b|\\right\b|\\middle\b")
# A negative thin space glues what it sits between: `11,\! 111` is one number, not a list.
_NEGATIVE_SPACE = re.compile(r"(?<!\\)\\!\s*")
# `\\frac` for `\frac`: a backslash doubled by a second round of string escaping.
_DOUBLED_BACKSLASH = re.compile(r"\\\\(?=[A-Za-z])")
# An upright single letter is the constant itself: `\text{e}`, `\mathrm{e}` (Euler), `\mathrm{i}`.
_UPRIGHT_LETTER = re.compile(r"\\text\s*\{\s*([A-Za-z])\s*\}")
_STYLE = re.compile(
    r"\\(?:textbf|textit|textrm|texttt|textsf|mathrm|mathbf|boldsymbol|bm|mbox|operatorname\*?)\s*\{"
)
_DEGREES = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree")
_TRIG = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)(?![A-Za-z])")
_DEGREE_ANGLE = re.compile(r"(\d+(?:\.\d+)?|[A-Za-z])\s*(?:" + _DEGREES.pattern + ")")
_APPROX = re.compile(r"\\(?:approx|simeq|thickapprox)(?![A-Za-z])")
# `x \approx 0.333`: the approximate value of a name is its value.
_NAMED_APPROX = re.compile(r"(?<![\w}\\])([A-Za-z](?:_\{?\w+\}?)?'*)\s*\\approx(?![A-Za-z])")
_HEDGE = re.compile(
    r"^(?:approximately|approx\.?|about|around|roughly|nearly|exactly|=|\\approx(?![A-Za-z]))\s*",
    re.IGNORECASE,
)
# A backslash that ends the answer or stands before a digit escapes nothing: `7\`, `\7`.
_DANGLING_BACKSLASH = re.compile(r"(?:\\)+\s*$|(?<!\\)\\(?=\d)")
# A derivative or an inverse is another function: `f'(x)`, `y''`, `f^{-1}(x)` get names of their own
# (the parser would drop the prime, and read `f^{-1}(x)` as `1/f(x)`).
_PRIMES = re.compile(r"(?<![A-Za-z\\])([A-Za-z])('+)(?![A-Za-z'])")
_INVERSE = re.compile(r"(?<![A-Za-z\\])([fghFGH])\^\s*\{?\s*-1\s*\}?(?=\s*\()")
# A function applied without parentheses (`\sin x / \cos x`): its argument is the next number or
# variable, with an exponent (`\sin 2x`, `\sin x^2`), which the parser would otherwise stretch over
# the division.
_BARE_ARGUMENT = re.compile(
    r"(\\(?:a?(?:sin|cos|tan)h?|arc(?:sin|cos|tan)|cot|sec|csc|ln|log|exp)(?![A-Za-z])"
    r"(?:\s*[\^_]\s*(?:\{[^{}]*\}|-?\d))*)\s*"
    r"((?:\d+(?:\.\d+)?)?(?:[A-Za-z](?![A-Za-z])|\\(?:pi|theta|alpha|beta|phi)(?![A-Za-z]))?"
    r"(?:\^\s*(?:\{[^{}]*\}|\d))?)(?=\s*[/)+\-=,]|\s*$)"
)
_CURRENCY = re.compile(r"\\\$|[$£€¥₹]|\\(?:pounds|euro|yen)\b")
_SYSTEM = re.compile(r"\\begin\{(cases|aligned|align\*?|gathered|split)\}(.*?)\\end\{\1\}", re.DOTALL)
_ELLIPSIS = re.compile(r"\\(?:ldots|cdots|dots[bcmio]?)\b|\.{3,}|…")
_CONNECTIVE = re.compile(
    r"\s*(?:\\text\{\s*(?:or|and)\s*\}|\\(?:lor|vee)\b|\s(?:or|and)\s|(?<=[)\]}])(?:or|and)(?=[(\[{]))\s*",
    re.IGNORECASE,
)
_MEMBERSHIP = re.compile(r"^[a-zA-Z]\s*\\in\s*")
_SCIENTIFIC = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[eE]([+-]?\d+)(?![\w.])")
_MIXED_NUMBER = re.compile(r"^([+-]?\d+)\s+(\d+)\s*/\s*(\d+)$")
# A thousands group never starts with 0: `0,111` is a decimal comma or a list, not 111.
_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")
_SPACED_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?")
_TRAILING_TEXT = re.compile(r"^(.*?\S)\s*\\text\s*\{([^{}]*)\}\s*(?:\^\s*\{?\d\}?)?\s*$", re.DOTALL)
_UNIT_WORD = re.compile(r"[a-zA-Z]{2,}\.?(?:\^\{?\d\}?)?")


def normalize(text: str) -> str:
    """Return the canonical spelling of one answer (see the module docstring for what changes)."""
    if "\\begin" not in text:  # inside an environment `\\` is a row break
        text = _DOUBLED_BACKSLASH.sub(r"\\", text)
    text = _NEGATIVE_SPACE.sub("", text)
    text = _SPACING.sub(" ", text).replace("~", " ")
    text = re.sub(r"\\[dt]frac\b", r"\\frac", text)
    text = _STYLE.sub(r"\\text{", text)
    text = plain_to_latex(unwrap_text(text))
    text = _SYSTEM.sub(_system_as_list, text)
    text = _APPROX.sub(r"\\approx", _DANGLING_BACKSLASH.sub("", text.strip()))
    text = _NAMED_APPROX.sub(r"\1 =", text)
    if _TRIG.search(text):
        text = _DEGREE_ANGLE.sub(r"(\1\\pi/180)", text)
    text = _BARE_ARGUMENT.sub(lambda m: f"{m.group(1)}({m.group(2)})" if m.group(2) else m.group(0), text)
    text = _PRIMES.sub(lambda m: f"{m.group(1)}_{{d{len(m.group(2))}}}", _INVERSE.sub(r"\1_{inv}", text))
    text = _DEGREES.sub("", text)
    text = _CURRENCY.sub("", text).replace("{,}", ",")
    text = _ELLIPSIS.sub(ELLIPSIS, text)
    text = _strip_units(_HEDGE.sub("", text.strip()))
    text = _UPRIGHT_LETTER.sub(r"\1", text)  # after units, so `5\text{ m}` stays 5
    text = _CONNECTIVE.sub(",", text)
    text = _MEMBERSHIP.sub("", text)
    text = text.replace("**", "^")
    text = _SCIENTIFIC.sub(r"\1\\times10^{\2}", text)
    text = _MIXED_NUMBER.sub(r"\1\\frac{\2}{\3}", text)
    text = re.sub(r"\s+", " ", text).strip()
    if _THOUSANDS.fullmatch(text) or _SPACED_THOUSANDS.fullmatch(text):
        text = text.replace(",", "").replace(" ", "")
    return text


def unwrap_text(text: str) -> str:
    r"""`\text{Monday}` -> `Monday`; anything else unchanged."""
    match = re.fullmatch(r"\\text\s*\{(.*)\}", text.strip(), re.DOTALL)
    return match.group(1).strip() if match and "}" not in match.group(1) else text


def _system_as_list(match: re.Match[str]) -> str:
    r"""The rows of a `cases` or `aligned` environment as a comma list (alignment marks `&` dropped)."""
    rows = re.split(r"\\\\", match.group(2))
    return ", ".join(row.replace("&", "").strip() for row in rows if row.strip())


def _strip_units(text: str) -> str:
    r"""Drop unit words after a quantity: `5\text{ cm}`, `12 apples`, `3 sq. units` -> the number."""
    while True:
        match = _TRAILING_TEXT.match(text)
        if (
            not match
            or not re.fullmatch(r"[a-zA-Z\s.^\d]*", match.group(2))
            or not _has_digit(match.group(1))
        ):
            break
        text = match.group(1).strip()
    tokens = text.split()
    kept = len(tokens)
    while kept > 1 and _UNIT_WORD.fullmatch(tokens[kept - 1]) and _is_unit_like(tokens[kept - 1]):
        kept -= 1
    quantity = " ".join(tokens[:kept])
    if kept < len(tokens) and _has_digit(quantity) and quantity[-1] in "0123456789}).":
        return quantity
    return text


def _is_unit_like(word: str) -> bool:
    return word.rstrip(".").split("^")[0].lower() not in MATH_NAMES


def _has_digit(text: str) -> bool:
    return any(c.isdigit() for c in text)
