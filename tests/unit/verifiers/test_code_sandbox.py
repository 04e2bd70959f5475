"""Behaviour of the code sandbox on benign programs: statuses, per-test results, output, batch, config."""

import functools
import gc
import os
import selectors
import sys

import pytest

from verifiers.code import CodeJob, SandboxConfig, sandbox
from verifiers.code import run_tests as run_sandboxed
from verifiers.code import run_tests_batch as run_batch_sandboxed
from verifiers.code.isolation import probe

# Tests run wherever namespaces and seccomp work; a cgroup is used where there is one (test_code_probe.py
# fails instead of skipping where RLSYS_REQUIRE_SANDBOX says the host must have them).
CONFIG = SandboxConfig(allow_missing=("cgroup",))
REFUSAL = probe(sys.executable).refusal(CONFIG.allow_missing)
pytestmark = pytest.mark.skipif(bool(REFUSAL), reason=f"no sandbox here: {REFUSAL}")

ADD = "def add(a, b):\n    return a + b\n"
run_tests = functools.partial(run_sandboxed, config=CONFIG)


def run_tests_batch(jobs, **kwargs):
    return run_batch_sandboxed(jobs, CONFIG, **kwargs)


def test_assert_lines_are_reported_one_by_one():
    verdict = run_tests(
        ADD, "assert add(1, 2) == 3\nassert add(2, 2) == 5\nassert add('a', 'b') == 'ab'\n", 5
    )
    assert verdict.status == "fail"
    assert [t.passed for t in verdict.tests] == [True, False, True]
    assert [t.line for t in verdict.tests] == [1, 2, 3]
    assert verdict.tests[1].name == "assert add(2, 2) == 5"
    assert verdict.pass_fraction == pytest.approx(2 / 3)
    assert verdict.isolation.startswith("bwrap(") and "+seccomp+" in verdict.isolation


def test_check_function_with_entry_point():
    tests = (
        "import math\n\ndef check(candidate):\n    assert candidate(1, 2) == 3\n    x = [1]\n"
        "    assert candidate(x, [2]) == [1, 2]\n"
        "    for i in range(3):\n        assert candidate(i, i) == 2 * i\n"
    )
    verdict = run_tests(ADD, tests, 5, entry_point="add")
    assert verdict.status == "pass", verdict
    assert len(verdict.tests) == 3 and verdict.passed


def test_types_survive_the_boundary():
    code = "def f(x):\n    return x, [x], {x: (1.5, None)}, {1, 2}, b'ab', 3 + 4j, 2**100, float('inf')\n"
    tests = (
        "assert f('k') == ('k', ['k'], {'k': (1.5, None)}, {1, 2}, b'ab', 3 + 4j, 2**100, float('inf'))\n"
        "assert f(1) != [1, [1], {1: (1.5, None)}, {1, 2}, b'ab', 3 + 4j, 2**100, float('inf')]\n"
    )
    assert run_tests(code, tests, 5).status == "pass"


def test_exceptions_from_the_program_reach_the_tests():
    code = "def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n"
    tests = "try:\n    f(-1)\n    assert False\nexcept ValueError as e:\n    assert str(e) == 'negative'\n"
    tests += "assert f(2) == 2\n"
    assert run_tests(code, tests, 5).status == "pass"


def test_program_helpers_and_objects_are_usable_by_handle():
    code = (
        "class Box:\n    def __init__(self, v):\n        self.v = v\n"
        "    def get(self):\n        return self.v\n"
        "def gen(n):\n    yield from range(n)\n"
    )
    tests = "assert Box(3).get() == 3\nassert Box(4).v == 4\n"
    tests += "assert list(gen(3)) == [0, 1, 2]\nassert Box(1) == 1\n"
    verdict = run_tests(code, tests, 5)
    assert [t.passed for t in verdict.tests] == [True, True, True, False]
    assert "cannot be compared" in verdict.tests[3].detail


def test_syntax_error_and_load_failure_are_errors():
    assert run_tests("def f(:\n", "assert f() == 1", 5).status == "error"
    verdict = run_tests("raise RuntimeError('boom')\n", "assert f() == 1", 5)
    assert verdict.status == "error" and "boom" in verdict.detail


def test_malformed_tests_are_errors():
    assert run_tests(ADD, "assert (", 5).status == "error"
    assert run_tests(ADD, "assert add(1, 1) == 2", 5, entry_point="add").status == "error"


def test_missing_entry_point_fails():
    verdict = run_tests(ADD, "def check(candidate):\n    assert candidate(1, 1) == 2\n", 5, entry_point="sub")
    assert verdict.status == "fail" and "sub" in verdict.detail


def test_tests_without_asserts_are_one_test():
    assert run_tests(ADD, "x = add(1, 2)\n", 5).status == "pass"
    verdict = run_tests(ADD, "x = add(1, 'a')\n", 5)
    assert verdict.status == "fail" and verdict.tests[0].passed is None


def test_output_is_captured_and_capped():
    code = "import sys\nprint('hello')\nprint('err', file=sys.stderr)\n"
    code += "def f():\n    print('x' * 5000)\n    return 1\n"
    config = SandboxConfig(allow_missing=CONFIG.allow_missing, output_limit_bytes=1000)
    verdict = run_sandboxed(code, "assert f() == 1", 5, config=config)
    assert verdict.status == "pass"
    assert verdict.stdout.startswith("hello\nxxx") and len(verdict.stdout) == 1000
    assert verdict.stderr == "err\n"
    assert verdict.truncated


def test_resource_use_is_reported():
    verdict = run_tests("x = sum(range(10**6))\ndef f():\n    return x\n", "assert f() > 0", 5)
    assert verdict.passed and verdict.cpu_s > 0 and verdict.max_rss_mb > 1 and verdict.wall_s > 0


def test_workdir_is_writable_and_current():
    code = (
        "import os\nopen('a.txt', 'w').write('hi')\ndef f():\n    return os.getcwd(), open('a.txt').read()\n"
    )
    assert run_tests(code, "assert f() == ('/work', 'hi')", 5).passed


def test_batch_keeps_order():
    jobs = [CodeJob(ADD, f"assert add({i}, 1) == {i + 1 if i % 2 else 0}") for i in range(6)]
    verdicts = run_tests_batch(jobs, max_parallel=3)
    assert [v.status for v in verdicts] == ["fail", "pass", "fail", "pass", "fail", "pass"]


def test_program_must_exit_after_its_tests():
    hangs = "import threading, time\nthreading.Thread(target=time.sleep, args=(600,)).start()\n" + ADD
    verdict = run_tests(hangs, "assert add(1, 2) == 3", 1.5)
    assert verdict.status == "timeout" and "did not exit" in verdict.detail
    assert verdict.tests[0].passed  # the tests' own results are kept
    exits = "import atexit, threading, time\natexit.register(print, 'bye')\n"
    exits += "threading.Thread(target=time.sleep, args=(0.2,)).start()\n" + ADD
    verdict = run_tests(exits, "assert add(1, 2) == 3", 5)
    assert verdict.passed and verdict.stdout == "bye\n"  # non-daemon threads joined, exit handlers run
    daemon = "import threading, time\nthreading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
    assert run_tests(daemon + ADD, "assert add(1, 2) == 3", 5).passed


def test_multiprocessing_and_tmp_work():
    code = (
        "import multiprocessing, tempfile\ndef f(xs):\n    with tempfile.TemporaryFile() as t:\n"
        "        t.write(b'x')\n    with multiprocessing.get_context('fork').Pool(2) as pool:\n"
        "        return sum(pool.map(abs, xs))\n"
    )
    assert run_tests(code, "assert f([-1, 2]) == 3", 10).passed


def test_program_cannot_interrupt_the_harness():
    code = "import os, signal\nfor sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):\n"
    code += "    os.kill(1, sig)\n"
    assert run_tests(code + ADD, "assert add(1, 2) == 3", 5).passed


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError, match="allow_missing"):
        SandboxConfig(allow_missing=("namespaces",))
    with pytest.raises(ValueError, match="max_open_files"):
        SandboxConfig(max_open_files=2)
    with pytest.raises(ValueError, match="cpus"):
        SandboxConfig(cpus=0)
    with pytest.raises(ValueError):
        run_tests(ADD, "assert True", 0)


def test_a_run_cut_short_by_the_host_leaves_no_sandbox_behind(monkeypatch):
    """An exception in the host while it feeds a run (say, an interrupt) stops the sandbox: what it left on
    the sandbox's stdin must never reach the next run."""
    assert run_tests(ADD, "assert add(1, 2) == 3", 5.0).passed
    served = sandbox._owned.sandboxes[(CONFIG, 512)]

    def interrupted(self, timeout=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(selectors.DefaultSelector, "select", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_tests(ADD, "assert add(1, 2) == 3", 5.0)
    monkeypatch.undo()
    assert not served.alive()
    assert run_tests(ADD, "assert add(1, 2) == 3", 5.0).passed
    assert sandbox._owned.sandboxes[(CONFIG, 512)] is not served


def test_a_forked_copy_of_the_host_neither_uses_nor_stops_its_parents_sandbox():
    assert run_tests(ADD, "assert add(1, 2) == 3", 5.0).passed
    served = sandbox._owned.sandboxes[(CONFIG, 512)]
    child = os.fork()
    if child == 0:  # the child runs on a sandbox of its own, then drops the copy of the parent's
        status = 1
        try:
            status = 0 if run_tests(ADD, "assert add(1, 2) == 3", 5.0).passed else 1
            sandbox._owned.sandboxes.clear()
            gc.collect()
        finally:
            os._exit(status)
    assert os.waitpid(child, 0)[1] == 0
    assert served.alive() and sandbox._owned.sandboxes[(CONFIG, 512)] is served
    assert run_tests(ADD, "assert add(1, 2) == 3", 5.0).passed
