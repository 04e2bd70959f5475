"""The arithmetic task family: determinism, disjoint splits, correct answers, solution format."""

import re

import pytest

from rlsys.tasks.arithmetic import (
    Problem,
    bare_solution,
    chat_messages,
    problems,
    split_of,
    worked_solution,
)

SPLITS = ("pretrain", "sft", "rl", "eval")
STEP = re.compile(r"^(\d+) ([-+*/]) (\d+) = (\d+)$")


def _evaluate(a: int, op: str, b: int) -> int:
    if op == "/":
        assert a % b == 0
        return a // b
    return {"+": a + b, "-": a - b, "*": a * b}[op]


@pytest.mark.parametrize("split", SPLITS)
def test_deterministic_for_split_n_seed(split):
    assert problems(split, 50, seed=3) == problems(split, 50, seed=3)
    assert problems(split, 50, seed=3) != problems(split, 50, seed=4)


def test_larger_n_extends_smaller_n():
    assert problems("rl", 200, seed=0)[:50] == problems("rl", 50, seed=0)


def test_splits_are_disjoint_and_own_their_questions():
    by_split = {split: {p.question for p in problems(split, 400, seed=0)} for split in SPLITS}
    for split, questions in by_split.items():
        assert len(questions) == 400, "duplicates within a split"
        assert all(split_of(q) == split for q in questions)
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not by_split[a] & by_split[b], (a, b)


def test_eval_and_rl_support_large_n():
    assert len({p.question for p in problems("eval", 600, seed=0)}) == 600
    assert len(problems("rl", 5000, seed=1)) == 5000


def test_steps_chain_and_recompute_to_the_answer():
    for p in problems("sft", 500, seed=0):
        assert 2 <= len(p.steps) <= 4
        value = None
        for step in p.steps:
            match = STEP.match(step)
            assert match, step
            a, op, b, c = int(match[1]), match[2], int(match[3]), int(match[4])
            assert value is None or a == value, "each step starts from the previous result"
            assert _evaluate(a, op, b) == c
            value = c
        assert value == p.answer
        assert 0 <= p.answer < 100
        # The question states every operand (the chain start and each step's right-hand side).
        first = int(STEP.match(p.steps[0])[1])
        assert str(first) in p.question


def test_solution_formats():
    p = Problem(
        question="Start with 2. Add 3, then times 4. What is the result?",
        steps=("2 + 3 = 5", "5 * 4 = 20"),
        answer=20,
    )
    assert worked_solution(p) == "2 + 3 = 5\n5 * 4 = 20\n#### 20"
    assert bare_solution(p) == "#### 20"
    assert chat_messages(p) == [{"role": "user", "content": p.question}]


def test_phrasings_vary():
    questions = [p.question for p in problems("eval", 300, seed=0)]
    openings = {q.split(" ")[0] for q in questions}
    assert len(openings) >= 5
    assert any("?" in q and "How many" in q for q in questions)
    assert any("What" in q for q in questions)


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="unknown split"):
        problems("train", 1, seed=0)  # type: ignore[arg-type]
