"""Compiling the size runtime for another architecture: Debian's cross compiler against the target's root.

Measured on this machine (2 cores): the aarch64 runtime compiles with `aarch64-linux-gnu-gcc` in about
3 minutes, like the native one. Inside the emulated root every gcc runs under qemu: one file
(`Objects/unicodeobject.c`, -Os) took 5.8 s cross and 60.7 s with the root's gcc (x10.6). So the
runtime is cross-compiled, and only its first run (the check before it is published) is emulated.

The target's Debian root (build/targets/, with libc6-dev, libssl-dev, libffi-dev, libsqlite3-dev and zlib1g-dev) is
the sysroot: headers and libraries are the device's own Debian versions, the ones the artifact
will load. CPython 3.11's cross build needs a build Python of the same version (`python3.11`, this
machine's), answers for the configure checks that would have to run a target program, and one
edit to Debian's source (see `sysconfigdata_edit`).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

# The one edit to Debian's source a cross build needs (made with the others, in build/runtime/edits.py).
from build.runtime.edits import sysconfigdata_edit  # noqa: F401

BUILD_PYTHON = "python3.11"
# configure cannot run a target program to find these out; the answers hold for Linux with glibc.
CONFIG_SITE = "ac_cv_file__dev_ptmx=yes\nac_cv_file__dev_ptc=no\nac_cv_buggy_getaddrinfo=no\n"


@dataclass(frozen=True, kw_only=True)
class Cross:
    """A runtime compiled here for `triplet`, against the Debian root `sysroot` of that architecture."""

    triplet: str  # Debian's multiarch name: aarch64-linux-gnu, arm-linux-gnueabihf
    sysroot: Path
    sysroot_key: str  # what the root was made from (its cache key): a new root is a new runtime
    run: tuple[str, ...]  # the argv prefix that runs one of the target's programs (proot + qemu)

    @property
    def compiler(self) -> str:
        return f"{self.triplet}-gcc"

    @property
    def strip(self) -> str:
        return f"{self.triplet}-strip"


def build_triplet(machine: str | None = None) -> str:
    """This machine as configure's --build (required with --host, though config.guess could tell)."""
    return f"{machine or platform.machine()}-linux-gnu"


def configure_args(cross: Cross, build_python: str, build: str) -> list[str]:
    """What configure needs besides the flags to cross-compile (pure)."""
    return [f"--build={build}", f"--host={cross.triplet}", f"--with-build-python={build_python}",
            f"CC={cross.compiler} --sysroot={cross.sysroot}"]


def environment(cross: Cross, config_site: Path) -> dict[str, str]:
    """pkg-config reads the root's .pc files. No PKG_CONFIG_SYSROOT_DIR: with it, libffi's include
    folder becomes `<root>/usr/include`, where setup.py looks for ffi.h and does not find it (Debian
    keeps it in the multiarch folder), and ctypes is built without libffi. gcc's --sysroot finds the
    headers and libraries without any -I or -L."""
    usr = cross.sysroot / "usr"
    pkgconfig = [usr / "lib" / cross.triplet / "pkgconfig", usr / "share" / "pkgconfig"]
    return {"CONFIG_SITE": str(config_site), "PKG_CONFIG_LIBDIR": ":".join(map(str, pkgconfig))}
