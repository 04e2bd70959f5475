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
]
NOT_EQUAL = [
    ("\\frac{1}{2004!}", "\\frac{1}{2006!}"),
    ("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}"),
    ("1/2004!", "1/2006!"),
    ("42", "41"),
    ("1000", "100"),
    ("50", "0.5"),
    ("\\frac{1}{3}", "0.33"),
    ("\\frac{\\sqrt{3}}{2}", "0.866"),
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
]


@pytest.mark.parametrize(("gold", "answer"), EQUAL)
def test_equal_pairs(gold: str, answer: str) -> None:
    assert judge(gold, answer)[0] == "correct"


@pytest.mark.parametrize(("gold", "answer"), NOT_EQUAL)
def test_unequal_pairs(gold: str, answer: str) -> None:
    assert judge(gold, answer)[0] == "incorrect"


def test_unparseable_gold_is_an_error() -> None:
    status, _, _, detail = judge("\\frac{", "1")
    assert status == "error" and "gold" in detail


def test_unparseable_answer_is_incorrect() -> None:
    assert judge("1", "\\frac{")[0] == "incorrect"
