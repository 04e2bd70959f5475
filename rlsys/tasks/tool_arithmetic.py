"""Arithmetic on numbers too large to do in one's head: the `tools` task family.

A problem is one or two operations on two- and three-digit numbers, told as a short story or asked
plainly ("There are 47 rows of 86 trees. How many trees are there in all?"). The embedded model cannot
multiply such numbers in its head; a Python tool can:

    <|tool_call|>print(47 * 86)<|/tool_call|>      the policy's call (the engine stops at its end)
    4042                                            the tool's turn (`rlsys.tools`)
    #### 4042                                       the policy's answer

The operands are short on purpose: the call must copy them from the question, and the embedded model learns
to copy two or three digits within its build (with four-digit operands it copied none right after 150
pretraining and 1500 SFT steps).

The answer is checked by the math verifier (the `#### N` line). Splits are disjoint by question text
(`rlsys.tasks.splits`); generation is deterministic for ``(split, n, seed)``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from rlsys.tasks.splits import Split, bucket_split, draw_split
from rlsys.tools import TOOL_CALL_END, TOOL_CALL_START

_NAMES = ("Tom", "Ana", "Sam", "Mia", "Leo", "Zoe", "Max", "Ivy", "Ben", "Eva", "Kai", "Lily")
_ITEMS = ("apples", "marbles", "coins", "stickers", "books", "cookies", "pencils", "cards", "shells", "eggs")

# (the Python expression of the operands, its value, question templates). Fields: {a} {b} {c} {name} {item}.
_FORMS: tuple[tuple[str, Callable[[int, int, int], int], tuple[str, ...]], ...] = (
    (
        "{a} * {b}",
        lambda a, b, c: a * b,
        (
            "{name} has {a} boxes with {b} {item} in each box. How many {item} are there?",
            "There are {a} rows of {b} {item}. How many {item} are there in all?",
            "What is {a} times {b}?",
            "Multiply {a} by {b}.",
        ),
    ),
    (
        "{a} + {b}",
        lambda a, b, c: a + b,
        (
            "{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?",
            "What is {a} plus {b}?",
            "Add {a} and {b}.",
        ),
    ),
    (
        "{a} - {b}",
        lambda a, b, c: a - b,
        (
            "{name} has {a} {item} and gives away {b}. How many {item} are left?",
            "What is {a} minus {b}?",
            "Subtract {b} from {a}.",
        ),
    ),
    (
        "{a} * {b} - {c}",
        lambda a, b, c: a * b - c,
        (
            "{name} has {a} boxes with {b} {item} in each box and sells {c}. How many {item} are left?",
            "What is {a} times {b} minus {c}?",
        ),
    ),
    (
        "{a} * {b} + {c}",
        lambda a, b, c: a * b + c,
        (
            "{name} has {a} bags with {b} {item} in each bag and {c} more {item}. How many {item} are there?",
            "What is {a} times {b} plus {c}?",
        ),
    ),
)


@dataclass(frozen=True)
class Problem:
    """One problem: its text, the Python expression that computes it, and the answer."""

    question: str
    expression: str  # what the tool call prints, e.g. "47 * 86"
    answer: int


def tool_call(problem: Problem) -> str:
    """The policy's tool call: a snippet printing the answer, between the tool-call tokens."""
    return f"{TOOL_CALL_START}print({problem.expression}){TOOL_CALL_END}"


def final_answer(problem: Problem) -> str:
    """The answer line, as the math verifier reads it."""
    return f"#### {problem.answer}"


def chat_messages(problem: Problem) -> list[dict[str, str]]:
    """The prompt as chat messages (a single user turn holding the question)."""
    return [{"role": "user", "content": problem.question}]


def tool_conversation(problem: Problem) -> list[dict[str, str]]:
    """The prompt answered with the tool: the call, the tool's turn (what the snippet prints), the answer."""
    return [
        *chat_messages(problem),
        {"role": "assistant", "content": tool_call(problem)},
        {"role": "tool", "content": str(problem.answer)},
        {"role": "assistant", "content": final_answer(problem)},
    ]


def bare_conversation(problem: Problem) -> list[dict[str, str]]:
    """The prompt answered in one's head: the answer line alone."""
    return [*chat_messages(problem), {"role": "assistant", "content": final_answer(problem)}]


def split_of(question: str) -> Split:
    """The split a question belongs to, from a stable hash of its text (independent of seed and n)."""
    return bucket_split(question)  # type: ignore[return-value]


def problems(split: Split, n: int, seed: int) -> list[Problem]:
    """``n`` distinct problems of ``split``, deterministic for ``(split, n, seed)``; a larger ``n`` extends a
    smaller one."""
    return draw_split("tools", split, n, seed, make=_random_problem, key=lambda p: p.question)


def _random_problem(rng: random.Random) -> Problem:
    """One form with random operands: products of two two-digit numbers, sums and differences of three-digit
    numbers (the larger first), and a two-digit c."""
    expression, value, templates = rng.choice(_FORMS)
    if "*" in expression:
        a, b = rng.randint(12, 99), rng.randint(12, 99)
    else:
        a, b = rng.randint(100, 999), rng.randint(100, 999)
        a, b = max(a, b), min(a, b)
    c = rng.randint(10, 99)
    question = rng.choice(templates).format(name=rng.choice(_NAMES), item=rng.choice(_ITEMS), a=a, b=b, c=c)
    return Problem(question=question, expression=expression.format(a=a, b=b, c=c), answer=value(a, b, c))
