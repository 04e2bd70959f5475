"""Hostile programs: each must end in a bounded non-pass verdict and leave the host intact.

Every attack runs only through the sandbox, with small limits, twice where the tests run as root: from this
process, and from a verifier process running as an unprivileged user (``nobody``), which exercises the
user-namespace path the cluster's nodes use. After each test no process of a sandbox may remain, and nothing
may appear outside the sandbox.
"""

import ctypes
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

import verifiers
from verifiers.code import CodeJob, CodeVerdict, SandboxConfig, TestResult, run_tests_batch, sandbox
from verifiers.code.isolation import SYSTEM_PYTHON, probe

ALLOWED = ("cgroup",)
SMALL = SandboxConfig(
    allow_missing=ALLOWED, max_processes=8, disk_mb=8, max_file_mb=4, output_limit_bytes=4096
)
REFUSAL = probe(sys.executable).refusal(ALLOWED)
HAS_CGROUP = "cgroup" not in probe(sys.executable).missing
pytestmark = pytest.mark.skipif(bool(REFUSAL), reason=f"no sandbox here: {REFUSAL}")
NOBODY = 65534
_PR_SET_CHILD_SUBREAPER = 36

# A verifier in a process of its own: JSON lines of {"jobs": [...], "config": {...}, "max_parallel": n} in,
# one JSON list of verdicts out per line.
RUNNER = """
import dataclasses, json, sys
sys.path.insert(0, sys.argv[1])
from verifiers.code import CodeJob, SandboxConfig, run_tests_batch
for line in sys.stdin:
    request = json.loads(line)
    config = SandboxConfig(**{k: tuple(v) if type(v) is list else v for k, v in request["config"].items()})
    jobs = [CodeJob(**job) for job in request["jobs"]]
    verdicts = run_tests_batch(jobs, config, request["max_parallel"])
    print(json.dumps([dataclasses.asdict(v) for v in verdicts]), flush=True)
"""


class Runner:
    """A verifier process, as this user or as ``nobody``, running a copy of ``verifiers.code`` it can read."""

    def __init__(self, source_copy: str, unprivileged: bool):
        python = _python_for(NOBODY) if unprivileged else sys.executable
        prefix = (
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if unprivileged else []
        )
        self.process = subprocess.Popen(
            [*prefix, python, "-I", "-c", RUNNER, source_copy],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
            cwd="/",
        )

    def send(self, jobs: list[CodeJob], config: SandboxConfig, max_parallel: int) -> None:
        settings = {k: v for k, v in dataclasses.asdict(config).items() if k != "python"}  # the runner's own
        request = {"jobs": [dataclasses.asdict(j) for j in jobs], "config": settings}
        request["max_parallel"] = max_parallel
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()

    def receive(self) -> list[CodeVerdict]:
        line = self.process.stdout.readline()
        assert line, f"the verifier process died (exit status {self.process.wait()})"
        return [
            CodeVerdict(**{**v, "tests": tuple(TestResult(**t) for t in v["tests"])})
            for v in json.loads(line)
        ]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def _python_for(uid: int) -> str:
    """An interpreter ``uid`` can run (this one may live in root's home), 3.11 or newer."""
    check = "import sys; assert sys.version_info >= (3, 11)"
    as_uid = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    for python in (sys.executable, SYSTEM_PYTHON):
        # Through a shell: setpriv itself may still find a path root's capabilities let it through.
        run = subprocess.run(
            [*as_uid, "/bin/sh", "-c", 'exec "$0" -I -c "$1"', python, check], capture_output=True
        )
        if run.returncode == 0:
            return python
    pytest.skip(f"no Python 3.11+ that uid {uid} can run")


@pytest.fixture(scope="module")
def source_copy():
    """``verifiers.code`` where any user can read it (the checkout, like pytest's tmp_path, may not be)."""
    root = tempfile.mkdtemp(prefix="rlsys-sandbox-test-")
    shutil.copytree(
        os.path.dirname(os.path.abspath(verifiers.__file__)),
        os.path.join(root, "verifiers"),
        ignore=shutil.ignore_patterns("__pycache__", "math", "rewards.py"),
    )
    for directory, _, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    yield root
    shutil.rmtree(root)


@pytest.fixture(scope="module", params=["caller", "unprivileged"])
def mode(request):
    if request.param == "unprivileged" and os.geteuid() != 0:
        pytest.skip("the tests already run unprivileged")
    return request.param


@pytest.fixture(scope="module")
def run_batch(mode, source_copy):
    """``run_tests_batch`` in this process, or in a verifier process running as ``nobody``."""
    if mode == "caller":
        yield lambda jobs, config=SMALL, max_parallel=1: run_tests_batch(jobs, config, max_parallel)
        return
    runner = Runner(source_copy, unprivileged=True)

    def run(jobs, config=SMALL, max_parallel=1):
        runner.send(jobs, config, max_parallel)
        return runner.receive()

    yield run
    runner.close()


@pytest.fixture(scope="module", autouse=True)
def orphans_come_here():
    """Make this process the reaper of its orphans, so that a sandbox process outliving its run is found."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    yield
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def sandbox_processes() -> dict[int, str]:
    """Live processes below this one that belong to a sandbox (bubblewrap, or any in another pid namespace),
    with their names; not those of a sandbox still serving this (the test's) thread, which other test modules
    may have left running, as a verifier thread keeps its sandbox between runs."""
    serving = {s.pid for s in getattr(sandbox._owned, "sandboxes", {}).values() if s.serving}
    own_namespace = os.readlink("/proc/self/ns/pid")
    children: dict[int, list[int]] = {}
    info: dict[int, tuple[str, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            namespace = os.readlink(f"/proc/{entry}/ns/pid")
        except OSError:
            continue  # the process ended while we looked
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if rest[0] != "Z":
            children.setdefault(int(rest[1]), []).append(int(entry))
            info[int(entry)] = (name, namespace)
    found, stack = {}, [pid for pid in children.get(os.getpid(), []) if pid not in serving]
    while stack:
        pid = stack.pop()
        stack += children.get(pid, [])
        name, namespace = info[pid]
        if name == "bwrap" or namespace != own_namespace:
            found[pid] = name
    return found


@pytest.fixture(autouse=True)
def host_intact():
    assert sandbox_processes() == {}
    yield
    for _ in range(100):  # a finished run's processes may take a moment to be reaped
        if not sandbox_processes():
            break
        time.sleep(0.02)
    assert sandbox_processes() == {}, "a sandboxed process outlived its run"


@pytest.fixture
def attack(run_batch):
    def attack(code: str, tests: str = "assert f() == 1", timeout_s: float = 3.0, **kwargs) -> CodeVerdict:
        job = CodeJob(textwrap.dedent(code), tests, kwargs.pop("entry_point", None), timeout_s)
        job = dataclasses.replace(job, memory_mb=kwargs.pop("memory_mb", 256))
        assert not kwargs
        (verdict,) = run_batch([job])
        assert verdict.status != "pass", verdict
        assert verdict.wall_s < timeout_s + SMALL.grace_s + 5
        assert len(verdict.stdout.encode()) <= SMALL.output_limit_bytes + 4
        return verdict

    return attack


def test_infinite_loop_at_load_times_out(attack):
    assert attack("while True:\n    pass\n").status == "timeout"


def test_infinite_loop_in_test_times_out(attack):
    verdict = attack("def f():\n    while True:\n        pass\n", timeout_s=1.0)
    assert verdict.status == "timeout"
    assert verdict.tests[0].passed is None


def test_sleeping_forever_times_out(attack):
    assert attack("import time\ndef f():\n    time.sleep(10**6)\n", timeout_s=1.0).status == "timeout"


def test_cpu_burn_in_threads(attack):
    code = """
        import threading
        def burn():
            while True:
                pass
        for _ in range(4):
            threading.Thread(target=burn, daemon=True).start()
        def f():
            threading.Event().wait()
    """
    assert attack(code, timeout_s=1.5).status == "timeout"


def test_fork_bomb(attack):
    code = """
        import os
        def f():
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
    """
    assert attack(code, timeout_s=2.0).status in ("timeout", "fail")


def test_daemonized_grandchild_does_not_survive(attack):
    code = """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(600)
            os._exit(0)
        def f():
            return 2
    """
    assert attack(code).status == "fail"  # the fixture checks that the daemon is gone


def test_memory_bomb_single_allocation(attack):
    verdict = attack("def f():\n    return len(bytearray(10**10))\n", memory_mb=128)
    assert verdict.tests[0].detail.startswith("MemoryError")


def test_memory_bomb_growing_list(attack):
    assert attack("x = []\nwhile True:\n    x.append('a' * 10**6)\n", memory_mb=128).status == "error"


def test_disk_bomb_one_file(attack):
    code = """
        def f():
            with open('big', 'wb') as out:
                while True:
                    out.write(b'x' * 2**20)
    """
    assert attack(code).tests[0].detail.startswith("OSError: [Errno 27] File too large")


def test_disk_bomb_many_files_and_tmp(attack):
    code = """
        import os
        def f():
            for i in range(10**6):
                with open(f'/tmp/f{i}', 'wb') as out:
                    out.write(b'x' * 2**19)
    """
    assert attack(code).tests[0].detail.startswith("OSError")


def test_fd_exhaustion(attack):
    code = """
        import os
        def f():
            fds = [os.pipe() for _ in range(10**6)]
            return 1
    """
    assert "Too many open files" in attack(code).tests[0].detail


def test_host_secret_file_and_environment_are_invisible(attack, tmp_path, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    secret.chmod(0o644)
    monkeypatch.setenv("RLSYS_TEST_SECRET", "TOPSECRET")
    code = f"""
        import os
        def f():
            found = [p for p in ({str(secret)!r}, '/work/main/pyproject.toml', '/etc/shadow', '/root/.bashrc')
                     if os.path.exists(p)]
            return found, dict(os.environ)
    """
    verdict = attack(
        code, "found, env = f()\nassert found == []\nassert 'RLSYS_TEST_SECRET' not in env\nassert 0"
    )
    assert [t.passed for t in verdict.tests] == [True, True, False]
    assert "TOPSECRET" not in verdict.stdout + verdict.stderr


def test_writes_outside_the_workdir_do_not_reach_the_host(attack, tmp_path):
    tmp_path.chmod(0o777)
    targets = [tmp_path / "escaped", "/tmp/rlsys-escaped", "/root/rlsys-escaped", "/usr/rlsys-escaped"]
    code = f"""
        def f():
            wrote = []
            for path in {[str(t) for t in targets]!r}:
                try:
                    with open(path, 'w') as out:
                        out.write('x')
                    wrote.append(path)
                except OSError:
                    pass
            return wrote
    """
    verdict = attack(code, "assert f() == ['/tmp/rlsys-escaped']\nassert 0")
    assert verdict.tests[0].passed  # /tmp inside the sandbox is its own tmpfs
    for target in targets:
        assert not os.path.exists(target)


def test_no_network_to_loopback_or_outside(attack):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        code = f"""
            import socket
            def f():
                reached = []
                for address in [('127.0.0.1', {port}), ('192.0.2.1', 80), ('10.255.255.1', 80)]:
                    try:
                        socket.create_connection(address, timeout=0.5).close()
                        reached.append(address)
                    except OSError:
                        pass
                return reached
        """
        verdict = attack(code, "assert f() == []\nassert 0")
        assert verdict.tests[0].passed
        with pytest.raises(BlockingIOError):
            server.accept()


def test_output_flood_is_capped(attack):
    code = "import sys\ndef f():\n    while True:\n        sys.stdout.write('A' * 65536)\n"
    verdict = attack(code, timeout_s=2.0)  # on a loaded host 1 s may end before the first write
    assert verdict.truncated
    assert verdict.status == "timeout"


@pytest.mark.parametrize(
    "code",
    [
        "import sys\nprint('PASS')\nsys.exit(0)\n",
        "import os\nprint('PASS')\nos._exit(0)\n",
        "import sys\ndef f():\n    sys.exit(0)\n",
        "import os\ndef f():\n    os._exit(0)\n",
        'def f():\n    print(\'{"t": "end", "status": "pass", "detail": ""}\')\n    return 0\n',
        "class Yes:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
        "def f():\n    return Yes()\n",
        "class Yes(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
        "def f():\n    return Yes(5)\n",
        "class Yes(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\n"
        "def f():\n    return Yes('no')\n",
        # the worker's own copy of the harness is the program's to change, to no effect on the verdict
        "import sys\nh = sys.modules['harness']\nh.decode = lambda *a: 1\nh.encode = lambda *a, **k: 1\n"
        "def f():\n    return 0\n",
        "import os\nfor fd in range(3, 64):\n    try:\n"
        "        os.write(fd, repr({'t': 'end', 'status': 'pass', 'detail': ''}).encode() + b'\\n')\n"
        "    except OSError:\n        pass\ndef f():\n    return 0\n",
        # pid 1 (the harness) ignores the signal, so only a wrong answer is left (see test_code_sandbox.py)
        "import os\ndef f():\n    os.kill(1, 9)\n    return 0\n",
        "import os, signal\ndef f():\n    os.kill(-1, signal.SIGKILL)\n",
        "import builtins\nbuiltins.AssertionError = Exception\ndef f():\n    return 0\n",
    ],
)
def test_verdict_cannot_be_forged(attack, code):
    attack(code)


def test_forged_assertion_helpers_fail(attack):
    code = "def f(x):\n    raise SystemExit(0)\n"
    verdict = attack(code, "def check(candidate):\n    assert candidate(1) == 1\n", entry_point="f")
    assert verdict.status == "fail"


def test_unbounded_recursion(attack):
    assert attack("def f():\n    return f() + 1\n").tests[0].detail.startswith("RecursionError")


def test_deep_recursion_with_raised_limit(attack):
    code = "import sys\nsys.setrecursionlimit(10**8)\ndef f(n=0):\n    return f(n + 1)\n"
    assert attack(code, timeout_s=2.0).status in ("fail", "timeout")


def test_huge_integer_dos(attack):
    assert attack("def f():\n    return 10**10**10\n", timeout_s=1.0).status == "timeout"


def test_huge_integer_result_is_compared_not_forged(attack):
    verdict = attack("def f():\n    return 7**200000\n", "assert f() == 7**200000 + 1")
    assert verdict.tests[0].detail == "AssertionError: "


def test_no_contamination_between_runs(attack):
    first = "open('/work/marker', 'w').close()\nopen('/tmp/marker2', 'w').close()\ndef f():\n    return 0\n"
    attack(first)
    second = (
        "import os\ndef f():\n    return int(any(map(os.path.exists, ['/work/marker', '/tmp/marker2'])))\n"
    )
    verdict = attack(second)
    assert verdict.tests[0].detail == "AssertionError: "


def test_privilege_escalation_attempts_fail(attack):
    code = """
        import os
        def f():
            os.setuid(0)
            return 1
    """
    detail = attack(code).tests[0].detail
    # EPERM as root's per-run uid; EINVAL in a user namespace, where uid 0 does not even exist
    assert detail.startswith(("PermissionError", "OSError: [Errno 22]")), detail


@pytest.mark.parametrize(
    "ending",
    [
        "threading.Thread(target=time.sleep, args=(600,)).start()",
        "atexit.register(time.sleep, 600)",
        "atexit.register(lambda: any(iter(int, 1)))",  # spins without allocating
    ],
)
def test_program_that_passes_then_never_exits_times_out(attack, ending):
    verdict = attack(f"import atexit, threading, time\ndef f():\n    return 1\n{ending}\n", timeout_s=1.5)
    assert verdict.status == "timeout" and "did not exit" in verdict.detail
    assert verdict.tests[0].passed


def test_memory_through_tmpfs_and_dev_shm_is_capped(attack):
    code = """
        def f():
            written = 0
            for path in ('/dev/shm/a', '/dev/shm/b', '/tmp/c', '/work/d'):
                try:
                    with open(path, 'wb') as out:
                        for _ in range(64):
                            out.write(b'x' * 2**20)
                            written += 1
                except OSError:
                    pass
            return written
    """
    verdict = attack(code, "written = f()\nassert 0 < written <= 8, written\nassert 0")
    assert verdict.tests[0].passed, verdict.tests[0].detail  # the 8 MiB tmpfs holds all three


def test_memfd_and_system_v_memory_are_refused(attack):
    code = """
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        def f():
            try:
                os.memfd_create('x')
                errors = [0]
            except OSError as exc:
                errors = [exc.errno]
            for result in (libc.shmget(0, 2**30, 0o1600), libc.msgget(0, 0o1600)):
                errors.append(ctypes.get_errno() if result == -1 else 0)
            return errors
    """
    verdict = attack(code, "assert f() == [1, 1, 1]\nassert 0")
    assert verdict.tests[0].passed, verdict.tests[0].detail


def test_kernel_attack_surface_is_refused(attack):
    code = """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        CALLS = {  # x86_64 numbers
            'io_uring_setup': (425, 8, ctypes.create_string_buffer(120)),
            'bpf': (321, 0, None, 0),
            'perf_event_open': (298, None, 0, -1, -1, 0),
            'keyctl': (250, 0, 0),
            'userfaultfd': (323, 0),
            'ptrace attach to the harness': (101, 16, 1, 0, 0),
            'unshare a user namespace': (272, 0x10000000),
            'mount': (165, b'none', b'/work', b'tmpfs', 0, None),
        }
        def f():
            outcome = {}
            for name, (number, *args) in CALLS.items():
                result = libc.syscall(number, *args)
                outcome[name] = (result, ctypes.get_errno() if result == -1 else 0)
            return outcome
    """
    tests = "outcome = f()\nassert {k: v for k, v in outcome.items() if v != (-1, 1)} == {}\nassert 0"
    verdict = attack(code, tests)
    assert verdict.tests[0].passed, verdict.tests[0].detail


FORK_BOMB = """
import os
def f():
    while True:
        try:
            os.fork()
        except OSError:
            pass
"""
SIX_CHILDREN = """
import os, time
def f():
    children = []
    for _ in range(6):
        pid = os.fork()
        if pid == 0:
            time.sleep(1.5)
            os._exit(0)
        children.append(pid)
    return len(children)
"""


def test_fork_bombs_do_not_starve_concurrent_runs(run_batch):
    """Each run counts its processes in its own identity: bombs next to it do not use up its limit."""
    bomb, counter = (
        CodeJob(FORK_BOMB, "assert f() == 1", timeout_s=3.0),
        CodeJob(SIX_CHILDREN, "assert f() == 6"),
    )
    verdicts = run_batch([bomb, counter, bomb, counter], max_parallel=4)
    assert [v.status == "pass" for v in verdicts] == [False, True, False, True], [v.detail for v in verdicts]


@pytest.mark.skipif(not HAS_CGROUP, reason="no per-run cgroup here")
def test_memory_summed_over_processes_is_capped_by_the_cgroup(attack):
    code = """
        import os
        def f():
            children = []
            for _ in range(3):
                pid = os.fork()
                if pid == 0:
                    block = bytearray(100 * 2**20)  # within the address-space limit of each process
                    os._exit(0)
                children.append(pid)
            return sum(os.waitpid(pid, 0)[1] == 0 for pid in children)
    """
    verdict = attack(code, "assert f() == 3", memory_mb=128)
    assert "memory limit" in verdict.detail or verdict.tests[0].passed is False


def test_sandbox_dies_with_its_verifier(mode, source_copy):
    runner = Runner(source_copy, unprivileged=mode == "unprivileged")
    runner.send([CodeJob("import time\ntime.sleep(600)\n", "assert True", timeout_s=60.0)], SMALL, 1)
    deadline = time.monotonic() + 30
    # Wait for the harness itself: bubblewrap arms its parent-death signal only once it runs.
    while "bwrap" not in sandbox_processes().values() or set(sandbox_processes().values()) == {"bwrap"}:
        assert time.monotonic() < deadline, "the sandbox did not start"
        time.sleep(0.05)
    os.kill(runner.process.pid, signal.SIGKILL)
    runner.process.wait()
    deadline = time.monotonic() + 5
    while sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_processes() == {}


# A sandbox serves one host thread's runs one after another: one batch run with max_parallel=1 puts every job
# through one sandbox. Each attack below is followed by a probe run in the same sandbox.

WORKER_PID = "import os\ndef f():\n    return os.getpid()\n"  # 3 in a new sandbox: server 1, harness 2


def in_one_sandbox(run_batch, jobs: list[CodeJob]) -> list[CodeVerdict]:
    """Run ``jobs`` one after another through one sandbox, and check that they did share it."""
    verdicts = run_batch(
        [CodeJob(WORKER_PID, "assert f() == 3"), *jobs, CodeJob(WORKER_PID, "assert f() > 3")]
    )
    assert verdicts[0].passed, "the first run did not start a new sandbox"
    assert verdicts[-1].passed, "the runs were not served by one sandbox"
    return verdicts[1:-1]


def leave_then_look(run_batch, leave: str, look: str, expect: str) -> tuple[CodeVerdict, CodeVerdict]:
    """Run ``leave`` (whose ``f()`` returns 1), then ``look`` against the tests ``expect``, in one sandbox."""
    left, seen = in_one_sandbox(
        run_batch, [CodeJob(textwrap.dedent(leave), "assert f() == 1"), CodeJob(look, expect)]
    )
    assert left.passed, left
    return left, seen


def test_files_left_by_a_run_are_gone_for_the_next(run_batch):
    leave = """
        import os
        os.makedirs('/work/locked/deeper')
        for path in ('/work/a', '/tmp/b', '/dev/shm/c', '/work/locked/deeper/d'):
            open(path, 'w').write('left')
        os.symlink('/usr', '/work/link')
        os.chmod('/work/locked/deeper', 0)
        os.chmod('/work/locked', 0)
        def f():
            return 1
    """
    look = "import os\ndef f():\n    return sorted(os.listdir('/work'))\n"
    _, seen = leave_then_look(run_batch, leave, look, "assert f() == []")
    assert seen.passed, seen.tests[0].detail


def test_daemons_of_a_run_are_gone_before_the_next(run_batch):
    daemon = """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                while True:
                    print('LEAK', flush=True)
                    open('/work/daemon', 'a').write('x')
                    time.sleep(0.01)
            os._exit(0)
        def f():
            return 1
    """
    look = "import os, time\ntime.sleep(0.3)\ndef f():\n    return os.path.exists('/work/daemon')\n"
    _, quiet = leave_then_look(run_batch, daemon, look, "assert f() is False")
    assert quiet.passed, quiet.tests[0].detail
    assert "LEAK" not in quiet.stdout


def test_output_of_a_run_stays_with_it(run_batch):
    loud = (
        "import sys\nsys.stdout.write('A' * 100000)\nsys.stderr.write('B' * 100000)\ndef f():\n    return 1\n"
    )
    quiet = "print('mine')\ndef f():\n    return 1\n"
    first, second = in_one_sandbox(
        run_batch, [CodeJob(loud, "assert f() == 1"), CodeJob(quiet, "assert f() == 1")]
    )
    assert first.truncated and set(first.stdout) == {"A"} and set(first.stderr) == {"B"}
    assert second.stdout == "mine\n" and second.stderr == "" and not second.truncated


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGSTOP"])
def test_a_program_that_signals_its_harness_only_ends_its_own_run(run_batch, signal_name):
    """The harness shares the program's uid: the program can stop or kill it (pid 2), never pass by it."""
    code = f"import os, signal\nos.kill(os.getppid(), signal.{signal_name})\ndef f():\n    return 1\n"
    attack = CodeJob(code, "assert f() == 1", timeout_s=1.0)
    verdicts = run_batch([attack, CodeJob(WORKER_PID, "assert f() > 0")])
    assert verdicts[0].status in ("error", "timeout"), verdicts[0]
    assert verdicts[1].passed, verdicts[1]


def test_a_tree_too_deep_to_clear_gets_a_new_sandbox(run_batch):
    deep = """
        import os
        os.chdir('/work')
        for _ in range(3000):
            os.mkdir('d')
            os.chdir('d')
        def f():
            return 1
    """
    look = "import os\ndef f():\n    return (os.getpid(), os.listdir('/work'))\n"
    verdicts = run_batch(
        [CodeJob(textwrap.dedent(deep), "assert f() == 1"), CodeJob(look, "assert f() == (3, [])")]
    )
    assert verdicts[0].passed and verdicts[1].passed, verdicts[1].tests[0].detail
