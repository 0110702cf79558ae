"""ELF drill-down with pyelftools: which byte ranges of a shared library are code, read-only data,
writable data, or everything else (headers, symbol tables, debug info, alignment gaps).

File-size accounting: the ranges cover the whole file, so the groups sum to its size.
"""

from __future__ import annotations

import io

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

ELF_MAGIC = b"\x7fELF"

Ranges = tuple[tuple[str, int, int], ...]  # (group, start, end), sorted, disjoint, covering [0, size)


def is_elf(head: bytes | memoryview) -> bool:
    return bytes(head[:4]) == ELF_MAGIC


def file_kind(name: str) -> str:
    """library (lib*.so*), extension (a Python extension module) or executable, by file name."""
    base = name.rsplit("/", 1)[-1]
    if base.startswith("lib") and ".so" in base:
        return "library"
    if base.endswith((".so", ".pyd")) or ".so." in base:
        return "extension"
    return "executable"


def _group(flags: int) -> str:
    if flags & SH_FLAGS.SHF_EXECINSTR:
        return "text"
    if flags & SH_FLAGS.SHF_ALLOC:
        return "data" if flags & SH_FLAGS.SHF_WRITE else "rodata"
    return "other"


def section_ranges(data: bytes | memoryview) -> Ranges | None:
    """Group ranges covering all of `data`, or None if it is not a readable ELF file."""
    size = len(data)
    if not is_elf(data):
        return None
    try:
        elf = ELFFile(io.BytesIO(bytes(data)))
        spans = []
        for section in elf.iter_sections():
            if section["sh_type"] in ("SHT_NULL", "SHT_NOBITS") or section["sh_size"] == 0:
                continue
            start = section["sh_offset"]
            end = min(start + section["sh_size"], size)
            if start < end:
                spans.append((start, end, _group(section["sh_flags"])))
    except Exception:  # noqa: BLE001  pyelftools raises many kinds of errors on damaged input;
        return None     # a damaged library loses its drill-down, never its place in the accounting
    return cover(size, spans, fill="other")


def cover(size: int, spans: list[tuple[int, int, str]], fill: str) -> Ranges:
    """Clip overlaps (first come first served by start offset), fill gaps with `fill`, merge
    neighbours of the same group."""
    out: list[tuple[str, int, int]] = []
    pos = 0
    for start, end, group in sorted(spans):
        start = max(start, pos)
        if start >= end:
            continue
        if start > pos:
            out.append((fill, pos, start))
        out.append((group, start, end))
        pos = end
    if pos < size:
        out.append((fill, pos, size))
    merged: list[tuple[str, int, int]] = []
    for group, start, end in out:
        if merged and merged[-1][0] == group and merged[-1][2] == start:
            merged[-1] = (group, merged[-1][1], end)
        else:
            merged.append((group, start, end))
    return tuple(merged)


def clip(ranges: Ranges, spans: tuple[tuple[int, int], ...]) -> Ranges:
    """The parts of `ranges` inside `spans` (both sorted); used when only some of a file's bytes
    form a row (Nuitka's executable around its constants blob)."""
    out = []
    for group, start, end in ranges:
        for s, e in spans:
            lo, hi = max(start, s), min(end, e)
            if lo < hi:
                out.append((group, lo, hi))
    return tuple(out)


def section_table_end(data: bytes | memoryview) -> int | None:
    """Where the section header table ends (for most ELF files: the end of the file)."""
    if not is_elf(data):
        return None
    try:
        header = ELFFile(io.BytesIO(bytes(data[:64]))).header
    except Exception:  # noqa: BLE001  not a readable ELF header
        return None
    return header["e_shoff"] + header["e_shentsize"] * header["e_shnum"]


def soname(data: bytes | memoryview) -> str | None:
    """DT_SONAME of a shared library, if it has one."""
    if not is_elf(data):
        return None
    try:
        elf = ELFFile(io.BytesIO(bytes(data)))
        dynamic = elf.get_section_by_name(".dynamic")
        if dynamic is None:
            return None
        for tag in dynamic.iter_tags():
            if tag.entry.d_tag == "DT_SONAME":
                return str(tag.soname)
    except Exception:  # a damaged dynamic section only costs us the name, never the accounting
        return None
    return None
