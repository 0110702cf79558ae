"""Byte counts as people read them: one rounding for every table and message."""

from __future__ import annotations

KIB = 1024
MIB = 1024 * 1024


def fmt_size(n: int, *, signed: bool = False) -> str:
    """cargo-bloat's sizes: 512B, 32.4KiB, 1.2MiB."""
    sign = ("+" if n > 0 else "-" if n < 0 else "") if signed else ("-" if n < 0 else "")
    a = abs(n)
    if a < KIB:
        body = f"{a}B"
    elif a < MIB:
        body = f"{a / KIB:.1f}KiB"
    else:
        body = f"{a / MIB:.1f}MiB"
    return sign + body


def format_bytes(size: int) -> str:
    """`1,234,567 bytes (1.2MiB)`: the exact figure for comparisons, the rounded one to read."""
    return f"{size:,} bytes" + (f" ({fmt_size(size)})" if abs(size) >= KIB else "")
