"""This interpreter's and machine's file names, from sysconfig and platform: tests that touch real
files adapt to where they run (x86_64 today, the aarch64 and armv7 targets too) instead of failing."""

from __future__ import annotations

import platform
import sys
import sysconfig
from pathlib import Path

EXT_SUFFIX: str = sysconfig.get_config_var("EXT_SUFFIX")  # ".cpython-311-x86_64-linux-gnu.so"
SOABI: str = sysconfig.get_config_var("SOABI")  # "cpython-311-x86_64-linux-gnu"
PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"  # "python3.11"
PY_VERSION = sys.version_info.major * 100 + sys.version_info.minor  # 311, as PyInstaller's cookie has it
LIBPYTHON: str = sysconfig.get_config_var("INSTSONAME")  # "libpython3.11.so.1.0"
MACHINE = platform.machine()
DYNLOAD = Path(sysconfig.get_config_var("DESTSHARED"))


def extension(module: str) -> Path:
    """The standard library's extension module `module` as installed here."""
    return DYNLOAD / f"{module}{EXT_SUFFIX}"
