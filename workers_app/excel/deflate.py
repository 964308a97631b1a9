"""Raw DEFLATE pieces that can be concatenated, and the CRC-32 of a concatenation."""

from __future__ import annotations

import zlib

__all__ = ["DEFLATE_LEVEL", "crc_concat", "deflate_final", "deflate_piece"]

DEFLATE_LEVEL = 6


def deflate_piece(data: bytes) -> bytes:
    """A byte-aligned, non-final DEFLATE piece that can be followed by any other piece."""
    compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)


def deflate_final(data: bytes) -> bytes:
    compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH)


def _crc_times(a: int, b: int) -> int:
    """a * b modulo the CRC-32 polynomial, in zlib's reflected bit order (bit 31 is x**0)."""
    product = 0
    for bit in range(31, -1, -1):
        if a >> bit & 1:
            product ^= b
        b = b >> 1 ^ (0xEDB88320 if b & 1 else 0)  # b *= x
    return product


def crc_concat(crc_a: int, crc_b: int, length_b: int) -> int:
    """CRC-32 of A+B from crc(A), crc(B) and len(B), so the journal never has to be inflated again."""
    shift = 1 << 31  # x**0
    square = 1 << 23  # x**8: moving past one byte
    while length_b:
        if length_b & 1:
            shift = _crc_times(shift, square)
        square = _crc_times(square, square)
        length_b >>= 1
    return _crc_times(shift, crc_a) ^ crc_b
