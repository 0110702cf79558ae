"""PyInstaller archives: pin the internal reader API we rely on, and check the attribution of
synthetic archives written with PyInstaller's own writers down to the byte.

A synthetic onefile = a fake bootloader prefix + a CArchive written by CArchiveWriter holding a PYZ
written by ZlibArchiveWriter, a zipped base library, a real extension module (compressed), a
"system library" (stored), scripts, a loader module, an option and a data file with a hostile name.
"""

from __future__ import annotations

import io
import marshal
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from platform_names import LIBPYTHON, PY_VERSION
from PyInstaller.archive.readers import CArchiveReader
from PyInstaller.building.utils import replace_filename_in_code_object
from PyInstaller.loader.pyimod01_archive import ArchiveReadError, ZlibArchiveReader
from synthetic_archives import (
    EXT_NAME,
    EXTENSION,
    HOSTILE,
    PREFIX,
    PYZ_MODULES,
    Synthetic,
    make_archive,
)

from build.analysis import analyse
from build.analysis.model import ARCHIVE_INDEX, BOOTLOADER
from build.analysis.ops import check_accounted, group_rows
from build.analysis.pyinstaller_archive import COOKIE_LENGTH, read_carchive, read_pyz
from build.errors import ArtifactError
from build.report import command as bloat


@pytest.fixture(scope="module")
def onefile(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    return make_archive(tmp_path_factory.mktemp("onefile"))


# --- the internal API we rely on (fails loudly when PyInstaller changes it) --------------------

def test_carchive_reader_api_is_what_we_rely_on(onefile: Synthetic) -> None:
    reader = CArchiveReader(str(onefile.path))
    assert reader._start_offset == len(PREFIX)
    assert reader._end_offset == onefile.path.stat().st_size
    assert CArchiveReader._COOKIE_LENGTH == COOKIE_LENGTH == 88
    assert CArchiveReader._COOKIE_FORMAT == "!8sIIII64s"
    assert reader.options == ["pyi-contents-directory _internal"]
    offset, stored, raw, compressed, typecode = reader.toc[HOSTILE]
    assert (stored, raw, compressed, typecode) == (290, 290, 0, "x")
    offset, stored, raw, compressed, typecode = reader.toc[EXT_NAME]
    assert raw == EXTENSION.stat().st_size and compressed == 1 and typecode == "b"
    assert stored == len(zlib.compress(EXTENSION.read_bytes(), 9))
    assert set(reader.toc) == {e[0] for e in onefile.entries if e[3] != "o"}


def test_zlib_archive_reader_api_is_what_we_rely_on(onefile: Synthetic) -> None:
    start = CArchiveReader(str(onefile.path))._start_offset + CArchiveReader(str(onefile.path)).toc["PYZ.pyz"][0]
    reader = ZlibArchiveReader(str(onefile.path), start, check_pymagic=True)
    typecode, offset, stored = reader.toc["paho.mqtt.client"]
    assert typecode == 0 and offset >= 17 and stored > 0
    assert reader.toc["paho"][0] == 1  # a package
    raw = reader.extract("paho.mqtt.client", raw=True)
    assert isinstance(raw, bytes) and marshal.loads(raw).co_filename == "paho/mqtt/client.py"


def test_zlib_archive_reader_rejects_another_pyc_magic(tmp_path: Path, onefile: Synthetic) -> None:
    data = bytearray(onefile.path.read_bytes())
    pyz_at = data.index(b"PYZ\0")
    data[pyz_at + 4:pyz_at + 6] = (3531).to_bytes(2, "little")  # Python 3.12's magic
    bad = tmp_path / "bad"
    bad.write_bytes(bytes(data))
    with pytest.raises(ArchiveReadError):
        ZlibArchiveReader(str(bad), pyz_at, check_pymagic=True)


def test_records_match_what_the_writers_wrote(onefile: Synthetic) -> None:
    archive = read_carchive(onefile.path, onefile.path.stat().st_size)
    assert archive is not None
    assert archive.start == len(PREFIX) and archive.end == onefile.path.stat().st_size
    assert archive.toc_length == onefile.toc_length
    assert archive.python_version == PY_VERSION and archive.pylib_name == LIBPYTHON
    assert [e.offset for e in archive.entries] == sorted(e.offset for e in archive.entries)
    pyz_entry = next(e for e in archive.entries if e.typecode == "z")
    assert pyz_entry.stored == onefile.pyz_size and not pyz_entry.compressed
    pyz = read_pyz(onefile.path, archive.start + pyz_entry.offset, pyz_entry.stored, label="t")
    expected_raw = {name: len(marshal.dumps(replace_filename_in_code_object(
        code, ("/".join(name.split(".")) + ("/__init__.py" if PYZ_MODULES[name][0] == "__init__.py" else ".py")))))
        for name, code in onefile.codes.items()}
    assert {e.name: e.raw for e in pyz.entries} == expected_raw


# --- attribution of the synthetic onefile ----------------------------------------------------

def test_onefile_rows_add_up_to_the_file_byte_for_byte(onefile: Synthetic) -> None:
    report = analyse(onefile.path)
    check_accounted(report.rows, report.total_stored, report.artifact)
    size = onefile.path.stat().st_size
    assert report.total_stored == sum(r.stored for r in report.rows) == size
    rows = {r.name: r for r in report.rows}
    assert rows[BOOTLOADER].stored == len(PREFIX)
    assert rows[ARCHIVE_INDEX].stored == onefile.toc_length + COOKIE_LENGTH
    pyz_rows = [r for r in report.rows if r.name.startswith("PYZ.pyz/")]
    assert sum(r.stored for r in pyz_rows) == onefile.pyz_size
    assert rows["PYZ.pyz/[archive index]"].distribution == "pyinstaller"
    assert report.format == "pyinstaller-onefile"


def test_compressed_binary_is_exact_and_its_sections_sum_to_it(onefile: Synthetic) -> None:
    rows = {r.name: r for r in analyse(onefile.path).rows}
    ext = rows[EXT_NAME]
    assert ext.stored == len(zlib.compress(EXTENSION.read_bytes(), 9)) and not ext.estimate
    assert ext.raw == EXTENSION.stat().st_size
    assert {c.name for c in ext.children} >= {"code", "rodata", "data", "dynamic", "unwind", "other"}
    assert sum(c.raw for c in ext.children) == ext.raw
    assert sum(c.stored for c in ext.children) == ext.stored
    assert all(c.estimate for c in ext.children)  # parts of one compressed stream
    stored_lib = rows["libdemo.so.1"]
    assert stored_lib.stored == stored_lib.raw == EXTENSION.stat().st_size
    assert [(c.stored, c.estimate) for c in stored_lib.children] == [(c.raw, False) for c in stored_lib.children]


def test_base_library_members_share_the_entry_as_estimates(onefile: Synthetic) -> None:
    report = analyse(onefile.path)
    members = [r for r in report.rows if r.name.startswith("base_library.zip/")]
    assert {r.name for r in members} >= {"base_library.zip/encodings/__init__.pyc", "base_library.zip/codecs.pyc",
                                         "base_library.zip/[archive index]"}
    assert sum(r.stored for r in members) == len(zlib.compress(onefile.zip_bytes, 9))
    infos = zipfile.ZipFile(io.BytesIO(onefile.zip_bytes)).infolist()
    inflated = len(onefile.zip_bytes) - sum(i.compress_size for i in infos) + sum(i.file_size for i in infos)
    assert sum(r.raw for r in members) == inflated  # raw: the members inflated, headers as they are
    assert all(r.estimate and r.distribution == "python-runtime" for r in members)
    codecs = next(r for r in members if r.name.endswith("codecs.pyc"))
    assert codecs.module == "codecs" and codecs.package == "codecs"


def test_distributions_of_the_synthetic_onefile(onefile: Synthetic) -> None:
    dist = {r.name: (r.distribution, r.guess) for r in analyse(onefile.path).rows}
    assert dist["PYZ.pyz/paho.mqtt.client"] == ("paho-mqtt", False)
    assert dist["PYZ.pyz/paho"] == ("paho-mqtt", False)
    assert dist["PYZ.pyz/json"] == ("python-stdlib", False)
    assert dist["PYZ.pyz/mystery_pkg"] == ("mystery-pkg", True)  # a guess by its name, never "app"
    assert dist["pyimod01_archive"] == ("pyinstaller", False)
    assert dist["pyi_rth_inspect"] == ("pyinstaller", False)
    assert dist["_slimfreeze_ssl"] == ("slimfreeze", False)
    assert dist["myapp"] == ("app", False)
    assert dist[EXT_NAME] == ("python-stdlib", False)
    assert dist["libdemo.so.1"] == ("libdemo", False)
    assert dist[BOOTLOADER] == ("pyinstaller", False)


def test_crates_totals_equal_the_sum_of_their_rows(onefile: Synthetic) -> None:
    report = analyse(onefile.path)
    groups = group_rows(report.rows, "distribution")
    assert sum(g.stored for g in groups) == report.total_stored
    for g in groups:
        assert g.stored == sum(r.stored for r in report.rows if r.distribution == g.name and r.guess == g.guess)


def test_hostile_entry_name_is_kept_verbatim(onefile: Synthetic) -> None:
    rows = {r.name: r for r in analyse(onefile.path).rows}
    assert rows[HOSTILE].stored == rows[HOSTILE].raw == 290


def test_trailing_bytes_after_the_archive_are_unattributed(tmp_path: Path, onefile: Synthetic) -> None:
    path = tmp_path / "with-tail"
    path.write_bytes(onefile.path.read_bytes() + b"\x01\x02trailing")
    # The cookie is no longer at the end: PyInstaller's reader still finds it by scanning back.
    report = analyse(path)
    assert report.total_stored == path.stat().st_size
    assert {r.name: r.stored for r in report.rows}["[unattributed]"] == 10


def test_onedir_folder_accounts_for_every_file_and_lists_links(tmp_path: Path) -> None:
    synthetic = make_archive(tmp_path / "src", binaries=False)
    dist = tmp_path / "pub"
    (dist / "_internal/python3.11/lib-dynload").mkdir(parents=True)
    shutil.copy(synthetic.path, dist / "pub")
    (dist / "_internal/base_library.zip").write_bytes(synthetic.zip_bytes)
    shutil.copy(EXTENSION, dist / "_internal" / EXT_NAME)
    shutil.copy(EXTENSION, dist / "_internal/libdemo.so.1")
    (dist / "_internal/notes.txt").write_text("data\n")
    (dist / "telemetry").symlink_to("pub")
    report = analyse(dist)
    check_accounted(report.rows, report.total_stored, report.artifact)
    files = [p for p in dist.rglob("*") if p.is_file() and not p.is_symlink()]
    assert report.total_stored == sum(p.stat().st_size for p in files)
    assert report.files == len(files) == 5
    assert report.format == "pyinstaller-onedir"
    assert [(link.path, link.target) for link in report.links] == [("telemetry", "pub")]
    dist_of = {r.name: r.distribution for r in report.rows}
    assert dist_of[f"_internal/{EXT_NAME}"] == "python-stdlib"  # found via the contents directory
    assert dist_of["_internal/libdemo.so.1"] == "libdemo"
    assert dist_of["_internal/base_library.zip/codecs.pyc"] == "python-runtime"
    assert dist_of["pub/[bootloader]"] == "pyinstaller"
    assert dist_of["pub/PYZ.pyz/paho.mqtt.client"] == "paho-mqtt"
    zip_rows = [r for r in report.rows if r.name.startswith("_internal/base_library.zip/")]
    assert sum(r.stored for r in zip_rows) == len(synthetic.zip_bytes) and not any(r.estimate for r in zip_rows)


# --- damaged archives: one clear line, no traceback --------------------------------------------

def _error(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    rc = bloat.main([str(path)])
    out, err = capsys.readouterr()
    assert rc == 1, out
    assert err.count("\n") == 1 and err.startswith("slimfreeze: error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_truncated_onefile_is_reported(tmp_path: Path, onefile: Synthetic, capsys: pytest.CaptureFixture[str],
                                       cut: float) -> None:
    data = onefile.path.read_bytes()
    path = tmp_path / "truncated"
    path.write_bytes(data[:int(len(data) * cut)])
    err = _error(path, capsys)
    assert "truncated" in err


def test_cookie_cut_short_is_reported(tmp_path: Path, onefile: Synthetic, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "short-cookie"
    path.write_bytes(onefile.path.read_bytes()[:-20])
    assert "truncated or corrupted" in _error(path, capsys)


def test_corrupted_compressed_entry_is_reported(tmp_path: Path, onefile: Synthetic,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    reader = CArchiveReader(str(onefile.path))
    offset, stored, *_ = reader.toc[EXT_NAME]
    data = bytearray(onefile.path.read_bytes())
    start = reader._start_offset + offset
    data[start + stored // 2:start + stored // 2 + 64] = b"\xff" * 64
    path = tmp_path / "corrupt"
    path.write_bytes(bytes(data))
    err = _error(path, capsys)
    assert EXT_NAME in err and "corrupted" in err


def test_toc_pointing_outside_the_archive_is_reported(tmp_path: Path, onefile: Synthetic,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    reader = CArchiveReader(str(onefile.path))
    data = bytearray(onefile.path.read_bytes())
    cookie = reader._end_offset - COOKIE_LENGTH
    _, length, toc_offset, toc_length, _, _ = struct.unpack("!8sIIII64s", data[cookie:cookie + COOKIE_LENGTH])
    first_entry = reader._start_offset + toc_offset
    data[first_entry + 4:first_entry + 8] = struct.pack("!I", 0x7FFFFFF0)  # the first entry's offset
    path = tmp_path / "bad-toc"
    path.write_bytes(bytes(data))
    assert "outside" in _error(path, capsys)


def test_archive_of_another_python_is_analysed(tmp_path: Path, onefile: Synthetic) -> None:
    """A 3.12 archive is read from its own tables: sizes exact, bytecode never loaded, a note says so."""
    data = bytearray(onefile.path.read_bytes())
    cookie = len(data) - COOKIE_LENGTH
    data[cookie + 20:cookie + 24] = struct.pack("!I", 312)
    path = tmp_path / "py312"
    path.write_bytes(bytes(data))
    report = analyse(path)
    check_accounted(report.rows, report.total_stored, report.artifact)
    assert report.total_stored == len(data)
    assert any("Python 3.12" in note for note in report.notes)


def test_pyz_of_another_python_is_analysed(tmp_path: Path, onefile: Synthetic) -> None:
    data = bytearray(onefile.path.read_bytes())
    pyz_at = data.index(b"PYZ\0")
    data[pyz_at + 4:pyz_at + 6] = (3531).to_bytes(2, "little")  # 3.12's pyc magic
    path = tmp_path / "pyc312"
    path.write_bytes(bytes(data))
    report = analyse(path)
    check_accounted(report.rows, report.total_stored, report.artifact)
    assert {r.name for r in report.rows} == {r.name for r in analyse(onefile.path).rows}


def test_unknown_entry_type_from_another_pyinstaller_is_reported(tmp_path: Path, onefile: Synthetic) -> None:
    data = bytearray(onefile.path.read_bytes())
    reader = CArchiveReader(str(onefile.path))
    cookie = reader._end_offset - COOKIE_LENGTH
    toc_offset = struct.unpack("!I", data[cookie + 12:cookie + 16])[0]
    first_entry = reader._start_offset + toc_offset
    data[first_entry + 17:first_entry + 18] = b"Q"  # the first entry's typecode
    path = tmp_path / "future"
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="another PyInstaller version"):
        analyse(path)
