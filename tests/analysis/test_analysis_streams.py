"""The compressed-stream position map: exact at both ends, monotone, and parts that always sum."""

from __future__ import annotations

import random
import zlib

import pytest
import zstandard

from build.analysis.streams import StreamMap, identity, zlib_stream, zstd_stream
from build.errors import ArtifactError


def _mixed() -> bytes:
    rng = random.Random(4)
    noise = bytes(rng.getrandbits(8) for _ in range(40_000))
    return b"a" * 60_000 + noise + b"b" * 60_000 + noise[:10_000]


def _parts(smap: StreamMap, cuts: list[int]) -> list[int]:
    return [smap(b) - smap(a) for a, b in zip(cuts, cuts[1:])]


def test_zlib_map_is_exact_at_the_ends_and_parts_sum_to_the_stream() -> None:
    raw = _mixed()
    packed = zlib.compress(raw, 9)
    out, smap = zlib_stream(packed, what="t")
    assert out == raw
    assert smap(0) == 0 and smap(len(raw)) == len(packed)
    cuts = [0, 1, 59_999, 60_000, 100_000, 160_000, len(raw)]
    parts = _parts(smap, cuts)
    assert sum(parts) == len(packed) and all(p >= 0 for p in parts)
    # Runs of one byte cost almost nothing; random bytes cost about themselves.
    assert parts[3] > 30_000 and smap(60_000) < 2_000


def test_map_is_monotone() -> None:
    raw = _mixed()
    _, smap = zlib_stream(zlib.compress(raw, 6), what="t")
    values = [smap(x) for x in range(0, len(raw) + 1, 997)]
    assert values == sorted(values)


def test_zstd_frame_length_and_map() -> None:
    raw = _mixed()
    frame = zstandard.ZstdCompressor(level=19).compress(raw)
    out, consumed, smap = zstd_stream(frame + b"TRAILER!", what="t")
    assert out == raw and consumed == len(frame)
    assert smap(len(raw)) == len(frame) and smap(0) == 0
    assert sum(_parts(smap, [0, 60_000, 100_000, len(raw)])) == len(frame)


@pytest.mark.parametrize("codec", ["zlib", "zstd"])
def test_truncated_and_corrupted_streams_raise(codec: str) -> None:
    raw = "".join(f"line {i} of a text\n" for i in range(3000)).encode()
    packed = zlib.compress(raw) if codec == "zlib" else zstandard.ZstdCompressor().compress(raw)
    read = (lambda d: zlib_stream(d, what="t")) if codec == "zlib" else (lambda d: zstd_stream(d, what="t"))
    with pytest.raises(ArtifactError, match="truncated"):
        read(packed[: len(packed) // 2])
    # Damage where the format can see it: zlib has a checksum; a zstd frame without one (Nuitka
    # writes none) only notices broken headers, not altered literals.
    damaged = bytearray(packed)
    at = len(damaged) // 3 if codec == "zlib" else 4
    damaged[at:at + 100] = b"\xff" * 100
    with pytest.raises(ArtifactError, match="corrupted|truncated"):
        read(bytes(damaged))


def test_identity() -> None:
    smap = identity(10)
    assert [smap(x) for x in (0, 3, 10, 11)] == [0, 3, 10, 10]
