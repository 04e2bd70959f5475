"""The sandbox's seccomp filter, built with libseccomp's own Python bindings and written to stdout as BPF.

Run by the host's system interpreter, which has the bindings (Debian and Ubuntu: ``python3-seccomp``; the
project's virtual environment need not), once per verifier process::

    python3 -I verifiers/code/seccomp_filter.py > filter.bpf

bubblewrap loads the result (``--seccomp FD``) just before it starts the harness, so the harness, the program
and everything it starts run under it. Every system call is allowed except those below, which return
``EPERM`` (``ENOSYS`` for ``clone3``): none is needed by a test program, and each is either a large kernel
attack surface or a way out of the sandbox's namespaces and limits. Standard library and the bindings only.
"""

import errno
import sys

DENIED = {
    # Large, often-exploited kernel interfaces.
    "io_uring": ("io_uring_setup", "io_uring_enter", "io_uring_register"),
    "bpf and perf": ("bpf", "perf_event_open", "userfaultfd"),
    "kernel keyrings": ("keyctl", "add_key", "request_key"),
    # Reading or changing another process (the harness shares the program's uid).
    "tracing": ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp"),
    # New namespaces and mounts: ways to regain capabilities or reshape the file-system view.
    "namespaces": ("unshare", "setns"),
    "mounts": (
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "move_mount",
        "open_tree",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "mount_setattr",
    ),
    "file handles": ("name_to_handle_at", "open_by_handle_at"),
    # Memory that no per-process rlimit bounds (without a cgroup nothing else would).
    "anonymous memory files": ("memfd_create", "memfd_secret"),
    "System V shared memory and queues": ("shmget", "msgget"),
    # Host administration: refused anyway without capabilities, denied here in case of a kernel bug.
    "administration": (
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "acct",
        "syslog",
        "quotactl",
        "settimeofday",
        "clock_settime",
        "clock_adjtime",
        "adjtimex",
        "personality",
        "vhangup",
        "iopl",
        "ioperm",
        "lookup_dcookie",
        "fanotify_init",
    ),
}

# clone()'s flags that create namespaces (CLONE_NEWNS ... CLONE_NEWNET, CLONE_NEWTIME); clone3 passes its
# flags in memory seccomp cannot read, so it is refused with ENOSYS and the C library falls back to clone.
_CLONE_NAMESPACE_FLAGS = (0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000, 0x80)


def build():
    """The filter as a ``seccomp.SyscallFilter`` (imported here: only the system interpreter has it)."""
    import seccomp

    denied = seccomp.ERRNO(errno.EPERM)
    # Another architecture's system calls (e.g. 32-bit ones through int 0x80) would bypass the rules below.
    syscall_filter = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    syscall_filter.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    # A binary search over the rules instead of a linear scan: every system call of the program pays for it.
    syscall_filter.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    for names in DENIED.values():
        for name in names:
            syscall_filter.add_rule(denied, name)
    for flag in _CLONE_NAMESPACE_FLAGS:
        syscall_filter.add_rule(denied, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    syscall_filter.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    return syscall_filter


if __name__ == "__main__":
    sys.stdout.flush()
    build().export_bpf(sys.stdout)
