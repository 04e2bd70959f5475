"""The `tools` task family: large-number problems, answers right, disjoint splits, and the conversations
the SFT data shows (with the tool, or bare); the built-in `tools` task."""

import ast

from rlsys.config import TaskConfig, VerifierConfig
from rlsys.data import load_task
from rlsys.tasks.tool_arithmetic import (
    bare_conversation,
    problems,
    split_of,
    tool_call,
    tool_conversation,
)
from rlsys.tools import TOOL_CALL_END, TOOL_CALL_START

SPLITS = ("pretrain", "sft", "rl", "eval")


def _value(expression: str) -> int:
    """The value of `a op b [op c]` for integers, evaluated without `eval`."""
    tree = ast.parse(expression, mode="eval").body

    def walk(node):
        if isinstance(node, ast.Constant):
            return node.value
        ops = {ast.Add: int.__add__, ast.Sub: int.__sub__, ast.Mult: int.__mul__}
        return ops[type(node.op)](walk(node.left), walk(node.right))

    return walk(tree)


def test_answers_are_the_expressions_value_and_too_large_to_guess():
    for p in problems("sft", 500, seed=0):
        assert _value(p.expression) == p.answer and p.answer >= 0
        spaced = p.expression.replace("*", " ").replace("+", " ").replace("-", " ")
        operands = [int(n) for n in spaced.split()]
        # A product of two two-digit numbers, or a sum or difference of three-digit ones.
        factors = operands[:2] if "*" in p.expression else []
        assert (factors and min(factors) >= 12) or max(operands) >= 100


def test_splits_are_disjoint_and_deterministic():
    by_split = {split: {p.question for p in problems(split, 400, seed=0)} for split in SPLITS}
    for split, questions in by_split.items():
        assert len(questions) == 400 and all(split_of(q) == split for q in questions)
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not by_split[a] & by_split[b]
    assert problems("rl", 50, seed=3) == problems("rl", 50, seed=3) != problems("rl", 50, seed=4)


def test_conversations_with_and_without_the_tool():
    p = problems("sft", 1, seed=0)[0]
    assert tool_call(p) == f"{TOOL_CALL_START}print({p.expression}){TOOL_CALL_END}"
    assert [m["role"] for m in tool_conversation(p)] == ["user", "assistant", "tool", "assistant"]
    assert tool_conversation(p)[2]["content"] == str(p.answer)
    assert bare_conversation(p)[-1] == {"role": "assistant", "content": f"#### {p.answer}"}


def test_the_builtin_tools_task():
    task = load_task(TaskConfig(kind="tools", train_size=40, eval_size=300), VerifierConfig())
    assert len(task.train) == 40 and len(task.evals[""]) == 300
    assert all(p.gold.isdigit() for p in task.evals[""])
