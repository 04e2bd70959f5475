"""The code task scored where a job scores it: the verifier pool's Ray actors run each answer against the
problem's hidden tests in the sandbox (no model needed: the answers are written here)."""

import pytest

from actors.pools import RayVerifierPool
from rlsys.config import TaskConfig, VerifierConfig
from rlsys.data import load_task
from rlsys.tasks.code import problems, worked_solution
from rlsys.types import Sample

pytestmark = pytest.mark.integration


def _sample(prompt_id: str, text: str) -> Sample:
    return Sample(prompt_id, (1,), (2,), text, (0.0,), "stop", 0)


def test_the_verifier_pool_runs_code_answers_against_the_hidden_tests(ray_runtime):
    task = load_task(
        TaskConfig(kind="code", train_size=4, eval_size=300), VerifierConfig(rewards={"code": 1.0})
    )
    prompts = task.evals[""][:3]
    solutions = [worked_solution(p) for p in problems("eval", 300, seed=0)[:3]]
    signatures = [solution.splitlines()[0] for solution in solutions]  # "def compute(xs):"
    answers = [
        solutions[0],  # right
        f"{signatures[1]}\n    return None",  # wrong on every test
        f"{signatures[2]}\n    while True:\n        pass",  # hangs: a timeout, not a stuck step
    ]
    verifier = RayVerifierPool(VerifierConfig(replicas=2, num_cpus=0.1, rewards={"code": 1.0}, timeout_s=3.0))
    try:
        ray_runtime.get(verifier.ready_refs())
        rewards = verifier.score(prompts, [_sample(p.id, a) for p, a in zip(prompts, answers, strict=True)])
        rewards = rewards.result()
    finally:
        verifier.shutdown()
    assert [r.correct for r in rewards] == [True, False, False]
    assert rewards[0].score == 1.0 and rewards[1].score == 0.0 and rewards[2].score == 0.0
    assert rewards[2].verdict == "timeout"
