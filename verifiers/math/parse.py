r"""Turn a normalised answer into a value to compare: sympy objects inside a thin structure layer.

The LaTeX parser (`latex2sympy2_extended`) reads expressions, equations, inequalities, interval
unions and matrices. What it cannot know is the answer's *shape*, so that is read here first:
- a top-level comma list is a collection: `\{...\}` and bare lists (`1, 2`, "enter all solutions")
  are unordered; `(...)` and `[...]` are ordered (a pair, a point, an interval); plain braces
  `{1,3}` are TeX grouping, so they make a bare list; `;` separates groups (`p=5,q=2;p=7,q=2`);
- assignments to distinct names (`x=1, y=2`) are a named tuple;
- `…` stands for an ellipsis inside a sequence;
- prose (`\text{Monday}`, `even`) is text (choice letters are read before, in `choice`);
- a trailing `\%` marks a percentage (compared both as `p` and as `p/100`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sympy
from antlr4.atn.PredictionMode import PredictionMode
from latex2sympy2_extended.latex2sympy2 import ConversionConfig
from latex2sympy2_extended.latex2sympy2 import _Latex2Sympy as LatexConverter  # what `latex2sympy` runs
from latex2sympy2_extended.math_normalization import NormalizationConfig, normalize_latex

from verifiers.math.normalize import ELLIPSIS, unwrap_text
from verifiers.math.numeric import DECIMAL_POINT, decimal_allowances
from verifiers.math.plaintext import MATH_NAMES
from verifiers.math.symbolic import EXACT, Tolerance

_LATEX_CONFIG = NormalizationConfig(
    basic_latex=True, units=True, malformed_operators=True, nits=True, boxed="all", equations=False
)
_OPEN, _CLOSE = "([{", ")]}"
_WORDS = re.compile(r"[A-Za-z][A-Za-z' -]*")
_FUNCTION = re.compile(r"\\(?:a?(?:sin|cos|tan)h?|arc(?:sin|cos|tan)|cot|sec|csc|log|ln|exp)(?![A-Za-z])")
# `name = value` where the name is a variable such as `x`, `y_1`, `y_{2}`, `p'`.
_NAMED = re.compile(r"([A-Za-z](?:_\{?\w+\}?)?'*)\s*=(?!=)([^=]+)", re.DOTALL)


@dataclass(frozen=True)
class Text:
    """A non-mathematical answer (words), compared case-insensitively."""

    value: str

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Percent:
    """`value` written with a percent sign."""

    value: Any

    def __str__(self) -> str:
        return f"{self.value}%"


@dataclass(frozen=True)
class Collection:
    """A comma-separated answer: `brackets` is `"()"`, `"[]"`, `"[)"`, `"(]"`, `"{}"`, `""` (bare) or
    `"="` (values assigned to the distinct `names`, as written)."""

    brackets: str
    items: tuple[Any, ...]
    names: tuple[str, ...] = ()

    @property
    def ordered(self) -> bool:
        # Bare lists answer "list all solutions" questions unless they spell out a sequence.
        return self.brackets not in ("{}", "") or any(item is ELLIPSIS for item in self.items)

    def __str__(self) -> str:
        inner = ", ".join(str(item) for item in self.items)
        return f"{self.brackets[:1]}{inner}{self.brackets[1:]}"


@dataclass(frozen=True)
class Value:
    """A sympy object and how it was written: `tolerance` says whether with decimals, and which
    of its decimals (Float atoms) show enough digits to be read as roundings (see `symbolic`)."""

    expr: Any
    tolerance: Tolerance = EXACT

    def __str__(self) -> str:
        return str(self.expr)


def parse_answer(text: str) -> Any:
    """Parse one answer, already `normalize`d, into `Text`, `Percent`, `Collection`, `Value` (or the
    `ELLIPSIS` token).

    Raises an exception when the text is not understandable mathematics.
    """
    return _parse_item(text)


def _parse_item(text: str) -> Any:
    text = text.strip()
    if text == ELLIPSIS:
        return ELLIPSIS
    words = unwrap_text(text)
    if _is_prose(words):
        return Text(" ".join(words.lower().split()))
    if text.endswith("%"):
        return Percent(_parse_item(text.removesuffix("\\%").removesuffix("%")))
    brackets, inner = _outer_brackets(text)
    groups = _split_top_level(inner, ";")
    if len(groups) > 1:
        return Collection(brackets, tuple(_parse_item(g) for g in groups))
    parts = _split_top_level(inner)
    if len(parts) > 1 or (brackets == "{}" and inner.strip()):
        return _named_tuple(parts) or Collection(brackets, tuple(_parse_item(p) for p in parts))
    if brackets == "" and inner != text:  # TeX grouping braces around one item
        return _parse_item(inner)
    # `1/3 \approx 0.333`: the approximation annotates the exact value, which is the answer;
    # alone (`(\approx 1.2, \approx 3.4)`), the approximation is the answer.
    exact, _, approximation = text.partition("\\approx")
    text = exact.strip() or approximation.strip()
    value = _assigned_value(text)
    if value is not None:
        return _parse_item(value)
    ratio = _split_top_level(text, ":")
    if len(ratio) > 1:
        return Collection(":", tuple(_parse_item(p) for p in ratio))
    if ELLIPSIS in text:
        raise ValueError("an ellipsis inside an expression")
    expr = _latex_to_sympy(text)
    if isinstance(expr, sympy.FiniteSet):  # `a \pm b`
        return Collection("{}", tuple(Value(e) for e in expr.args))
    return Value(expr, _written_tolerance(text, expr))


class _SllConverter(LatexConverter):
    """The LaTeX converter with its parser in ANTLR's SLL prediction mode."""

    def create_parser(self, latex_str: str) -> Any:
        parser = super().create_parser(latex_str)
        parser._interp.predictionMode = PredictionMode.SLL
        return parser


def _latex_to_sympy(text: str) -> Any:
    """`latex2sympy(text)`, parsed first in ANTLR's SLL prediction mode, then in full LL only if that
    fails. SLL is several times faster on this grammar, and ANTLR guarantees that an SLL parse
    without a syntax error is the tree LL would build (the converter raises at the first error,
    so no recovered parse slips through); an error under SLL may just need LL's full context."""
    latex = normalize_latex(text, _LATEX_CONFIG)
    try:
        return _SllConverter(config=ConversionConfig()).parse(latex)
    # The converter signals a syntax error with a bare Exception; LL decides whether it is one.
    except Exception:  # noqa: BLE001
        return LatexConverter(config=ConversionConfig()).parse(latex)


def _written_tolerance(text: str, expr: Any) -> Tolerance:
    """The tolerance `text` earns by its decimals: each Float atom of `expr` that the text wrote
    with enough significant digits gets half a unit in its last written place."""
    if not DECIMAL_POINT.search(text):
        return EXACT
    written = decimal_allowances(text)
    atoms = expr.atoms(sympy.Float) if isinstance(expr, sympy.Basic | sympy.MatrixBase) else set()
    allowances = tuple(
        (atom, sympy.Rational(written[abs(float(atom))]))
        for atom in sorted(atoms, key=float)
        if abs(float(atom)) in written
    )
    return Tolerance(True, allowances)


def _named_tuple(parts: list[str]) -> Collection | None:
    """`x=1, y=2` as a named tuple of values; None unless every part assigns a distinct name."""
    named = [_NAMED.fullmatch(p.strip()) for p in parts]
    if not all(named):
        return None
    names = ["".join(m.group(1).replace("{", "").replace("}", "").split()) for m in named]
    if len(set(names)) < len(names):
        return None  # `x=1, x=2`: several solutions for one unknown, an unordered list
    return Collection("=", tuple(_parse_item(m.group(2)) for m in named), tuple(names))


def _assigned_value(text: str) -> str | None:
    """The constant at the end of `name = ... = value` (`AB = 4`, `(p, q) = (3, 2)`, `x = 5 + 5 = 10`).

    Only a constant is taken: `y = 2x + 1` stays an equation.
    """
    parts = _split_top_level(re.sub(r"(?<![<>!\\])=(?!=)", "\x00", text), "\x00")
    if len(parts) < 2:
        return None
    # The left side must be a name (`x`, `AB`, `f(x)`, `(p, q)`, `x_{1}`) or a computation
    # (`\frac{1}{2} \cdot 20 = 10`), not an expression in unknowns (`x + y = 5` is a line), unless
    # the equalities form a chain (`1 = a = x = 0`): worked steps that end in the result.
    left = parts[0]
    # `\tan(x) = 3` is an equation about tan, not a name for 3 (it differs from `\cot(x) = 3`).
    is_name = not re.search(r"[+\-\d]", re.sub(r"_\{[^{}]*\}|_\w", "", left)) and not _FUNCTION.search(left)
    is_computation = not re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", left))
    if len(parts) == 2 and not (is_name or is_computation):
        return None
    value = parts[-1]
    constant = re.sub(r"\\text\s*\{[^{}]*\}|\\[A-Za-z]+", "", value)
    return value if not re.search(r"[A-Za-z]", constant) else None


def _is_prose(text: str) -> bool:
    """Words, not mathematics: some word of three or more letters that is not a function name."""
    if not _WORDS.fullmatch(text):
        return False
    words = re.findall(r"[A-Za-z]+", text)
    return any(len(w) >= 3 and w.lower() not in MATH_NAMES for w in words)


def _outer_brackets(text: str) -> tuple[str, str]:
    r"""(`"()"`-style bracket pair, inside) when one bracket pair encloses all of `text`, else ("", text).

    Plain braces give ("", inside): they group in TeX and draw nothing."""
    if text.startswith("\\{") and text.endswith("\\}") and _encloses(text, 1, len(text) - 1):
        return "{}", text[2:-2]
    if text.startswith("{") and text.endswith("}") and _encloses(text, 0, len(text) - 1):
        return "", text[1:-1]  # TeX grouping: `{1,3}` renders as the bare list 1,3
    if len(text) >= 2 and text[0] in "([" and text[-1] in ")]" and _encloses(text, 0, len(text) - 1):
        return text[0] + text[-1], text[1:-1]
    return "", text


def _encloses(text: str, open_index: int, close_index: int) -> bool:
    """True when the bracket at `open_index` is only closed at `close_index`."""
    depth = 0
    for i in range(open_index, close_index):
        char = text[i]
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
            if depth == 0:
                return False
    return True


def _split_top_level(text: str, separators: str = ",;") -> list[str]:
    """Split at `separators` outside every bracket (any bracket kind: intervals mix them)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        elif char in separators and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()] if len(parts) > 1 else [text]
