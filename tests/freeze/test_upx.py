"""UPX only where it works here: executables with --lzma, shared objects never with --lzma."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PyInstaller import HOMEPATH, PLATFORM
from PyInstaller.archive.writers import CArchiveWriter

from build.freeze import upx
from build.analysis.pyinstaller_archive import read_carchive
from platform_names import LIBPYTHON

BOOTLOADER = Path(HOMEPATH) / "PyInstaller" / "bootloader" / PLATFORM / "run"


LZMA_METHOD = "method 14"  # how `upx --fileinfo` names LZMA (NRV methods are 2 to 10)


def fileinfo(path: Path) -> str:
    return subprocess.run(["upx", "--fileinfo", str(path)], capture_output=True, text=True, check=True).stdout


def test_a_packed_extension_module_still_imports_and_is_not_lzma(tmp_path):
    # upx 4.2.2's shared-library stub traps (SIGTRAP) on LZMA here (benchmarks/upx_matrix.py): the
    # packed module must load in a real interpreter, which a --lzma one does not.
    import _json

    module = tmp_path / Path(_json.__file__).name
    shutil.copy(_json.__file__, module)
    before, after = upx.pack_library(module, tmp_path / "upx.log")
    assert after < before == Path(_json.__file__).stat().st_size
    assert "compressed by UPX" in fileinfo(module) and LZMA_METHOD not in fileinfo(module)
    ran = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import _json; "
                          "print(_json.__file__)", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stdout.strip()) == (0, str(module)), ran.stderr


def test_elf_kinds_are_told_apart(tmp_path):
    import _json

    assert upx.is_shared_object(Path(_json.__file__))
    assert not upx.is_shared_object(BOOTLOADER)  # ET_EXEC: packed with the executable options
    text = tmp_path / "notes.txt"
    text.write_text("not an ELF file at all\n")
    assert not upx.is_shared_object(text)


def make_pyinstaller_executable(tmp_path: Path) -> tuple[Path, bytes]:
    """A PyInstaller-shaped executable made the way PyInstaller makes one on Linux: its bootloader
    with the archive added as the ELF section `pydata`."""
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"slimfreeze upx test\n" * 500)
    archive = tmp_path / "archive.pkg"
    CArchiveWriter(str(archive), [("payload.bin", str(payload), True, "x")], pylib_name=LIBPYTHON)
    exe = tmp_path / "app"
    subprocess.run(["objcopy", "--add-section", f"pydata={archive}", str(BOOTLOADER), str(exe)], check=True)
    return exe, archive.read_bytes()


def test_packing_keeps_the_archive_byte_for_byte(tmp_path):
    exe, archive_bytes = make_pyinstaller_executable(tmp_path)
    before_entries = read_carchive(exe, exe.stat().st_size).entries
    log = tmp_path / "upx.log"
    before, after = upx.pack_pyinstaller_executable(exe, log)
    data = exe.read_bytes()
    assert after == len(data) < before
    assert data.endswith(archive_bytes)  # the bootloader scans for the cookie from the end
    assert b"UPX!" in data[:4096]
    assert read_carchive(exe, len(data)).entries == before_entries
    prefix = tmp_path / "prefix"
    prefix.write_bytes(data[: len(data) - len(archive_bytes)])
    subprocess.run(["upx", "-t", "-q", str(prefix)], check=True, capture_output=True)  # a valid packed ELF
    assert LZMA_METHOD in fileinfo(prefix)  # executables: the smaller LZMA works


def test_a_file_without_an_archive_is_refused(tmp_path):
    plain = tmp_path / "run"
    shutil.copy(BOOTLOADER, plain)
    with pytest.raises(upx.BuildFailed, match="holds no PyInstaller archive"):
        upx.pack_pyinstaller_executable(plain, tmp_path / "upx.log")


def test_libraries_upx_declines_are_left_as_they_were(tmp_path):
    tiny = tmp_path / "tiny.so"
    tiny.write_bytes(b"\x7fELF" + b"\0" * 60)  # not packable
    assert upx.pack_library(tiny, tmp_path / "upx.log") is None
    assert tiny.read_bytes() == b"\x7fELF" + b"\0" * 60
