"""Saves that are whole or absent.

A file or a directory is written under a staging name beside its final one, flushed to disk (fsync), and
renamed into place (atomic within one file system); the parent directory is flushed too, so the rename
survives a power loss. A crash leaves only a staging name, which the next save of the same name clears.
Directories that are listed and counted (checkpoints) also get a completeness marker, written last.
"""

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

COMPLETE = ".complete"  # the marker file of a directory written whole


def staging_name(final: Path) -> Path:
    """Where `final` is written before it is renamed into place."""
    return final.with_name(f".{final.name}.partial")


def fsync_path(path: Path) -> None:
    """Flush a file, or a directory's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file and directory under `root` (and `root` itself)."""
    for directory, _, files in os.walk(root):
        for name in files:
            fsync_path(Path(directory) / name)
        fsync_path(Path(directory))


def write_text(path: str | Path, text: str) -> None:
    """Replace `path` with `text` atomically: a reader sees the old content or the new, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_name(path)
    try:
        with open(staging, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        staging.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
        raise
    os.replace(staging, path)
    fsync_path(path.parent)


def append_line(path: str | Path, line: str) -> None:
    """Append `line` and a newline to `path`, whole or not at all: a write that fails part-way (a full disk
    takes what fits, then refuses the rest) is truncated back before its error propagates, so a reader never
    sees half a line."""
    data = (line + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)  # a line recorded is on disk before the step goes on (a kill or power loss keeps it)
        except OSError:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def commit_directory(staging: Path, final: Path, *, mark: bool = False) -> None:
    """Move a fully written `staging` directory to `final` (replacing an old one), flushed; with `mark`,
    write the completeness marker last."""
    fsync_tree(staging)
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, final)
    fsync_path(final.parent)
    if mark:
        write_text(final / COMPLETE, "")


@contextmanager
def directory(final: str | Path, *, mark: bool = False) -> Iterator[Path]:
    """Write a directory atomically: fill the yielded staging path; on leaving the block it replaces `final`
    (unless the block raised: then the staging path is removed and `final` is left as it was)."""
    final = Path(final)
    staging = staging_name(final)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    commit_directory(staging, final, mark=mark)


# Below this much room a failed write is taken for a full disk (see `disk_full_as_oserror`).
_FULL_BELOW_BYTES = 1 << 20


@contextmanager
def disk_full_as_oserror(directory: str | Path) -> Iterator[None]:
    """Report a write into `directory` that failed for want of space as `OSError(ENOSPC)`, whatever the
    writer raised: torch's zip writer (torch.save, DeepSpeed checkpoints) raises a `RuntimeError` such as
    "unexpected pos 576 vs 534", which names neither the folder nor the cause. It is taken for a full disk
    when the file system holding `directory` has under 1 MiB left (a failed write fills it up); any other
    error propagates as it is."""
    try:
        yield
    except OSError:
        raise
    except Exception as err:
        if free_bytes(directory) >= _FULL_BELOW_BYTES:
            raise
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory)) from err


def free_bytes(path: str | Path) -> int:
    """Room left for this user on the file system holding `path` (or its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def os_reason(err: BaseException) -> str | None:
    """The operating system's words for a failed file operation, or None when `err` is not one (it carries
    no errno: a `TimeoutError` of a library, say). A `RayTaskError(OSError)` from an actor keeps the
    original on its `cause`."""
    cause = getattr(err, "cause", None) or err
    if not isinstance(cause, OSError) or cause.errno is None:
        return None
    return cause.strerror or os.strerror(cause.errno)


def is_complete(path: Path) -> bool:
    return (path / COMPLETE).is_file()
