"""What isolation this host offers the sandbox: namespaces via util-linux ``unshare``, uids via root."""

import functools
import os
import random
import shutil
import subprocess

NAMESPACES = ("net", "mount", "pid", "ipc", "uts")
# Uids handed to sandboxed programs: far above real accounts, a fresh pair per run, so RLIMIT_NPROC counts
# only the run's own processes and the program cannot signal its harness.
_UID_BASE, _UID_PAIRS = 1_000_000, 500_000


class IsolationUnavailable(RuntimeError):
    """The host cannot isolate programs and ``SandboxConfig.isolation`` is ``require``."""


@functools.cache
def probe() -> tuple[list[str] | None, str]:
    """``(command prefix entering fresh namespaces, "")``, or ``(None, reason)`` when unavailable."""
    if os.geteuid() != 0:
        return None, "not root: mount namespaces and per-run uids need root"
    unshare = shutil.which("unshare")
    if unshare is None:
        return None, "util-linux 'unshare' not found"
    prefix = [unshare, *(f"--{ns}" for ns in NAMESPACES), "--fork", "--kill-child"]
    probe_run = subprocess.run([*prefix, "true"], capture_output=True, timeout=30)
    if probe_run.returncode != 0:
        return None, f"unshare failed: {probe_run.stderr.decode(errors='replace').strip()[:200]}"
    return prefix, ""


def allocate_uid() -> int:
    """An even uid for the program; its harness takes the next one."""
    return _UID_BASE + 2 * random.randrange(_UID_PAIRS)


def kill_uid(uid: int, python: str) -> None:
    """Kill every process of ``uid``: they can leave a process group, not their uid. Needs root."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise IsolationUnavailable("util-linux 'setpriv' not found: cannot clean up processes by uid")
    ids = [f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    # kill(-1) from the uid itself reaches exactly that uid's processes (and spares the caller).
    subprocess.run([setpriv, *ids, python, "-I", "-S", "-c", "import os; os.kill(-1, 9)"], check=True)
