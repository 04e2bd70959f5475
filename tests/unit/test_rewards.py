"""The reward registry and the verifier worker's weighted combination."""

from rlsys.config import VerifierConfig
from rlsys.reward_registry import REWARD_FUNCTIONS
from rlsys.rewards import Verifier
from rlsys.types import Prompt
from verifiers.rewards import format_reward, math_reward


def _prompts(*golds: str) -> list[Prompt]:
    return [Prompt(str(i), ({"role": "user", "content": "?"},), gold) for i, gold in enumerate(golds)]


def test_math_reward_scores_final_answer():
    scores = math_reward(["3 + 4 = 7\n#### 7", "3 + 4 = 7\n#### 8", "no answer here"], ["7", "7", "7"], 5.0)
    assert [s.value for s in scores] == [1.0, 0.0, 0.0]
    assert [s.correct for s in scores] == [True, False, False]


def test_format_reward_needs_a_final_answer_marker():
    scores = format_reward(["x\n#### 5", "\\boxed{5}", "5"], ["5"] * 3, 1.0)
    assert [s.value for s in scores] == [1.0, 1.0, 0.0]
    assert all(s.correct is None for s in scores)


def test_verifier_combines_weighted_components():
    verifier = Verifier(VerifierConfig(rewards={"math": 1.0, "format": 0.5}, timeout_s=5.0))
    right, unformatted, wrong = verifier.score(_prompts("12", "12", "12"), ["#### 12", "12", "#### 13"])
    assert right.score == 1.5 and right.correct
    assert right.components == {"math": 1.0, "format": 1.0}
    assert unformatted.components["format"] == 0.0
    assert wrong.score == 0.5 and not wrong.correct
    assert set(REWARD_FUNCTIONS) >= {"math", "format", "code", "hidden_preference"}


def test_a_verifier_without_a_judge_of_correctness_says_so():
    (reward,) = Verifier(VerifierConfig(rewards={"format": 1.0}, timeout_s=1.0)).score(
        _prompts("3"), ["#### 3"]
    )
    assert reward.correct is None and reward.score == 1.0


def test_code_reward_runs_the_fenced_program_in_the_sandbox():
    import json

    from verifiers.code import SandboxConfig
    from verifiers.rewards import code_reward

    tests = "assert add(2, 3) == 5\nassert add(-1, 1) == 0"
    humaneval = json.dumps(
        {"tests": "def check(candidate):\n    assert candidate(1, 1) == 2\n", "entry_point": "add"}
    )
    right = "Here:\n```python\ndef add(a, b):\n    return a + b\n```"
    half = "```python\ndef add(a, b):\n    return 5\n```"
    # This host has no delegated cgroup v2: the run goes without one, as the job's default allows.
    scores = code_reward(
        [right, half, right],
        [tests, tests, humaneval],
        10.0,
        sandbox=SandboxConfig(allow_missing=("cgroup",)),
    )
    assert [s.value for s in scores] == [1.0, 0.5, 1.0]
    assert [s.correct for s in scores] == [True, False, True]


def test_code_reward_runs_a_repeated_program_once(monkeypatch):
    import verifiers.code
    from verifiers.code import CodeVerdict, TestResult
    from verifiers.rewards import code_reward

    ran = []

    def fake_batch(jobs, sandbox, max_parallel):
        ran.extend(jobs)
        passed = [job.code.endswith("a + b") for job in jobs]
        return [
            CodeVerdict("pass" if ok else "fail", (TestResult("t", 1, ok),), "", "", False, 0, 0, 0, "", "")
            for ok in passed
        ]

    monkeypatch.setattr(verifiers.code, "run_tests_batch", fake_batch)
    right, wrong = "def add(a, b):\n    return a + b", "def add(a, b):\n    return a - b"
    tests = "assert add(2, 3) == 5"
    scores = code_reward([right, wrong, right, right], [tests, tests, tests, "assert add(1, 1) == 2"], 5.0)
    assert [s.correct for s in scores] == [True, False, True, True]
    assert len(ran) == 3  # the first program against the first tests ran once for both copies


def test_the_math_verdict_names_the_rule_that_decided():
    scores = math_reward(["#### 12", "x = 2.236", "#### 13"], ["12", "\\sqrt{5}", "12"], 5.0)
    assert [s.verdict for s in scores] == ["correct:exact", "correct:numeric_tolerance", "incorrect:exact"]
