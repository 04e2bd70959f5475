"""What this host offers the sandbox, found by running trial sandboxes once per process, and the bubblewrap
command line of a run. ``python -m verifiers.code`` prints the probe's findings.

Three mechanisms, each named in ``Host.missing`` with the reason when it does not work here:

- ``namespaces``: bubblewrap (``bwrap``) with fresh pid, net, mount, ipc, uts (and cgroup) namespaces; without
  root also a user namespace, so nothing needs privileges. There is no sandbox without it.
- ``seccomp``: the filter of ``seccomp_filter.py``, built by the system interpreter's libseccomp bindings.
- ``cgroup``: per-run cgroup v2 limits (``cgroup.py``).
"""

import functools
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass

from verifiers.code import cgroup

MECHANISMS = ("namespaces", "seccomp", "cgroup")
HARNESS_MOUNT = "/opt/rlsys-sandbox"
"""Where the harness's directory appears inside the sandbox."""
WORKDIR = "/work"
"""The sandbox's tmpfs: the program's working directory; /tmp and /dev/shm link to it."""
SYSTEM_PYTHON = "/usr/bin/python3"
"""The interpreter with libseccomp's bindings (``python3-seccomp``) that builds the filter."""
_SANDBOX_UID = 1000  # what the program sees as its uid inside a user namespace
# As root, a run's uid is ``_ROOT_UID_BASE + the id of the host thread that starts it``: thread ids are unique
# among live threads on the host, that thread waits for the sandbox to end, and the sandbox's pid namespace
# ends every process of the run before that, so two live runs never share a uid.
_ROOT_UID_BASE = 1_000_000
_DEVICES = ("null", "zero", "random", "urandom")
_SECCOMP_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp_filter.py")


class IsolationUnavailable(RuntimeError):
    """A mechanism the sandbox needs does not work on this host (see ``SandboxConfig.allow_missing``)."""


@dataclass(frozen=True)
class Host:
    """The probe's findings for one interpreter and cgroup parent."""

    bwrap: str | None
    as_root: bool
    """Root needs no user namespace, and gets none: its only uid would be root's own, which the kernel exempts
    from RLIMIT_NPROC. The harness drops to a uid of the run's own (``run_uid``) instead."""
    python: str
    """The interpreter's real path, run inside the sandbox."""
    read_only: tuple[str, ...]
    """Host paths the interpreter needs, shown read-only at the same place (symlinks are recreated)."""
    seccomp_bpf: bytes | None
    cgroup_parent: str | None
    missing: dict[str, str]
    """Mechanism -> why it does not work here."""

    def refusal(self, allow_missing: tuple[str, ...]) -> str:
        """Why a run that may lack only ``allow_missing`` cannot run here; "" when it can."""
        refused = {m: r for m, r in self.missing.items() if m not in allow_missing}
        return "; ".join(f"{m}: {r}" for m, r in refused.items())

    def label(self) -> str:
        """The isolation in force, named in every verdict, e.g. ``bwrap(user,pid,...)+seccomp+cgroup(...)``;
        a missing mechanism appears as ``NO-CGROUP(reason)``."""
        spaces = ("pid", "net", "mount", "ipc", "uts", "cgroup")
        parts = [f"bwrap({','.join(spaces if self.as_root else ('user', *spaces))})"]
        if self.as_root:
            parts.append("uid")
        names = {"seccomp": "seccomp", "cgroup": f"cgroup({','.join(cgroup.CONTROLLERS)})"}
        for mechanism, name in names.items():
            reason = self.missing.get(mechanism)
            parts.append(f"NO-{mechanism.upper()}({reason})" if reason else name)
        return "+".join([*parts, "rlimits"])


@functools.cache
def probe(python: str, cgroup_parent: str | None = None) -> Host:
    """Find out, with trial sandboxes, which mechanisms work for ``python`` (cached per process)."""
    missing: dict[str, str] = {}
    real_python, read_only = _interpreter(python)
    bwrap = shutil.which("bwrap")
    bpf, seccomp_reason = _seccomp_filter()
    if seccomp_reason:
        missing["seccomp"] = seccomp_reason
    parent, cgroup_reason = cgroup.find_parent(cgroup_parent)
    if cgroup_reason:
        missing["cgroup"] = cgroup_reason
    host = Host(bwrap, os.geteuid() == 0, real_python, read_only, bpf, parent, missing)
    if bwrap is None:
        missing["namespaces"] = "bubblewrap ('bwrap') is not installed (scripts/setup.sh installs it)"
        return host
    reason = _trial(host, seccomp=False, cgroup_path=None)
    if reason:
        missing["namespaces"] = reason
        return host
    if bpf is not None:
        reason = _trial(host, seccomp=True, cgroup_path=None)
        if reason:
            missing["seccomp"] = reason
    if parent is not None:
        try:
            with cgroup.run_cgroup(parent, f"rlsys-probe-{os.getpid()}", 64 << 20, 8, 1.0) as path:
                reason = _trial(host, seccomp=False, cgroup_path=path)
                if not reason and cgroup.cpu_usage_us(path) == 0:
                    reason = f"a process written to {path}/cgroup.procs from the sandbox did not join it"
        except OSError as exc:
            reason = f"cannot make a cgroup with limits under {parent}: {exc}"
        if reason:
            missing["cgroup"] = reason
    return host


def bwrap_argv(
    host: Host, disk_bytes: int, import_paths: tuple[str, ...], seccomp_fd: int | None
) -> list[str]:
    """bubblewrap's command line up to and including the interpreter; the caller appends its arguments."""
    assert host.bwrap is not None
    argv = [host.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    argv += ["--unshare-cgroup-try", "--hostname", "sandbox"]
    # The harness is pid 1: when it ends every process of the run ends, and the program cannot signal it.
    argv += ["--as-pid-1", "--die-with-parent", "--new-session"]
    if not host.as_root:
        argv += ["--unshare-user", "--disable-userns", "--uid", str(_SANDBOX_UID), "--gid", str(_SANDBOX_UID)]
    binds = {path: path for path in (*host.read_only, *import_paths)}
    binds[HARNESS_MOUNT] = os.path.dirname(os.path.abspath(__file__))
    # Directories bubblewrap would make on the way to a mount point copy the host's modes (e.g. /root's 0700),
    # which could lock the run's uid out: they are made world-readable first.
    devices = [f"/dev/{device}" for device in _DEVICES]
    argv += [arg for path in _parents([*binds, *devices]) for arg in ("--perms", "0755", "--dir", path)]
    for target, source in binds.items():
        if os.path.islink(source):
            argv += ["--symlink", os.readlink(source), target]
        else:
            argv += ["--ro-bind", source, target]
    for device in devices:
        argv += ["--dev-bind", device, device]
    # One size-limited tmpfs is the working directory, /tmp and /dev/shm (POSIX semaphores and shared memory).
    argv += ["--size", str(disk_bytes), "--perms", "1777", "--tmpfs", WORKDIR]
    argv += ["--symlink", WORKDIR, "/tmp", "--symlink", WORKDIR, "/dev/shm", "--chdir", WORKDIR]
    argv += ["--remount-ro", "/"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return [*argv, "--", host.python]


def run_uid() -> int | None:
    """As root, the uid the harness drops to before anything of the program runs; None otherwise."""
    return _ROOT_UID_BASE + threading.get_native_id() if os.geteuid() == 0 else None


def _parents(targets) -> list[str]:
    """Directories above the mount points that are not inside another mount point, parents first."""
    parents = set()
    for target in targets:
        parent = os.path.dirname(target)
        while parent != "/" and not any(parent == t or parent.startswith(t + "/") for t in targets):
            parents.add(parent)
            parent = os.path.dirname(parent)
    return sorted(parents)


def _trial(host: Host, seccomp: bool, cgroup_path: str | None) -> str:
    """Run a trivial program in a sandbox with the given mechanisms; "" when it works, else why not."""
    uid, fds, code = run_uid(), [], "import os; "
    if uid is not None:  # as root, drop to the run's uid as the harness does, and read the stdlib as that uid
        code += f"os.setgroups([]); os.setresgid({uid}, {uid}, {uid}); os.setresuid({uid}, {uid}, {uid}); "
    code += "import json"
    try:
        seccomp_fd = None
        if seccomp:
            assert host.seccomp_bpf is not None
            seccomp_fd = pipe_holding(host.seccomp_bpf)
            fds.append(seccomp_fd)
        if cgroup_path is not None:
            procs = os.open(os.path.join(cgroup_path, "cgroup.procs"), os.O_WRONLY)
            fds.append(procs)
            code += f"; os.write({procs}, b'0'); sum(range(10**6))"
        argv = [*bwrap_argv(host, 1 << 20, (), seccomp_fd), "-I", "-S", "-c", code]
        run = subprocess.run(argv, capture_output=True, pass_fds=fds, env={}, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"trial sandbox could not start: {exc}"
    finally:
        for fd in fds:
            os.close(fd)
    if run.returncode != 0:
        lines = run.stderr.decode(errors="replace").strip().splitlines() or [f"exit status {run.returncode}"]
        return f"trial sandbox failed: {lines[-1][:300]}"
    return ""


def pipe_holding(data: bytes) -> int:
    """A pipe's read end holding ``data`` (a filter is a few hundred bytes, well within a pipe's buffer)."""
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    return read


def _seccomp_filter() -> tuple[bytes | None, str]:
    if not os.path.exists(SYSTEM_PYTHON):
        return None, f"{SYSTEM_PYTHON} not found: it builds the filter with libseccomp's bindings"
    run = subprocess.run([SYSTEM_PYTHON, "-I", _SECCOMP_SOURCE], capture_output=True, timeout=60)
    if run.returncode != 0 or not run.stdout:
        tail = run.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return None, f"cannot build the filter (is python3-seccomp installed?): {tail[0][:200]}"
    return run.stdout, ""


def _interpreter(python: str) -> tuple[str, tuple[str, ...]]:
    """``python``'s real path and what it needs to start: /usr, the top-level links into it, its prefix."""
    out = subprocess.run(
        [python, "-I", "-S", "-c", "import sys; print(sys.base_prefix); print(sys.base_exec_prefix)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split("\n")
    tops = [p for p in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32") if os.path.lexists(p)]
    prefixes = {os.path.realpath(p) for p in out[:2]}
    extra = sorted(p for p in prefixes if p != "/usr" and not p.startswith("/usr/"))
    return os.path.realpath(python), ("/usr", *tops, *extra)
