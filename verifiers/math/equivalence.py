"""Judge one (gold, answer) pair: normalise, parse, compare by shape. Runs inside a worker process.

Every comparison returns the rule that proved the two equal (see `verdict.RULES`), or None when
they differ; an answer in parts (a tuple, a set, a matrix) reports the loosest rule its parts needed.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import sympy
from sympy.core.relational import Relational
from sympy.logic.boolalg import Boolean

from verifiers.math.choice import as_option_verdict, gold_choice, judge_choice
from verifiers.math.fastpath import judge_fast
from verifiers.math.normalize import ELLIPSIS, normalize
from verifiers.math.numeric import DECIMAL_POINT
from verifiers.math.parse import Collection, Percent, Text, Value, parse_answer
from verifiers.math.symbolic import Tolerance, as_set, combined, exprs_equal, is_definition, sets_equal
from verifiers.math.verdict import MathVerdict, Rule, all_of

# Parsed forms travel back in the verdict; a 6,000-digit rational is not worth shipping.
_MAX_PARSED_CHARS = 300


def judge(gold: str, answer: str) -> MathVerdict:
    """The verdict on the final answer `answer` against the gold answer `gold`: `correct`,
    `incorrect` or `error` (a gold that cannot be parsed), with the rule that decided."""
    choice = gold_choice(gold)
    if choice is None:
        return _judge_values(gold, answer)
    decided = judge_choice(choice, answer, answer)
    return decided if decided is not None else as_option_verdict(_judge_values(choice.option, answer))


def values_equal(gold: Any, answer: Any) -> Rule | None:
    """Equality of parsed answers, by shape: text, percentages, collections, then sympy values."""
    if gold is ELLIPSIS or answer is ELLIPSIS:
        return "exact" if gold is answer else None
    if isinstance(gold, Text) or isinstance(answer, Text):
        both = isinstance(gold, Text) and isinstance(answer, Text)
        return "text" if both and gold.value.lower() == answer.value.lower() else None
    if isinstance(gold, Percent) or isinstance(answer, Percent):
        return _percent_equal(gold, answer)
    if isinstance(gold, Collection) or isinstance(answer, Collection):
        return _collections_equal(gold, answer)
    return _sympy_values_equal(gold, answer)


def _judge_values(gold: str, answer: str) -> MathVerdict:
    """Compare two answers as values: plain numbers and times in place, else normalised, parsed and
    compared by shape; an incorrect verdict names the comparison that rejected the answer."""
    fast = judge_fast(gold, answer)
    if fast is not None:
        return fast
    gold_text, answer_text = normalize(gold), normalize(answer)
    if "".join(gold_text.split()) == "".join(answer_text.split()):
        detail = "same text after normalisation"
        return MathVerdict(
            "correct", answer, _short(gold_text), _short(answer_text), detail=detail, rule="exact"
        )
    # The LaTeX parser signals every kind of bad input with a bare Exception; here that is a verdict.
    try:
        gold_value = parse_answer(gold_text)
    except Exception as exc:  # noqa: BLE001
        return MathVerdict("error", answer, detail=f"gold answer not understood: {_reason(exc)}")
    try:
        answer_value = parse_answer(answer_text)
    except Exception as exc:  # noqa: BLE001
        detail = f"answer not understood: {_reason(exc)}"
        return MathVerdict("incorrect", answer, _short(gold_value), detail=detail)
    rule = values_equal(gold_value, answer_value)
    if rule is None:
        written = gold_text + " " + answer_text
        if isinstance(gold_value, Text) or isinstance(answer_value, Text):
            rule = "text"
        else:
            rule = "numeric_tolerance" if DECIMAL_POINT.search(written) else "symbolic"
        return MathVerdict("incorrect", answer, _short(gold_value), _short(answer_value), rule=rule)
    return MathVerdict("correct", answer, _short(gold_value), _short(answer_value), rule=rule)


def _percent_equal(gold: Any, answer: Any) -> Rule | None:
    """`p%` equals `p` (the unit dropped) and `p/100` (the fraction written out)."""
    gold_inner = gold.value if isinstance(gold, Percent) else gold
    answer_inner = answer.value if isinstance(answer, Percent) else answer
    rule = values_equal(gold_inner, answer_inner)
    if rule is not None or isinstance(gold, Percent) == isinstance(answer, Percent):
        return rule
    percent, other = (gold_inner, answer_inner) if isinstance(gold, Percent) else (answer_inner, gold_inner)
    if not (isinstance(percent, Value) and isinstance(other, Value)):
        return None
    return _sympy_values_equal(_hundredth(percent), other)


def _hundredth(value: Value) -> Value:
    """`p` as `p/100`; a decimal's allowance scales with it (`33.3%` is 0.333, give or take 0.0005)."""
    tolerance = value.tolerance
    scaled = tuple((atom / 100, allowance / 100) for atom, allowance in tolerance.allowances)
    return Value(value.expr / 100, Tolerance(tolerance.decimal, tolerance.allowances + scaled))


def _collections_equal(gold: Any, answer: Any) -> Rule | None:
    if isinstance(gold, Collection) and isinstance(answer, Collection):
        if gold.names and answer.names and sorted(gold.names) == sorted(answer.names):
            by_name = dict(zip(answer.names, answer.items, strict=True))
            return all_of(values_equal(g, by_name[n]) for n, g in zip(gold.names, gold.items, strict=True))
        if _compared_in_order(gold.brackets, answer.brackets):
            if len(gold.items) != len(answer.items):
                return None
            return all_of(values_equal(g, a) for g, a in zip(gold.items, answer.items, strict=True))
        if gold.ordered or answer.ordered:
            return None
        return _same_members(gold.items, answer.items)
    collection, other = (gold, answer) if isinstance(gold, Collection) else (answer, gold)
    if not isinstance(other, Value):
        return None
    if not collection.ordered and len(collection.items) == 1:
        return values_equal(collection.items[0], other)  # `\{5\}` and `5`
    if isinstance(other.expr, sympy.MatrixBase) and 1 in other.expr.shape and collection.ordered:
        vector = Collection(collection.brackets, tuple(Value(e, other.tolerance) for e in other.expr))
        return _collections_equal(collection, vector)
    as_one_set = _as_interval(collection) or _as_union(collection)
    if as_one_set is None:
        return None
    tolerance = combined(other.tolerance, *(i.tolerance for i in collection.items if isinstance(i, Value)))
    return sets_equal(as_one_set, as_set(other.expr), tolerance)


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


def _same_members(gold: tuple[Any, ...], answer: tuple[Any, ...]) -> Rule | None:
    """Set equality: every item on each side equals some item on the other (a repeat adds nothing)."""
    pairs = chain(((g, answer) for g in gold), ((a, gold) for a in answer))
    return all_of(_first_match(item, others) for item, others in pairs)


def _first_match(item: Any, others: tuple[Any, ...]) -> Rule | None:
    return next((rule for other in others if (rule := values_equal(item, other)) is not None), None)


def _as_interval(collection: Collection) -> sympy.Interval | None:
    """`(a, b)`, `[a, b)`... as a sympy interval, for comparison with a set or an inequality."""
    if len(collection.items) != 2 or len(collection.brackets) != 2 or collection.brackets == "{}":
        return None
    if not all(isinstance(i, Value) and getattr(i.expr, "is_extended_real", False) for i in collection.items):
        return None
    start, end = (i.expr for i in collection.items)
    return sympy.Interval(start, end, collection.brackets[0] == "(", collection.brackets[1] == ")")


def _sympy_values_equal(gold: Value, answer: Value) -> Rule | None:
    gold_expr, answer_expr = gold.expr, answer.expr
    # A definition on one side only (`x = 5`, `g(t) = t^2 - 1` against `t^2 - 1`): compare its value.
    if is_definition(gold_expr) and not isinstance(answer_expr, Boolean):
        gold_expr = gold_expr.rhs
    elif is_definition(answer_expr) and not isinstance(gold_expr, Boolean):
        answer_expr = answer_expr.rhs
    return exprs_equal(gold_expr, answer_expr, combined(gold.tolerance, answer.tolerance))


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _MAX_PARSED_CHARS else text[: _MAX_PARSED_CHARS - 3] + "..."


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:200]
