"""Multi-step arithmetic word problems: the embedded model's task family.

A problem is a chain of 2-4 operations (add, subtract, multiply, divide) on small integers, told as a
short story or a number puzzle in one of several phrasings. Its worked solution is one equation per line
and a final ``#### <answer>`` line, so a verifier can check the answer exactly.

Splits are disjoint by construction: a question belongs to the split its text hashes to (a stable
SHA-256 bucket), so no held-out or RL question can ever appear in pretraining or SFT data, whatever ``n``
each caller asks for. Generation is deterministic for ``(split, n, seed)``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Literal

Split = Literal["pretrain", "sft", "rl", "eval"]

# Share of the question space (out of 100 hash buckets) each split owns. Pretraining and SFT need the
# most text; eval needs only a few thousand distinct questions, RL a few tens of thousands.
_SPLIT_BUCKETS: dict[str, range] = {
    "pretrain": range(0, 40),
    "sft": range(40, 70),
    "rl": range(70, 90),
    "eval": range(90, 100),
}

# Values stay below this bound at every step, so every number the model reads or writes has 1-2 digits.
_MAX_VALUE = 100

_NAMES = ("Tom", "Ana", "Sam", "Mia", "Leo", "Zoe", "Max", "Ivy", "Ben", "Eva", "Kai", "Lily")
_ITEMS = ("apples", "marbles", "coins", "stickers", "books", "cookies", "pencils", "cards", "shells", "eggs")

# One template list per operation for stories about a person and a pile of items. Fields: {name},
# {item}, {k}.
_STORY_OPS: dict[str, tuple[str, ...]] = {
    "+": (
        "{name} buys {k} more {item}.",
        "{name} finds {k} more {item}.",
        "A friend gives {name} {k} more {item}.",
        "Then {name} gets {k} more.",
    ),
    "-": (
        "{name} gives away {k} {item}.",
        "{name} loses {k} of them.",
        "{name} sells {k} {item}.",
        "Then {name} uses {k} of the {item}.",
    ),
    "*": (
        "The number of {item} becomes {k} times as large.",
        "{name} ends up with {k} times as many {item}.",
        "Then the pile of {item} grows {k} times bigger.",
    ),
    "/": (
        "{name} splits the {item} into {k} equal groups and keeps one group.",
        "{name} shares them equally among {k} friends, keeping one share.",
        "Then {name} keeps only one of {k} equal parts.",
    ),
}
_STORY_OPENINGS = (
    "{name} has {v} {item}.",
    "{name} starts with {v} {item}.",
    "There are {v} {item} in {name}'s box.",
)
_STORY_QUESTIONS = (
    "How many {item} does {name} have now?",
    "How many {item} are there at the end?",
    "How many {item} are left?",
)

# Number puzzles: the same chain as imperative clauses. Field: {k}.
_PUZZLE_OPS: dict[str, tuple[str, ...]] = {
    "+": ("add {k}", "increase it by {k}", "plus {k}"),
    "-": ("subtract {k}", "take away {k}", "decrease it by {k}"),
    "*": ("multiply by {k}", "times {k}"),
    "/": ("divide by {k}", "split it into {k} equal parts and keep one"),
}
_PUZZLE_OPENINGS = ("Start with {v}.", "I think of the number {v}.", "Take the number {v}.")
_PUZZLE_QUESTIONS = ("What is the result?", "What number do you get?", "What is the final number?")


@dataclass(frozen=True)
class Problem:
    """One word problem: its text, the worked steps (``"a op b = c"`` per line) and the integer answer."""

    question: str
    steps: tuple[str, ...]
    answer: int


def worked_solution(problem: Problem) -> str:
    """The step-by-step answer: one equation per line, then ``#### <answer>``."""
    return "\n".join((*problem.steps, f"#### {problem.answer}"))


def bare_solution(problem: Problem) -> str:
    """The answer without steps: just ``#### <answer>``."""
    return f"#### {problem.answer}"


def chat_messages(problem: Problem) -> list[dict[str, str]]:
    """The prompt as chat messages (a single user turn holding the question)."""
    return [{"role": "user", "content": problem.question}]


def split_of(question: str) -> Split:
    """The split a question belongs to, from a stable hash of its text (independent of seed and n)."""
    bucket = int.from_bytes(hashlib.sha256(question.encode()).digest()[:8], "big") % 100
    for split, buckets in _SPLIT_BUCKETS.items():
        if bucket in buckets:
            return split  # type: ignore[return-value]
    raise AssertionError(f"bucket {bucket} belongs to no split")


def problems(split: Split, n: int, seed: int) -> list[Problem]:
    """``n`` distinct problems of ``split``, deterministic for ``(split, n, seed)``.

    Candidates are drawn from one RNG stream per ``(split, seed)`` and kept when their question hashes to
    ``split``; a larger ``n`` therefore extends a smaller one (the first ``n`` problems do not change).
    """
    if split not in _SPLIT_BUCKETS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(_SPLIT_BUCKETS)}")
    rng = random.Random(f"arithmetic:{split}:{seed}")
    seen: set[str] = set()
    out: list[Problem] = []
    # The question space is far larger than any n we use; the bound only turns a bug into an error.
    for _ in range(200 * n + 1000):
        if len(out) == n:
            return out
        problem = _random_problem(rng)
        if problem.question in seen or split_of(problem.question) != split:
            continue
        seen.add(problem.question)
        out.append(problem)
    if len(out) == n:
        return out
    raise RuntimeError(f"could only generate {len(out)} of {n} distinct {split!r} problems")


def _random_problem(rng: random.Random) -> Problem:
    """One problem: a random chain of operations, told as a story or a number puzzle."""
    start = rng.randint(2, 15)
    chain = _random_chain(rng, start, n_ops=rng.randint(2, 4))
    if rng.random() < 0.6:
        question = _story(rng, start, chain)
    else:
        question = _puzzle(rng, start, chain)
    steps = []
    value = start
    for op, k in chain:
        result = _apply(op, value, k)
        steps.append(f"{value} {op} {k} = {result}")
        value = result
    return Problem(question=question, steps=tuple(steps), answer=value)


def _random_chain(rng: random.Random, start: int, n_ops: int) -> list[tuple[str, int]]:
    """``n_ops`` (operator, operand) pairs whose running values stay whole numbers in ``[0, _MAX_VALUE)``."""
    chain = []
    value = start
    for _ in range(n_ops):
        options = [("+", rng.randint(1, 12))]
        if value >= 2:
            options.append(("-", rng.randint(1, min(value, 12))))
        factor = rng.randint(2, 4)
        if value * factor < _MAX_VALUE and value > 0:
            options.append(("*", factor))
        divisors = [d for d in range(2, 6) if value % d == 0 and value > 0]
        if divisors:
            options.append(("/", rng.choice(divisors)))
        op, k = rng.choice(options)
        if op == "+" and value + k >= _MAX_VALUE:
            op, k = "-", rng.randint(1, min(value, 12))
        chain.append((op, k))
        value = _apply(op, value, k)
    return chain


def _apply(op: str, value: int, k: int) -> int:
    """``value op k`` on integers; division is exact by construction."""
    if op == "+":
        return value + k
    if op == "-":
        return value - k
    if op == "*":
        return value * k
    if op == "/":
        assert value % k == 0, f"{value} is not divisible by {k}"
        return value // k
    raise ValueError(f"unknown operator {op!r}")


def _story(rng: random.Random, start: int, chain: list[tuple[str, int]]) -> str:
    """The chain as a story about a person and a pile of items."""
    fields = {"name": rng.choice(_NAMES), "item": rng.choice(_ITEMS)}
    sentences = [rng.choice(_STORY_OPENINGS).format(v=start, **fields)]
    sentences += [rng.choice(_STORY_OPS[op]).format(k=k, **fields) for op, k in chain]
    sentences.append(rng.choice(_STORY_QUESTIONS).format(**fields))
    return " ".join(sentences)


def _puzzle(rng: random.Random, start: int, chain: list[tuple[str, int]]) -> str:
    """The chain as a number puzzle of imperative clauses."""
    clauses = [rng.choice(_PUZZLE_OPS[op]).format(k=k) for op, k in chain]
    body = ", then ".join(clauses)
    return f"{rng.choice(_PUZZLE_OPENINGS).format(v=start)} {body[0].upper()}{body[1:]}. " + rng.choice(
        _PUZZLE_QUESTIONS
    )
