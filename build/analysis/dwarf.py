"""Compilation units of a native file from its DWARF: .debug_aranges maps code addresses to
units, each named by its top DIE's DW_AT_name (e.g. Objects/unicodeobject.c). The top DIE is read
directly (pyelftools parses a unit's whole abbreviation table first: 1.08 s against 0.07 s for the
142 units of this machine's libpython, benchmarks/dwarf_units.py), with pyelftools as the fallback
for anything unusual; tests/analysis/test_analysis_symbols.py checks both agree on every unit of a
real libpython."""

from __future__ import annotations

import io
import posixpath
import struct

from elftools.elf.elffile import ELFFile

from build.analysis.leb128 import sleb128, uleb128

UNKNOWN_UNIT = "[unknown unit]"


def dwarf_units(data: bytes | memoryview) -> tuple[tuple[int, int, str], ...]:
    """(start address, end address, unit name) of code, from .debug_aranges; () without DWARF."""
    try:
        elf = ELFFile(io.BytesIO(bytes(data)))
        if not elf.has_dwarf_info() or elf.get_section_by_name(".debug_aranges") is None:
            return ()
        dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)  # linked files: nothing to relocate
        aranges = dwarf.get_aranges()
        reader = _CuNames(elf)
        names: dict[int, str] = {}
        out = []
        for entry in aranges.entries:
            if entry.length == 0:
                continue
            if entry.info_offset not in names:
                names[entry.info_offset] = reader.name(entry.info_offset) or _slow_cu_name(dwarf, entry.info_offset)
            out.append((entry.begin_addr, entry.begin_addr + entry.length, names[entry.info_offset]))
        return tuple(sorted(out))
    except Exception:  # noqa: BLE001  damaged debug info: units fall back to the symbol table
        return ()


def comp_dirs(data: bytes | memoryview) -> tuple[str, ...]:
    """DW_AT_comp_dir of the units that hold code (the folder each was compiled in); () if unknown."""
    try:
        elf = ELFFile(io.BytesIO(bytes(data)))
        if not elf.has_dwarf_info() or elf.get_section_by_name(".debug_aranges") is None:
            return ()
        reader = _CuNames(elf)
        offsets = {e.info_offset for e in elf.get_dwarf_info(relocate_dwarf_sections=False).get_aranges().entries}
        return tuple(sorted({d for d in (reader.name(o, DW_AT_COMP_DIR) for o in offsets) if d}))
    except Exception:  # noqa: BLE001  damaged debug info: no folders
        return ()


def first_files(data: bytes | memoryview) -> tuple[tuple[int, int, str], ...]:
    """(start, end, path) of the code of units named `<artificial>` (LTO) and the like, with the
    path of file 1 of their line table: binutils 2.40's addr2line names DWARF 5's file 1 by entry 0,
    the unit's own `<artificial>`. Only the line tables' headers are read."""
    try:
        elf = ELFFile(io.BytesIO(bytes(data)))
        if not elf.has_dwarf_info() or elf.get_section_by_name(".debug_aranges") is None:
            return ()
        dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
        reader = _CuNames(elf)
        paths: dict[int, str | None] = {}
        out = []
        for entry in dwarf.get_aranges().entries:
            offset = entry.info_offset
            if entry.length == 0 or not (reader.name(offset) or "").startswith("<"):
                continue
            if offset not in paths:
                paths[offset] = _file_one(dwarf, offset)
            if paths[offset]:
                out.append((entry.begin_addr, entry.begin_addr + entry.length, paths[offset]))
        return tuple(sorted(out))
    except Exception:  # noqa: BLE001  damaged debug info: nothing to correct
        return ()


def _file_one(dwarf, offset: int) -> str | None:
    program = dwarf.line_program_for_CU(dwarf.get_CU_at(offset))
    header = program.header if program is not None else None
    if header is None or header["version"] < 5 or len(header["file_entry"]) < 2:
        return None
    dirs = [d.decode("utf-8", "backslashreplace") if isinstance(d, bytes) else str(d)
            for d in header["include_directory"]]
    entry = header["file_entry"][1]
    name = entry.name.decode("utf-8", "backslashreplace") if isinstance(entry.name, bytes) else str(entry.name)
    folder = dirs[entry.dir_index] if entry.dir_index < len(dirs) else ""
    return posixpath.normpath(posixpath.join(dirs[0] if dirs else "", folder, name))


def _slow_cu_name(dwarf, offset: int) -> str:
    attr = dwarf.get_CU_at(offset).get_top_DIE().attributes.get("DW_AT_name")
    value = attr.value if attr is not None else b""
    return (value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)) or UNKNOWN_UNIT


# DWARF forms by the bytes they take: fixed sizes; "o" the offset size (4 or 8), "a" the address size,
# "u"/"s" a LEB128, "z" a NUL-terminated string, "b1"/"b2"/"b4"/"bu" a block with that length prefix.
_FORMS: dict[int, int | str] = {
    0x01: "a", 0x03: "b2", 0x04: "b4", 0x05: 2, 0x06: 4, 0x07: 8, 0x08: "z", 0x09: "bu", 0x0A: "b1", 0x0B: 1,
    0x0C: 1, 0x0D: "s", 0x0E: "o", 0x0F: "u", 0x10: "o", 0x11: 1, 0x12: 2, 0x13: 4, 0x14: 8, 0x15: "u",
    0x17: "o", 0x18: "bu", 0x19: 0, 0x1A: "u", 0x1B: "u", 0x1C: 4, 0x1D: "o", 0x1E: 16, 0x1F: "o", 0x20: 8,
    0x21: 0, 0x22: "u", 0x23: "u", 0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4, 0x29: 1, 0x2A: 2, 0x2B: 3, 0x2C: 4,
}
DW_AT_NAME, DW_AT_COMP_DIR, DW_FORM_STRING, DW_FORM_STRP, DW_FORM_LINE_STRP, DW_FORM_IMPLICIT_CONST = 0x03, 0x1B, 0x08, 0x0E, 0x1F, 0x21


class _CuNames:
    """DW_AT_name of a compilation unit's top DIE, read directly: pyelftools parses each unit's
    whole abbreviation table first (seconds for libpython); the top DIE needs only its own entry.
    Returns None for anything unusual (compressed sections, DWARF 5 string indexes), and the
    caller asks pyelftools then."""

    def __init__(self, elf: ELFFile) -> None:
        def raw(name: str) -> bytes:
            section = elf.get_section_by_name(name)
            if section is None or section["sh_flags"] & 0x800:  # SHF_COMPRESSED
                return b""
            return section.data()

        self.info, self.abbrev = raw(".debug_info"), raw(".debug_abbrev")
        self.strings, self.line_strings = raw(".debug_str"), raw(".debug_line_str")
        self.order = "<" if elf.little_endian else ">"

    def name(self, offset: int, attribute: int = DW_AT_NAME) -> str | None:
        try:
            return self._name(offset, attribute)
        except (IndexError, struct.error, KeyError, UnicodeDecodeError):
            return None

    def _name(self, pos: int, attribute: int) -> str | None:
        info, order = self.info, self.order
        if not info:
            return None
        (length,) = struct.unpack_from(order + "I", info, pos)
        pos += 4
        offset_size = 4
        if length == 0xFFFFFFFF:
            offset_size, pos = 8, pos + 8
        (version,) = struct.unpack_from(order + "H", info, pos)
        pos += 2
        off_fmt = order + ("I" if offset_size == 4 else "Q")
        if version >= 5:
            unit_type, address_size = info[pos], info[pos + 1]
            if unit_type not in (1, 3):  # DW_UT_compile, DW_UT_partial
                return None
            (abbrev_at,) = struct.unpack_from(off_fmt, info, pos + 2)
            pos += 2 + offset_size
        else:
            (abbrev_at,) = struct.unpack_from(off_fmt, info, pos)
            address_size = info[pos + offset_size]
            pos += offset_size + 1
        code, pos = uleb128(info, pos)
        # Find the abbreviation `code` (for a unit's top DIE, nearly always the first entry).
        apos = abbrev_at
        while True:
            entry, apos = uleb128(self.abbrev, apos)
            if entry == 0:
                return None
            _tag, apos = uleb128(self.abbrev, apos)
            apos += 1  # children flag
            attrs = []
            while True:
                attr, apos = uleb128(self.abbrev, apos)
                form, apos = uleb128(self.abbrev, apos)
                if attr == 0 and form == 0:
                    break
                if form == DW_FORM_IMPLICIT_CONST:
                    _, apos = sleb128(self.abbrev, apos)
                attrs.append((attr, form))
            if entry == code:
                break
        for attr, form in attrs:
            if attr == attribute:
                if form == DW_FORM_STRING:
                    return _cstring(info, pos)
                if form in (DW_FORM_STRP, DW_FORM_LINE_STRP):
                    (at,) = struct.unpack_from(off_fmt, info, pos)
                    return _cstring(self.strings if form == DW_FORM_STRP else self.line_strings, at)
                return None
            size = _FORMS.get(form)
            if size is None:
                return None
            if isinstance(size, int):
                pos += size
            elif size == "o":
                pos += offset_size
            elif size == "a":
                pos += address_size
            elif size in ("u", "s"):
                _, pos = uleb128(info, pos)
            elif size == "z":
                pos = info.index(b"\0", pos) + 1
            elif size == "bu":
                n, pos = uleb128(info, pos)
                pos += n
            else:  # b1, b2, b4
                width = int(size[1])
                n = int.from_bytes(info[pos:pos + width], "little" if order == "<" else "big")
                pos += width + n
        return None


def _cstring(buf: bytes, at: int) -> str:
    end = buf.index(b"\0", at)
    return buf[at:end].decode("utf-8", "backslashreplace")
