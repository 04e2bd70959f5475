"""A decimal against an exact value: accepted as the value rounded to the digits it shows."""

import pytest

from verifiers.math import verify
from verifiers.math.equivalence import judge

pytestmark = pytest.mark.timeout(120)

PI_MATRIX = "\\begin{pmatrix}\\frac{3\\pi}{4} & \\sqrt{2}\\\\ \\frac{1}{3} & 1\\end{pmatrix}"


@pytest.mark.parametrize(
    ("gold", "answer"),
    [
        ("\\frac{3\\pi}{4}", "2.356"),
        ("\\sqrt5", "2.236"),
        ("\\sqrt5", "2.24"),
        ("\\pi", "3.1416"),
        ("100\\pi", "314.16"),
        ("2.236", "\\sqrt{5}"),  # the gold may be the decimal
        ("\\frac{1}{12}", "0.0833333333333333"),
        ("\\sqrt{2}\\cdot 10^{3}", "1414.2"),
        # Inside structures: matrices, tuples, intervals, systems, coefficients, complex numbers.
        (PI_MATRIX, "\\begin{pmatrix}2.356 & 1.414\\\\ 0.333 & 1\\end{pmatrix}"),
        ("(\\frac{1}{3}, \\sqrt{2})", "(0.333, 1.414)"),
        ("(\\frac{3}{5},\\frac{8}{3}]", "(0.6,2.6667]"),
        ("x=\\frac{1}{3}, y=\\sqrt{2}", "x = 0.333, y = 1.414"),
        ("x=\\frac{1}{3}, y=\\sqrt{2}", "\\begin{cases} x = 0.3333 \\\\ y = 1.4142 \\end{cases}"),
        ("y = \\frac{\\sqrt{2}}{2}x + \\sqrt{2}", "y = 0.7071x + 1.414"),
        ("\\sqrt{2} + \\sqrt{2}i", "1.414 + 1.414i"),
        ("\\frac{1}{3}", "33.3\\%"),
        # "approximately", `≈`, and an approximation after the exact value.
        ("\\sqrt5", "approximately 2.236"),
        ("\\sqrt5", "\\approx 2.236"),
        ("\\sqrt5", "x \\approx 2.236"),
        ("\\sqrt5", "\\sqrt{5} \\approx 2.236"),
        ("(\\sqrt{2}, \\sqrt{3})", "(\\approx 1.414, \\approx 1.732)"),
    ],
)
def test_rounded_decimals_are_accepted(gold: str, answer: str) -> None:
    verdict = judge(gold, answer)
    assert verdict.status == "correct"


@pytest.mark.parametrize(
    ("gold", "answer"),
    [
        ("\\frac{3\\pi}{4}", "2.35"),  # not the value rounded (2.36)
        ("\\frac{3\\pi}{4}", "2.4"),  # two significant digits cannot tell 3π/4 from 2.4 or 2.35
        ("\\sqrt5", "2.2"),
        ("\\sqrt5", "2.237"),
        ("\\frac{2}{3}", "0.666"),  # a truncation, not a rounding
        ("\\pi", "3.1415"),
        ("100\\pi", "314"),  # an integer claims no rounding
        ("\\sqrt{2}\\cdot 10^{3}", "1414"),
        ("\\sqrt{2}\\cdot 10^{3}", "1414.3"),
        (PI_MATRIX, "\\begin{pmatrix}2.356 & 1.414\\\\ 0.33 & 1\\end{pmatrix}"),
        (PI_MATRIX, "\\begin{pmatrix}2.357 & 1.414\\\\ 0.333 & 1\\end{pmatrix}"),
        ("(\\frac{1}{3}, \\sqrt{2})", "(0.333, 1.415)"),
        ("x=\\frac{1}{3}, y=\\sqrt{2}", "x = 0.3, y = 1.4"),
        ("y = \\frac{\\sqrt{2}}{2}x + \\sqrt{2}", "y = 0.7171x + 1.414"),
        ("x^2", "x^{2.001}"),
        ("\\sqrt5", "\\sqrt{6} \\approx 2.236"),  # the exact value given is the answer
    ],
)
def test_loose_or_wrong_decimals_are_rejected(gold: str, answer: str) -> None:
    assert judge(gold, answer).status == "incorrect"


def test_trailing_zeros_claim_their_places() -> None:
    # `12.50` claims two places (12.495-12.505), so 12.54 is not what it rounds; `12.5` would be.
    assert judge("12.54", "12.5").status == "correct"
    assert (
        judge("\\begin{pmatrix}12.54\\end{pmatrix}", "\\begin{pmatrix}12.50\\end{pmatrix}").status
        == "incorrect"
    )


def test_the_rule_names_the_tolerance() -> None:
    assert verify("\\frac{3\\pi}{4}", "The angle is about 2.356.").rule == "numeric_tolerance"
    assert verify("\\frac{1}{2}", "0.5").rule == "exact"
    assert verify("x + 1", "\\boxed{x+1}").rule == "exact"
    assert verify("\\sqrt{8}", "\\boxed{2\\sqrt{2}}").rule == "symbolic"
    assert verify("(1, \\frac{1}{3})", "\\boxed{(1, 0.333)}").rule == "numeric_tolerance"
    assert verify("\\frac{3\\pi}{4}", "\\boxed{2.35}").rule == "numeric_tolerance"  # the rule that rejected
