"""UPX, applied only where it was measured to work on this machine (benchmarks/upx_matrix.py).

Measured with upx 4.2.2 (bookworm-backports): every *shared object* packed with `--lzma` dies with
SIGTRAP at load (upx's shared-library stub fails to decompress LZMA and hits its breakpoint), and
PyInstaller always passes `--lzma`, which is why its forced UPX breaks every build here. Packed with
upx's default NRV method, shared objects load and run. Executables work with either method.

So, for PyInstaller:
- every executable: its bootloader is packed with `--lzma` and the archive PyInstaller embedded is
  put back unchanged after it (the bootloader finds its archive by scanning for the cookie from the
  end of the file, so it may move);
- onedir: every shared library and extension module in the runtime folder, with NRV. This makes the
  folder about a third smaller, but each process then unpacks its own private copy of libpython,
  so processes no longer share those pages and start slower: the sweep shows both.
- onefile: nothing else; its archive already zlib-compresses each library (packing them saves 1.4 %).
Nuitka's own `--plugin-enable=upx` packs its onefile starter (and a standalone's main binary); the
backend passes that flag. Whatever is packed, the smoke test decides whether the artifact ships.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from build import proc
from build.analysis.pyinstaller_archive import read_carchive
from build.config import Profile
from build.errors import BuildFailed, CommandFailed
from build.toolchain import Toolchain

EXECUTABLE_OPTIONS = ("--lzma", "-q", "-q", "--no-progress")
LIBRARY_OPTIONS = ("-q", "-q", "--no-progress")  # NRV: never --lzma for a shared object (SIGTRAP)
ELF_MAGIC = b"\x7fELF"
ET_DYN = 3
TOOL_TIMEOUT = 600.0  # per file: upx --lzma on a large bootloader or library


def tool_versions() -> dict[str, str]:
    out = proc.tool_output(["upx", "--version"])
    match = re.search(r"upx\s+(\S+)", out)
    return {"upx": match.group(1) if match else "unknown"}


def is_shared_object(path: Path) -> bool:
    with path.open("rb") as stream:
        head = stream.read(18)
    return head[:4] == ELF_MAGIC and int.from_bytes(head[16:18], "little") == ET_DYN


def pack_pyinstaller_executable(path: Path, log: Path, toolchain: Toolchain | None = None) -> tuple[int, int]:
    """Pack the bootloader part of a PyInstaller executable, keep its archive byte for byte.

    The host's objcopy reads only the host's ELF machine; for a target artifact the target root's
    own objcopy runs (under emulation). upx itself packs ARM ELF (linux/arm64, linux/arm): measured
    on min-aarch64 and min-armv7, the packed bootloaders run under emulation and pass the smoke test.
    """
    data = path.read_bytes()
    archive = read_carchive(path, len(data))
    if archive is None:
        raise BuildFailed(f"UPX: {path.name} holds no PyInstaller archive")
    with tempfile.TemporaryDirectory(prefix="slimfreeze-upx-") as tmp:
        bootloader, packed = Path(tmp) / "bootloader", Path(tmp) / "bootloader.upx"
        # PyInstaller put the archive into an ELF section on Linux; without it, this is its bootloader.
        objcopy = ["objcopy", "--remove-section", "pydata", str(path), str(bootloader)]
        if toolchain is not None and toolchain.emulated:
            objcopy = toolchain.program_argv(["/usr/bin/objcopy", *objcopy[1:]])
        proc.run(objcopy, log=log, timeout=TOOL_TIMEOUT)
        proc.run(["upx", *EXECUTABLE_OPTIONS, "-o", str(packed), str(bootloader)], log=log, timeout=TOOL_TIMEOUT)
        result = path.with_name(f".{path.name}.upx")
        result.write_bytes(packed.read_bytes() + data[archive.start:archive.end])
        os.chmod(result, path.stat().st_mode)
        os.replace(result, path)
    return len(data), path.stat().st_size


def pack_library(path: Path, log: Path) -> tuple[int, int] | None:
    """Pack one shared object with NRV; None when upx declines it (not compressible, can't pack)."""
    before = path.stat().st_size
    try:
        proc.run(["upx", *LIBRARY_OPTIONS, str(path)], log=log, timeout=TOOL_TIMEOUT)
    except CommandFailed:
        return None  # upx leaves the file as it was; the log says why
    return before, path.stat().st_size


def apply(profile: Profile, stage: Path, executables: list[str], log: Path,
          toolchain: Toolchain | None = None) -> dict[str, str]:
    """Pack what works here; return the tool version for the manifest. The caller smoke-tests."""
    versions = tool_versions()
    if profile.backend != "pyinstaller":
        return versions  # Nuitka's upx plugin did its part during the build
    lines = []
    for name in executables:
        before, after = pack_pyinstaller_executable(stage / name, log, toolchain)
        lines.append(f"{name}: {before:,} -> {after:,} B (bootloader, --lzma)")
    if profile.layout == "onedir":
        runtime = stage / "_internal"
        for path in sorted(p for p in runtime.rglob("*") if p.is_file() and not p.is_symlink()):
            if is_shared_object(path):
                packed = pack_library(path, log)
                what = "declined by upx" if packed is None else f"{packed[0]:,} -> {packed[1]:,} B (NRV)"
                lines.append(f"{path.relative_to(stage)}: {what}")
    with log.open("a", encoding="utf-8") as sink:
        sink.write("[upx] " + "\n[upx] ".join(lines) + "\n")
    return versions
