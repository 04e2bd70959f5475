"""Per-run cgroup v2 limits: memory (tmpfs, shared memory, pipe buffers and kernel memory included), processes
and CPU, summed over every process of the program.

Each sandbox gets a fresh cgroup, which its runs' programs join one run at a time, created beside the
verifier's own: under the parent of the verifier's cgroup (or under the root of the hierarchy when the
verifier sits in it), or under ``SandboxConfig.cgroup_parent``. The verifier's user must be able to create
cgroups there and to move processes into them: root, or a parent delegated to that user (e.g. a systemd unit
with ``Delegate=yes`` whose processes sit in a leaf below it).
Only the program's process joins, through ``cgroup.procs`` opened here and written from inside the sandbox:
the kernel checks the permissions of whoever opened the file.
"""

import contextlib
import os
import time
from collections.abc import Iterator

CONTROLLERS = ("memory", "pids", "cpu")
_CPU_PERIOD_US = 100_000


def find_parent(configured: str | None) -> tuple[str | None, str]:
    """``(directory under which run cgroups go, "")``, or ``(None, why not)``."""
    mount = _cgroup2_mount()
    if mount is None:
        return None, "no cgroup v2 file system is mounted"
    if configured:
        parent = configured
    else:
        own = _own_cgroup()
        if own is None:
            return None, "this process is in no cgroup v2 cgroup (/proc/self/cgroup has no '0::' line)"
        parent = os.path.normpath(mount + (own if own == "/" else os.path.dirname(own)))
    try:
        offered = _read(parent, "cgroup.controllers").split()
        enabled = _read(parent, "cgroup.subtree_control").split()
    except OSError as exc:
        return None, f"cannot read cgroup {parent}: {exc.strerror}"
    absent = [c for c in CONTROLLERS if c not in offered]
    if absent:
        return None, f"cgroup {parent} is not given the {'/'.join(absent)} controller (cgroup v1 may hold it)"
    if not os.access(os.path.join(parent, "cgroup.procs"), os.W_OK):
        return None, f"cgroup {parent} is not delegated to uid {os.geteuid()} (cgroup.procs not writable)"
    missing = [c for c in CONTROLLERS if c not in enabled]
    if missing:
        try:
            _write(parent, "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
        except OSError as exc:
            return (
                None,
                f"cannot enable {'/'.join(missing)} for the children of cgroup {parent}: {exc.strerror}",
            )
    return parent, ""


def make_cgroup(parent: str, name: str, memory_bytes: int, max_processes: int, cpus: float) -> str:
    """A fresh cgroup with a sandbox's limits, until ``remove_cgroup``."""
    path = os.path.join(parent, name)
    os.mkdir(path)
    try:
        _write(path, "memory.max", str(memory_bytes))
        if os.path.exists(os.path.join(path, "memory.swap.max")):  # no swap: memory.max is the whole budget
            _write(path, "memory.swap.max", "0")
        _write(path, "memory.oom.group", "1")  # an out-of-memory kill ends the whole program, not one thread
        _write(path, "pids.max", str(max_processes))
        _write(path, "cpu.max", f"{max(1000, round(cpus * _CPU_PERIOD_US))} {_CPU_PERIOD_US}")
    except BaseException:
        remove_cgroup(path)
        raise
    return path


@contextlib.contextmanager
def run_cgroup(parent: str, name: str, memory_bytes: int, max_processes: int, cpus: float) -> Iterator[str]:
    """``make_cgroup`` for the block; everything in it is killed and it is removed on exit."""
    path = make_cgroup(parent, name, memory_bytes, max_processes, cpus)
    try:
        yield path
    finally:
        remove_cgroup(path)


def oom_kills(path: str) -> int:
    """Processes the kernel killed for exceeding ``memory.max``."""
    for line in _read(path, "memory.events").splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def cpu_usage_us(path: str) -> int:
    for line in _read(path, "cpu.stat").splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value)
    return 0


def remove_cgroup(path: str) -> None:
    """Kill what is left in the cgroup and remove it."""
    # The sandbox's pid namespace is gone by now, so the cgroup is normally empty; cgroup.kill (Linux 5.14)
    # covers anything that is not, and rmdir succeeds once the last process has been reaped.
    if os.path.exists(os.path.join(path, "cgroup.kill")):
        _write(path, "cgroup.kill", "1")
    for _ in range(200):
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.005)
    os.rmdir(path)  # still busy after a second: let the error say so


def _cgroup2_mount() -> str | None:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            separator = fields.index("-")
            if fields[separator + 1] == "cgroup2":
                return fields[4]
    return None


def _own_cgroup() -> str | None:
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


def _read(path: str, name: str) -> str:
    with open(os.path.join(path, name)) as f:
        return f.read()


def _write(path: str, name: str, value: str) -> None:
    with open(os.path.join(path, name), "w") as f:
        f.write(value)
