"""Run an untrusted program against trusted tests in a sandbox and return a ``CodeVerdict``.

Launch: ``run_tests(code, tests, timeout_s)`` from any Python process on Linux with bubblewrap (``bwrap``)
and, for the seccomp filter, the system's ``python3-seccomp`` (``scripts/setup.sh`` installs both); no root
needed. ``verifiers.code.isolation.probe`` says which mechanisms work on a host and why not; by default a
missing one makes every run raise ``IsolationUnavailable`` (see ``SandboxConfig.allow_missing``).

Threat model. The program (``code``) is hostile; the tests and this host process are trusted. Runs are
served by sandboxes: one per host thread (and limits), started with that thread's first run and reused by its
next ones, since starting bubblewrap and an interpreter costs far more than a small program's run (see
``harness``). Each run:

- runs inside the pid, net, mount, ipc, uts and cgroup namespaces made by bubblewrap for its sandbox, and,
  without root, a user namespace of the sandbox's own in which it holds no capabilities and may create no
  further user namespace. The sandbox's server is the namespace's pid 1 and never reads a run's data; for
  each run it forks a fresh harness, and when that harness has ended it kills every other process of the
  namespace (double-forked daemons included) and empties the tmpfs before the next run starts; its exit
  ends every process of the sandbox, and it exits as soon as the host closes the events pipe, or dies, or
  the thread that started the sandbox ends (parent-death signals). No network at all (its own loopback only);
- sees a read-only root holding only /usr, the interpreter's prefix, four device nodes and one size-limited
  tmpfs that is the working directory, /tmp and /dev/shm, emptied after every run: no host files, secrets,
  other runs' files or this repository; /proc and /sys are not mounted; a clean environment;
- runs under a seccomp filter (``seccomp_filter.py``, built with libseccomp) that refuses io_uring, bpf,
  perf_event_open, userfaultfd, keyrings, ptrace and process_vm_*, new namespaces, mounts, file handles,
  memfd_create, System V shared memory and message queues, and host administration calls;
- runs the program in a worker process with rlimits on CPU time, address space (per process), processes,
  file size and open files, no_new_privs and a new session; with cgroup v2 (``cgroup.py``) its processes
  share one budget of memory (tmpfs, shared memory, pipe buffers and kernel memory included: memory.max),
  processes (pids.max) and CPUs (cpu.max) in the sandbox's cgroup, which holds nothing else;
- has an identity no concurrent run shares: without root its sandbox's own user namespace, in which
  RLIMIT_NPROC counts only the run's processes, the server and the harness; as root (bubblewrap then makes no
  user namespace, whose only uid would be root's, exempt from RLIMIT_NPROC) a uid derived from the host thread
  that owns the sandbox, to which the server drops before it reads anything;
- must exit: after the tests the program's input is closed and it must end as it would on its own (non-daemon
  threads, exit handlers) by the deadline, or the verdict is ``timeout`` whatever its tests said. The host
  enforces a wall-clock limit and caps the output it keeps.

The verdict cannot be forged by the program: the harness, which the program cannot trace (seccomp) or see in
/proc (not mounted), runs the tests itself and alone holds the events pipe with the server, which the program
cannot signal (pid 1 handles no signal). The program can signal its harness (they share a uid): stopping or
killing it only ends its own run without a verdict (a timeout or an error). The worker only ever receives
argument values and returns values; the harness decodes replies into plain built-in values
(``harness.decode``), so an object with a rigged ``__eq__`` never reaches a comparison, and results go to the
host over a pipe the worker closed before the program was loaded. The worker's exit code and stdout play no
part in the verdict, and it never holds the tests (it is forked before they are read), so it cannot read the
expected answers.

What it does NOT protect against: kernel exploits through the system calls the filter allows (the sandbox
shares the host kernel); timing and covert channels; hostile tests (they run in the harness, outside the
worker's rlimits and cgroup); a program that computes the right answers by reading the tests' inputs; a kernel
object that outlives every process and file of a run and that the filter allows (none is known). Without root
the program's processes run under the verifier's own uid (in their own namespaces), as root under a uid of
their own. Without a cgroup (``allow_missing=("cgroup",)``, named ``NO-CGROUP`` in the verdict) memory is
bounded per process only: up to ``max_processes`` x the address-space limit, plus kernel memory (inodes of the
tmpfs, whose count bubblewrap cannot cap; pipe and socket buffers), and CPU by RLIMIT_CPU per process. Without
seccomp (``NO-SECCOMP``) the whole system-call surface is open. Tests see only values: an argument mutated in
place by the program is not copied back, and objects without a plain-value encoding can be called and iterated
but not compared.
"""

import ast
import contextlib
import fcntl
import logging
import marshal
import math
import os
import selectors
import signal
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import count

from verifiers.code import harness
from verifiers.code.cgroup import make_cgroup, oom_kills, remove_cgroup
from verifiers.code.isolation import (
    HARNESS_MOUNT,
    WORKDIR,
    Host,
    IsolationUnavailable,
    bwrap_argv,
    pipe_holding,
    probe,
    run_uid,
)
from verifiers.code.limits import SandboxConfig
from verifiers.code.testplan import prepare
from verifiers.code.verdict import CodeVerdict, TestResult

logger = logging.getLogger(__name__)

_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); import harness; harness.serve()"
_MAX_EVENTS_BYTES = 16 << 20
# Descriptors the sandbox inherits: the events, the sandbox cgroup's cgroup.procs (for each worker to join),
# the seccomp filter (read by bubblewrap).
_CGROUP_FD, _SECCOMP_FD = 4, 5
_sandboxes = count()  # numbers sandbox cgroups; next() is atomic under the GIL
_warned: set[str] = set()
_owned = threading.local()  # the sandboxes of each host thread, by their limits


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
    """Run ``code`` against ``tests`` in this thread's sandbox, which every run finds as the first did.

    ``tests`` is Python source in one of two forms:

    - HumanEval style, with ``entry_point``: it defines ``check(candidate)``, which is called with the
      program's function ``entry_point``; each top-level statement of ``check`` holding an ``assert`` is
      one test.
    - Without ``entry_point``: top-level statements, e.g. ``assert add(1, 2) == 3`` lines; each holding an
      ``assert`` is one test; names the tests do not define resolve to the program's globals.

    Other statements (imports, helpers, setup) run as written; an exception there ends the tests. Tests
    containing no ``assert`` at all are a single test that passes if they run to the end. All tests run
    even after one fails. ``timeout_s`` bounds wall-clock and CPU time of the whole run, the program's exit
    included; ``memory_mb`` the address space of each of the program's processes and, with a cgroup, the
    memory of all of them together. Raises ``IsolationUnavailable`` when a mechanism is missing that
    ``config.allow_missing`` does not waive.
    """
    if timeout_s <= 0 or memory_mb < 16:
        raise ValueError("timeout_s must be positive and memory_mb at least 16")
    config = config or SandboxConfig()
    try:
        prepared = prepare(tests, entry_point)
    except (SyntaxError, ValueError) as exc:
        return _refused(f"tests are malformed: {exc}")
    host = probe(config.python, config.cgroup_parent)
    refusal = host.refusal(config.allow_missing)
    if refusal:
        raise IsolationUnavailable(f"cannot run untrusted code here: {refusal}")
    _warn_once(host.missing)
    cfg = {
        "timeout_s": timeout_s,
        "cpu_s": math.ceil(timeout_s) + 1,
        "memory_bytes": memory_mb << 20,
        "max_processes": config.max_processes,
        "max_open_files": config.max_open_files,
        "max_file_bytes": config.max_file_mb << 20,
        "max_value_bytes": config.max_value_mb << 20,
        "max_job_bytes": 4 * (len(code) + len(prepared.source)) + 300 * len(prepared.units) + 4096,
        "cgroup_fd": _CGROUP_FD if host.cgroup_parent else None,
        "harness_dir": HARNESS_MOUNT,
        "import_paths": list(config.import_paths),
        "env": _environment(),
    }
    job = {
        "code": code,
        "tests": prepared.source,
        "units": [{"name": name, "line": line} for name, line in prepared.units],
        "whole_module": prepared.whole_module,
        "entry_point": entry_point,
    }
    frames = harness.frame(marshal.dumps(cfg), 1 << 20) + harness.frame(
        marshal.dumps(job), cfg["max_job_bytes"]
    )
    sandbox = _sandbox(host, config, memory_mb)
    run, killed = sandbox.run(frames, timeout_s + config.grace_s)
    verdict = _verdict(run, host.label())
    if killed:
        detail = f"{verdict.detail} (the cgroup's memory limit killed {killed} process(es))"
        verdict = replace(verdict, detail=detail)
    return verdict


def run_tests_batch(
    jobs: Sequence[CodeJob], config: SandboxConfig | None = None, max_parallel: int | None = None
) -> list[CodeVerdict]:
    """Run many jobs, ``max_parallel`` sandboxes at a time; results in order.

    The caller should pass the CPUs it was given (a verifier actor: its ``num_cpus``); the default is the
    CPUs this process may run on, which on a shared node is every core.
    """
    workers = max_parallel or len(os.sched_getaffinity(0))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(
                run_tests, j.code, j.tests, j.timeout_s, j.memory_mb, entry_point=j.entry_point, config=config
            )
            for j in jobs
        ]
        return [f.result() for f in futures]


def _warn_once(missing: dict[str, str]) -> None:
    for mechanism, reason in missing.items():
        if mechanism not in _warned:
            _warned.add(mechanism)
            logger.warning("code sandbox runs without %s, as its config allows: %s", mechanism, reason)


def _environment() -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/work", "TMPDIR": "/work", "LANG": "C.UTF-8"}


@dataclass
class _Run:
    """What the host saw of one run."""

    events: list[dict]
    stdout: bytes
    stderr: bytes
    truncated: bool
    timed_out: bool
    wait_status: int
    cpu_s: float
    max_rss_kb: int
    wall_s: float


def _sandbox(host: Host, config: SandboxConfig, memory_mb: int) -> "_Sandbox":
    """This thread's sandbox for these limits, started when it has none that still serves."""
    owned = _owned.__dict__.setdefault("sandboxes", {})
    sandbox = owned.get((config, memory_mb))
    if sandbox is None or sandbox.owner != os.getpid() or not sandbox.alive():
        sandbox = owned[(config, memory_mb)] = _Sandbox(host, config, memory_mb)
    return sandbox


class _Sandbox:
    """A sandbox serving one host thread's runs one at a time (``harness.serve``), on pipes: stdin for the
    runs' frames, stdout and stderr for what the programs print, fd 3 for the events.

    It is started by, and dies with, the thread that owns it (bubblewrap's parent-death signal is the
    thread's); it is stopped and reaped when that thread ends (its thread-local reference goes), when a run
    hits the wall-clock limit, or when the server says it cannot serve again.
    """

    def __init__(self, host: Host, config: SandboxConfig, memory_mb: int) -> None:
        self.cap = config.output_limit_bytes
        seccomp = host.seccomp_bpf if "seccomp" not in host.missing else None
        argv = bwrap_argv(host, config.disk_mb << 20, config.import_paths, _SECCOMP_FD if seccomp else None)
        argv += ["-I", "-S", "-c", _BOOT, HARNESS_MOUNT]
        self.cgroup = None
        inherited = {}
        try:
            if host.cgroup_parent:
                name = f"rlsys-sandbox-{os.getpid()}-{next(_sandboxes)}"
                self.cgroup = make_cgroup(
                    host.cgroup_parent, name, memory_mb << 20, config.max_processes, config.cpus
                )
                procs = os.path.join(self.cgroup, "cgroup.procs")
                inherited[_CGROUP_FD] = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
            if seccomp:
                inherited[_SECCOMP_FD] = pipe_holding(seccomp)
            self.pid, self.stdin, self.outputs = _spawn(argv, _environment(), inherited)  # closes inherited
        except BaseException:
            if self.cgroup:
                remove_cgroup(self.cgroup)
            raise
        self.serving, self.owner = True, os.getpid()
        self._stop = weakref.finalize(
            self, _stop, self.owner, self.pid, self.stdin, self.outputs, self.cgroup
        )
        setup = {"uid": run_uid(), "workdir": WORKDIR}
        self.pending = harness.frame(marshal.dumps(setup), 1 << 16)

    def run(self, frames: bytes, wall_s: float) -> tuple[_Run, int]:
        """Feed one run's frames, collect its output and events until the server reports the sandbox ready
        again, or ``wall_s`` passes (the sandbox is then killed); the run, and the processes the cgroup's
        memory limit killed during it."""
        try:
            return self._exchange(frames, wall_s)
        except BaseException:  # cut short (an interrupt, a failed read): what is left on stdin is unframed
            if self.serving:
                self.stop()
            raise

    def _exchange(self, frames: bytes, wall_s: float) -> tuple[_Run, int]:
        oom_before = oom_kills(self.cgroup) if self.cgroup else 0
        started = time.monotonic()
        pending = memoryview(self.pending + frames)
        self.pending = b""
        buffers = {"stdout": bytearray(), "stderr": bytearray()}
        events, partial, events_bytes = [], b"", 0
        ready: dict | None = None
        truncated = timed_out = False
        with selectors.DefaultSelector() as selector:
            selector.register(self.stdin, selectors.EVENT_WRITE, "stdin")
            for name, fd in self.outputs.items():
                selector.register(fd, selectors.EVENT_READ, name)
            deadline = started + wall_s
            server_ended = False
            while ready is None and not server_ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                for key, _ in selector.select(left):
                    if key.data == "stdin":
                        try:
                            pending = pending[os.write(key.fd, pending) :]
                        except BrokenPipeError:
                            pending = pending[:0]
                        if not pending:
                            selector.unregister(key.fd)
                        continue
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        selector.unregister(key.fd)
                        server_ended |= key.data == "events"
                    elif key.data == "events":
                        lines = (partial + chunk).split(b"\n")
                        partial = lines.pop()
                        for line in lines:
                            if line.startswith(b"{'t': 'ready'"):
                                ready = ast.literal_eval(line.decode())
                            elif events_bytes < _MAX_EVENTS_BYTES:
                                events_bytes += len(line)
                                events.append(line)
                    else:
                        truncated |= _keep(buffers[key.data], chunk, self.cap)
        if ready is not None:  # every process of the run is gone: what it printed is in the pipes
            for name in buffers:
                while chunk := _read_available(self.outputs[name]):
                    truncated |= _keep(buffers[name], chunk, self.cap)
        if ready is None or not ready["reusable"] or pending:
            status, usage = self.stop()
            ready = {"wait_status": status, "cpu_s": usage[0], "max_rss_kb": usage[1], **(ready or {})}
        killed = oom_kills(self.cgroup) - oom_before if self.cgroup else 0
        run = _Run(
            events=_parse_events(events),
            stdout=bytes(buffers["stdout"]),
            stderr=bytes(buffers["stderr"]),
            truncated=truncated,
            timed_out=timed_out,
            wait_status=ready["wait_status"],
            cpu_s=ready["cpu_s"],
            max_rss_kb=ready["max_rss_kb"],
            wall_s=time.monotonic() - started,
        )
        return run, killed

    def alive(self) -> bool:
        """Whether it still serves: not stopped, and its process has not ended (say, killed from outside)."""
        if self.serving and os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            self.stop()
        return self.serving

    def stop(self) -> tuple[int, tuple[float, int]]:
        """Kill the sandbox and reap it: its wait status and (CPU seconds, peak RSS in KiB)."""
        self.serving = False
        return self._stop()


def _spawn(
    argv: list[str], env: dict[str, str], inherited: dict[int, int]
) -> tuple[int, int, dict[str, int]]:
    """Start the sandbox in its own session: its pid, the write end of its stdin and the read ends of its
    stdout, stderr and events (all non-blocking). ``inherited`` maps descriptor numbers in the sandbox to
    descriptors here (closed after the spawn)."""
    fds = {name: os.pipe() for name in ("stdin", "stdout", "stderr", "events")}
    targets = {
        0: fds["stdin"][0],
        1: fds["stdout"][1],
        2: fds["stderr"][1],
        harness.RESULT_FD: fds["events"][1],
        **inherited,
    }
    # Move every source above the target numbers first, so that no dup2 overwrites a source still needed.
    high = {target: fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for target, fd in targets.items()}
    actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in high.items()]
    try:
        pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
    except BaseException:
        for read, write in fds.values():
            os.close(read)
            os.close(write)
        raise
    finally:
        for fd in (*high.values(), *inherited.values()):
            os.close(fd)
    for name, (read, write) in fds.items():  # the sandbox's ends: the host keeps the others
        os.close(read if name == "stdin" else write)
    ends = {name: fds[name][0] for name in ("stdout", "stderr", "events")}
    for fd in (fds["stdin"][1], *ends.values()):  # os.pipe's ends are close-on-exec already
        os.set_blocking(fd, False)
    return pid, fds["stdin"][1], ends


def _stop(owner: int, pid: int, stdin: int, outputs: dict[str, int], cgroup: str | None) -> tuple:
    # Closing the events pipe first ends the server whatever it waits for (``harness._readable_within``), and
    # with it every process of the sandbox: the signal below reaches bubblewrap only.
    for fd in (stdin, *outputs.values()):
        os.close(fd)
    if os.getpid() != owner:  # a forked copy of the owner: the sandbox, and its cgroup, are the owner's
        return 0, (0.0, 0)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    if cgroup:
        remove_cgroup(cgroup)
    return status, (usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def _keep(buffer: bytearray, chunk: bytes, cap: int) -> bool:
    """Append what ``cap`` leaves room for; whether anything was dropped."""
    room = cap - len(buffer)
    buffer += chunk[: max(room, 0)]
    return len(chunk) > room


def _read_available(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return b""


def _parse_events(lines: list[bytes]) -> list[dict]:
    events = []
    for line in lines:
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
