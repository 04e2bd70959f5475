"""Answers written outside LaTeX: plain-text expressions, Unicode symbols, stray markup."""

import pytest

from verifiers.math import verify
from verifiers.math.equivalence import judge
from verifiers.math.plaintext import plain_to_latex

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("text", "latex"),
    [
        ("3*pi/4", "3*\\pi/4"),
        ("exp(2) + 1", "\\exp(2) + 1"),
        ("sqrt(5)/2", "\\sqrt{5}/2"),
        ("sqrt(sqrt(2))", "\\sqrt{\\sqrt{2}}"),
        ("abs(x-1)", "|x-1|"),
        ("2√3", "2\\sqrt{3}"),
        ("√(x+1)", "\\sqrt{x+1}"),
        ("x²−1", "x^{2}-1"),
        ("3π/4", "3\\pi /4"),
        ("½", "\\frac{1}{2}"),
        # Whole words only, and a function name only with an argument: prose and units stay.
        ("12 sec", "12 sec"),
        ("spin", "spin"),
        ("\\sqrt{2}", "\\sqrt{2}"),
    ],
)
def test_plain_to_latex(text: str, latex: str) -> None:
    assert plain_to_latex(text) == latex


@pytest.mark.parametrize(
    ("gold", "answer"),
    [
        ("\\frac{3\\pi}{4}", "3*pi/4"),
        ("\\frac{3\\pi}{4}", "3pi/4"),
        ("e^2 + 1", "exp(2) + 1"),
        ("\\frac{\\sqrt{5}}{2}", "sqrt(5)/2"),
        ("2\\sqrt{3}", "2 sqrt(3)"),
        ("2\\sqrt{3}", "2√3"),
        ("\\frac{\\sqrt{2}}{2}", "1/sqrt(2)"),
        ("x^2 - 1", "x² − 1"),
        ("\\infty", "infinity"),
        ("\\sqrt[3]{2}", "2^(1/3)"),
        # Markup and a dangling backslash around a number.
        ("7", "\\text{7}"),
        ("7", "\\textbf{7}"),
        ("7", "7\\"),
        ("7", "7\\\\"),
    ],
)
def test_plain_text_equals_latex(gold: str, answer: str) -> None:
    assert judge(gold, answer).status == "correct"


@pytest.mark.parametrize(
    ("gold", "answer"),
    [
        ("\\frac{3\\pi}{4}", "3*pi/5"),
        ("e^2 + 1", "exp(3) + 1"),
        ("\\frac{\\sqrt{5}}{2}", "sqrt(5)/3"),
        ("7", "\\text{8}"),
        ("13", "\text{13}"),  # a tab, not `\text`: the markup is broken, not stray
    ],
)
def test_plain_text_near_misses(gold: str, answer: str) -> None:
    assert judge(gold, answer).status == "incorrect"


@pytest.mark.parametrize(
    ("gold", "response"),
    [
        ("\\frac{3\\pi}{4}", "So the angle is 3π/4 radians."),
        ("\\frac{\\sqrt{5}}{2}", "Therefore, the exact value is sqrt(5)/2."),
        ("e^2+1", "So we get exp(2) + 1 as the result"),
        ("\\sin x", "cos(pi/2 - x)"),
        ("(2, 3)", "The point is (2, 3)."),
        ("7", "The answer is \\text{7}."),
        ("\\infty", "∞"),
        ("7", "The answer is 7\\"),
        ("7", "The answer is `7`."),
        ("7", "The answer is <b>7</b>."),
    ],
)
def test_plain_text_in_a_response(gold: str, response: str) -> None:
    assert verify(gold, response).correct
