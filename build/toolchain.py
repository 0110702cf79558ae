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
from pathlib import Path
from typing import Any

# The spelling users expect, and what Debian and the kernel call the same thing.
ARCHITECTURES: Mapping[str, str] = {"x86_64": "amd64", "aarch64": "arm64", "armv7": "armhf"}
ALIASES: Mapping[str, str] = {"amd64": "x86_64", "x86-64": "x86_64", "arm64": "aarch64", "armhf": "armv7",
                              "armv7l": "armv7", "armv7hf": "armv7"}


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
