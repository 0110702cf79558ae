"""The export list: only the symbols libpython's users import, as a linker version script.

libpython's users are the extension modules (its own lib-dynload ones and those of the pinned
packages the freezer's venv installs), the `python` executable, and PyInstaller's bootloader, which
finds its functions with dlsym() by name (so they are strings in it, not undefined symbols).
Everything else becomes local, and LTO drops what no exported function reaches (`--gc-sections`
was measured on top and saved nothing: build/runtime/flags.py's TRIED).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from build.elfid import build_id  # the one reader; compile records each library's id through it

__all__ = ["build_id", "dlsym_names", "undefined_symbols", "version_script", "wanted"]

# CPython's public and private C API names; nothing else in libpython is anyone's business.
PYTHON_SYMBOL = re.compile(r"_?_?Py[A-Za-z0-9_]*")


def undefined_symbols(path: Path) -> set[str]:
    """The dynamic symbols an ELF file imports (empty for a file that is not ELF)."""
    try:
        with path.open("rb") as stream:
            elf = ELFFile(stream)
            table = elf.get_section_by_name(".dynsym")
            if table is None:
                return set()
            return {sym.name for sym in table.iter_symbols()
                    if sym.name and sym["st_shndx"] == "SHN_UNDEF"}
    except (ELFError, OSError):
        return set()


def dlsym_names(path: Path) -> set[str]:
    """Python API names a program looks up by string (PyInstaller's bootloader does, with dlsym)."""
    data = path.read_bytes()
    return {m.decode() for m in re.findall(rb"(?<![\x21-\x7e])(_?Py[A-Za-z0-9_]+)\x00", data)}


def wanted(users: Iterable[Path], by_name: Iterable[Path]) -> set[str]:
    """The Python API symbols that `users` import or `by_name` look up."""
    names: set[str] = set()
    for path in users:
        names |= undefined_symbols(path)
    for path in by_name:
        names |= dlsym_names(path)
    return {name for name in names if PYTHON_SYMBOL.fullmatch(name)}


# Stable ABI entries that exist only on another platform or in a debug build.
_ELSEWHERE = {"MS_WINDOWS", "Py_REF_DEBUG", "USE_STACKCHECK"}
_DECLARED = re.compile(r"\bPyAPI_(?:FUNC|DATA)\((?:[^()]|\([^()]*\))*\)\s*(\w+)")


def stable_abi(toml_text: str) -> set[str]:
    """The functions and data of Misc/stable_abi.toml that exist on Linux (pure)."""
    data = tomllib.loads(toml_text)
    return {name for kind in ("function", "data") for name, entry in data.get(kind, {}).items()
            if entry.get("ifdef") not in _ELSEWHERE}


def public_declarations(header: str) -> set[str]:
    """Names a header declares with PyAPI_FUNC/PyAPI_DATA, but for private ones (`_Py...`) (pure)."""
    text = re.sub(r"/\*.*?\*/", " ", header, flags=re.S)
    return {name for name in _DECLARED.findall(text) if PYTHON_SYMBOL.fullmatch(name) and not name.startswith("_")}


def public_api(tree: Path) -> set[str]:
    """CPython's public C API as its source tree states it: the stable ABI and every public
    declaration of Include/ and Include/cpython/ (Include/internal/ is no one's API)."""
    names = stable_abi((tree / "Misc" / "stable_abi.toml").read_text())
    for header in sorted([*(tree / "Include").glob("*.h"), *(tree / "Include" / "cpython").glob("*.h")]):
        names |= public_declarations(header.read_text(errors="replace"))
    return names


def version_script(names: Iterable[str]) -> str:
    """A GNU ld version script exporting exactly `names` (sorted, so the file is reproducible)."""
    body = "".join(f"    {name};\n" for name in sorted(set(names)))
    return "{\n  global:\n" + body + "  local: *;\n};\n"
