"""Saves that are whole or absent.

A file or a directory is written under a staging name beside its final one, flushed to disk (fsync), and
renamed into place (atomic within one file system); the parent directory is flushed too, so the rename
survives a power loss. A crash leaves only a staging name, which the next save of the same name clears.
Directories that are listed and counted (checkpoints) also get a completeness marker, written last.
"""

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
    with open(staging, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)
    fsync_path(path.parent)


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


def is_complete(path: Path) -> bool:
    return (path / COMPLETE).is_file()
