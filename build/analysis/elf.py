"""ELF drill-down with pyelftools: which byte ranges of a shared library are code, read-only data,
data, relocations and dynamic linking, unwind tables, symbol tables, debug info, or the rest
(headers, notes, alignment gaps).

File-size accounting: the ranges cover the whole file, so the groups sum to its size.
"""

from __future__ import annotations

import io

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

ELF_MAGIC = b"\x7fELF"

Ranges = tuple[tuple[str, int, int], ...]  # (group, start, end), sorted, disjoint, covering [0, size)
# Section groups, the way a user acts on them (build.analysis.elf_sections says what each holds).
GROUPS = ("code", "rodata", "data", "dynamic", "unwind", "symbols", "debug", "other")


def is_elf(head: bytes | memoryview) -> bool:
    return bytes(head[:4]) == ELF_MAGIC


# e_machine -> architecture, spelled as slimfreeze's targets are (build.toolchain.ARCHITECTURES).
MACHINES = {62: "x86_64", 183: "aarch64", 40: "arm", 3: "i386", 243: "riscv64", 21: "ppc64", 22: "s390x"}
EF_ARM_ABI_FLOAT_HARD = 0x400


def architecture(head: bytes | memoryview) -> str | None:
    """The architecture in an ELF header ('armv7' for hard-float 32-bit ARM), or None if not ELF."""
    head = bytes(head[:52])
    if not is_elf(head) or len(head) < 52 or head[5] not in (1, 2):
        return None
    order = "little" if head[5] == 1 else "big"
    machine = MACHINES.get(int.from_bytes(head[18:20], order), f"e_machine {int.from_bytes(head[18:20], order)}")
    flags = int.from_bytes(head[36:40], order)  # e_flags of a 32-bit header
    return "armv7" if machine == "arm" and flags & EF_ARM_ABI_FLOAT_HARD else machine


def file_kind(name: str) -> str:
    """library (lib*.so*), extension (a Python extension module) or executable, by file name."""
    base = name.rsplit("/", 1)[-1]
    if base.startswith("lib") and ".so" in base:
        return "library"
    if base.endswith((".so", ".pyd")) or ".so." in base:
        return "extension"
    return "executable"


_DYNAMIC_TYPES = {"SHT_RELA", "SHT_REL", "SHT_RELR", "SHT_DYNSYM", "SHT_DYNAMIC", "SHT_HASH", "SHT_GNU_HASH",
                  "SHT_GNU_versym", "SHT_GNU_verdef", "SHT_GNU_verneed", "SHT_SUNW_syminfo"}
_DYNAMIC_NAMES = (".dynstr", ".interp", ".gnu.version", ".gnu.version_r", ".gnu.version_d", ".gnu.hash", ".hash")
_UNWIND_NAMES = (".eh_frame", ".eh_frame_hdr", ".gcc_except_table", ".ARM.exidx", ".ARM.extab", ".sframe")


def classify(name: str, sh_type: str, flags: int) -> str:
    """The group of one section (see the module docstring)."""
    if name.startswith((".debug", ".zdebug", ".gnu_debugdata", ".gnu_debugaltlink", ".stab")):
        return "debug"
    if sh_type in ("SHT_SYMTAB", "SHT_SYMTAB_SHNDX") or name in (".symtab", ".strtab", ".symtab_shndx"):
        return "symbols"
    if name.startswith(_UNWIND_NAMES):
        return "unwind"
    if sh_type in _DYNAMIC_TYPES or name in _DYNAMIC_NAMES or name.startswith((".rela.", ".rel.", ".relr.")):
        return "dynamic"
    if flags & SH_FLAGS.SHF_EXECINSTR:
        return "code"
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
                spans.append((start, end, classify(section.name, str(section["sh_type"]), section["sh_flags"])))
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
