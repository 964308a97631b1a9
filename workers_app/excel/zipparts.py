"""Headers, members and the central directory of the hand-written zip container (deflate only, no ZIP64)."""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from .deflate import deflate_final

__all__ = ["Member", "central_directory", "check_zip32", "dos_timestamp", "local_header", "small_member"]

_ZIP32_MAX = 0xFFFFFFFF  # values at or above this need ZIP64, which we do not write


@dataclass(frozen=True)
class Member:
    name: bytes
    crc32: int
    compressed_size: int
    size: int


_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_CENTRAL_HEADER = struct.Struct("<IHHHHHHIIIHHHHHII")
_END_RECORD = struct.Struct("<IHHHHIIH")
_ZIP_VERSION = 20  # 2.0: deflate, no ZIP64
_METHOD_DEFLATE = 8


def dos_timestamp(moment: float) -> tuple[int, int]:
    t = time.localtime(moment)
    date = (max(t.tm_year, 1980) - 1980) << 9 | t.tm_mon << 5 | t.tm_mday
    clock = t.tm_hour << 11 | t.tm_min << 5 | t.tm_sec // 2
    return clock, date


def local_header(member: Member, stamp: tuple[int, int]) -> bytes:
    fixed = _LOCAL_HEADER.pack(
        0x04034B50, _ZIP_VERSION, 0, _METHOD_DEFLATE, *stamp,
        member.crc32, member.compressed_size, member.size, len(member.name), 0,
    )
    return fixed + member.name


def _central_header(member: Member, stamp: tuple[int, int], offset: int) -> bytes:
    fixed = _CENTRAL_HEADER.pack(
        0x02014B50, _ZIP_VERSION, _ZIP_VERSION, 0, _METHOD_DEFLATE, *stamp,
        member.crc32, member.compressed_size, member.size, len(member.name), 0, 0, 0, 0, 0, offset,
    )
    return fixed + member.name


def central_directory(
    members: Sequence[Member], offsets: Sequence[int], stamp: tuple[int, int], position: int
) -> bytes:
    """Central directory and end record for members whose local entries fill the first `position` bytes."""
    directory = b"".join(_central_header(m, stamp, off) for m, off in zip(members, offsets, strict=True))
    if position + len(directory) >= _ZIP32_MAX:
        raise OverflowError("zip central directory lies beyond 4 GiB; ZIP64 is not supported")
    end = _END_RECORD.pack(0x06054B50, 0, 0, len(members), len(members), len(directory), position, 0)
    return directory + end


def check_zip32(members: Sequence[Member]) -> None:
    """Refuse before writing anything: a silently wrapped 32-bit size would make a corrupt file."""
    total = 0
    for member in members:
        if member.size >= _ZIP32_MAX or member.compressed_size >= _ZIP32_MAX:
            raise OverflowError(f"{member.name.decode()} is too large for a zip without ZIP64 (4 GiB limit)")
        total += _LOCAL_HEADER.size + len(member.name) + member.compressed_size
    if total >= _ZIP32_MAX:
        raise OverflowError("workbook would exceed 4 GiB, which needs ZIP64; this writer does not support it")


def small_member(name: str, xml: str) -> tuple[Member, bytes]:
    data = xml.encode("utf-8")
    packed = deflate_final(data)
    return Member(name.encode("ascii"), zlib.crc32(data), len(packed), len(data)), packed
