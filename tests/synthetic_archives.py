"""Synthetic PyInstaller executables written with PyInstaller's own writers, for fast tests of the
analyser, the reports and the commands built on them.

A synthetic onefile = a fake bootloader prefix + a CArchive written by CArchiveWriter holding a PYZ
written by ZlibArchiveWriter, a zipped base library, a real extension module (compressed), a
"system library" (stored), scripts, a loader module, an option and a data file with a hostile name.
"""

from __future__ import annotations

import json
import marshal
import py_compile
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from platform_names import EXT_SUFFIX, LIBPYTHON, PYTHON, extension
from PyInstaller.archive.writers import CArchiveWriter, ZlibArchiveWriter

HOSTILE = "<script>alert(1)</script>"
EXTENSION = extension("_bisect")
EXT_NAME = f"{PYTHON}/lib-dynload/_bisect{EXT_SUFFIX}"
# A bootloader stand-in: ELF magic and the strings by which we recognise PyInstaller's bootloader.
PREFIX = b"\x7fELF\x02\x01\x01" + b"\0" * 57 + b"_MEIPASS PyInstaller bootloader stand-in " + b"\xaa" * 3000

PYZ_MODULES = {  # name -> (source file basename, source)
    "paho": ("__init__.py", "VERSION = '2.2.0'\n"),
    "paho.mqtt.client": ("client.py", "class Client:\n    def connect(self, host):\n        return host * 2\n" * 20),
    "json": ("__init__.py", "def dumps(x):\n    return repr(x)\n"),
    "mystery_pkg": ("mystery_pkg.py", "X = 1\n"),
}


@dataclass
class Synthetic:
    path: Path
    pkg_size: int
    toc_length: int
    pyz_size: int
    zip_bytes: bytes
    codes: dict
    entries: list


def _toc_length(names: list[str]) -> int:
    # CArchiveWriter._serialize_toc: 18-byte header + name + NUL, padded to 16 bytes.
    total = 0
    for name in names:
        n = 18 + len(name.encode()) + 1
        total += n + (-n % 16)
    return total


def _pyc(tmp: Path, name: str, source: str) -> Path:
    src = tmp / f"{name}.py"
    src.write_text(source)
    out = tmp / f"{name}.pyc"
    py_compile.compile(str(src), cfile=str(out), doraise=True)
    return out


def make_archive(tmp: Path, *, binaries: bool = True) -> Synthetic:
    """Write a synthetic PyInstaller executable (onefile if `binaries`, else a onedir executable)."""
    tmp.mkdir(parents=True, exist_ok=True)
    codes = {}
    pyz_entries = []
    for name, (basename, source) in PYZ_MODULES.items():
        folder = tmp / "pyz" / name
        folder.mkdir(parents=True)
        path = folder / basename
        path.write_text(source)
        codes[name] = compile(source, str(path), "exec")
        pyz_entries.append((name, str(path), "PYMODULE"))
    pyz = tmp / "PYZ.pyz"
    ZlibArchiveWriter(str(pyz), pyz_entries, code_dict=codes)

    zip_path = tmp / "base_library.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("encodings/__init__.pyc", marshal.dumps(compile("A = 1\n" * 200, "e", "exec")))
        z.writestr("codecs.pyc", marshal.dumps(compile("B = 2\n" * 300, "c", "exec")))
    data = tmp / "payload.txt"
    data.write_bytes(b"hostile name, harmless bytes\n" * 10)
    (tmp / "myapp.py").write_text("print('hello')\n")
    (tmp / "pyi_rth_inspect.py").write_text("import sys\n")
    entries = [
        ("pyimod01_archive", str(_pyc(tmp, "pyimod01_archive", "X = 1\n" * 50)), True, "m"),
        ("_slimfreeze_ssl", str(_pyc(tmp, "_slimfreeze_ssl", "class SSLError(Exception): pass\n")), True, "m"),
        ("pyi_rth_inspect", str(tmp / "pyi_rth_inspect.py"), True, "s"),
        ("myapp", str(tmp / "myapp.py"), True, "s"),
        ("base_library.zip", str(zip_path), True, "x"),
        (HOSTILE, str(data), False, "x"),
        ("PYZ.pyz", str(pyz), False, "z"),
        ("pyi-contents-directory _internal", "", False, "o"),
    ]
    if binaries:
        entries[4:4] = [(EXT_NAME, str(EXTENSION), True, "b"), ("libdemo.so.1", str(EXTENSION), False, "b")]
    pkg = tmp / "pkg.bin"
    CArchiveWriter(str(pkg), entries, LIBPYTHON)
    exe = tmp / ("onefile" if binaries else "onedir-exe")
    exe.write_bytes(PREFIX + pkg.read_bytes())
    return Synthetic(path=exe, pkg_size=pkg.stat().st_size, toc_length=_toc_length([e[0] for e in entries]),
                     pyz_size=pyz.stat().st_size, zip_bytes=zip_path.read_bytes(), codes=codes, entries=entries)


def dist_with_manifest(tmp_path: Path, onefile: Path) -> Path:
    """A dist folder around `onefile`: a link, a stray file, an image and a manifest listing what counts."""
    dist = tmp_path / "min"
    dist.mkdir()
    shutil.copy(onefile, dist / "slimfreeze")
    (dist / "telemetry").symlink_to("slimfreeze")
    (dist / "stray.txt").write_text("not listed in the manifest\n")
    (dist / "min.squashfs").write_bytes(b"hsqs" + bytes(100))
    size = (dist / "slimfreeze").stat().st_size
    manifest = {"schema": "slimfreeze.manifest/1", "profile": "min", "resolved_profile": {"name": "min"},
                "machine": "x86_64", "commands": {"telemetry": "telemetry"}, "executables": ["slimfreeze"],
                "files": [{"path": "slimfreeze", "size": size, "sha256": "0" * 64}],
                "links": [{"path": "telemetry", "target": "slimfreeze"}], "total_bytes": size,
                "image": {"path": "min.squashfs", "size": 104, "sha256": "0" * 64},
                "smoke": {"passed": True, "checks": []}}
    (dist / "manifest.json").write_text(json.dumps(manifest))
    return dist
