"""ELF sections grouped the way a user acts on them, and what `strip` would save.

Groups (GROUPS, in display order):
  code      executable sections (.text, .plt, .init, ...)                  -> fewer/smaller functions
  rodata    read-only data (.rodata, string tables of the program)          -> fewer tables
  data      writable data (.data, .data.rel.ro, .got, .init_array, ...)     -> fewer objects
  dynamic   relocations and dynamic linking (.rela.*, .dynsym, .dynstr,
            .gnu.hash, .gnu.version*, .dynamic, .interp)                   -> fewer exported symbols
  unwind    unwind tables (.eh_frame, .eh_frame_hdr, .gcc_except_table)     -> -fno-asynchronous-unwind-tables
  symbols   the static symbol table (.symtab, .strtab)                      -> strip
  debug     debug info (.debug_*, .zdebug_*, .gnu_debugdata)                 -> strip
  other     ELF headers, notes, .comment, section names, alignment gaps

`strip` (strip --strip-all, or a linker's -s) removes the non-loaded symbols and debug groups;
`strip_savings` is their size. The real `strip` saves that plus the removed sections' headers
(64 bytes each on 64-bit ELF) and alignment: under 1 KiB more (tests compare with `strip`).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass

from elftools.elf.elffile import ELFFile

from build.analysis.elf import GROUPS, Ranges, classify, cover, is_elf

# What each group is, for tables and the HTML page.
LABELS = {
    "code": "code",
    "rodata": "read-only data",
    "data": "data",
    "dynamic": "relocations and dynamic linking",
    "unwind": "unwind tables",
    "symbols": "symbol tables (strip)",
    "debug": "debug info (strip)",
    "other": "headers, notes, gaps",
}
STRIPPABLE = ("symbols", "debug")
# Schema 1 reports used four groups; the reader of old reports maps them onto these.
OLD_GROUPS = {"text": "code", "rodata": "rodata", "data": "data", "other": "other"}

@dataclass(frozen=True, kw_only=True)
class ElfSection:
    name: str
    type: str
    flags: int
    address: int
    offset: int
    size: int  # bytes in the file (0 for SHT_NOBITS)

    @property
    def group(self) -> str:
        return classify(self.name, self.type, self.flags)


def read_sections(data: bytes | memoryview) -> tuple[ElfSection, ...] | None:
    """The section table of an ELF file, or None when `data` is not a readable ELF file."""
    if not is_elf(data):
        return None
    try:
        elf = ELFFile(io.BytesIO(bytes(data)))
        return tuple(ElfSection(name=s.name, type=str(s["sh_type"]), flags=s["sh_flags"], address=s["sh_addr"],
                                offset=s["sh_offset"], size=0 if s["sh_type"] == "SHT_NOBITS" else s["sh_size"])
                     for s in elf.iter_sections())
    except Exception:  # noqa: BLE001  pyelftools raises many kinds of errors on damaged input;
        return None     # a damaged file loses its drill-down, never its place in the accounting


def group_ranges(sections: Iterable[ElfSection], size: int) -> Ranges:
    """(group, start, end) ranges covering [0, size): each section's bytes in its group, the
    rest (headers, gaps) in "other"."""
    spans = []
    for s in sections:
        if s.type == "SHT_NULL" or s.size == 0:
            continue
        start, end = s.offset, min(s.offset + s.size, size)
        if start < end:
            spans.append((start, end, s.group))
    return cover(size, spans, fill="other")


def file_ranges(data: bytes | memoryview) -> Ranges | None:
    """Group ranges of a whole ELF file, or None if it is not one."""
    sections = read_sections(data)
    return None if sections is None else group_ranges(sections, len(data))


def group_sizes(ranges: Ranges) -> dict[str, int]:
    sizes = dict.fromkeys(GROUPS, 0)
    for group, start, end in ranges:
        sizes[group] = sizes.get(group, 0) + end - start
    return sizes


def strip_savings(ranges: Ranges) -> int:
    """Bytes `strip` would remove: the static symbol tables and the debug info."""
    return sum(end - start for group, start, end in ranges if group in STRIPPABLE)
