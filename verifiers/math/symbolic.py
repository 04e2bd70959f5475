r"""Equality of sympy objects: expressions, relations, sets and matrices.

Exact values are compared exactly (so `1/2004!` and `1/2006!` differ however small both are);
irrational constants are compared numerically at 50 digits with a relative tolerance far below
any difference an answer could have. Answers written with decimals get a `Tolerance`: numbers
may differ by `DECIMAL_REL_TOL`, and a decimal showing enough significant digits may be the
exact value rounded to its last place, wherever it stands (alone, in a matrix, as a coefficient):
the gap may reach the first-order effect of moving each such decimal by half a unit in its last
place (`0.707x + 1.414` for `\frac{\sqrt2}{2}x + \sqrt2`). When both sides hold decimals, the
coarser side is read as the rounding of the other.
Expressions with variables are compared symbolically, then at probe points.

Each comparison returns the rule that proved equality (`symbolic`, or `numeric_tolerance` when a
tolerance was needed), or None when the values differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy
from sympy.core.function import AppliedUndef
from sympy.core.relational import Relational
from sympy.logic.boolalg import Boolean
from sympy.matrices import MatrixBase

from verifiers.math.numeric import DECIMAL_REL_TOL
from verifiers.math.verdict import Rule, all_of

_DIGITS = 50
# Two exact constants that agree to this relative precision at 50 digits are the same number.
_EXACT_REL_TOL = sympy.Float("1e-35", _DIGITS)
_DECIMAL_TOL = sympy.Float(float(DECIMAL_REL_TOL), _DIGITS)
_ZERO_FLOOR = sympy.Float("1e-40", _DIGITS)
# Values substituted for free symbols; positive and unremarkable, so that identities true for
# positive reals (`sqrt(x^2) = x`, the usual reading of a contest answer) are accepted.
_PROBES = (sympy.Rational(5, 7), sympy.Rational(13, 9), sympy.Rational(29, 11), sympy.Rational(41, 13))
_IMAGINARY = sympy.Symbol("i")


@dataclass(frozen=True)
class Tolerance:
    """How closely numbers must agree, from how the answers were written.

    `decimal`: a side was written with decimals, so numbers may differ by `DECIMAL_REL_TOL` relative.
    `allowances`: the decimals (Float atoms of the parsed values) that show enough significant
    digits to be read as roundings, each with half a unit in its last written place.
    """

    decimal: bool = False
    allowances: tuple[tuple[sympy.Float, sympy.Rational], ...] = ()


EXACT = Tolerance()


def combined(*tolerances: Tolerance) -> Tolerance:
    """The tolerance of a comparison between values written with these tolerances."""
    allowances = tuple(a for t in tolerances for a in t.allowances)
    return Tolerance(any(t.decimal for t in tolerances), allowances)


def exprs_equal(gold: sympy.Basic, answer: sympy.Basic, tolerance: Tolerance = EXACT) -> Rule | None:
    """The rule by which two sympy objects denote the same value (see the module docstring), or None."""
    return _equal(_evaluated(gold), _evaluated(answer), tolerance)


def sets_equal(gold: sympy.Set | None, answer: sympy.Set | None, tolerance: Tolerance) -> Rule | None:
    """Equality of two sets; interval endpoints follow the number rules of `exprs_equal`."""
    if gold is None or answer is None:
        return None
    return _sets_equal(_evaluated(gold), _evaluated(answer), tolerance)


def _equal(gold: sympy.Basic, answer: sympy.Basic, tolerance: Tolerance) -> Rule | None:
    """`exprs_equal` for values already `_evaluated` (so the parts of a structure are evaluated once)."""
    if gold == answer:
        return "symbolic"
    if isinstance(gold, MatrixBase) or isinstance(answer, MatrixBase):
        return _matrices_equal(gold, answer, tolerance)
    if isinstance(gold, sympy.Set) or isinstance(answer, sympy.Set):
        return _sets_equal(as_set(gold), as_set(answer), tolerance)
    if isinstance(gold, Boolean) or isinstance(answer, Boolean):
        return _relations_equal(gold, answer, tolerance)
    symbols = gold.free_symbols | answer.free_symbols
    if not symbols:
        if gold.is_Rational and answer.is_Rational and not tolerance.decimal:
            return None  # exact rationals, already known to differ
        values = _values_at(gold, answer, None)
        return _agree(gold, answer, values, tolerance, None) if values else None
    if sympy.expand(gold - answer) == 0:
        return "symbolic"
    at_points = _probe(gold, answer, sorted(symbols, key=str), tolerance)
    if None in at_points:
        return None
    if len(at_points) >= 2:
        return all_of(at_points)
    return "symbolic" if sympy.simplify(gold - answer) == 0 else None


def is_definition(value: sympy.Basic) -> bool:
    """True for an equation defining a name: `y = ...` or `f(x) = ...` (not `\\tan(x) = 3`)."""
    return isinstance(value, sympy.Eq) and (value.lhs.is_Symbol or isinstance(value.lhs, AppliedUndef))


def as_set(value: sympy.Basic) -> sympy.Set | None:
    """A set for a set, or for a relation in one variable (`1 < x <= 2` -> `(1, 2]`); else None."""
    if isinstance(value, sympy.Set):
        return value
    if not isinstance(value, Boolean):
        return None
    value = _subject_as_symbol(value)
    if len(value.free_symbols) != 1:
        return None
    bounds = _bounds_as_set(value)
    if bounds is not None:
        return bounds
    try:
        return value.as_set()
    except NotImplementedError:  # periodic solutions (`\tan(x) = 3`): no set to compare
        return None


def _bounds_as_set(relation: Boolean) -> sympy.Set | None:
    """`a < x`, `x <= b`, `x = c` and their conjunctions (`a < x <= b`), in one variable, as a set,
    directly; None for other relations. The general solver gives the same set but checks
    periodicity first, which takes a large part of a second."""
    if isinstance(relation, sympy.And):
        parts = [_bounds_as_set(part) for part in relation.args]
        return None if None in parts else sympy.Intersection(*parts)
    if not isinstance(relation, Relational) or isinstance(relation, sympy.Ne):
        return None
    if relation.rhs.is_Symbol and relation.lhs.is_number:
        relation = relation.reversed  # `3 < x` as `x > 3`
    if not (relation.lhs.is_Symbol and relation.rhs.is_number):
        return None
    bound = relation.rhs
    if not bound.is_extended_real:
        return None
    if isinstance(relation, sympy.Eq):
        return sympy.FiniteSet(bound)
    strict = isinstance(relation, sympy.StrictLessThan | sympy.StrictGreaterThan)
    if isinstance(relation, sympy.StrictLessThan | sympy.LessThan):
        return sympy.Interval(-sympy.oo, bound, right_open=strict)
    return sympy.Interval(bound, sympy.oo, left_open=strict)


def _subject_as_symbol(relation: Boolean) -> Boolean:
    """`0 < f(x) < 1` -> `0 < s < 1`: a relation about one function value is a relation in one unknown."""
    applied = relation.atoms(AppliedUndef)
    if len(applied) != 1:
        return relation
    (subject,) = applied
    return relation.subs(subject, sympy.Symbol("subject", real=True))


def _sets_equal(gold: sympy.Set | None, answer: sympy.Set | None, tolerance: Tolerance) -> Rule | None:
    if gold is None or answer is None:
        return None
    if gold == answer:
        return "symbolic"
    if isinstance(gold, sympy.Interval) and isinstance(answer, sympy.Interval):
        if (gold.left_open, gold.right_open) != (answer.left_open, answer.right_open):
            return None
        return all_of(
            _equal(g, a, tolerance) for g, a in ((gold.start, answer.start), (gold.end, answer.end))
        )
    if (
        isinstance(gold, sympy.Union)
        and isinstance(answer, sympy.Union)
        and len(gold.args) == len(answer.args)
    ):
        pairs = zip(_by_start(gold), _by_start(answer), strict=True)
        return all_of(_sets_equal(g, a, tolerance) for g, a in pairs)
    return "symbolic" if gold.symmetric_difference(answer) == sympy.EmptySet else None


def _by_start(union: sympy.Union) -> list[sympy.Set]:
    return sorted(union.args, key=lambda s: sympy.N(s.inf) if s.inf.is_number else 0)


def _relations_equal(gold: sympy.Basic, answer: sympy.Basic, tolerance: Tolerance) -> Rule | None:
    """Equations: see `_equations_equal`; inequalities in one variable: the same set."""
    if isinstance(gold, sympy.Eq) and isinstance(answer, sympy.Eq):
        return _equations_equal(gold, answer, tolerance)
    gold_set, answer_set = as_set(gold), as_set(answer)
    if gold_set is not None and answer_set is not None and gold.free_symbols == answer.free_symbols:
        return _sets_equal(gold_set, answer_set, tolerance)
    if isinstance(gold, Relational) and isinstance(answer, Relational):
        return _same_inequality(gold, answer, tolerance)
    return None


def _equations_equal(gold: sympy.Eq, answer: sympy.Eq, tolerance: Tolerance) -> Rule | None:
    """Two equations are equal when they define the same thing or have the same solutions.

    A function definition compares its right side with that of another definition of the same
    function (`f(t) = t^2` is `f(x) = x^2`, the argument renamed) or of a plain name
    (`g(t) = t^2 - 1` is `y = t^2 - 1`); two different functions (`f(x) = x^2`, `g(x) = x^2`)
    differ. Any other pair of equations is equal when one is a constant multiple of the other
    (`y = 2x + 1` and `2x - y + 1 = 0`), so `\\tan(x) = 3` is not `\\cot(x) = 3`.
    """
    gold_function, answer_function = (isinstance(e.lhs, AppliedUndef) for e in (gold, answer))
    if gold_function and answer_function:
        if gold.lhs.func != answer.lhs.func or len(gold.lhs.args) != len(answer.lhs.args):
            return None
        renamed = {a: g for a, g in zip(answer.lhs.args, gold.lhs.args, strict=True) if a.is_Symbol}
        return _equal(gold.rhs, answer.rhs.xreplace(renamed), tolerance)
    if (gold_function and answer.lhs.is_Symbol) or (answer_function and gold.lhs.is_Symbol):
        return _equal(gold.rhs, answer.rhs, tolerance)
    if gold.lhs == answer.lhs and gold.lhs.is_Symbol:
        return _equal(gold.rhs, answer.rhs, tolerance)
    return _proportional(gold.lhs - gold.rhs, answer.lhs - answer.rhs, tolerance, positive=False)


def _same_inequality(gold: Relational, answer: Relational, tolerance: Tolerance) -> Rule | None:
    """`a < b` equals `c < d` when `b - a` is a positive multiple of `d - c` (strictness must agree)."""
    gold_gap, gold_strict = _as_positive_gap(gold)
    answer_gap, answer_strict = _as_positive_gap(answer)
    if gold_gap is None or answer_gap is None or gold_strict != answer_strict:
        return None
    return _proportional(gold_gap, answer_gap, tolerance, positive=True)


def _as_positive_gap(relation: Relational) -> tuple[sympy.Basic | None, bool]:
    if isinstance(relation, sympy.StrictGreaterThan | sympy.GreaterThan):
        return relation.lhs - relation.rhs, isinstance(relation, sympy.StrictGreaterThan)
    if isinstance(relation, sympy.StrictLessThan | sympy.LessThan):
        return relation.rhs - relation.lhs, isinstance(relation, sympy.StrictLessThan)
    return None, False


def _proportional(
    gold: sympy.Basic, answer: sympy.Basic, tolerance: Tolerance, positive: bool
) -> Rule | None:
    rule = _equal(gold, answer, tolerance)
    if rule is None and not positive:
        rule = _equal(gold, -answer, tolerance)
    if rule is not None or answer == 0:
        return rule
    ratio = sympy.cancel(gold / answer)
    if ratio.free_symbols or ratio == 0 or not ratio.is_finite or (positive and not ratio.is_positive):
        return None
    return "symbolic"


def _matrices_equal(gold: sympy.Basic, answer: sympy.Basic, tolerance: Tolerance) -> Rule | None:
    if not (isinstance(gold, MatrixBase) and isinstance(answer, MatrixBase)) or gold.shape != answer.shape:
        return None
    return all_of(_equal(g, a, tolerance) for g, a in zip(gold, answer, strict=True))


def _values_at(gold: sympy.Basic, answer: sympy.Basic, point: dict | None) -> tuple | None:
    """Both values at `_DIGITS` digits, at `point` for the free symbols; None unless both are finite."""
    values = gold.evalf(_DIGITS, subs=point), answer.evalf(_DIGITS, subs=point)
    return values if all(_finite_number(v) for v in values) else None


def _agree(
    gold: sympy.Basic, answer: sympy.Basic, values: tuple, tolerance: Tolerance, point: dict | None
) -> Rule | None:
    """Whether `values` (of `gold` and `answer` at `point`, complex allowed) are the same number.

    `symbolic` when they agree to `_EXACT_REL_TOL`; `numeric_tolerance` when they agree within
    what the written decimals allow (see `_allowed_gap`); else None.
    """
    gold_value, answer_value = values
    gap = sympy.Abs(gold_value - answer_value)
    scale = sympy.Max(sympy.Abs(gold_value), sympy.Abs(answer_value))
    # An irrational expression that is exactly zero evaluates to rounding noise, not to 0.
    exact = _ZERO_FLOOR if gold_value == 0 or answer_value == 0 else _EXACT_REL_TOL * scale
    if gap <= exact:
        return "symbolic"
    return "numeric_tolerance" if gap <= _allowed_gap(gold, answer, tolerance, point, scale) else None


def _allowed_gap(
    gold: sympy.Basic, answer: sympy.Basic, tolerance: Tolerance, point: dict | None, scale: sympy.Float
) -> sympy.Float:
    """How far apart the two values may be: `DECIMAL_REL_TOL` of `scale` for decimals, or the
    coarser side's rounding effect (the other side is then read as the value it rounds)."""
    allowed = _DECIMAL_TOL * scale if tolerance.decimal else sympy.Float(0)
    for side in (gold, answer):
        allowed = sympy.Max(allowed, _rounding_effect(side, tolerance.allowances, point))
    return allowed


def _rounding_effect(expr: sympy.Basic, allowances: tuple, point: dict | None) -> sympy.Float:
    """First-order change of `expr` at `point` when each of its rounded decimals moves by its
    allowance: a bound on how far the written value may lie from the exact one."""
    effect = sympy.Float(0)
    base = None
    for atom, allowance in allowances:
        if expr.has(atom):
            base = expr.evalf(_DIGITS, subs=point) if base is None else base
            moved = expr.xreplace({atom: atom + allowance}).evalf(_DIGITS, subs=point)
            effect += sympy.Abs(moved - base)
    return effect


def _probe(gold: sympy.Basic, answer: sympy.Basic, symbols: list, tolerance: Tolerance) -> list[Rule | None]:
    """Compare at a few points where both sides are finite: each point's rule, ending at the first
    point where they differ (None)."""
    found: list[Rule | None] = []
    for shift, _ in enumerate(_PROBES):
        point = {s: _PROBES[(i + shift) % len(_PROBES)] for i, s in enumerate(symbols)}
        values = _values_at(gold, answer, point)
        if values is None:
            continue
        found.append(_agree(gold, answer, values, tolerance, point))
        if found[-1] is None:
            break
    return found


def _finite_number(value: sympy.Basic) -> bool:
    return bool(value.is_number) and not value.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo)


def _evaluated(value: sympy.Basic) -> sympy.Basic:
    """Carry out what the parser left unevaluated (`2004!`, `2^{99}`) so exact values compare exactly,
    and read the symbol `i` as the imaginary unit (answers like `3 + 4i`)."""
    if not isinstance(value, sympy.Basic | MatrixBase):
        return value
    if _IMAGINARY in value.free_symbols:
        value = value.subs(_IMAGINARY, sympy.I)
    return value.doit()
