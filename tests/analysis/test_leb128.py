"""LEB128 against the DWARF 5 standard's own examples (section 7.6, tables 7.7 and 7.8)."""

from __future__ import annotations

import pytest

from build.analysis.leb128 import sleb128, uleb128


@pytest.mark.parametrize("value, encoded", [
    (2, b"\x02"), (127, b"\x7f"), (128, b"\x80\x01"), (129, b"\x81\x01"), (130, b"\x82\x01"),
    (12857, b"\xb9\x64"),
])
def test_unsigned(value: int, encoded: bytes) -> None:
    assert uleb128(b"\xff" + encoded + b"\xff", 1) == (value, 1 + len(encoded))


@pytest.mark.parametrize("value, encoded", [
    (2, b"\x02"), (-2, b"\x7e"), (127, b"\xff\x00"), (-127, b"\x81\x7f"), (128, b"\x80\x01"),
    (-128, b"\x80\x7f"), (129, b"\x81\x01"), (-129, b"\xff\x7e"),
])
def test_signed(value: int, encoded: bytes) -> None:
    assert sleb128(b"\xff" + encoded + b"\xff", 1) == (value, 1 + len(encoded))


def test_a_truncated_number_is_an_index_error() -> None:
    with pytest.raises(IndexError):
        uleb128(b"\x80\x80", 0)
    with pytest.raises(IndexError):
        sleb128(b"\xff", 0)
