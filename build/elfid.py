"""The GNU build-id of an ELF file: the one reader, for the runtime's compile (which records its
libraries' ids) and for the analysis (which matches a stripped library to its unstripped copy)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

from elftools.elf.elffile import ELFFile


def build_id(source: Path | bytes | memoryview) -> str | None:
    """The build-id (hex) of the ELF file at `source` (a path, or its bytes: a prefix that holds
    the note is enough), or None if it has none or cannot be read."""
    try:
        if isinstance(source, Path):
            with source.open("rb") as stream:
                return _read(stream)
        return _read(io.BytesIO(bytes(source)))
    except Exception:  # noqa: BLE001  pyelftools raises many kinds on damaged input: no id, never a crash
        return None


def _read(stream: BinaryIO) -> str | None:
    for section in ELFFile(stream).iter_sections():
        if section["sh_type"] == "SHT_NOTE":
            for note in section.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    return str(note["n_desc"])
    return None
