"""The one place that talks to PyInstaller's archive readers (internal API; pinned by
tests/test_analysis_pyinstaller_archive.py).

What we rely on, as of PyInstaller 6.22:
  CArchiveReader(path): finds the cookie by scanning from the end; `.toc` maps name ->
    (offset, stored_len, raw_len, compressed_flag, typecode) with offsets relative to the archive
    start; `._start_offset` / `._end_offset` are the archive's bounds in the file; `.options` lists
    the option entries; `_COOKIE_FORMAT` / `_COOKIE_LENGTH` describe the cookie.
  PYZ (ZlibArchiveWriter's format): a 12-byte header (magic, pyc magic, TOC offset), zlib-compressed
    entries, then the TOC: marshalled (name, (typecode, offset, stored_len)) pairs, offsets relative
    to the PYZ start. We read it with build.analysis.marshal_scan, not PyInstaller's
    ZlibArchiveReader, which unmarshals it.
Everything else (validation, the TOC's own extent) is ours, and every failure becomes ArtifactError.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from PyInstaller.archive.readers import CArchiveReader
from PyInstaller.loader.pyimod01_archive import PYZ_ITEM_NSPKG as PYZ_NAMESPACE_PACKAGE
from PyInstaller.loader.pyimod01_archive import ArchiveReadError

from build.analysis.marshal_scan import read_data
from build.errors import ArtifactError

COOKIE_MAGIC = CArchiveReader._COOKIE_MAGIC_PATTERN
COOKIE_LENGTH = CArchiveReader._COOKIE_LENGTH
PYZ_MAGIC = b"PYZ\0"
PYZ_HEADER_LENGTH = 12 + 5  # PyInstaller's ZlibArchiveWriter._HEADER_LENGTH: magic, pyc magic, TOC offset, spare
# Markers of PyInstaller's bootloader, to tell "truncated" from "not PyInstaller at all".
BOOTLOADER_MARKERS = (b"_MEIPASS", b"PyInstaller")

KNOWN_TYPECODES = frozenset("bdzZMmsxolnu")  # PKG_ITEM_* plus symlinks ('n') and splash ('l')


@dataclass(frozen=True, kw_only=True)
class CEntry:
    name: str
    offset: int  # relative to the archive start
    stored: int
    raw: int
    compressed: bool
    typecode: str


@dataclass(frozen=True, kw_only=True)
class CArchive:
    start: int  # absolute offset of the archive in the file
    end: int  # absolute offset just past the cookie
    toc_offset: int  # relative to start
    toc_length: int
    python_version: int  # major * 100 + minor, as the cookie says
    pylib_name: str
    entries: tuple[CEntry, ...]  # sorted by offset
    options: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class PyzEntry:
    name: str
    typecode: int  # 0 module, 1 package, 3 namespace package
    offset: int  # relative to the PYZ start
    stored: int
    raw: int


@dataclass(frozen=True, kw_only=True)
class Pyz:
    start: int  # absolute offset in the file
    length: int
    pyc_magic: bytes
    toc_offset: int  # relative to start; the TOC runs to the end of the PYZ
    entries: tuple[PyzEntry, ...]  # sorted by offset


def running_python() -> str:
    import sys

    return f"{sys.version_info.major}.{sys.version_info.minor}"


def other_python(archive: CArchive) -> str | None:
    """The archive's Python version ("3.12") when it is not the analysing one's."""
    built = f"{archive.python_version // 100}.{archive.python_version % 100}"
    return None if built == running_python() else built


def looks_like_bootloader(head: bytes) -> bool:
    return head[:4] == b"\x7fELF" and all(m in head for m in BOOTLOADER_MARKERS)


def read_carchive(path: Path, file_size: int) -> CArchive | None:
    """The CArchive appended to a PyInstaller executable, or None if there is no cookie."""
    what = f"{path.name}: PyInstaller archive"
    try:
        reader = CArchiveReader(str(path))
    except ArchiveReadError as err:
        if "COOKIE magic" in str(err):
            return None
        raise ArtifactError(f"{what} is damaged ({err})") from None
    except (struct.error, UnicodeDecodeError, ValueError, OSError) as err:
        raise ArtifactError(f"{what} is truncated or corrupted ({type(err).__name__}: {err})") from None

    start, end = reader._start_offset, reader._end_offset
    if not (0 <= start < end <= file_size):
        raise ArtifactError(f"{what} is truncated or corrupted: its cookie says it starts at "
                            f"{start}, outside the {file_size}-byte file")
    with path.open("rb") as stream:
        stream.seek(end - CArchiveReader._COOKIE_LENGTH)
        cookie = stream.read(CArchiveReader._COOKIE_LENGTH)
    _magic, length, toc_offset, toc_length, pyvers, pylib = struct.unpack(CArchiveReader._COOKIE_FORMAT, cookie)
    archive_length = end - start
    if toc_offset + toc_length > archive_length - CArchiveReader._COOKIE_LENGTH:
        raise ArtifactError(f"{what} is truncated or corrupted: its table of contents lies outside it")
    # Another Python's archive is read all the same: sizes need only the archive's own tables
    # (marshal of plain str/int/tuple, stable across versions), never its bytecode.
    entries = []
    for name, (offset, stored, raw, compressed, typecode) in reader.toc.items():
        if typecode not in KNOWN_TYPECODES:
            raise ArtifactError(f"{what} has an entry of unknown type {typecode!r} ({name!r}); it was "
                                f"written by another PyInstaller version than this one understands")
        if offset < 0 or stored < 0 or offset + stored > toc_offset:
            raise ArtifactError(f"{what} is truncated or corrupted: entry {name!r} lies outside the archive")
        entries.append(CEntry(name=name, offset=offset, stored=stored, raw=raw, compressed=bool(compressed),
                              typecode=typecode))
    entries.sort(key=lambda e: (e.offset, e.name))
    return CArchive(start=start, end=end, toc_offset=toc_offset, toc_length=toc_length, python_version=pyvers,
                    pylib_name=pylib.rstrip(b"\0").decode("ascii", "replace"), entries=tuple(entries),
                    options=tuple(reader.options))


def read_pyz(path: Path, start: int, length: int, *, label: str) -> Pyz:
    """The PYZ at absolute offset `start` (from a CArchive entry or a file), with each entry's raw size."""
    what = f"{label}: PYZ archive"
    with path.open("rb") as stream:
        stream.seek(start)
        pyz = stream.read(length)
    header = pyz[:12]
    if len(header) < 12 or header[:4] != PYZ_MAGIC:
        raise ArtifactError(f"{what} is corrupted (no PYZ magic)")
    pyc_magic = header[4:8]
    (toc_offset,) = struct.unpack("!i", header[8:12])
    if not (PYZ_HEADER_LENGTH <= toc_offset < length):
        raise ArtifactError(f"{what} is truncated or corrupted: its TOC offset {toc_offset} is outside it")
    # The TOC is marshalled; it is read as plain data (build.analysis.marshal_scan), never unmarshalled.
    try:
        toc = read_data(pyz[toc_offset:])
        items = dict(toc).items()
    except (ValueError, TypeError) as err:
        raise ArtifactError(f"{what} is truncated or corrupted (its TOC: {err})") from None
    entries = []
    for name, value in items:
        try:
            typecode, offset, stored = value
        except (TypeError, ValueError):
            raise ArtifactError(f"{what} has a TOC in a format this slimfreeze does not know") from None
        if not isinstance(name, str) or not all(isinstance(v, int) for v in value):
            raise ArtifactError(f"{what} has a TOC in a format this slimfreeze does not know")
        if offset < PYZ_HEADER_LENGTH - 5 or stored < 0 or offset + stored > toc_offset:
            raise ArtifactError(f"{what} is truncated or corrupted: entry {name!r} lies outside it")
        raw = 0
        if stored and typecode != PYZ_NAMESPACE_PACKAGE:
            try:
                raw = len(zlib.decompress(pyz[offset:offset + stored]))
            except zlib.error as err:
                raise ArtifactError(f"{what}: entry {name!r} is corrupted ({err})") from None
        entries.append(PyzEntry(name=name, typecode=typecode, offset=offset, stored=stored, raw=raw))
    entries.sort(key=lambda e: (e.offset, e.name))
    return Pyz(start=start, length=length, pyc_magic=pyc_magic, toc_offset=toc_offset, entries=tuple(entries))

