"""Reader: a PyInstaller executable (onefile, or a onedir executable) as a region tree.

Layout on Linux: the bootloader ELF, its `pydata` section holding the CArchive (entries, then
the TOC, then the cookie), then the bootloader's section name table and section headers.
"""

from __future__ import annotations

from pathlib import Path

from build.analysis import elf
from build.analysis.model import ARCHIVE_INDEX, BOOTLOADER, UNATTRIBUTED
from build.analysis.pyinstaller_archive import (
    COOKIE_LENGTH,
    PYZ_HEADER_LENGTH,
    CArchive,
    CEntry,
    Pyz,
    read_pyz,
)
from build.analysis.regions import Content, Region, bucket, fill_gaps
from build.analysis.streams import identity, zlib_stream
from build.analysis.zip_archive import zip_regions
from build.errors import ArtifactError

PYINSTALLER = "pyinstaller"
PYTHON_RUNTIME = "python-runtime"

_KIND = {"m": "module", "M": "module", "s": "script", "b": "binary", "x": "data", "z": "archive",
         "Z": "archive", "n": "link", "d": "dependency", "l": "data", "o": "option"}


def executable_regions(path: Path, data: bytes, archive: CArchive, *, label: str) -> tuple[Region, ...]:
    """Regions covering all of `data` (the executable's bytes)."""
    size = len(data)
    boot_spans = [(0, archive.start)]
    tail = (archive.end, size)
    if tail[0] < tail[1]:
        if _is_elf_tail(data, archive.end):
            boot_spans.append(tail)
    regions = [bucket(BOOTLOADER, tuple(s for s in boot_spans if s[0] < s[1]), distribution=PYINSTALLER,
                      kind="bootloader")]
    if tail[0] < tail[1] and len(boot_spans) == 1:
        regions.append(bucket(UNATTRIBUTED, (tail,), kind="unattributed"))

    inside: list[Region] = []
    for entry in archive.entries:
        if entry.stored == 0:
            continue
        inside.append(_entry_region(path, data, archive, entry, label=label))
    toc = (archive.start + archive.toc_offset, archive.start + archive.toc_offset + archive.toc_length)
    index_spans = [toc, (archive.end - COOKIE_LENGTH, archive.end)]
    if toc[1] == index_spans[1][0]:
        index_spans = [(toc[0], archive.end)]
    inside.append(bucket(ARCHIVE_INDEX, tuple(index_spans), distribution=PYINSTALLER, kind="index"))
    children = fill_gaps(inside, archive.start, archive.end, memoryview(data)[archive.start:archive.end],
                         what=f"{label}: PyInstaller archive", distribution=PYINSTALLER)
    regions.append(Region(name="", kind="archive", spans=((archive.start, archive.end),),
                          raw=archive.end - archive.start, children=children))
    return tuple(regions)


def _is_elf_tail(data: bytes, end: int) -> bool:
    """Bytes after the archive are the bootloader's own (section name table and section headers)
    when the ELF header says its section header table ends the file."""
    table_end = elf.section_table_end(data)
    return table_end == len(data) and end <= len(data)


def _entry_region(path: Path, data: bytes, archive: CArchive, entry: CEntry, *, label: str) -> Region:
    start = archive.start + entry.offset
    span = ((start, start + entry.stored),)
    kind = _KIND.get(entry.typecode, "data")
    what = f"{label}: entry {entry.name!r}"
    if entry.typecode == "z" and not entry.compressed:
        pyz = read_pyz(path, start, entry.stored, label=label)
        return Region(name=entry.name, kind="archive", spans=span, raw=entry.raw,
                      children=pyz_regions(pyz, data, label=label))
    if entry.typecode in "mMs":
        return Region(name=entry.name, kind=kind, spans=span, raw=entry.raw, module=entry.name, file=entry.name)
    blob = memoryview(data)[start:start + entry.stored]
    if entry.name.endswith("base_library.zip") or (entry.typecode == "b" and entry.stored > 0) \
            or entry.name.endswith(".zip"):
        raw_bytes, smap = (zlib_stream(blob, what=what) if entry.compressed
                           else (bytes(blob), identity(entry.stored)))
        if len(raw_bytes) != entry.raw:
            raise ArtifactError(f"{what} is corrupted: {len(raw_bytes)} bytes uncompressed, the archive's "
                                f"table of contents says {entry.raw}")
        content = Content(raw_size=len(raw_bytes), smap=smap, compressed=entry.compressed)
        if entry.name.endswith(".zip") and raw_bytes[:2] == b"PK":
            dist = PYTHON_RUNTIME if entry.name.endswith("base_library.zip") else None
            return Region(name=entry.name, kind="archive", spans=span, raw=len(raw_bytes), file=entry.name,
                          content=content, children=zip_regions(raw_bytes, what=what, distribution=dist))
        ranges = elf.section_ranges(raw_bytes)
        if ranges is not None:
            kind = elf.file_kind(entry.name)
        return Region(name=entry.name, kind=kind, spans=span, raw=len(raw_bytes), file=entry.name,
                      content=content if ranges else None, sections=ranges, soname=elf.soname(raw_bytes))
    return Region(name=entry.name, kind=kind, spans=span, raw=entry.raw, file=entry.name)


def pyz_regions(pyz: Pyz, data: bytes, *, label: str) -> tuple[Region, ...]:
    """The PYZ's modules in place (absolute offsets), its header and TOC as [archive index]."""
    regions = [Region(name=e.name, kind="module", spans=((pyz.start + e.offset, pyz.start + e.offset + e.stored),),
                      raw=e.raw, module=e.name) for e in pyz.entries if e.stored]
    first = min((e.offset for e in pyz.entries if e.stored), default=pyz.toc_offset)
    header_end = min(first, PYZ_HEADER_LENGTH, pyz.toc_offset)
    regions.append(bucket(ARCHIVE_INDEX, ((pyz.start, pyz.start + header_end),
                                          (pyz.start + pyz.toc_offset, pyz.start + pyz.length)),
                          distribution=PYINSTALLER, kind="index"))
    return fill_gaps(regions, pyz.start, pyz.start + pyz.length,
                     memoryview(data)[pyz.start:pyz.start + pyz.length], what=f"{label}: PYZ archive",
                     distribution=PYINSTALLER)


def zip_file_regions(data: bytes, *, label: str, distribution: str | None) -> Region:
    """A zip file (onedir's base_library.zip) as one region whose children are its members."""
    return Region(name="", kind="archive", spans=((0, len(data)),), raw=len(data), file=label,
                  content=Content(raw_size=len(data), smap=identity(len(data)), compressed=False),
                  children=zip_regions(data, what=label, distribution=distribution))
