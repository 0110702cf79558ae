"""Freezer backends, one module each, behind `base.Backend`. Adding a backend touches this registry."""

from __future__ import annotations

from typing import Final

from build.freeze.backends.base import Backend, BuildPlan, Executable, executables_for
from build.freeze.backends.nuitka import NuitkaBackend
from build.freeze.backends.pyinstaller import PyInstallerBackend

BACKENDS: Final[dict[str, Backend]] = {
    "pyinstaller": PyInstallerBackend(),
    "nuitka": NuitkaBackend(),
}

__all__ = ["BACKENDS", "Backend", "BuildPlan", "Executable", "executables_for"]
