"""Configuration of the code sandbox: resource limits and the isolation policy."""

import sys
from dataclasses import dataclass

OPTIONAL_MECHANISMS = ("seccomp", "cgroup")


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and policy shared by every run; the time and memory limits are given per run."""

    allow_missing: tuple[str, ...] = ()
    """Mechanisms (``seccomp``, ``cgroup``) the caller accepts running without where this host lacks them.
    By default a missing one makes every run raise ``IsolationUnavailable`` with the probe's reason; an
    allowed one is named ``NO-...(reason)`` in each verdict's ``isolation``. Namespaces cannot be waived."""
    max_processes: int = 16
    """Processes and threads the program may have at once (RLIMIT_NPROC in the run's own user namespace or
    uid, and the cgroup's pids.max)."""
    cpus: float = 1.0
    """CPUs the program's processes may use together (the cgroup's cpu.max)."""
    cgroup_parent: str | None = None
    """Directory of the cgroup v2 under which each run's cgroup is made; None: beside the verifier's own."""
    max_open_files: int = 64
    """File descriptors per process (RLIMIT_NOFILE)."""
    max_file_mb: int = 16
    """Largest file the program may write (RLIMIT_FSIZE)."""
    disk_mb: int = 64
    """Size of the program's tmpfs: its working directory, /tmp and /dev/shm."""
    output_limit_bytes: int = 64 * 1024
    """Bytes kept of each of stdout and stderr; the rest is read and dropped (``truncated`` is set)."""
    max_value_mb: int = 8
    """Largest encoded value (arguments or result) crossing the sandbox boundary in one call."""
    python: str = sys.executable
    """Interpreter that runs the harness and the program (its prefix is mounted read-only)."""
    import_paths: tuple[str, ...] = ()
    """Extra directories (e.g. a site-packages) mounted read-only and appended to the program's sys.path."""
    grace_s: float = 2.0
    """Wall-clock slack after the time limit before the host kills the whole sandbox."""

    def __post_init__(self) -> None:
        unknown = set(self.allow_missing) - set(OPTIONAL_MECHANISMS)
        if unknown:
            raise ValueError(
                f"SandboxConfig.allow_missing may hold {OPTIONAL_MECHANISMS}, not {sorted(unknown)}"
            )
        if self.cpus <= 0:
            raise ValueError("SandboxConfig.cpus must be positive")
        for name in (
            "max_processes",
            "max_open_files",
            "max_file_mb",
            "disk_mb",
            "max_value_mb",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"SandboxConfig.{name} must be at least 1")
        if self.max_open_files < 8:
            raise ValueError("SandboxConfig.max_open_files must be at least 8: the interpreter needs a few")
        if self.output_limit_bytes < 0 or self.grace_s < 0:
            raise ValueError("SandboxConfig.output_limit_bytes and grace_s must not be negative")
