"""Judge one (gold, answer) pair: normalise, parse, compare by shape. Runs inside a worker process."""

from __future__ import annotations

from typing import Any

import sympy
from sympy.core.relational import Relational

from verifiers.math.normalize import ELLIPSIS, normalize
from verifiers.math.numeric import NumberLiteral, rounding_tolerance
from verifiers.math.parse import Collection, Percent, Text, Value, is_choice, parse_answer
from verifiers.math.symbolic import as_set, exprs_equal, sets_equal

Judgement = tuple[str, str | None, str | None, str]
# Parsed forms travel back in the verdict; a 6,000-digit rational is not worth shipping.
_MAX_PARSED_CHARS = 300


def judge(gold: str, answer: str) -> Judgement:
    """Return `(status, gold_parsed, answer_parsed, detail)` with status `correct`, `incorrect` or `error`."""
    if "".join(normalize(gold).split()) == "".join(normalize(answer).split()):
        return "correct", _short(normalize(gold)), _short(normalize(answer)), "same text after normalisation"
    choice = is_choice(gold)
    # The LaTeX parser signals every kind of bad input with a bare Exception; here that is a verdict.
    try:
        gold_value = parse_answer(gold, choice=choice)
    except Exception as exc:  # noqa: BLE001
        return "error", None, None, f"gold answer not understood: {_reason(exc)}"
    try:
        answer_value = parse_answer(answer, choice=choice)
    except Exception as exc:  # noqa: BLE001
        return "incorrect", _short(gold_value), None, f"answer not understood: {_reason(exc)}"
    status = "correct" if values_equal(gold_value, answer_value) else "incorrect"
    return status, _short(gold_value), _short(answer_value), ""


def values_equal(gold: Any, answer: Any) -> bool:
    """Equality of parsed answers, by shape: text, percentages, collections, then sympy values."""
    if gold is ELLIPSIS or answer is ELLIPSIS:
        return gold is answer
    if isinstance(gold, Text) or isinstance(answer, Text):
        return (
            isinstance(gold, Text) and isinstance(answer, Text) and gold.value.lower() == answer.value.lower()
        )
    if isinstance(gold, Percent) or isinstance(answer, Percent):
        return _percent_equal(gold, answer)
    if isinstance(gold, Collection) or isinstance(answer, Collection):
        return _collections_equal(gold, answer)
    return _sympy_values_equal(gold, answer)


def _percent_equal(gold: Any, answer: Any) -> bool:
    """`p%` equals `p` (the unit dropped) and `p/100` (the fraction written out)."""
    gold_inner = gold.value if isinstance(gold, Percent) else gold
    answer_inner = answer.value if isinstance(answer, Percent) else answer
    if values_equal(gold_inner, answer_inner):
        return True
    if isinstance(gold, Percent) == isinstance(answer, Percent):
        return False
    percent, other = (gold_inner, answer_inner) if isinstance(gold, Percent) else (answer_inner, gold_inner)
    if not (isinstance(percent, Value) and isinstance(other, Value)):
        return False
    literal = percent.literal
    if literal is not None and literal.decimals is not None:  # 33.3% keeps its precision as 0.333
        literal = NumberLiteral(literal.value / 100, literal.decimals + 2)
    return _sympy_values_equal(Value(percent.expr / 100, percent.decimal, literal), other)


def _collections_equal(gold: Any, answer: Any) -> bool:
    if isinstance(gold, Collection) and isinstance(answer, Collection):
        if gold.names and answer.names and sorted(gold.names) == sorted(answer.names):
            by_name = dict(zip(answer.names, answer.items, strict=True))
            return all(values_equal(g, by_name[n]) for n, g in zip(gold.names, gold.items, strict=True))
        if _compared_in_order(gold.brackets, answer.brackets):
            return len(gold.items) == len(answer.items) and all(
                values_equal(g, a) for g, a in zip(gold.items, answer.items, strict=True)
            )
        if gold.ordered or answer.ordered:
            return False
        return _same_members(gold.items, answer.items)
    collection, other = (gold, answer) if isinstance(gold, Collection) else (answer, gold)
    if not isinstance(other, Value):
        return False
    if not collection.ordered and len(collection.items) == 1:
        return values_equal(collection.items[0], other)  # `\{5\}` and `5`
    if isinstance(other.expr, sympy.MatrixBase) and 1 in other.expr.shape and collection.ordered:
        vector = Collection(collection.brackets, tuple(Value(e, other.decimal) for e in other.expr))
        return _collections_equal(collection, vector)
    as_one_set = _as_interval(collection) or _as_union(collection)
    decimal = other.decimal or any(isinstance(i, Value) and i.decimal for i in collection.items)
    return as_one_set is not None and sets_equal(as_one_set, as_set(other.expr), decimal)


def _as_union(collection: Collection) -> sympy.Set | None:
    """`x < -2, x > 3` (from `x < -2 or x > 3`) as the union of their sets.

    None unless every item is a relation in one and the same variable."""
    if collection.brackets != "" or not all(
        isinstance(i, Value) and isinstance(i.expr, Relational) for i in collection.items
    ):
        return None
    variables = set().union(*(i.expr.free_symbols for i in collection.items))
    if len(variables) != 1:
        return None
    return sympy.Union(*(as_set(i.expr) for i in collection.items))


def _compared_in_order(gold: str, answer: str) -> bool:
    """Whether collections with these brackets are compared item by item.

    Same ordered brackets: a tuple, an interval. Named values (`x=1, y=2`, kind `"="`) match a
    tuple or a bare list giving the values in the same order.
    """
    if "=" in (gold, answer):
        return {gold, answer} <= {"=", "()", ""}
    return gold == answer and gold not in ("{}", "")


def _same_members(gold: tuple[Any, ...], answer: tuple[Any, ...]) -> bool:
    """Set equality: every item on each side equals some item on the other (a repeat adds nothing)."""
    return all(any(values_equal(g, a) for a in answer) for g in gold) and all(
        any(values_equal(g, a) for g in gold) for a in answer
    )


def _as_interval(collection: Collection) -> sympy.Interval | None:
    """`(a, b)`, `[a, b)`... as a sympy interval, for comparison with a set or an inequality."""
    if len(collection.items) != 2 or len(collection.brackets) != 2 or collection.brackets == "{}":
        return None
    if not all(isinstance(i, Value) and getattr(i.expr, "is_extended_real", False) for i in collection.items):
        return None
    start, end = (i.expr for i in collection.items)
    return sympy.Interval(start, end, collection.brackets[0] == "(", collection.brackets[1] == ")")


def _sympy_values_equal(gold: Value, answer: Value) -> bool:
    if _within_rounding(gold, answer):
        return True
    decimal = gold.decimal or answer.decimal
    gold_expr, answer_expr = gold.expr, answer.expr
    # An assignment on one side only (`x = 5` against `5`): compare the assigned value.
    if _is_assignment(gold_expr) and not isinstance(answer_expr, sympy.logic.boolalg.Boolean):
        gold_expr = gold_expr.rhs
    elif _is_assignment(answer_expr) and not isinstance(gold_expr, sympy.logic.boolalg.Boolean):
        answer_expr = answer_expr.rhs
    return exprs_equal(gold_expr, answer_expr, decimal)


def _within_rounding(gold: Value, answer: Value) -> bool:
    """True when the coarser plain decimal of the two is the other value rounded to its places."""
    rounded = [v for v in (gold, answer) if v.literal is not None and rounding_tolerance(v.literal)]
    if not rounded:
        return False
    coarse = min(rounded, key=lambda v: v.literal.decimals)
    other = answer if coarse is gold else gold
    if not isinstance(other.expr, sympy.Expr) or other.expr.free_symbols:
        return False
    tolerance = rounding_tolerance(coarse.literal)
    shown = sympy.Rational(coarse.literal.value.numerator, coarse.literal.value.denominator)
    gap = sympy.N(other.expr - shown, 50)
    return bool(gap.is_real) and bool(abs(gap) <= sympy.Rational(tolerance.numerator, tolerance.denominator))


def _is_assignment(expr: Any) -> bool:
    return isinstance(expr, sympy.Eq) and expr.lhs.is_Symbol


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _MAX_PARSED_CHARS else text[: _MAX_PARSED_CHARS - 3] + "..."


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:200]
