"""Normalisation and equivalence of answer pairs (in-process, no worker)."""

import pytest

from verifiers.math.equivalence import judge

EQUAL = [
    ("42", "42.0"),
    ("1000", "1,000"),
    ("1000", "1 000"),
    ("0.1", ".1"),
    ("\\frac{1}{2}", "0.5"),
    ("1/2", "\\frac{1}{2}"),
    ("\\tfrac83", "\\frac{8}{3}"),
    ("2\\frac{1}{2}", "5/2"),
    ("2 1/2", "2.5"),
    ("50\\%", "50"),
    ("50\\%", "0.5"),
    ("1500", "1.5e3"),
    ("1500", "1.5\\times 10^3"),
    ("30^\\circ", "30"),
    ("5 \\text{ cm}", "5"),
    ("12", "12 apples"),
    ("10", "\\$10"),
    ("\\pi/2", "\\frac{\\pi}{2}"),
    ("\\sqrt{8}", "2\\sqrt{2}"),
    ("4\\sqrt{2}", "4\\sqrt(2)"),
    ("10\\sqrt{3} + \\sqrt4", "10\\sqrt3 + \\sqrt{4}"),
    ("\\frac{\\sqrt{3}}{2}", "0.8660254"),
    ("x^2+2x+1", "(x+1)^2"),
    ("\\left(x-2\\right)\\left(x+2\\right)", "x^2-4"),
    ("3+4i", "4i+3"),
    ("y = 2x+1", "2x + 1 = y"),
    ("x=5", "5"),
    ("5", "x = 5"),
    ("x = 5 + 5 + 1 = 11", "11"),
    ("x \\le 3", "(-\\infty, 3]"),
    ("(1,2)", "1<x<2"),
    ("x > 3", "3 < x"),
    ("(-\\infty, 3] \\cup (4, \\infty)", "(-\\infty,3]\\cup(4,\\infty)"),
    ("\\{1,2\\}", "\\{2,1\\}"),
    ("1, 2", "2, 1"),
    ("3\\pm\\sqrt{2}", "3+\\sqrt2, 3-\\sqrt2"),
    ("(3, -1)", "(3,-1)"),
    ("(p,q)=(3,2)", "(3, 2)"),
    ("AB=4,CD=5", "4, 5"),
    ("1, 2, 3, \\ldots", "1,2,3,..."),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}"),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "(1,2)"),
    ("B", "(B)"),
    ("\\text{(B)}", "B. 15"),
    ("\\text{Monday}", "monday"),
    ("7:32", "7:32"),
    # A decimal is read as the exact value rounded to the places it shows (3+ significant digits).
    ("\\frac{\\sqrt{3}}{2}", "0.866"),
    ("\\frac{2}{3}", "0.667"),
    ("0.866", "\\frac{\\sqrt{3}}{2}"),
    ("3.14159", "3.14"),
    ("\\frac{1}{3}", "33.3\\%"),
    # `\!` glues digit groups; `\\ ` in a matrix is a row break, not a spacing command.
    ("11111111100", "11,\\! 111,\\! 111,\\! 100"),
    ("\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}", "\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}"),
    ("\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}", "\\begin{bmatrix}1 & 0 \\\\ 0 & 1\\end{bmatrix}"),
    # A backslash doubled by escaping twice.
    ("\\\\left(\\\\frac{1}{5},\\\\frac{1}{6}\\\\right)", "\\left( \\frac{1}{5}, \\frac{1}{6} \\right)"),
    # An upright letter is the constant.
    ("\\text{e}", "e"),
    ("1 - \\frac{1}{\\mathrm{e}}", "1 - e^{-1}"),
    # Connectives glued to brackets; repeats in an unordered list add nothing.
    ("(11,7)or(7,11)", "(7,11),\\ (11,7)"),
    ("(1,2),(3,4)", "(3,4), (1,2), (3,4)"),
    # Groups of named values: `;` separates solutions, names make a tuple.
    ("p=5,q=2;p=7,q=2", "(5,2),(7,2)"),
    ("x = -5,\\ p = \\frac{14}{3}", "-5, \\frac{14}{3}"),
    ("x=1, y=2", "y=2, x=1"),
    ("x=1, y=2", "(1, 2)"),
    # A chain of equalities ends in the result; `constant = constant` is a computation.
    ("1 = \\zzz = x = 0", "0"),
    ("\\frac{10}{9}", "\\frac{1}{2} \\$ = \\frac{10}{9}"),
    # A relation about one function value is an interval.
    ("0<f(x)<1", "(0,1)"),
    # Plain braces group in TeX: `{1,3}` is the bare list 1, 3.
    ("1, 3", "{1,3}"),
    ("\\{1, 3\\}", "{3,1}"),
    # Relations joined by "or" are the union of their sets.
    ("(-\\infty, -2) \\cup (3, \\infty)", "x < -2 \\text{ or } x > 3"),
]
NOT_EQUAL = [
    ("\\frac{1}{2004!}", "\\frac{1}{2006!}"),
    ("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}"),
    ("1/2004!", "1/2006!"),
    ("42", "41"),
    ("1000", "100"),
    ("50", "0.5"),
    ("\\frac{1}{3}", "0.33"),
    ("\\frac{\\sqrt{3}}{2}", "0.867"),  # not the value rounded to 3 places
    ("\\frac{2}{3}", "0.666"),  # a truncation, not a rounding
    ("0.47", "0.5"),  # one significant digit is not graded as a rounding
    ("x^2+2x+1", "(x-1)^2"),
    ("x>3", "x\\ge 3"),
    ("[1,2)", "(1,2]"),
    ("(1,2)", "(2,1)"),
    ("1,2,3,\\ldots", "1,2,3"),
    ("1, 2, \\ldots", "1, 2, 4, \\ldots"),
    ("5x - 7y + 11z + 4 = 0", "x + y - z + 2 = 0"),
    ("B", "C"),
    ("\\text{Monday}", "Tuesday"),
    ("12:00", "1:00"),
    ("\\pm 2021", "2021"),
    ("1 - \\frac{1}{e}", "1 + \\frac{1}{e}"),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&5\\end{pmatrix}"),
    ("0.1, 4, 2", "4, .1, 3"),
    ("(0, 1)", "(0, 1.5)"),
    ("\\frac{1}{3}", "33.4\\%"),
    ("0,111", "111"),  # a thousands group never starts with 0
    ("(1,3)", "{1,3}"),  # a bare list or set is not a pair or interval
    ("x=1, y=2", "(2, 1)"),
    ("x=1, y=2", "x=2, y=1"),
    ("x=1, x=2", "(1, 2)"),  # two solutions for one unknown are not a tuple
    ("(1,2),(3,4)", "(1,2)"),
    ("0<f(x)<1", "[0,1)"),
    ("x + y = 5", "5"),  # an equation in unknowns is not an assignment
    ("(-\\infty, -2) \\cup (3, \\infty)", "x < -2 \\text{ or } x > 4"),
]


@pytest.mark.parametrize(("gold", "answer"), EQUAL)
def test_equal_pairs(gold: str, answer: str) -> None:
    assert judge(gold, answer).status == "correct"


@pytest.mark.parametrize(("gold", "answer"), NOT_EQUAL)
def test_unequal_pairs(gold: str, answer: str) -> None:
    assert judge(gold, answer).status == "incorrect"


def test_unparseable_gold_is_an_error() -> None:
    verdict = judge("\\frac{", "1")
    assert verdict.status == "error" and "gold" in verdict.detail


def test_unparseable_answer_is_incorrect() -> None:
    assert judge("1", "\\frac{").status == "incorrect"
