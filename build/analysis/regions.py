"""Plain records the readers return: a tree of labelled byte ranges (regions).

A region's `spans` are in its parent's content coordinates. A region with `content` has its own
coordinate space (its uncompressed bytes) for its children and ELF ranges, mapped back to the
parent by `content.smap`; a region without `content` is "in place": its children and ELF ranges
use the parent's coordinates. Readers guarantee that children cover their parent exactly; gaps
are made explicit by `fill_gaps`.
"""

from __future__ import annotations

from dataclasses import dataclass

from build.analysis.elf import Ranges
from build.analysis.model import PADDING, UNATTRIBUTED
from build.analysis.streams import StreamMap
from build.errors import ArtifactError

Spans = tuple[tuple[int, int], ...]


@dataclass(frozen=True, kw_only=True)
class Content:
    raw_size: int
    smap: StreamMap  # raw offset -> offset within the region's stored bytes
    compressed: bool


@dataclass(frozen=True, kw_only=True)
class Region:
    name: str  # path component; the row name joins the components of its ancestors with "/"
    kind: str  # see model.Row.kind
    spans: Spans
    raw: int  # uncompressed size of what this region holds
    module: str | None = None  # dotted name of a Python module
    file: str | None = None  # path of a file as it is laid out at run time (for attribution)
    distribution: str | None = None  # known to the reader (bootloader, payload index, ...)
    guess: bool = False
    content: Content | None = None
    children: tuple[Region, ...] = ()
    sections: Ranges | None = None  # ELF drill-down, in content coordinates (or parent's if in place)
    soname: str | None = None

    @property
    def length(self) -> int:
        return sum(e - s for s, e in self.spans)


def bucket(name: str, spans: Spans, *, kind: str, distribution: str | None = None) -> Region:
    """Bytes that belong to no file or module; `kind` picks the label (model.BUCKET_KINDS)."""
    return Region(name=name, kind=kind, spans=spans, raw=sum(e - s for s, e in spans), distribution=distribution)


def fill_gaps(regions: list[Region], start: int, end: int, data: bytes | memoryview, *,
              what: str, distribution: str | None = None) -> tuple[Region, ...]:
    """Add [padding] (all-zero gaps) and [unattributed] (anything else) regions so that the
    regions cover [start, end) exactly. `data` holds the bytes of [start, end) (index 0 = start).
    Overlapping regions mean a corrupted (or hostile) archive."""
    spans = sorted((s, e, r.name) for r in regions for s, e in r.spans if e > s)
    pad: list[tuple[int, int]] = []
    other: list[tuple[int, int]] = []
    pos = start
    for s, e, name in spans:
        if s < pos or e > end:
            raise ArtifactError(f"{what} is corrupted: entry {name!r} overlaps another entry or lies "
                                f"outside its container")
        if s > pos:
            _classify_gap(data, pos - start, s - start, start, pad, other)
        pos = e
    if pos < end:
        _classify_gap(data, pos - start, end - start, start, pad, other)
    out = list(regions)
    if pad:
        out.append(bucket(PADDING, tuple(pad), distribution=distribution, kind="padding"))
    if other:
        out.append(bucket(UNATTRIBUTED, tuple(other), distribution=distribution, kind="unattributed"))
    return tuple(out)


def _classify_gap(data: bytes | memoryview, lo: int, hi: int, base: int,
                  pad: list[tuple[int, int]], other: list[tuple[int, int]]) -> None:
    chunk = bytes(data[lo:hi])
    (pad if not chunk.strip(b"\0") else other).append((lo + base, hi + base))
