"""Final-answer extraction from model output."""

import pytest

from verifiers.math.extract import extract_answer, gold_answer


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("3 + 4 = 7\n7 * 6 = 42\n#### 42", "42"),
        ("#### 10 is wrong.\n3 + 4 = 7\n#### 7", "7"),
        ("We get \\boxed{3} first, then\n\nso the answer is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),
        ("so $\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}$", "(2, 2), (6, 2)"),
        ("The answer is $\\frac{3}{4}$.", "\\frac{3}{4}"),
        ("I think the answer is 5. Wait, no: the answer is 6.", "6"),
        ("Final Answer: The largest $n$ is 34.", "34"),
        ("The answer is (B).", "(B)"),
        ("The answer is $\\$10$.", "\\$10"),
        ("First 12 apples, then 3 more, total 15", "15"),
        ("It is 1,000.", "1,000"),
        ("\\frac{10}{9}", "\\frac{10}{9}"),
        ("#### Step 1\nWe add: $x = 3$", "x = 3"),
    ],
)
def test_extracts_the_final_answer(response: str, expected: str) -> None:
    assert extract_answer(response) == expected


@pytest.mark.parametrize("response", ["", "I do not know.", "AZYUK2A is a code"])
def test_no_answer(response: str) -> None:
    assert extract_answer(response) is None


def test_unclosed_box_is_not_taken_for_the_answer() -> None:
    assert extract_answer("so \\boxed{\\frac{1}{2") != "\\frac{1}{2"


def test_huge_response_is_scanned() -> None:
    assert extract_answer("1 + 1 = 2\n" * 100_000 + "#### 2") == "2"


@pytest.mark.parametrize(
    ("gold", "expected"),
    [("42", "42"), ("$\\frac{1}{2}$", "\\frac{1}{2}"), ("so it is \\boxed{5}", "5"), ("x\n#### 72", "72")],
)
def test_gold_answer(gold: str, expected: str) -> None:
    assert gold_answer(gold) == expected
