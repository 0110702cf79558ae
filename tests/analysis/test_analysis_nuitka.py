"""Nuitka: onefile payloads written by Nuitka's own payload writer (attachOnefilePayload) in every
mode, placed inside a stand-in starter, and a compiled program's constants blob."""

from __future__ import annotations

import marshal
import shutil
import struct
import warnings
from pathlib import Path

import pytest
import zstandard

with warnings.catch_warnings():  # nuitka.__past__ imports the deprecated `imp` on Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    from nuitka.tools.onefile_compressor.OnefileCompressor import attachOnefilePayload

from build.report import command as bloat
from build.analysis import analyse
from build.analysis.model import BOOTLOADER
from build.analysis.nuitka_constants import find_blob
from build.analysis.nuitka_payload import STARTER_MARKER
from build.analysis.ops import check_accounted
from build.errors import ArtifactError
from platform_names import extension

EXTENSION = extension("_bisect")
STARTER_HEAD = b"\x7fELF\x02\x01\x01" + b"\0" * 57 + b"Error, " + STARTER_MARKER + b".\0" + b"\x11" * 2000
STARTER_TAIL = b"\x22" * 700  # what follows .rodata in a real starter


def _varint(n: int) -> bytes:
    out = b""
    while n >= 128:
        out += bytes([(n & 127) | 128])
        n >>= 7
    return out + bytes([n])


def _part(name: str, body: bytes) -> bytes:
    return name.encode() + b"\0" + struct.pack("<I", len(body)) + body


def compiled_program() -> tuple[bytes, dict[str, int]]:
    """A stand-in for a Nuitka-compiled executable: ELF head, Nuitka's markers, a constants blob
    in the data composer's layout, and code around it. Returns its bytes and expected sizes."""
    codes = {"json/__init__.py": compile("X = 1\n" * 40, "json/__init__.py", "exec"),
             "http/client.py": compile("Y = 2\n" * 90, "http/client.py", "exec")}
    values = b"".join(b"B" + _varint(len(marshal.dumps(c))) + marshal.dumps(c) for c in codes.values())
    bytecode = struct.pack("<H", len(codes)) + values + b"."
    shared = struct.pack("<H", 2) + b"shared-constants" + b"."
    main = struct.pack("<H", 1) + b"main" + b"."
    paho = struct.pack("<H", 5) + b"p" * 300 + b"."
    blob = _part(".bytecode", bytecode) + _part("", shared) + _part("__main__", main) + _part("paho.mqtt.client", paho)
    head = b"\x7fELF\x02\x01\x01" + b"\0" * 57 + b"__compiled__\0Nuitka\0" + b"\x33" * 1000
    data = head + blob + b"\x44" * 500
    expected = {
        "bytecode/json": 1 + len(_varint(len(marshal.dumps(codes["json/__init__.py"])))) + len(marshal.dumps(codes["json/__init__.py"])),
        "bytecode/http.client": 1 + len(_varint(len(marshal.dumps(codes["http/client.py"])))) + len(marshal.dumps(codes["http/client.py"])),
        "constants/[shared]": len(shared),
        "constants/__main__": len(main),
        "constants/paho.mqtt.client": len(paho),
        "[executable]": len(head) + 500,
    }
    return data, expected


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nuitka") / "app.dist"
    (folder / "sub").mkdir(parents=True)
    program, _ = compiled_program()
    (folder / "app.bin").write_bytes(program)
    (folder / "app.bin").chmod(0o755)
    (folder / "noise.dat").write_bytes(bytes((i * 7919 + 13) % 251 for i in range(6000)))
    (folder / "text.txt").write_text("compressible " * 3000)
    shutil.copy(EXTENSION, folder / "_bisect.so")
    (folder / "sub/link.txt").symlink_to("../text.txt")
    return folder


def make_onefile(dist: Path, out: Path, *, compress: bool, archive: bool, checksums: bool, level22: bool) -> Path:
    payload = out.with_suffix(".payload")
    payload.write_bytes(b"")
    # low_memory selects zstd level 3 instead of Nuitka's default 22: the same format, much faster.
    attachOnefilePayload(dist_dir=str(dist), onefile_output_filename=str(payload), start_binary=str(dist / "app.bin"),
                         include_start_binary=True, expect_compression=compress, as_archive=archive,
                         use_compression_cache=False, file_checksums=checksums, win_path_sep=False,
                         low_memory=not level22, job_limit=1, expected_files=None)
    out.write_bytes(STARTER_HEAD + payload.read_bytes() + STARTER_TAIL)
    return out


MODES = {"stream": dict(compress=True, archive=False, checksums=False, level22=True),  # Nuitka's default
         "stream-cached": dict(compress=True, archive=False, checksums=True, level22=False),
         "archive-cached": dict(compress=True, archive=True, checksums=True, level22=False),
         "plain": dict(compress=False, archive=False, checksums=False, level22=False)}


@pytest.fixture(scope="module")
def onefiles(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One onefile per payload mode, written once (tests that damage one work on a copy)."""
    folder = tmp_path_factory.mktemp("onefiles")
    return {mode: make_onefile(dist, folder / f"app-{mode}", **options) for mode, options in MODES.items()}


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    return dst


@pytest.mark.parametrize("mode", MODES)
def test_onefile_payload_rows_add_up(dist: Path, onefiles: dict[str, Path], mode: str) -> None:
    path = onefiles[mode]
    payload_size = path.with_suffix(".payload").stat().st_size
    report = analyse(path)
    check_accounted(report.rows, report.total_stored, report.artifact)
    assert report.format == "nuitka-onefile"
    assert report.total_stored == path.stat().st_size
    rows = {r.name: r for r in report.rows}
    assert rows[BOOTLOADER].stored == len(STARTER_HEAD) + len(STARTER_TAIL)
    assert sum(r.stored for n, r in rows.items() if n != BOOTLOADER) == payload_size
    # raw sizes are the files' sizes; the compiled program is split into its constants.
    for name in ("noise.dat", "text.txt", "_bisect.so"):
        assert rows[name].raw == (dist / name).stat().st_size
    program_rows = [r for n, r in rows.items() if n.startswith("app.bin/")]
    assert sum(r.raw for r in program_rows) == (dist / "app.bin").stat().st_size
    assert "sub/link.txt" not in rows  # a symlink carries no bytes, only its table record


def test_stream_mode_marks_estimates_and_archive_mode_is_exact(dist: Path, onefiles: dict[str, Path]) -> None:
    stream = {r.name: r for r in analyse(onefiles["stream"]).rows}
    assert stream["text.txt"].estimate and stream["noise.dat"].estimate
    # Compressible text costs less per raw byte than noise, which the position map sees.
    assert stream["text.txt"].stored / stream["text.txt"].raw < stream["noise.dat"].stored / stream["noise.dat"].raw

    path = onefiles["archive-cached"]
    archive = {r.name: r for r in analyse(path).rows}
    text = (dist / "text.txt").read_bytes()
    frame = path.read_bytes()
    assert not archive["text.txt"].estimate
    # Each file is its own zstd frame; the row is exactly that frame.
    dctx = zstandard.ZstdDecompressor()
    start = frame.index(b"text.txt\0") + len(b"text.txt\0") + 1 + 8 + 4 + 4
    assert dctx.decompressobj().decompress(frame[start:start + archive["text.txt"].stored]) == text
    assert archive["_bisect.so"].children and all(c.estimate for c in archive["_bisect.so"].children)


def test_compiled_program_constants_are_attributed(onefiles: dict[str, Path]) -> None:
    _, expected = compiled_program()
    rows = {r.name: r for r in analyse(onefiles["plain"]).rows}
    for name, size in expected.items():
        assert rows[f"app.bin/{name}"].stored == size, name
    assert (rows["app.bin/bytecode/json"].distribution, rows["app.bin/bytecode/json"].module) == ("python-stdlib", "json")
    assert rows["app.bin/constants/paho.mqtt.client"].distribution == "paho-mqtt"
    assert rows["app.bin/[executable]"].guess and rows["app.bin/[executable]"].distribution == "nuitka"
    assert rows["app.bin/[archive index]"].distribution == "nuitka"


def test_constants_blob_is_found_by_its_parts() -> None:
    data, _ = compiled_program()
    blob = find_blob(data)
    assert blob is not None
    assert [p.name for p in blob.parts] == [".bytecode", "", "__main__", "paho.mqtt.client"]
    assert [m.module for m in blob.bytecode] == ["json", "http.client"]


def test_standalone_folder(dist: Path) -> None:
    report = analyse(dist)
    check_accounted(report.rows, report.total_stored, report.artifact)
    assert report.format == "nuitka-standalone"
    assert report.total_stored == sum(p.stat().st_size for p in dist.rglob("*") if p.is_file() and not p.is_symlink())
    assert [(link.path, link.target) for link in report.links] == [("sub/link.txt", "../text.txt")]
    rows = {r.name: r for r in report.rows}
    assert rows["_bisect.so"].distribution == "python-stdlib" and rows["_bisect.so"].kind == "extension"
    assert sum(c.raw for c in rows["_bisect.so"].children) == EXTENSION.stat().st_size


# --- damaged payloads ----------------------------------------------------------------------------

def _bloat_error(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()  # drop what Nuitka's payload writer logged
    rc = bloat.main([str(path)])
    _, err = capsys.readouterr()
    assert rc == 1 and err.startswith("slimfreeze: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_truncated_payload_is_reported(onefiles: dict[str, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = _copy(onefiles["stream"], tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:len(STARTER_HEAD) + (len(data) - len(STARTER_HEAD)) // 2])
    assert "truncated" in _bloat_error(path, capsys)


def test_corrupted_payload_is_reported(onefiles: dict[str, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = _copy(onefiles["stream"], tmp_path)
    data = bytearray(path.read_bytes())
    middle = len(STARTER_HEAD) + 400
    data[middle:middle + 200] = bytes(200)
    path.write_bytes(bytes(data))
    err = _bloat_error(path, capsys)
    assert "Nuitka onefile payload" in err and ("corrupted" in err or "truncated" in err)


def test_starter_without_payload_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "starter"
    path.write_bytes(STARTER_HEAD + STARTER_TAIL)
    with pytest.raises(ArtifactError, match="without its payload"):
        analyse(path)


def test_wrong_length_trailer_is_reported(onefiles: dict[str, Path], tmp_path: Path) -> None:
    path = _copy(onefiles["stream-cached"], tmp_path)
    data = bytearray(path.read_bytes())
    trailer = len(data) - len(STARTER_TAIL) - 8
    data[trailer:trailer + 8] = struct.pack("<Q", 12345)
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="trailer"):
        analyse(path)
