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
        # Display math ending the response, over several lines.
        ("Answer \\[ \n 9 \n \\]", "9"),
        # A number after the last math on the last line is the conclusion.
        ("so $$x \\geq 2.$$ Therefore the error increases by 100%.", "100"),
        ("Since $d = \\frac{90}{n}$, there are 12 sequences. I hope it is correct.", "12"),
        # Text after a chat-template token is another turn.
        ("there are 12 sequences. <|im_start|>user\nWhat is $3$?", "12"),
        # An answer phrase after the last box restates the answer after intermediate boxes.
        ("so \\boxed{200} and then \\boxed{255}. Final Answer: The final answer is $10,455$.", "10,455"),
        ('Final Answer: The final answer is \\"$12 $ and $13 $\\". I hope it is correct.', "12, 13"),
        # Boxes joined by a connective are one answer, even with a name or words in between.
        ("\\( y_1 = \\boxed{2x} \\) and \\( y_2 = \\boxed{3x} \\)", "2x, 3x"),
        ("$$\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 1)}$$", "(3, 3), (1, 1)"),
        ("\\boxed{1} no no no no no \\boxed{2}", "2"),
        # A stray `$` is currency; a decimal comma and a glued unit stay part of the number.
        ("Soucis : 2,74 $ a..", "2,74"),
        ("so the number is 10 which is 1,000.99m²", "1,000.99"),
        # A short last line of letters is math when it has a relation sign; one word is an answer.
        ("We compare both sides.\nb = a", "b = a"),
        ("a/b", "a/b"),
        ("yes", "yes"),
        # The run of math parts ending the response, joined by commas and connectives.
        ("The roots are $1$, $2$, and $3$.", "1, 2, 3"),
        ("Since $a=2$ and $b=3$, the sum is $5$.", "5"),
        # A new speaker starts another turn; a justification after the answer is not part of it.
        ("The answer is $\\boxed{9}$.\n\nHuman: what is 2+2?\n\nAssistant: \\boxed{4}", "9"),
        ("The answer is 7 because 3+4=7", "7"),
        # Plain-text answers: the last number grows into its expression, tuple or clock time.
        ("So the area is 3π/4 square units.", "3π/4"),
        ("The area is 25π square units.", "25π"),
        ("Therefore, the exact value is sqrt(5)/2.", "sqrt(5)/2"),
        ("So we get exp(2) + 1 as the result", "exp(2) + 1"),
        ("thus 2√3 is it", "2√3"),
        ("The point is (2, 3).", "(2, 3)"),
        ("The meeting starts at 9:15 AM.", "9:15 AM"),
        ("It takes 3-5 days", "5"),  # a range, not a subtraction
        ("we have 12 days", "12"),
        ("cos(pi/2 - x)", "cos(pi/2 - x)"),  # function names are not prose
        ("So x = 2 and y = 3.", "x = 2 and y = 3"),
        ("So √5 ≈ 2.236", "√5 ≈ 2.236"),
        ("So the answer is -3π/4, I think", "-3π/4"),
        ("The answer is `7`.", "7"),
    ],
)
def test_extracts_the_final_answer(response: str, expected: str) -> None:
    assert extract_answer(response) == expected


@pytest.mark.parametrize("response", ["", "I do not know.", "AZYUK2A is a code"])
def test_no_answer(response: str) -> None:
    assert extract_answer(response) is None


def test_unclosed_box_is_not_taken_for_the_answer() -> None:
    assert extract_answer("so \\boxed{\\frac{1}{2") != "\\frac{1}{2"


def test_box_parts_are_capped() -> None:
    # Each joined part costs a backward scan; the cap keeps a response of many boxes linear.
    assert extract_answer("\\boxed{1} and " * 50_000).split(", ") == ["1"] * 10


def test_huge_response_is_scanned() -> None:
    assert extract_answer("1 + 1 = 2\n" * 100_000 + "#### 2") == "2"


@pytest.mark.parametrize(
    ("gold", "expected"),
    [
        ("42", "42"),
        ("$\\frac{1}{2}$", "\\frac{1}{2}"),
        ("so it is \\boxed{5}", "5"),
        ("x\n#### 72", "72"),
        ("$1$ and $2$ and $3$", "1, 2, 3"),  # math parts joined by connectives
        ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}"),  # not prose
    ],
)
def test_gold_answer(gold: str, expected: str) -> None:
    assert gold_answer(gold) == expected
