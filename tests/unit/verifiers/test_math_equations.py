"""Equations and functions: definitions, identities, solution sets."""

import pytest

from verifiers.math import verify
from verifiers.math.equivalence import judge

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("gold", "answer"),
    [
        # A definition's right side is its value; the name it defines may be a function's.
        ("t^2 - 1", "g(t) = t^2 - 1"),
        ("y = t^2 - 1", "g(t) = t^2 - 1"),
        ("t^2 - 1", "y = t^2 - 1"),
        ("f(x) = x^2 - 1", "(x - 1)(x + 1)"),
        ("f(x) = x^2", "f(t) = t^2"),  # the same function, its argument renamed
        ("f^{-1}(x) = \\frac{x-3}{2}", "\\frac{x-3}{2}"),
        ("f'(x) = 2x", "2x"),
        ("y = 2x + 1", "2x - y + 1 = 0"),
        # Identities hold at every point; a degree mark inside a trigonometric function is an angle.
        ("\\sin(x)", "\\cos(90^\\circ - x)"),
        ("\\sin x", "cos(pi/2 - x)"),
        ("\\frac{1}{2}", "\\cos 60^\\circ"),
        ("1", "\\sin^2 x + \\cos^2 x"),
        ("\\tan^2(y) + 1", "\\sec^2(y)"),
        ("2\\sin x \\cos x", "\\sin(2x)"),
        ("\\tan x", "\\sin x / \\cos x"),  # a bare argument ends before the division
        # Solution sets written with `;`, "and", "or", a system in `cases`.
        ("x = 1, x = 2", "x = 1; x = 2"),
        ("x = 1, x = 2", "x = 2 and x = 1"),
        ("1, 2", "x = 1 or x = 2"),
        ("x=2, y=3", "x = 2; y = 3"),
        ("x=2, y=3", "x = 2 and y = 3"),
        ("(2, 3)", "\\begin{cases} x = 2 \\\\ y = 3 \\end{cases}"),
        ("x = 2, y = 3", "\\begin{aligned} x &= 2 \\\\ y &= 3 \\end{aligned}"),
    ],
)
def test_equal(gold: str, answer: str) -> None:
    assert judge(gold, answer).status == "correct"


@pytest.mark.parametrize(
    ("gold", "answer"),
    [
        ("\\tan(x) = 3", "\\cot(x) = 3"),  # the left side names another function
        ("\\tan(x) = 3", "3"),  # an equation about tan, not a name for 3
        ("f(x) = x^2", "g(x) = x^2"),
        ("f'(x) = 2x", "f(x) = 2x"),  # a derivative is another function
        ("f^{-1}(x) = \\frac{x-3}{2}", "f(x) = \\frac{x-3}{2}"),
        ("t^2 - 1", "g(t) = t^2 + 1"),
        ("\\sin(x)", "\\cos(90 - x)"),  # without the degree mark, 90 is radians
        ("\\sin x", "\\cos x"),
        ("x = 1, x = 2", "x = 1; x = 3"),
        ("x=2, y=3", "x = 3 and y = 2"),
        ("2x + 1", "y = 2x + 2"),
    ],
)
def test_not_equal(gold: str, answer: str) -> None:
    assert judge(gold, answer).status == "incorrect"


@pytest.mark.parametrize(
    ("gold", "response"),
    [
        ("x = 2, y = 3", "So x = 2 and y = 3."),
        ("t^2 - 1", "The function is $g(t) = t^2 - 1$."),
        ("\\sqrt5", "So √5 ≈ 2.236"),
    ],
)
def test_in_a_response(gold: str, response: str) -> None:
    verdict = verify(gold, response)
    assert verdict.correct and verdict.rule in ("symbolic", "exact")
