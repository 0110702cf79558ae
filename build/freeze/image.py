"""Flash images: the artifact and its command links packed into a read-only squashfs."""

from __future__ import annotations

import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

from build import proc
from build.config import STAND_INS, Profile
from build.freeze.reproducible import Inputs, normalise_modes
from build.freeze.standins import module_name
from build.manifest import sha256_of
from build.paths import remove_tree

TOOL_TIMEOUT = 900.0  # mksquashfs with xz on a slow device-class machine


def image_name(profile: Profile) -> str:
    return f"{profile.name}.{profile.image}"


# xz's branch/call/jump filters for the machine's code (mksquashfs tries each and keeps the best).
XZ_FILTERS = {"x86_64": "x86", "i686": "x86", "i386": "x86", "armv7l": "arm,armthumb", "ppc64le": "powerpc"}


def compressor_options(profile: Profile, machine: str) -> list[str]:
    if profile.image_compressor == "xz" and machine in XZ_FILTERS:
        return ["-Xbcj", XZ_FILTERS[machine]]
    if profile.image_compressor == "zstd":
        return ["-Xcompression-level", "22"]
    return []


def mksquashfs_command(source: Path, image: Path, profile: Profile, machine: str | None = None, *,
                       epoch: int = 0, sort_file: Path | None = None) -> list[str]:
    """Reproducible image: every timestamp the commit's (SOURCE_DATE_EPOCH), root ownership, no
    xattrs (mksquashfs sorts each folder's entries itself), the profile's compressor at its
    strongest setting for this machine's code; with `sort_file`, the data in that order."""
    return ["mksquashfs", str(source), str(image), "-noappend", "-comp", profile.image_compressor,
            *compressor_options(profile, machine or platform.machine()), "-b", str(profile.image_block_size),
            "-all-root", "-no-xattrs", "-mkfs-time", str(epoch), "-all-time", str(epoch), "-quiet", "-no-progress",
            *(["-sort", str(sort_file)] if sort_file else [])]


# PyInstaller's onedir contents folder, where the runtime, the standard library and the app's code lie.
CONTENTS = "_internal"
APP_LAST = -100  # mksquashfs -sort priority: higher is written first, 0 is everything unlisted


def sort_lines(stage: Path) -> list[str]:
    """mksquashfs -sort lines that write the app's and its dependencies' code after the runtime's.

    Files smaller than a block share compressed fragment blocks in the order they are written, so a
    changed module rewrites its whole fragment block (1 MiB at flash-min's block size): with the
    standard library and the app mixed, a one-line change made a 232,817-byte patch. Written last,
    the code a release changes shares fragments only with itself (4,917 bytes; benchmarks/delta.py
    measures each layout). App code is what is neither the standard library, by CPython's own
    list, nor a slimfreeze stand-in for part of it."""
    contents = stage / CONTENTS
    if not contents.is_dir():
        return []
    runtime = {*sys.stdlib_module_names, *(module_name(name) for name in STAND_INS)}
    names = sorted(p.name for p in contents.iterdir()
                   if (p.is_dir() or p.suffix == ".pyc") and not p.is_symlink() and p.name.split(".")[0] not in runtime)
    return [f"{CONTENTS}/{name} {APP_LAST}" for name in names]


def make(profile: Profile, stage: Path, work: Path, log: Path, inputs: Inputs) -> dict[str, Any]:
    """Pack `stage` into an image placed beside the artifact in `stage`; return its manifest record."""
    image = work / image_name(profile)
    remove_tree(image, (work,))
    normalise_modes(stage)  # squashfs keeps permission bits, which the umask decided
    sort_file = work / f"{image.name}.sort"
    sort_file.write_text("".join(f"{line}\n" for line in sort_lines(stage)), encoding="utf-8")
    # mksquashfs refuses SOURCE_DATE_EPOCH beside -all-time; the command line carries the time.
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    proc.run(mksquashfs_command(stage, image, profile, epoch=inputs.source_date_epoch, sort_file=sort_file),
             log=log, env=env, timeout=TOOL_TIMEOUT)
    final = stage / image.name
    image.rename(final)
    return {"path": final.name, "size": final.stat().st_size, "sha256": sha256_of(final),
            "format": profile.image, "compressor": profile.image_compressor,
            "block_size": profile.image_block_size, "app_code_last": bool(sort_lines(stage))}


def tool_versions() -> dict[str, str]:
    out = proc.tool_output(["mksquashfs", "-version"])
    match = re.search(r"version\s+(\S+)", out)
    return {"squashfs-tools": match.group(1) if match else "unknown"}
