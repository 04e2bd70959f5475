"""Run an untrusted program against trusted tests in a sandbox and return a ``CodeVerdict``.

Launch: ``run_tests(code, tests, timeout_s)`` from any Python process on Linux; root and util-linux
``unshare`` give full isolation (see ``SandboxConfig.isolation`` otherwise).

Threat model. The program (``code``) is hostile; the tests and this host process are trusted. Each run:

- enters fresh net, mount, pid, ipc and uts namespaces (``unshare``): no network at all (not even
  loopback), its own process tree whose init is the harness, so when the harness ends or the host kills the
  run every process of the run dies, double-forked daemons included;
- sees a read-only tmpfs root holding only /usr, the interpreter's prefix, four device nodes and a fresh
  size-limited tmpfs working directory (also /tmp) that vanishes with the namespace: no host files,
  secrets, other runs' files or this repository; a clean environment;
- runs the program in a worker process with a uid of its own (fresh per run), no capabilities,
  ``no_new_privs``, a new session, and rlimits on CPU time, address space, processes, file size and open
  files; the host also enforces a wall-clock limit and caps the output it keeps.

The verdict cannot be forged by the program: the harness, a separate process under another uid that the
worker cannot signal or trace, runs the tests itself. The worker only ever receives argument values and
returns values; the harness decodes replies into plain built-in values (``harness.decode``), so an object
with a rigged ``__eq__`` never reaches a comparison, and results go to the host over a pipe the worker
closed before the program was loaded. The worker's exit code and stdout play no part in the verdict, and it
never holds the tests (it is forked before they are read), so it cannot read the expected answers.

What it does NOT protect against: kernel exploits (the worker shares the host kernel; no seccomp filter);
timing and covert channels; hostile tests (they run unconfined by rlimits in the harness, as its uid);
CPU and memory use summed over many processes (limits are per process; no cgroup); a program that computes
the right answers by reading the tests' inputs. Tests see only values: an argument mutated in place by the
program is not copied back, and objects without a plain-value encoding can be called and iterated but not
compared. Without namespaces (``isolation="warn"``) there is no file-system or network isolation and, when
not root, the worker shares the harness's uid and could tamper with it: such verdicts are not trustworthy.
"""

import ast
import logging
import marshal
import math
import os
import selectors
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from verifiers.code import harness
from verifiers.code.isolation import NAMESPACES, IsolationUnavailable, allocate_uid, kill_uid, probe
from verifiers.code.limits import SandboxConfig
from verifiers.code.testplan import prepare
from verifiers.code.verdict import CodeVerdict, TestResult

logger = logging.getLogger(__name__)

_HARNESS_DIR = os.path.dirname(os.path.abspath(harness.__file__))
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); import harness; harness.main()"
_MAX_EVENTS_BYTES = 16 << 20
_warned = False


@dataclass(frozen=True)
class CodeJob:
    """One program and its tests, for ``run_tests_batch``."""

    code: str
    tests: str
    entry_point: str | None = None
    timeout_s: float = 10.0
    memory_mb: int = 512


def run_tests(
    code: str,
    tests: str,
    timeout_s: float,
    memory_mb: int = 512,
    *,
    entry_point: str | None = None,
    config: SandboxConfig | None = None,
) -> CodeVerdict:
    """Run ``code`` against ``tests`` in a fresh sandbox.

    ``tests`` is Python source in one of two forms:

    - HumanEval style, with ``entry_point``: it defines ``check(candidate)``, which is called with the
      program's function ``entry_point``; each top-level statement of ``check`` holding an ``assert`` is
      one test.
    - Without ``entry_point``: top-level statements, e.g. ``assert add(1, 2) == 3`` lines; each holding an
      ``assert`` is one test; names the tests do not define resolve to the program's globals.

    Other statements (imports, helpers, setup) run as written; an exception there ends the tests. Tests
    containing no ``assert`` at all are a single test that passes if they run to the end. All tests run
    even after one fails. ``timeout_s`` bounds wall-clock and CPU time of the whole run; ``memory_mb``
    the address space of each of the program's processes.
    """
    if timeout_s <= 0 or memory_mb < 16:
        raise ValueError("timeout_s must be positive and memory_mb at least 16")
    config = config or SandboxConfig()
    try:
        prepared = prepare(tests, entry_point)
    except (SyntaxError, ValueError) as exc:
        return _refused(f"tests are malformed: {exc}")
    prefix, reason = probe()
    if prefix is None:
        if config.isolation == "require":
            raise IsolationUnavailable(f"cannot isolate sandboxed programs: {reason}")
        _warn_once(reason)
    root = os.geteuid() == 0
    uid = allocate_uid()
    workdir = None if prefix else tempfile.mkdtemp(prefix="rlsys-sandbox-")
    if workdir and root:
        os.chown(workdir, uid, uid)
    isolation = "+".join(
        (
            f"namespaces({','.join(NAMESPACES)})" if prefix else f"NONE({reason})",
            "uid" if root else "same-uid",
        )
    )
    cfg = {
        "timeout_s": timeout_s,
        "cpu_s": math.ceil(timeout_s) + 1,
        "memory_bytes": memory_mb << 20,
        "max_processes": config.max_processes,
        "max_open_files": config.max_open_files,
        "max_file_bytes": config.max_file_mb << 20,
        "disk_bytes": config.disk_mb << 20,
        "max_inodes": config.max_inodes,
        "max_value_bytes": config.max_value_mb << 20,
        "max_job_bytes": 4 * (len(code) + len(prepared.source)) + 300 * len(prepared.units) + 4096,
        "isolate": prefix is not None,
        "drop_uid": root,
        "worker_uid": uid,
        "workdir": workdir,
        "harness_dir": _HARNESS_DIR,
        "import_paths": list(config.import_paths),
        "env": _environment(workdir or "/work"),
    }
    job = {
        "code": code,
        "tests": prepared.source,
        "units": [{"name": name, "line": line} for name, line in prepared.units],
        "whole_module": prepared.whole_module,
        "entry_point": entry_point,
    }
    stdin = harness.frame(marshal.dumps(cfg), 1 << 20) + harness.frame(
        marshal.dumps(job), cfg["max_job_bytes"]
    )
    argv = [*(prefix or []), config.python, "-I", "-S", "-c", _BOOT, _HARNESS_DIR]
    try:
        run = _execute(argv, stdin, timeout_s + config.grace_s, config.output_limit_bytes, cfg["env"])
    finally:
        if workdir:
            if root:
                kill_uid(uid, config.python)
            shutil.rmtree(workdir, ignore_errors=True)
    return _verdict(run, isolation + "+rlimits")


def run_tests_batch(
    jobs: Sequence[CodeJob], config: SandboxConfig | None = None, max_parallel: int | None = None
) -> list[CodeVerdict]:
    """Run many jobs, ``max_parallel`` sandboxes at a time (default: the number of CPUs); results in order."""
    workers = max_parallel or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(
                run_tests, j.code, j.tests, j.timeout_s, j.memory_mb, entry_point=j.entry_point, config=config
            )
            for j in jobs
        ]
        return [f.result() for f in futures]


def _warn_once(reason: str) -> None:
    global _warned
    if not _warned:
        logger.warning(
            "CODE SANDBOX IS NOT ISOLATED (%s): untrusted programs run with rlimits only; "
            "their verdicts and this host are at their mercy. Use root and util-linux unshare.",
            reason,
        )
        _warned = True


def _environment(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8"}


@dataclass
class _Run:
    """What the host saw of one sandbox process."""

    events: list[dict]
    stdout: bytes
    stderr: bytes
    truncated: bool
    timed_out: bool
    wait_status: int
    cpu_s: float
    max_rss_kb: int
    wall_s: float


def _execute(argv: list[str], stdin: bytes, wall_s: float, cap: int, env: dict[str, str]) -> _Run:
    """Spawn the sandbox in its own session, feed it, collect its output until it ends or time is up."""
    fds = {name: os.pipe() for name in ("stdin", "stdout", "stderr", "events")}
    events_w = fds["events"][1]
    if events_w == 3:  # dup2 onto itself would leave close-on-exec set
        events_w = os.dup(3)
        os.close(3)
    actions = [
        (os.POSIX_SPAWN_DUP2, fds["stdin"][0], 0),
        (os.POSIX_SPAWN_DUP2, fds["stdout"][1], 1),
        (os.POSIX_SPAWN_DUP2, fds["stderr"][1], 2),
        (os.POSIX_SPAWN_DUP2, events_w, harness.RESULT_FD),
    ]
    started = time.monotonic()
    try:
        pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
    finally:
        for fd in (fds["stdin"][0], fds["stdout"][1], fds["stderr"][1], events_w):
            os.close(fd)
    buffers = {"stdout": bytearray(), "stderr": bytearray(), "events": bytearray()}
    limits = {"stdout": cap, "stderr": cap, "events": _MAX_EVENTS_BYTES}
    truncated = timed_out = False
    pending = memoryview(stdin)
    with selectors.DefaultSelector() as selector:
        os.set_blocking(fds["stdin"][1], False)
        selector.register(fds["stdin"][1], selectors.EVENT_WRITE, "stdin")
        for name in buffers:
            selector.register(fds[name][0], selectors.EVENT_READ, name)
        deadline = started + wall_s
        while any(key.data != "stdin" for key in selector.get_map().values()):
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in selector.select(left):
                name = key.data
                if name == "stdin":
                    try:
                        pending = pending[os.write(key.fd, pending) :]
                    except BrokenPipeError:
                        pending = pending[:0]
                    if not pending:
                        selector.unregister(key.fd)
                        os.close(key.fd)
                    continue
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                room = limits[name] - len(buffers[name])
                buffers[name] += chunk[: max(room, 0)]
                truncated |= len(chunk) > room and name != "events"
        if timed_out:
            os.killpg(pid, signal.SIGKILL)
        for key in list(selector.get_map().values()):
            selector.unregister(key.fd)
            if key.data == "stdin":
                os.close(key.fd)
    for name in buffers:
        os.close(fds[name][0])
    _, status, usage = os.wait4(pid, 0)
    return _Run(
        events=_parse_events(bytes(buffers["events"])),
        stdout=bytes(buffers["stdout"]),
        stderr=bytes(buffers["stderr"]),
        truncated=truncated,
        timed_out=timed_out,
        wait_status=status,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_kb=usage.ru_maxrss,
        wall_s=time.monotonic() - started,
    )


def _parse_events(data: bytes) -> list[dict]:
    events = []
    for line in data.splitlines():
        try:
            event = ast.literal_eval(line.decode())
        except (ValueError, SyntaxError, UnicodeDecodeError, RecursionError):
            break  # a line cut by the size cap or a kill: what follows is incomplete
        if not isinstance(event, dict):
            break
        events.append(event)
    return events


def _refused(detail: str) -> CodeVerdict:
    return CodeVerdict("error", (), "", "", False, 0.0, 0.0, 0.0, detail, "not run")


def _verdict(run: _Run, isolation: str) -> CodeVerdict:
    """Turn the harness's events and the host's observations into a verdict."""
    plan = next((e["tests"] for e in run.events if e.get("t") == "plan"), [])
    outcomes = {e["i"]: e for e in run.events if e.get("t") == "test"}
    end = next((e for e in run.events if e.get("t") == "end"), None)
    tests = tuple(
        TestResult(
            name=unit["name"],
            line=unit["line"],
            passed=outcomes[i]["passed"] if i in outcomes else None,
            detail=outcomes[i]["detail"] if i in outcomes else "not run",
        )
        for i, unit in enumerate(plan)
    )
    if end is not None:
        status, detail = end["status"], end["detail"]
    elif run.timed_out:
        status, detail = "timeout", "wall-clock limit exceeded; the sandbox was killed"
    else:
        tail = run.stderr.decode(errors="replace").strip().splitlines()[-3:]
        status = "error"
        detail = f"sandbox ended without a verdict (wait status {run.wait_status}): {' | '.join(tail)}"
    if status == "pass" and not (tests and all(t.passed for t in tests)):
        status, detail = "fail", f"inconsistent harness report: {detail}"
    return CodeVerdict(
        status=status,
        tests=tests,
        stdout=run.stdout.decode(errors="replace"),
        stderr=run.stderr.decode(errors="replace"),
        truncated=run.truncated,
        cpu_s=run.cpu_s,
        max_rss_mb=run.max_rss_kb / 1024,
        wall_s=run.wall_s,
        detail=detail,
        isolation=isolation,
    )
