"""The code task family: disjoint splits keyed on the function asked for, the worked solution right and the
constant one wrong, hidden tests the `code` reward accepts and that a constant answer cannot pass; the
built-in `code` task."""

import pytest

from rlsys.config import TaskConfig, VerifierConfig
from rlsys.data import load_task
from rlsys.reward_registry import gold_problem
from rlsys.tasks.code import constant_solution, problems, split_of, worked_solution

SPLITS = ("pretrain", "sft", "rl", "eval")


def _run(source: str, tests: str) -> None:
    namespace: dict = {}
    exec(f"{source}\n{tests}", namespace)  # trusted: code and tests this test suite generated


def test_deterministic_and_extending():
    assert problems("rl", 40, seed=1) == problems("rl", 40, seed=1)
    assert problems("rl", 40, seed=1) != problems("rl", 40, seed=2)
    assert problems("sft", 120, seed=0)[:30] == problems("sft", 30, seed=0)


def test_splits_are_disjoint_in_the_functions_they_ask_for():
    functions = {split: {p.pipeline.canonical for p in problems(split, 300, seed=0)} for split in SPLITS}
    for split in SPLITS:
        assert all(split_of(p) == split for p in problems(split, 300, seed=0))
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not functions[a] & functions[b], (a, b)


def test_the_held_out_split_asks_for_at_least_300_different_functions():
    held_out = problems("eval", 500, seed=0)
    assert len({p.pipeline.canonical for p in held_out}) == 500
    assert len({p.question for p in held_out}) == 500


def test_the_worked_solution_passes_the_hidden_tests():
    for problem in problems("sft", 300, seed=0):
        _run(worked_solution(problem), problem.tests)


def test_the_constant_solution_answers_the_first_example_and_fails_the_hidden_tests():
    for problem in problems("sft", 300, seed=0):
        (numbers, output), _ = problem.examples
        assert f"{problem.pipeline.name}({numbers}) returns {output}" in problem.question
        _run(constant_solution(problem), f"assert {problem.pipeline.name}({numbers}) == {output!r}")
        with pytest.raises(AssertionError):
            _run(constant_solution(problem), problem.tests)


def test_hidden_tests_are_asserts_a_constant_cannot_pass():
    for problem in problems("eval", 300, seed=0):
        assert gold_problem("code", problem.tests) is None
        lines = problem.tests.splitlines()
        assert 4 <= len(lines) <= 5 and all(
            line.startswith(f"assert {problem.pipeline.name}(") for line in lines
        )
        answers = {line.rsplit(" == ", 1)[1] for line in lines}
        assert len(answers) >= 3  # no single return value passes every test


def test_the_prompt_states_the_signature_and_two_examples():
    problem = problems("eval", 1, seed=0)[0]
    name, parameter = problem.pipeline.name, problem.pipeline.parameter
    assert problem.question.startswith(f"Write a Python function {name}({parameter}) that takes a list")
    assert problem.question.count(" returns ") >= 2
    worked = worked_solution(problem).splitlines()
    assert worked[0] == f"def {name}({parameter}):" and len(worked) == len(problem.pipeline.stages) + 2


def test_the_builtin_code_task_is_scored_by_the_code_reward():
    task = load_task(
        TaskConfig(kind="code", train_size=50, eval_size=300), VerifierConfig(rewards={"code": 1.0})
    )
    held_out = task.evals[""]
    assert len(task.train) == 50 and len(held_out) == 300
    assert not {p.messages[-1]["content"] for p in task.train} & {p.messages[-1]["content"] for p in held_out}
    assert all(p.gold.startswith("assert ") for p in held_out)
    assert task.report[0].startswith("task: code, 50 training and 300 held-out problems")


def test_the_code_reward_refuses_golds_that_are_not_tests():
    """Arithmetic's gold `42` would be a test any program passes: the job stops before it starts."""
    from rlsys.errors import ConfigError

    assert gold_problem("code", "42") is not None
    with pytest.raises(ConfigError, match="verifier.rewards: 'code' cannot score task.kind=arithmetic"):
        load_task(
            TaskConfig(kind="arithmetic", train_size=5, eval_size=5), VerifierConfig(rewards={"code": 1.0})
        )
