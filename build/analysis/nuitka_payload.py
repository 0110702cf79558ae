"""Reader: Nuitka's onefile payload (Nuitka 4.3: nuitka/tools/onefile_compressor/OnefileCompressor.py
writes it, nuitka/build/static_src/OnefileBootstrap.c reads it).

Payload = b"KA" + b"Y" (zstd) or b"X" (plain), then the file table, then an 8-byte little-endian
trailer holding the payload's length (from "KA" to the trailer). Nuitka 4 links the payload into
the starter's .rodata, so we search for it rather than take the file's tail. File table, per file:
  name (utf-8, NUL-terminated), flags byte (POSIX: 1 executable, 2 symlink),
  symlink: target (NUL-terminated) | file: size (u64), [crc32 (u32) in cached mode],
  [compressed size (u32) in archive mode], data; an empty name ends the table.
Compressed payloads are one zstd stream around the whole table ("stream"), or, with
--onefile-as-archive, one zstd frame per file ("archive").
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from build.analysis.streams import StreamMap, identity, zstd_stream
from build.errors import ArtifactError

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
TRAILER = 8
STARTER_MARKER = b"couldn't find attached data header"  # an error message only the onefile starter has


@dataclass(frozen=True, kw_only=True)
class PayloadFile:
    name: str
    header: tuple[int, int]  # record header range in table coordinates
    data: tuple[int, int]  # data range in table coordinates (stored bytes in archive mode)
    size: int  # uncompressed size
    executable: bool
    link_target: str | None = None


@dataclass(frozen=True, kw_only=True)
class Payload:
    start: int  # absolute offset of b"KA"
    end: int  # absolute offset just past the trailer
    mode: str  # "stream" | "archive" | "plain"
    table_start: int  # absolute offset where the table's stored bytes begin (after b"KAx")
    table_stored: int  # stored bytes of the table (the zstd frame in stream mode)
    table: bytes  # the table's bytes (decompressed in stream mode)
    smap: StreamMap  # table offset -> stored offset within [table_start, table_start + table_stored)
    files: tuple[PayloadFile, ...]
    checksums: bool


def looks_like_starter(data: bytes) -> bool:
    """A Nuitka onefile starter: its own error message, or, once Nuitka's upx plugin packed the
    starter (which hides that text), a payload that parses at its end."""
    if data[:4] != b"\x7fELF":
        return False
    if STARTER_MARKER in data:
        return True
    if b"UPX!" not in data[:4096]:
        return False
    try:
        find_payload(data, label="")
    except ArtifactError:
        return False
    return True


def find_payload(data: bytes, *, label: str) -> Payload:
    """The payload inside a Nuitka onefile starter (see looks_like_starter); ArtifactError if it is
    missing or does not parse (truncated or corrupted)."""
    problems: list[str] = []
    for match in re.finditer(rb"KA[XY]", data):
        start = match.start()
        try:
            payload = _try_payload(data, start, label=label)
        except ArtifactError as err:
            problems.append(str(err))
            continue
        if payload is not None:
            return payload
    if problems:
        raise ArtifactError(problems[0])
    raise ArtifactError(f"{label}: a Nuitka onefile starter without its payload (truncated or corrupted)")


def _try_payload(data: bytes, start: int, *, label: str) -> Payload | None:
    compressed = data[start + 2:start + 3] == b"Y"
    body = start + 3
    what = f"{label}: Nuitka onefile payload"
    if compressed and data[body:body + 4] == ZSTD_MAGIC:
        table, stored, smap = zstd_stream(memoryview(data)[body:], what=what)
        end = body + stored + TRAILER
        if end > len(data) or _u64(data, body + stored) != stored + 3:
            raise ArtifactError(f"{what} is truncated or corrupted (its length trailer does not match)")
        for checksums in (False, True):
            files = _parse_table(table, 0, len(table), checksums=checksums, archive=False)
            if files is not None and files[1] == len(table):
                return Payload(start=start, end=end, mode="stream", table_start=body, table_stored=stored,
                               table=table, smap=smap, files=files[0], checksums=checksums)
        raise ArtifactError(f"{what} is corrupted (its file table does not parse)")
    # Plain or per-file-compressed tables are stored as is: parse in place, then check the trailer.
    for checksums in (False, True):
        parsed = _parse_table(data, body, len(data) - TRAILER, checksums=checksums, archive=compressed)
        if parsed is None:
            continue
        files, table_end = parsed
        if _u64(data, table_end) == table_end - start:
            table = data[body:table_end]
            shifted = tuple(_shift(f, -body) for f in files)
            return Payload(start=start, end=table_end + TRAILER, mode="archive" if compressed else "plain",
                           table_start=body, table_stored=len(table), table=table, smap=identity(len(table)),
                           files=shifted, checksums=checksums)
    return None


def _u64(data: bytes, pos: int) -> int:
    if pos + 8 > len(data):
        return -1
    return struct.unpack_from("<Q", data, pos)[0]


def _shift(f: PayloadFile, by: int) -> PayloadFile:
    return PayloadFile(name=f.name, header=(f.header[0] + by, f.header[1] + by), data=(f.data[0] + by, f.data[1] + by),
                       size=f.size, executable=f.executable, link_target=f.link_target)


def _parse_table(buf: bytes, pos: int, limit: int, *, checksums: bool,
                 archive: bool) -> tuple[tuple[PayloadFile, ...], int] | None:
    """Parse records from `pos`; (files, position after the terminator) or None if they do not fit."""
    files: list[PayloadFile] = []
    while True:
        nul = buf.find(b"\0", pos, min(limit, pos + 4096))
        if nul < 0:
            return None
        if nul == pos:  # the empty name ends the table
            return tuple(files), pos + 1
        header_start = pos
        try:
            name = buf[pos:nul].decode("utf-8")
        except UnicodeDecodeError:
            return None
        pos = nul + 1
        if pos >= limit:
            return None
        flags = buf[pos]
        pos += 1
        if flags & ~3:
            return None
        if flags & 2:
            nul = buf.find(b"\0", pos, min(limit, pos + 4096))
            if nul < 0:
                return None
            target = buf[pos:nul].decode("utf-8", "replace")
            pos = nul + 1
            files.append(PayloadFile(name=name, header=(header_start, pos), data=(pos, pos), size=0,
                                     executable=False, link_target=target))
            continue
        if pos + 8 > limit:
            return None
        (size,) = struct.unpack_from("<Q", buf, pos)
        pos += 8 + (4 if checksums else 0)
        stored = size
        if archive:
            if pos + 4 > limit:
                return None
            (stored,) = struct.unpack_from("<I", buf, pos)
            pos += 4
        if pos + stored > limit:
            return None
        files.append(PayloadFile(name=name, header=(header_start, pos), data=(pos, pos + stored), size=size,
                                 executable=bool(flags & 1)))
        pos += stored
