"""Functions and units of an artifact's native files (I/O edge): find a row's file bytes again
(on disk, in a PyInstaller archive, in a Nuitka payload) and break them down (debug_copies)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from build.analysis import elf
from build.analysis.debug_copies import beside, native_breakdown
from build.analysis.model import NativeFile, Row, SizeReport
from build.analysis.nuitka import EXECUTABLE
from build.analysis.nuitka_payload import find_payload, looks_like_starter
from build.analysis.pyinstaller_archive import read_carchive
from build.analysis.streams import zstd_stream
from build.errors import ArtifactError

T = TypeVar("T")

NATIVE_KINDS = ("library", "extension", "executable", "code")


def native_rows(report: SizeReport) -> tuple[Row, ...]:
    """Rows that are ELF files (they have a section drill-down), largest first."""
    return tuple(r for r in report.rows if r.children and r.kind in NATIVE_KINDS)


def pick_rows(report: SizeReport, wanted: str | None, limit: int) -> tuple[Row, ...]:
    """The native row named `wanted` (exactly, or the one row whose name contains it), or the
    `limit` largest native rows."""
    rows = native_rows(report)
    if wanted is None:
        return rows[:limit]
    return _named(rows, [r.name for r in rows], wanted, report.artifact)


def pick_native(report: SizeReport, wanted: str) -> tuple[NativeFile, ...]:
    """The breakdown a report carries for the native row `wanted`, matched as `pick_rows` does
    (a report.json keeps those of its largest native files)."""
    return _named(report.native, [n.row for n in report.native], wanted, report.artifact)


def _named(items: Sequence[T], names: Sequence[str], wanted: str, artifact: str) -> tuple[T, ...]:
    """The items named `wanted` exactly, else the one whose name contains it; else a clear error."""
    exact = [item for item, name in zip(items, names, strict=True) if name == wanted]
    if exact:
        return tuple(exact)
    matches = [(item, name) for item, name in zip(items, names, strict=True) if wanted in name]
    if len(matches) == 1:
        return (matches[0][0],)
    listed = ", ".join(name for _, name in matches[:5]) if matches else ", ".join(names[:5])
    raise ArtifactError(f"{artifact}: {'several' if matches else 'no'} native rows match {wanted!r} "
                        f"({'e.g. ' if matches else 'largest: '}{listed})")


def file_bytes(artifact: Path, row: str) -> bytes | None:
    """The uncompressed bytes of the file a row stands for, or None when they cannot be found."""
    name = row[:-len(EXECUTABLE) - 1] if row.endswith("/" + EXECUTABLE) else row
    artifact = Path(artifact)
    if not artifact.is_dir():
        return _inside(artifact, name)
    # In a folder: a file on disk, or a file inside one (a onefile executable in dist/<profile>).
    parts = name.split("/")
    for i in range(len(parts), 0, -1):
        candidate = artifact.joinpath(*parts[:i])
        if candidate.is_file() and not candidate.is_symlink():
            rest = "/".join(parts[i:])
            return candidate.read_bytes() if not rest else _inside(candidate, rest)
    return None


def _inside(path: Path, name: str) -> bytes | None:
    """A file inside a frozen executable: a PyInstaller archive entry or a Nuitka payload file."""
    data = path.read_bytes()
    if name in ("[file]", ""):
        return data
    archive = read_carchive(path, len(data))
    if archive is not None:
        for e in archive.entries:
            if e.name == name and e.stored:
                blob = data[archive.start + e.offset:archive.start + e.offset + e.stored]
                return zlib.decompress(blob) if e.compressed else blob
        return None
    if looks_like_starter(data):
        payload = find_payload(data, label=path.name)
        for f in payload.files:
            if f.name == name and f.link_target is None:
                stored = payload.table[f.data[0]:f.data[1]]
                if payload.mode == "archive":
                    return zstd_stream(stored, what=f"{path.name}: {name}")[0]
                return stored
    return None


def breakdowns(artifact: Path, rows: Sequence[Row], *, search: Sequence[Path] = (),
               nuitka: bool = False) -> tuple[NativeFile, ...]:
    """The breakdown of each row's file (rows whose bytes are not found are left out)."""
    out = []
    for row in rows:
        data = file_bytes(artifact, row.name)
        if data is None or not elf.is_elf(data):
            continue
        compiled = nuitka or row.name.endswith("/" + EXECUTABLE)
        b = native_breakdown(data, row.name, search=search, nuitka=compiled)
        if b is not None and compiled and row.name.endswith("/" + EXECUTABLE) and b.units_from == "none":
            b = replace(b, source=b.source + " (Nuitka strips its program unless built with --unstripped)")
        if b is not None:
            out.append(NativeFile(row=row.name, size=len(data), breakdown=b))
    return tuple(out)


def with_native(report: SizeReport, artifact: Path, *, wanted: str | None = None, limit: int = 5,
                search: Sequence[Path] = ()) -> SizeReport:
    """`report` with the breakdown of the native row `wanted` (or of the `limit` largest)."""
    rows = pick_rows(report, wanted, limit)
    nuitka = report.format.startswith("nuitka")
    if nuitka:
        search = (*search, *beside(Path(artifact)))
    return replace(report, native=breakdowns(artifact, rows, search=search, nuitka=nuitka))
