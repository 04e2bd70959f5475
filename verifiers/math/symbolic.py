"""Equality of sympy objects: expressions, relations, sets and matrices.

Exact values are compared exactly (so `1/2004!` and `1/2006!` differ however small both are);
irrational constants are compared numerically at 50 digits with a relative tolerance far below
any difference an answer could have; answers written with decimals get `DECIMAL_REL_TOL` (the
rounding rule for plain decimals is applied before, in `equivalence`).
Expressions with variables are compared symbolically, then at probe points.
"""

from __future__ import annotations

import sympy
from sympy.core.function import AppliedUndef
from sympy.core.relational import Relational
from sympy.logic.boolalg import Boolean
from sympy.matrices import MatrixBase

from verifiers.math.numeric import DECIMAL_REL_TOL

_DIGITS = 50
# Two exact constants that agree to this relative precision at 50 digits are the same number.
_EXACT_REL_TOL = sympy.Float("1e-35", _DIGITS)
_DECIMAL_TOL = sympy.Float(float(DECIMAL_REL_TOL), _DIGITS)
_ZERO_FLOOR = sympy.Float("1e-40", _DIGITS)
# Values substituted for free symbols; positive and unremarkable, so that identities true for
# positive reals (`sqrt(x^2) = x`, the usual reading of a contest answer) are accepted.
_PROBES = (sympy.Rational(5, 7), sympy.Rational(13, 9), sympy.Rational(29, 11), sympy.Rational(41, 13))
_IMAGINARY = sympy.Symbol("i")


def exprs_equal(gold: sympy.Basic, answer: sympy.Basic, decimal: bool = False) -> bool:
    """True when two sympy objects denote the same value; `decimal` loosens numbers to `DECIMAL_REL_TOL`."""
    gold, answer = _evaluated(gold), _evaluated(answer)
    if gold == answer:
        return True
    if isinstance(gold, MatrixBase) or isinstance(answer, MatrixBase):
        return _matrices_equal(gold, answer, decimal)
    if isinstance(gold, sympy.Set) or isinstance(answer, sympy.Set):
        return sets_equal(as_set(gold), as_set(answer), decimal)
    if isinstance(gold, Boolean) or isinstance(answer, Boolean):
        return _relations_equal(gold, answer, decimal)
    tol = _DECIMAL_TOL if decimal else _EXACT_REL_TOL
    symbols = gold.free_symbols | answer.free_symbols
    if not symbols:
        if gold.is_Rational and answer.is_Rational and not decimal:
            return False  # exact rationals, already known to differ
        return _close(gold, answer, tol)
    if sympy.expand(gold - answer) == 0:
        return True
    probed = _probe(gold, answer, sorted(symbols, key=str), tol)
    if probed is not None:
        return probed
    return sympy.simplify(gold - answer) == 0


def as_set(value: sympy.Basic) -> sympy.Set | None:
    """A set for a set, or for a relation in one variable (`1 < x <= 2` -> `(1, 2]`); else None."""
    if isinstance(value, sympy.Set):
        return value
    if isinstance(value, Boolean):
        value = _subject_as_symbol(value)
        if len(value.free_symbols) == 1:
            return value.as_set()
    return None


def _subject_as_symbol(relation: Boolean) -> Boolean:
    """`0 < f(x) < 1` -> `0 < s < 1`: a relation about one function value is a relation in one unknown."""
    applied = relation.atoms(AppliedUndef)
    if len(applied) != 1:
        return relation
    (subject,) = applied
    return relation.subs(subject, sympy.Symbol("subject", real=True))


def sets_equal(gold: sympy.Set | None, answer: sympy.Set | None, decimal: bool) -> bool:
    """Equality of two sets; interval endpoints follow the number rules of `exprs_equal`."""
    if gold is None or answer is None:
        return False
    if gold == answer:
        return True
    if isinstance(gold, sympy.Interval) and isinstance(answer, sympy.Interval):
        return (
            gold.left_open == answer.left_open
            and gold.right_open == answer.right_open
            and exprs_equal(gold.start, answer.start, decimal)
            and exprs_equal(gold.end, answer.end, decimal)
        )
    if (
        isinstance(gold, sympy.Union)
        and isinstance(answer, sympy.Union)
        and len(gold.args) == len(answer.args)
    ):
        return all(sets_equal(g, a, decimal) for g, a in zip(_by_start(gold), _by_start(answer), strict=True))
    return gold.symmetric_difference(answer) == sympy.EmptySet


def _by_start(union: sympy.Union) -> list[sympy.Set]:
    return sorted(union.args, key=lambda s: sympy.N(s.inf) if s.inf.is_number else 0)


def _relations_equal(gold: sympy.Basic, answer: sympy.Basic, decimal: bool) -> bool:
    """Equations: same solution set up to a constant factor; inequalities in one variable: same set."""
    if isinstance(gold, sympy.Eq) and isinstance(answer, sympy.Eq):
        if gold.lhs == answer.lhs and gold.lhs.is_Symbol:
            return exprs_equal(gold.rhs, answer.rhs, decimal)
        return _proportional(gold.lhs - gold.rhs, answer.lhs - answer.rhs, decimal, positive=False)
    gold_set, answer_set = as_set(gold), as_set(answer)
    if gold_set is not None and answer_set is not None and gold.free_symbols == answer.free_symbols:
        return sets_equal(gold_set, answer_set, decimal)
    if isinstance(gold, Relational) and isinstance(answer, Relational):
        return _same_inequality(gold, answer, decimal)
    return False


def _same_inequality(gold: Relational, answer: Relational, decimal: bool) -> bool:
    """`a < b` equals `c < d` when `b - a` is a positive multiple of `d - c` (strictness must agree)."""
    gold_gap, gold_strict = _as_positive_gap(gold)
    answer_gap, answer_strict = _as_positive_gap(answer)
    if gold_gap is None or answer_gap is None or gold_strict != answer_strict:
        return False
    return _proportional(gold_gap, answer_gap, decimal, positive=True)


def _as_positive_gap(relation: Relational) -> tuple[sympy.Basic | None, bool]:
    if isinstance(relation, sympy.StrictGreaterThan | sympy.GreaterThan):
        return relation.lhs - relation.rhs, isinstance(relation, sympy.StrictGreaterThan)
    if isinstance(relation, sympy.StrictLessThan | sympy.LessThan):
        return relation.rhs - relation.lhs, isinstance(relation, sympy.StrictLessThan)
    return None, False


def _proportional(gold: sympy.Basic, answer: sympy.Basic, decimal: bool, positive: bool) -> bool:
    if exprs_equal(gold, answer, decimal) or (not positive and exprs_equal(gold, -answer, decimal)):
        return True
    if answer == 0:
        return False
    ratio = sympy.cancel(gold / answer)
    if ratio.free_symbols or ratio == 0 or not ratio.is_finite:
        return False
    return bool(ratio.is_positive) if positive else True


def _matrices_equal(gold: sympy.Basic, answer: sympy.Basic, decimal: bool) -> bool:
    if not (isinstance(gold, MatrixBase) and isinstance(answer, MatrixBase)) or gold.shape != answer.shape:
        return False
    return all(exprs_equal(g, a, decimal) for g, a in zip(gold, answer, strict=True))


def _close(gold: sympy.Basic, answer: sympy.Basic, tol: sympy.Float) -> bool:
    """Numeric equality at `_DIGITS` digits within relative tolerance `tol` (complex values allowed)."""
    gold_value, answer_value = sympy.N(gold, _DIGITS), sympy.N(answer, _DIGITS)
    if not (_finite_number(gold_value) and _finite_number(answer_value)):
        return False
    gap = sympy.Abs(gold_value - answer_value)
    if gold_value == 0 or answer_value == 0:
        # An irrational expression that is exactly zero evaluates to rounding noise, not to 0.
        return bool(gap <= _ZERO_FLOOR)
    return bool(gap <= tol * sympy.Max(sympy.Abs(gold_value), sympy.Abs(answer_value)))


def _probe(gold: sympy.Basic, answer: sympy.Basic, symbols: list, tol: sympy.Float) -> bool | None:
    """Compare at a few points; None when too few points give finite values on both sides."""
    agreed = 0
    for shift, _ in enumerate(_PROBES):
        point = {s: _PROBES[(i + shift) % len(_PROBES)] for i, s in enumerate(symbols)}
        gold_value = gold.evalf(_DIGITS, subs=point)
        answer_value = answer.evalf(_DIGITS, subs=point)
        if not (_finite_number(gold_value) and _finite_number(answer_value)):
            continue
        if not _close(gold_value, answer_value, tol):
            return False
        agreed += 1
    return True if agreed >= 2 else None


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
