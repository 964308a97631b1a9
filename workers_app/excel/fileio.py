"""Low-level file helpers for the journal: complete writes and kernel-side copies."""

from __future__ import annotations

import errno
import os
import zlib
from pathlib import Path

__all__ = ["copy_prefix", "crc_of_prefix", "pwrite_all", "write_all"]

_COPY_CHUNK = 1 << 20


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def copy_prefix(src_fd: int, dst_fd: int, count: int) -> None:
    """Append the first `count` bytes of src to dst, in the kernel when it can."""
    done = 0
    copy_range = getattr(os, "copy_file_range", None)
    while done < count and copy_range is not None:
        try:
            copied = copy_range(src_fd, dst_fd, count - done, done)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
                raise
            break
        if copied == 0:
            raise OSError(errno.EIO, "journal is shorter than its sidecar says")
        done += copied
    while done < count:
        data = os.pread(src_fd, min(_COPY_CHUNK, count - done), done)
        if not data:
            raise OSError(errno.EIO, "journal is shorter than its sidecar says")
        write_all(dst_fd, data)
        done += len(data)


def crc_of_prefix(path: Path, length: int) -> int:
    crc = 0
    with open(path, "rb") as handle:
        while length:
            data = handle.read(min(_COPY_CHUNK, length))
            if not data:
                raise OSError(errno.EIO, "journal ended early")
            crc = zlib.crc32(data, crc)
            length -= len(data)
    return crc
