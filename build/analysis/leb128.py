"""LEB128, the variable-length integers of DWARF (and of Nuitka's constants blobs): 7 bits a
byte, low bits first, the high bit set on every byte but the last. IndexError past the end."""

from __future__ import annotations


def uleb128(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """(value, position after it) of the unsigned LEB128 at `pos`."""
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def sleb128(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """(value, position after it) of the signed LEB128 at `pos`: the unsigned one, sign-extended
    from bit 6 of its last byte."""
    value, end = uleb128(buf, pos)
    if buf[end - 1] & 0x40:
        value -= 1 << (7 * (end - pos))
    return value, end
