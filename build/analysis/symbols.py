"""Inside a native file, like cargo bloat: its functions and objects, grouped by compilation unit.

Evidence, best first:
  symbols  the file's own .symtab; else the .symtab of an unstripped copy with the same GNU
           build-id (`strip` keeps the build-id and every address); else .dynsym (exported
           symbols only); else none (the report falls back to the file's sections).
  units    DWARF: .debug_aranges maps code addresses to compilation units, named by each unit's
           DW_AT_name (e.g. Objects/unicodeobject.c); else the STT_FILE symbols that precede a
           file's local symbols in .symtab (the object file or C file); Nuitka's names, which
           encode the Python module (build.analysis.nuitka_symbols).
Sizes are bytes of the shipped file (its section headers map addresses to file offsets).
The parsing of symbol entries is done with struct (the ELF layout is fixed) because pyelftools
takes seconds on a symbol table of 100,000 entries; section headers and DWARF use pyelftools.
"""

from __future__ import annotations

import bisect
import io
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from elftools.elf.elffile import ELFFile

from build.analysis import nuitka_symbols
from build.analysis.dwarf import UNKNOWN_UNIT
from build.analysis.elf_sections import LABELS, ElfSection, read_sections

SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
STT_OBJECT, STT_FUNC, STT_FILE, STT_TLS = 1, 2, 4, 6
STB_LOCAL = 0
REST_SUFFIX = {"code": " without a symbol", "rodata": " without a symbol", "data": " without a symbol"}


@dataclass(frozen=True, kw_only=True)
class Symbol:
    name: str
    kind: str  # "function" | "object"
    address: int
    size: int
    section: int  # section index
    file: str | None  # the STT_FILE before it (local symbols only)


@dataclass(frozen=True, kw_only=True)
class SymbolTable:
    table: str  # ".symtab" | ".dynsym"
    symbols: tuple[Symbol, ...]


@dataclass(frozen=True, kw_only=True)
class Part:
    """One function, object or unit, with its bytes in the shipped file."""

    name: str
    kind: str  # function | object | unit | rest
    unit: str  # compilation unit (source file, object file or Python module), or UNKNOWN_UNIT
    size: int
    code: int  # of which in code sections (cargo bloat's .text column)


@dataclass(frozen=True, kw_only=True)
class Breakdown:
    """What a native file holds, by function and by unit (Part sizes sum to the sections they cover)."""

    source: str  # which symbols were used, said in words ("own .symtab", "unstripped copy ... (build-id ...)")
    units_from: str  # "DWARF" | "symbol table" | "Nuitka names" | "none"
    code_bytes: int  # bytes in code sections of the shipped file
    code_in_units: int  # of which attributed to a named unit
    symbols: tuple[Part, ...]  # functions and objects, largest first
    units: tuple[Part, ...]  # units, largest first; "[...]" parts for what no unit claims


# --- reading ------------------------------------------------------------------------------------

def _layout(data: bytes | memoryview) -> tuple[str, bool] | None:
    """(struct byte order, 64-bit) from e_ident."""
    head = bytes(data[:6])
    if head[:4] != b"\x7fELF" or head[4] not in (1, 2) or head[5] not in (1, 2):
        return None
    return ("<" if head[5] == 1 else ">"), head[4] == 2


def read_symbols(data: bytes | memoryview, sections: Sequence[ElfSection] | None = None) -> SymbolTable | None:
    """Functions and objects with a size from .symtab, else .dynsym; None if it has neither."""
    layout = _layout(data)
    sections = sections if sections is not None else read_sections(data)
    if layout is None or not sections:
        return None
    order, wide = layout
    view = memoryview(data)
    for table_name, sh_type in ((".symtab", "SHT_SYMTAB"), (".dynsym", "SHT_DYNSYM")):
        table = next((s for s in sections if s.type == sh_type), None)
        if table is None or table.size == 0:
            continue
        link = _link(data, sections.index(table), order, wide)
        if link is None or link >= len(sections):
            continue
        strtab = sections[link]
        strings = bytes(view[strtab.offset:strtab.offset + strtab.size])
        raw = bytes(view[table.offset:table.offset + table.size])
        return SymbolTable(table=table_name, symbols=tuple(_entries(raw, strings, order, wide)))
    return None


def _link(data: bytes | memoryview, index: int, order: str, wide: bool) -> int | None:
    """sh_link of section `index` (the string table of a symbol table)."""
    if wide:
        shoff, = struct.unpack_from(order + "Q", data, 0x28)
        entsize, = struct.unpack_from(order + "H", data, 0x3A)
        link_at = shoff + index * entsize + 0x28
    else:
        shoff, = struct.unpack_from(order + "I", data, 0x20)
        entsize, = struct.unpack_from(order + "H", data, 0x2E)
        link_at = shoff + index * entsize + 0x18
    if link_at + 4 > len(data):
        return None
    return struct.unpack_from(order + "I", data, link_at)[0]


def _entries(raw: bytes, strings: bytes, order: str, wide: bool) -> Iterable[Symbol]:
    if wide:  # Elf64_Sym: name, info, other, shndx, value, size
        fmt, width = order + "IBBHQQ", 24
        rows = ((n, i, x, v, s) for n, i, _o, x, v, s in struct.iter_unpack(fmt, raw[:len(raw) // width * width]))
    else:  # Elf32_Sym: name, value, size, info, other, shndx
        fmt, width = order + "IIIBBH", 16
        rows = ((n, i, x, v, s) for n, v, s, i, _o, x in struct.iter_unpack(fmt, raw[:len(raw) // width * width]))
    current_file: str | None = None
    for name_at, info, shndx, value, size in rows:
        kind = info & 0xF
        if kind == STT_FILE:
            current_file = _string(strings, name_at)
            continue
        if info >> 4 != STB_LOCAL:
            current_file = None  # global symbols follow all local ones; none of them has a file
        if kind not in (STT_FUNC, STT_OBJECT) or size == 0 or shndx == SHN_UNDEF or shndx >= SHN_LORESERVE:
            continue
        yield Symbol(name=_string(strings, name_at), kind="function" if kind == STT_FUNC else "object",
                     address=value, size=size, section=shndx, file=current_file)


def _string(strings: bytes, at: int) -> str:
    end = strings.find(b"\0", at)
    return strings[at:end if end >= 0 else len(strings)].decode("utf-8", "backslashreplace")


# --- attribution (pure) -----------------------------------------------------------------------

def unit_name(file: str | None, nuitka: bool) -> str | None:
    """A unit's display name from an STT_FILE value: Nuitka's module.X.c is module X."""
    if file is None:
        return None
    if nuitka:
        module = nuitka_symbols.module_of_file(file)
        if module:
            return module
    return file


def breakdown(sections: Sequence[ElfSection], table: SymbolTable | None, units: Sequence[tuple[int, int, str]],
              *, source: str, nuitka: bool = False) -> Breakdown:
    """Functions and units of the shipped file whose section table is `sections`."""
    loaded = [s for s in sections if s.flags & 0x2 and s.size and s.type != "SHT_NOBITS"]
    code_sections = [s for s in loaded if s.flags & 0x4]
    code_bytes = sum(s.size for s in code_sections)
    spans = sorted(units)
    starts = [s for s, _, _ in spans]

    def arange_unit(address: int) -> str | None:
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and spans[i][0] <= address < spans[i][1]:
            return spans[i][2]
        return None

    by_address = sorted(loaded, key=lambda s: s.address)
    section_starts = [s.address for s in by_address]
    groups = [s.group for s in by_address]

    def in_file(address: int, size: int) -> tuple[int, str]:
        """Bytes of [address, address+size) that are in the file (not .bss), and their group."""
        i = bisect.bisect_right(section_starts, address) - 1
        if i >= 0:
            s = by_address[i]
            if address < s.address + s.size:
                return min(size, s.address + s.size - address), groups[i]
        return 0, ""

    spans = [(lo, hi, unit_name(clean_unit(u), nuitka) or u) for lo, hi, u in spans]
    # An STT_FILE names a unit by its base name; DWARF by its path: one unit, one name.
    bases: dict[str, set[str]] = {}
    for _, _, u in spans:
        bases.setdefault(u.rsplit("/", 1)[-1], set()).add(u)
    by_base = {b: next(iter(us)) for b, us in bases.items() if len(us) == 1}
    claimed_by_group: dict[str, int] = {}
    parts: list[Part] = []
    claimed: list[tuple[int, int]] = []
    last_end = -1
    for sym in sorted(table.symbols if table else (), key=lambda s: (s.address, -s.size, s.name)):
        start = max(sym.address, last_end)  # aliases and overlaps count once
        end = sym.address + sym.size
        if end <= start:
            continue
        size, group = in_file(start, end - start)
        if size <= 0:
            continue
        claimed_by_group[group] = claimed_by_group.get(group, 0) + size
        unit = arange_unit(start)
        if unit is None and nuitka:
            unit = nuitka_symbols.module_of_symbol(sym.name)
        if unit is None:
            unit = unit_name(sym.file, nuitka)
            unit = by_base.get(unit, unit) if unit else unit
        code = size if group == "code" else 0
        parts.append(Part(name=sym.name, kind=sym.kind, unit=unit or UNKNOWN_UNIT, size=size, code=code))
        claimed.append((start, start + size))
        last_end = end
    parts = _units_from_neighbours(parts)
    unit_sizes: dict[str, list[int]] = {}
    for p in parts:
        acc = unit_sizes.setdefault(p.unit, [0, 0])
        acc[0] += p.size
        acc[1] += p.code
    # Code that DWARF gives a unit but no symbol covers (static functions of a stripped copy's
    # .dynsym-only table, padding between functions): still that unit's.
    for start, end, unit in spans:
        for s in code_sections:
            lo, hi = max(start, s.address), min(end, s.address + s.size)
            if lo < hi:
                free = (hi - lo) - _overlap(claimed, lo, hi)
                if free > 0:
                    acc = unit_sizes.setdefault(unit, [0, 0])
                    acc[0] += free
                    acc[1] += free
                    claimed_by_group["code"] = claimed_by_group.get("code", 0) + free
    unit_parts = [Part(name=u, kind="unit", unit=u, size=s, code=c) for u, (s, c) in unit_sizes.items()]
    # `<artificial>` (LTO) and the like name no source file.
    named_code = sum(p.code for p in unit_parts if p.unit != UNKNOWN_UNIT and not p.unit.startswith("<"))
    # What no symbol or unit claims, per section group (relocations, unwind tables, gaps).
    group_bytes: dict[str, int] = {}
    for sec in loaded:
        group_bytes[sec.group] = group_bytes.get(sec.group, 0) + sec.size
    for group, total in sorted(group_bytes.items()):
        rest = total - claimed_by_group.get(group, 0)
        if rest > 0:
            unit_parts.append(Part(name=f"[{LABELS.get(group, group)}{REST_SUFFIX.get(group, '')}]", kind="rest",
                                   unit=UNKNOWN_UNIT, size=rest, code=rest if group == "code" else 0))
    named = any(p.unit != UNKNOWN_UNIT for p in parts)
    units_from = "DWARF" if spans else ("none" if not named else "Nuitka names" if nuitka else "symbol table")
    return Breakdown(source=source, units_from=units_from, code_bytes=code_bytes,
                     code_in_units=min(named_code, code_bytes),
                     symbols=tuple(sorted(parts, key=lambda p: (-p.size, p.name))),
                     units=tuple(sorted(unit_parts, key=lambda p: (-p.size, p.name))))


def _units_from_neighbours(parts: list[Part]) -> list[Part]:
    """A symbol without a unit (a global object: DWARF's address ranges cover only code) between
    two symbols of the same unit, in address order, is that unit's: the linker lays out each
    object file's sections contiguously."""
    out = list(parts)
    known = [i for i, p in enumerate(out) if p.unit != UNKNOWN_UNIT]
    for k in range(len(known) - 1):
        a, b = known[k], known[k + 1]
        if b - a > 1 and out[a].unit == out[b].unit:
            for i in range(a + 1, b):
                out[i] = Part(name=out[i].name, kind=out[i].kind, unit=out[a].unit, size=out[i].size,
                              code=out[i].code)
    return out


def clean_unit(name: str) -> str:
    """./Modules/_sre/sre.c -> Modules/_sre/sre.c; /tmp/build/Python-3.11.7/Modules/x.c -> Modules/x.c."""
    name = name.removeprefix("./")
    if name.startswith("/"):
        parts = name.split("/")
        for i, part in enumerate(parts):
            if part.startswith("Python-") and i + 1 < len(parts):
                return "/".join(parts[i + 1:])
    return name


def _overlap(claimed: list[tuple[int, int]], lo: int, hi: int) -> int:
    """Bytes of [lo, hi) inside the sorted, disjoint `claimed` spans."""
    i = bisect.bisect_left(claimed, (lo, lo)) - 1
    total = 0
    for s, e in claimed[max(i, 0):]:
        if s >= hi:
            break
        total += max(0, min(e, hi) - max(s, lo))
    return total


def module_spans(data: bytes | memoryview) -> dict[str, tuple[tuple[int, int], ...]]:
    """Nuitka-compiled code per Python module, as file-offset spans (sorted, disjoint), from the
    file's own .symtab ({} when it is stripped: Nuitka strips unless --unstripped)."""
    sections = read_sections(data)
    table = read_symbols(data, sections) if sections else None
    if not sections or table is None or table.table != ".symtab":
        return {}
    loaded = sorted((s for s in sections if s.flags & 0x2 and s.size and s.type != "SHT_NOBITS"),
                    key=lambda s: s.address)
    starts = [s.address for s in loaded]
    spans: dict[str, list[list[int]]] = {}
    last_end = -1
    for sym in sorted(table.symbols, key=lambda s: (s.address, -s.size, s.name)):
        start = max(sym.address, last_end)
        end = sym.address + sym.size
        if end <= start:
            continue
        last_end = end
        module = nuitka_symbols.module_of_file(sym.file or "") or nuitka_symbols.module_of_symbol(sym.name)
        if not module:
            continue
        i = bisect.bisect_right(starts, start) - 1
        if i < 0 or start >= loaded[i].address + loaded[i].size:
            continue
        sec = loaded[i]
        lo = sec.offset + start - sec.address
        hi = sec.offset + min(end, sec.address + sec.size) - sec.address
        runs = spans.setdefault(module, [])
        if runs and runs[-1][1] == lo:
            runs[-1][1] = hi
        else:
            runs.append([lo, hi])
    return {m: tuple((a, b) for a, b in runs) for m, runs in spans.items()}


def objects_breakdown(sections: Sequence[ElfSection], objects: Sequence[tuple[str, bytes]], *,
                      source: str) -> Breakdown:
    """A stripped Nuitka program from the object files it was linked from (Nuitka's build folder:
    module.<name>.o per module): each object's functions and data with their compiled sizes, unit
    = the module the object file names. Addresses are unknown, so this names sizes, not places."""
    parts: list[Part] = []
    for name, data in objects:
        obj_sections = read_sections(data)
        table = read_symbols(data, obj_sections) if obj_sections else None
        if not obj_sections or table is None:
            continue
        base = name.rsplit("/", 1)[-1]
        c_name = base[:-2] + ".c" if base.endswith(".o") else base
        unit = nuitka_symbols.module_of_file(c_name) or c_name
        seen: set[tuple[int, int]] = set()
        for sym in table.symbols:
            if sym.section >= len(obj_sections) or (sym.section, sym.address) in seen:
                continue
            sec = obj_sections[sym.section]
            if not sec.flags & 0x2 or sec.type == "SHT_NOBITS":
                continue
            seen.add((sym.section, sym.address))
            code = sym.size if sec.group == "code" else 0
            parts.append(Part(name=sym.name, kind=sym.kind, unit=unit, size=sym.size, code=code))
    loaded = [s for s in sections if s.flags & 0x2 and s.size and s.type != "SHT_NOBITS"]
    code_bytes = sum(s.size for s in loaded if s.flags & 0x4)
    unit_sizes: dict[str, list[int]] = {}
    by_group: dict[str, int] = {}
    for p in parts:
        acc = unit_sizes.setdefault(p.unit, [0, 0])
        acc[0] += p.size
        acc[1] += p.code
        group = "code" if p.code else "data"  # objects: read-only and writable data together
        by_group[group] = by_group.get(group, 0) + p.size
    unit_parts = [Part(name=u, kind="unit", unit=u, size=s, code=c) for u, (s, c) in unit_sizes.items()]
    group_bytes: dict[str, int] = {}
    for sec in loaded:
        group = "data" if sec.group == "rodata" else sec.group
        group_bytes[group] = group_bytes.get(group, 0) + sec.size
    for group, total in sorted(group_bytes.items()):
        rest = total - by_group.get(group, 0)
        if rest > 0:
            label = "[code without a symbol]" if group == "code" else (
                "[data without a symbol]" if group == "data" else f"[{LABELS.get(group, group)}]")
            unit_parts.append(Part(name=label, kind="rest", unit=UNKNOWN_UNIT, size=rest,
                                   code=rest if group == "code" else 0))
    named = min(code_bytes, sum(p.code for p in parts))
    return Breakdown(source=source, units_from="Nuitka names" if parts else "none", code_bytes=code_bytes,
                     code_in_units=named, symbols=tuple(sorted(parts, key=lambda p: (-p.size, p.name))),
                     units=tuple(sorted(unit_parts, key=lambda p: (-p.size, p.name))))
