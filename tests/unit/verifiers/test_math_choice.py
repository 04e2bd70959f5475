"""Multiple choice: the gold's letter and option text, the letter a response picks."""

import pytest

from verifiers.math import verify
from verifiers.math.choice import Choice, chosen_letter, gold_choice
from verifiers.math.equivalence import judge

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("gold", "expected"),
    [
        ("B", Choice("B")),
        ("(B)", Choice("B")),
        ("\\text{(C)}", Choice("C")),
        ("$\\textbf{D}$", Choice("D")),
        ("B.", Choice("B")),
        ("(B) 42 apples", Choice("B", "42 apples")),
        ("B) 42", Choice("B", "42")),
        ("C: \\frac{1}{2}", Choice("C", "\\frac{1}{2}")),
        ("so the answer is (E).", Choice("E")),  # a solution ending in its choice
        # Mathematics about points and sets, and lower-case letters, are no choices.
        ("B = 5", None),
        ("A + B", None),
        ("b", None),
        ("42", None),
        ("AB", None),
    ],
)
def test_gold_choice(gold: str, expected: Choice | None) -> None:
    assert gold_choice(gold) == expected


@pytest.mark.parametrize(
    ("response", "letter"),
    [
        ("B", "B"),
        ("b", "B"),
        ("(b)", "B"),
        ("**C**", "C"),
        ("The answer is $\\boxed{D}$.", "D"),
        ("Answer: c", "C"),
        ("The correct option is C: 12", "C"),
        ("I'd pick B, since A and C overcount.", "B"),
        ("A and C overcount, so I'd pick B.", "B"),
        ("Option A overcounts and option C undercounts; B is correct.", "B"),
        ("I'd go with b, since the others overcount.", "B"),
        ("I'd pick B. Wait, actually C is correct.", "C"),  # the last choice wins
        ("Neither A nor C works, so B.", "B"),
        ("Only (D) fits the constraint.", "D"),
        ("A. Because B is not valid", "A"),
        ("Because B is valid", "B"),
        # No letter picked: naming every option, an article, the pronoun I.
        ("A, B, C or D could all be argued.", None),
        ("The answer is A, B or C.", None),
        ("I think it is a trick question.", None),
        ("The total is 42 apples.", None),
    ],
)
def test_chosen_letter(response: str, letter: str | None) -> None:
    assert chosen_letter(response) == letter


@pytest.mark.parametrize(
    ("gold", "response", "status"),
    [
        ("B", "I'd pick B, since A and C overcount.", "correct"),
        ("B", "b", "correct"),
        ("(B) 42 apples", "The answer is B", "correct"),
        ("(B) 42 apples", "42 apples", "correct"),  # the option's text instead of its letter
        ("(B) 42 apples", "There are 42 of them.", "correct"),
        # Near misses: another letter, another option's text, no letter for a bare-letter gold.
        ("B", "I'd pick C, since A and B overcount.", "incorrect"),
        ("B", "c", "incorrect"),
        ("(B) 42 apples", "The answer is (A) 42 apples", "incorrect"),
        ("(B) 42 apples", "41 apples", "incorrect"),
        ("B", "The total is 42.", "incorrect"),
        ("B", "A, B, C or D could all be argued.", "no_answer"),
    ],
)
def test_choice_verdicts(gold: str, response: str, status: str) -> None:
    verdict = verify(gold, response)
    assert verdict.status == status
    assert verdict.rule == ("choice" if status != "no_answer" else "")


def test_judge_reads_choices_too() -> None:
    assert judge("(B) 42 apples", "b").status == "correct"
    assert judge("(B) 42 apples", "42").rule == "choice"
