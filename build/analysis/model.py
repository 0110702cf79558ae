"""The size model every renderer reads: rows that add up to the artifact, byte for byte.

A report is a flat tuple of leaf rows (each a labelled part of the artifact) whose `stored` sizes
sum exactly to `total_stored`, the artifact's size on disk. Grouping (module, package,
distribution) is a property of each row, so any grouping is a pure sum over rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from build.analysis.elf import GROUPS
from build.analysis.symbols import Breakdown
from build.manifest import LinkEntry as Link  # a symlink of the artifact: one definition, the manifest's

SCHEMA = "slimfreeze.size-report/2"
SCHEMA_1 = "slimfreeze.size-report/1"  # read (section groups renamed), never written

# The explicit labels for bytes that belong to no file or module (Bloaty's fallback labels).
BOOTLOADER = "[bootloader]"
ARCHIVE_INDEX = "[archive index]"
PADDING = "[padding]"
UNATTRIBUTED = "[unattributed]"
BUCKETS = (BOOTLOADER, ARCHIVE_INDEX, PADDING, UNATTRIBUTED)
# Row.kind of the bytes each bucket labels.
BUCKET_KINDS = {"bootloader": BOOTLOADER, "index": ARCHIVE_INDEX, "padding": PADDING, "unattributed": UNATTRIBUTED}

# ELF drill-down groups, in display order (build.analysis.elf_sections says what each holds).
SECTION_GROUPS = GROUPS
STRIPPABLE = ("symbols", "debug")


@dataclass(frozen=True, kw_only=True)
class Section:
    """One ELF drill-down child of a row: a group of sections plus what lies between them."""

    name: str  # one of SECTION_GROUPS
    stored: int
    raw: int
    estimate: bool = False


@dataclass(frozen=True, kw_only=True)
class Row:
    """A labelled, disjoint part of the artifact.

    name         unique path inside the artifact, e.g. "PYZ.pyz/paho.mqtt.client",
                 "_internal/libssl.so.3", "[bootloader]"
    kind         what the bytes are: module, extension, library, data, executable, bootloader,
                 index, padding, unattributed, constants, code, link
    stored       bytes as on disk (compressed where the container compresses)
    raw          bytes uncompressed (what is extracted or loaded)
    module       dotted module name, or the file name for non-Python files
    package      top-level package (or library name / bucket label)
    distribution the "crate": paho-mqtt, python-stdlib, python-runtime, app, libssl, pyinstaller, ...
    guess        the distribution is a guess (rendered with a trailing '?')
    estimate     `stored` is an estimate (part of one compressed stream, apportioned by position)
    children     ELF drill-down; children's stored and raw sum to the row's
    """

    name: str
    kind: str
    stored: int
    raw: int
    module: str
    package: str
    distribution: str
    guess: bool = False
    estimate: bool = False
    children: tuple[Section, ...] = ()

    @property
    def strip_savings(self) -> int:
        """Bytes (uncompressed) that `strip` would remove from this file: symbol tables and debug info."""
        return sum(c.raw for c in self.children if c.name in STRIPPABLE)


@dataclass(frozen=True, kw_only=True)
class NativeFile:
    """Inside one native row: its functions and compilation units (build.analysis.symbols)."""

    row: str  # the report row
    size: int  # the file's bytes, uncompressed
    breakdown: Breakdown


@dataclass(frozen=True, kw_only=True)
class CommandCost:
    """What one command of the app loads (build.analysis.commands): stored bytes of the rows its
    traced runs loaded, and of the rows no other command loads, with the largest of those."""

    command: str
    loaded: int
    own: int
    own_rows: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Retained:
    """What would go if one top-level import went: the modules the entry reaches only through it.

    stored/raw sum the report rows of `modules` (build.analysis.retained computes it from the import graph).
    """

    name: str
    stored: int
    raw: int
    modules: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class SizeReport:
    """What `analyse()` returns and every renderer reads."""

    artifact: str  # the analysed file or folder name (never an absolute path)
    format: str  # pyinstaller-onefile | pyinstaller-onedir | nuitka-onefile | nuitka-standalone | folder
    total_stored: int  # size on disk: the file, or the sum of the folder's regular files
    total_raw: int
    rows: tuple[Row, ...]
    links: tuple[Link, ...] = ()
    files: int = 1  # regular files analysed
    notes: tuple[str, ...] = ()
    manifest: dict[str, Any] | None = field(default=None, compare=False)
    retained: tuple[Retained, ...] | None = None  # None: no import graph was given (sorted by stored desc)
    native: tuple[NativeFile, ...] = ()  # functions and units of the largest native files, when asked for
    architecture: str | None = None  # of its executable, from the ELF header (x86_64, aarch64, armv7, ...)
    commands: tuple[CommandCost, ...] | None = None  # None: no trace of the app's commands was given


def display_distribution(distribution: str, guess: bool) -> str:
    """cargo-bloat's convention: a guessed crate carries a '?'."""
    return f"{distribution}?" if guess else distribution
