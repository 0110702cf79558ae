"""Where the freezer runs and where its artifact is run: the seam between a profile's `target` and
`runtime` and the freeze pipeline.

The host toolchain is the Python that runs build.py, with no launcher. A target toolchain
(build/targets/) runs a Python inside a Debian root of another architecture, behind proot and
qemu; a size runtime (build/runtime/) is a venv of a CPython built for size. The pipeline only
ever asks a Toolchain for argument lists, so backends and the smoke test need not know which.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

# The spelling users expect, and what Debian and the kernel call the same thing.
@dataclass(frozen=True, kw_only=True)
class Arch:
    """One architecture, as each tool names it: the one table of architecture facts."""

    name: str  # the profile's spelling: x86_64, aarch64, armv7
    debian: str  # dpkg's: amd64, arm64, armhf
    qemu: str  # the user-mode emulator that runs its programs on another machine
    triplet: str  # Debian's multiarch folder name
    loader: str  # the program interpreter every dynamic executable names

    @property
    def loaders(self) -> tuple[str, str]:
        """Where a Debian root holds that loader (relative to the root): its path and its multiarch copy."""
        return self.loader.lstrip("/"), f"lib/{self.triplet}/{PurePosixPath(self.loader).name}"


ARCHES: Mapping[str, Arch] = {arch.name: arch for arch in (
    Arch(name="x86_64", debian="amd64", qemu="qemu-x86_64-static", triplet="x86_64-linux-gnu",
         loader="/lib64/ld-linux-x86-64.so.2"),
    Arch(name="aarch64", debian="arm64", qemu="qemu-aarch64-static", triplet="aarch64-linux-gnu",
         loader="/lib/ld-linux-aarch64.so.1"),
    Arch(name="armv7", debian="armhf", qemu="qemu-arm-static", triplet="arm-linux-gnueabihf",
         loader="/lib/ld-linux-armhf.so.3"),
)}
ARCHITECTURES: Mapping[str, str] = {name: arch.debian for name, arch in ARCHES.items()}
# Other spellings of the same architectures: Debian's, uname's, and two common ones.
ALIASES: Mapping[str, str] = {**{arch.debian: name for name, arch in ARCHES.items()},
                              "x86-64": "x86_64", "armv7l": "armv7", "armv7hf": "armv7"}


def host_architecture() -> str:
    machine = platform.machine()
    return ALIASES.get(machine, machine)


@dataclass(frozen=True, kw_only=True)
class Toolchain:
    """The interpreter that runs the freezer, and the launcher that runs its artifacts."""

    python: Path
    # Prefix for every program run for this toolchain (proot + qemu for another architecture).
    launcher: tuple[str, ...] = ()
    target: str = field(default_factory=host_architecture)
    env: Mapping[str, str] = field(default_factory=dict)
    # Facts for the manifest: the root's Debian packages, the runtime's flags and build log, ...
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_host_python(self) -> bool:
        """True when the freezer runs in the very interpreter that runs build.py."""
        return not self.launcher and self.python == Path(sys.executable)

    @property
    def emulated(self) -> bool:
        return bool(self.launcher)

    def python_argv(self, *args: str) -> list[str]:
        """`python args...` as this toolchain runs it."""
        return [*self.launcher, str(self.python), *args]

    def program_argv(self, argv: list[str]) -> list[str]:
        """Any program (an artifact, a tool in the root) as this toolchain runs it."""
        return [*self.launcher, *argv]


def host_toolchain() -> Toolchain:
    return Toolchain(python=Path(sys.executable))
