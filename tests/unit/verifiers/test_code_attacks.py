"""Hostile programs: each must end in a bounded non-pass verdict and leave the host intact.

Every attack runs only through the sandbox, with small limits. After each test no process may run under a
sandbox uid, and nothing may appear outside the sandbox.
"""

import os
import socket
import textwrap

import pytest

from verifiers.code import CodeVerdict, SandboxConfig, run_tests
from verifiers.code.isolation import probe

pytestmark = pytest.mark.skipif(probe()[0] is None, reason=f"no sandbox isolation here: {probe()[1]}")

SMALL = SandboxConfig(max_processes=8, disk_mb=8, max_file_mb=4, output_limit_bytes=4096)
SANDBOX_UIDS = range(1_000_000, 2_000_002)


def sandbox_processes() -> list[int]:
    """Host pids running under a sandbox uid."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    uid_line = next(line for line in f if line.startswith("Uid:"))
            except (OSError, StopIteration):
                continue  # the process ended while we looked
            if int(uid_line.split()[1]) in SANDBOX_UIDS:
                pids.append(int(entry))
    return pids


@pytest.fixture(autouse=True)
def host_intact():
    assert sandbox_processes() == []
    yield
    assert sandbox_processes() == [], "a sandboxed process outlived its run"


def attack(code: str, tests: str = "assert f() == 1", timeout_s: float = 3.0, **kwargs) -> CodeVerdict:
    verdict = run_tests(
        textwrap.dedent(code), tests, timeout_s, kwargs.pop("memory_mb", 256), config=SMALL, **kwargs
    )
    assert verdict.status != "pass", verdict
    assert verdict.wall_s < timeout_s + SMALL.grace_s + 5
    assert len(verdict.stdout.encode()) <= SMALL.output_limit_bytes + 4
    return verdict


def test_infinite_loop_at_load_times_out():
    assert attack("while True:\n    pass\n").status == "timeout"


def test_infinite_loop_in_test_times_out():
    verdict = attack("def f():\n    while True:\n        pass\n", timeout_s=1.0)
    assert verdict.status == "timeout"
    assert verdict.tests[0].passed is None


def test_sleeping_forever_times_out():
    assert attack("import time\ndef f():\n    time.sleep(10**6)\n", timeout_s=1.0).status == "timeout"


def test_cpu_burn_in_threads():
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


def test_fork_bomb():
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


def test_daemonized_grandchild_does_not_survive():
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


def test_memory_bomb_single_allocation():
    verdict = attack("def f():\n    return len(bytearray(10**10))\n", memory_mb=128)
    assert verdict.tests[0].detail.startswith("MemoryError")


def test_memory_bomb_growing_list():
    assert attack("x = []\nwhile True:\n    x.append('a' * 10**6)\n", memory_mb=128).status == "error"


def test_disk_bomb_one_file():
    code = """
        def f():
            with open('big', 'wb') as out:
                while True:
                    out.write(b'x' * 2**20)
    """
    assert attack(code).tests[0].detail.startswith("OSError: [Errno 27] File too large")


def test_disk_bomb_many_files_and_tmp():
    code = """
        import os
        def f():
            for i in range(10**6):
                with open(f'/tmp/f{i}', 'wb') as out:
                    out.write(b'x' * 2**19)
    """
    assert attack(code).tests[0].detail.startswith("OSError")


def test_fd_exhaustion():
    code = """
        import os
        def f():
            fds = [os.pipe() for _ in range(10**6)]
            return 1
    """
    assert "Too many open files" in attack(code).tests[0].detail


def test_host_secret_file_and_environment_are_invisible(tmp_path, monkeypatch):
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


def test_writes_outside_the_workdir_do_not_reach_the_host(tmp_path):
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


def test_no_network_to_loopback_or_outside():
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


def test_output_flood_is_capped():
    code = "import sys\ndef f():\n    while True:\n        sys.stdout.write('A' * 65536)\n"
    verdict = attack(code, timeout_s=1.0)
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
        "import os\ndef f():\n    os.kill(1, 9)\n    return 1\n",
        "import os, signal\ndef f():\n    os.kill(-1, signal.SIGKILL)\n",
        "import builtins\nbuiltins.AssertionError = Exception\ndef f():\n    return 0\n",
    ],
)
def test_verdict_cannot_be_forged(code):
    attack(code)


def test_forged_assertion_helpers_fail():
    code = "def f(x):\n    raise SystemExit(0)\n"
    verdict = attack(code, "def check(candidate):\n    assert candidate(1) == 1\n", entry_point="f")
    assert verdict.status == "fail"


def test_unbounded_recursion():
    assert attack("def f():\n    return f() + 1\n").tests[0].detail.startswith("RecursionError")


def test_deep_recursion_with_raised_limit():
    code = "import sys\nsys.setrecursionlimit(10**8)\ndef f(n=0):\n    return f(n + 1)\n"
    assert attack(code, timeout_s=2.0).status in ("fail", "timeout")


def test_huge_integer_dos():
    assert attack("def f():\n    return 10**10**10\n", timeout_s=1.0).status == "timeout"


def test_huge_integer_result_is_compared_not_forged():
    verdict = attack("def f():\n    return 7**200000\n", "assert f() == 7**200000 + 1")
    assert verdict.tests[0].detail == "AssertionError: "


def test_no_contamination_between_runs():
    first = "open('/work/marker', 'w').close()\nopen('/tmp/marker2', 'w').close()\ndef f():\n    return 0\n"
    attack(first)
    second = (
        "import os\ndef f():\n    return int(any(map(os.path.exists, ['/work/marker', '/tmp/marker2'])))\n"
    )
    verdict = attack(second)
    assert verdict.tests[0].detail == "AssertionError: "


def test_privilege_escalation_attempts_fail():
    code = """
        import os
        def f():
            os.setuid(0)
            return 1
    """
    assert attack(code).tests[0].detail.startswith("PermissionError")
