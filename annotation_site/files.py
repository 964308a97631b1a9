"""Writing and checking files so that a kill at any instant leaves the old file or the new one, never half."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename or unlink itself durable, not only the file contents."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replacing(target: Path) -> Iterator[tuple[int, Path]]:
    """A temporary file beside ``target`` (``.{name}.XXXXXXXX.tmp``, mode 600) as an open descriptor and a path.

    When the block ends without an error the file is fsynced, renamed over ``target`` and the rename made durable
    with a directory fsync; on any error it is removed and ``target`` is untouched. A kill at any instant leaves the
    old file or the new one, and at worst a stray temporary file."""
    target = Path(target)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        try:
            yield fd, temp
            os.fsync(fd)  # whichever descriptor wrote it: fsync flushes the file, not one descriptor's writes
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """``write`` fills a temporary file beside ``target`` by its path; see ``replacing``."""
    with replacing(target) as (_, temp):
        write(temp)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
