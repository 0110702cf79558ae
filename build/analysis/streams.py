"""Where the compressed bytes of one stream go: a map from uncompressed offsets to stored offsets.

Several files often share one compressed stream (Nuitka's onefile payload, base_library.zip inside
PyInstaller's archive). We decompress the stream in small input steps and record how much input
had been consumed when each amount of output was available. Between those checkpoints the map is
linear. The result is an estimate (a compressor's output for one block depends on earlier data),
far better than splitting by uncompressed size, and exact at both ends, so the parts of a stream
always sum to the stream's stored size.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import zstandard

from build.errors import ArtifactError

# Small steps give fine checkpoints; deflate emits output per symbol, zstd per block.
STEP = 2048


@dataclass(frozen=True)
class StreamMap:
    """Monotone map raw offset -> stored offset; (0 -> 0) and (raw_size -> stored_size) exactly."""

    raw: tuple[int, ...]  # increasing raw offsets of the checkpoints, first 0
    stored: tuple[int, ...]  # the stored offsets at those checkpoints, non-decreasing

    @property
    def raw_size(self) -> int:
        return self.raw[-1]

    @property
    def stored_size(self) -> int:
        return self.stored[-1]

    def __call__(self, offset: int) -> int:
        if offset <= 0:
            return 0
        if offset >= self.raw[-1]:
            return self.stored[-1]
        i = bisect.bisect_right(self.raw, offset) - 1
        r0, r1 = self.raw[i], self.raw[i + 1]
        s0, s1 = self.stored[i], self.stored[i + 1]
        return s0 + (s1 - s0) * (offset - r0) // (r1 - r0)


def identity(size: int) -> StreamMap:
    return StreamMap(raw=(0, size), stored=(0, size))


def _checkpoints(feed: Callable[[bytes], bytes], data: bytes | memoryview,
                 step: int) -> tuple[bytes, StreamMap]:
    out = bytearray()
    raws, storeds = [0], [0]
    view = memoryview(data)
    for start in range(0, len(view), step):
        chunk = feed(bytes(view[start:start + step]))
        if chunk:
            # The output just produced needed the input up to the end of this step; attribute it
            # to the input consumed since the previous checkpoint.
            out += chunk
            raws.append(len(out))
            storeds.append(min(start + step, len(view)))
    if raws[-1] != len(out) or storeds[-1] != len(view):
        raws.append(len(out))
        storeds.append(len(view))
    if len(raws) > 1 and raws[-1] == raws[-2]:  # trailing input produced no output (stream end)
        raws.pop(-2)
        storeds.pop(-2)
    return bytes(out), StreamMap(raw=tuple(raws), stored=tuple(storeds))


def zlib_stream(data: bytes | memoryview, *, what: str, step: int = STEP) -> tuple[bytes, StreamMap]:
    """Decompress a complete zlib stream; raise ArtifactError if it is damaged or incomplete."""
    d = zlib.decompressobj()
    try:
        out, smap = _checkpoints(d.decompress, data, step)
        out += d.flush()
    except zlib.error as err:
        raise ArtifactError(f"{what}: compressed data is corrupted ({err})") from None
    if not d.eof:
        raise ArtifactError(f"{what}: compressed data ends early (truncated)")
    if len(out) != smap.raw_size:  # flush() produced more; extend the last checkpoint
        smap = StreamMap(raw=smap.raw[:-1] + (len(out),), stored=smap.stored)
    return out, smap


def zstd_stream(data: bytes | memoryview, *, what: str, step: int = STEP) -> tuple[bytes, int, StreamMap]:
    """Decompress one zstd frame at the start of `data`.

    Returns (output, frame length in bytes, map over the frame). Bytes after the frame are not
    part of it (Nuitka puts its size trailer there).
    """
    d = zstandard.ZstdDecompressor().decompressobj()
    out = bytearray()
    raws, storeds = [0], [0]
    view = memoryview(data)
    consumed = 0
    try:
        for start in range(0, len(view), step):
            chunk = bytes(view[start:start + step])
            produced = d.decompress(chunk)
            if d.eof:
                consumed = start + len(chunk) - len(d.unused_data)
                out += produced
                break
            if produced:
                out += produced
                raws.append(len(out))
                storeds.append(start + len(chunk))
        else:
            raise ArtifactError(f"{what}: compressed payload ends early (truncated)")
    except zstandard.ZstdError as err:
        raise ArtifactError(f"{what}: compressed payload is corrupted ({err})") from None
    # The frame ends at `consumed`; drop checkpoints at or past the end, then close the map exactly.
    while len(raws) > 1 and (storeds[-1] >= consumed or raws[-1] >= len(out)):
        raws.pop()
        storeds.pop()
    raws.append(len(out))
    storeds.append(consumed)
    return bytes(out), consumed, StreamMap(raw=tuple(raws), stored=tuple(storeds))
