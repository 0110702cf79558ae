"""Where the symbols of a stripped native file come from: an unstripped copy with the same GNU
build-id (I/O edge of build.analysis.symbols).

Searched in order: the paths the user gives (files, or folders searched by file name and in
their .build-id/xx/yyyy.debug tree), the system's debug files (/usr/lib/debug/.build-id), and
the build machine's Python (its LIBDIR holds libpython, its lib-dynload the extension modules):
the one analysing, plus any `--python` given. A copy counts only if its build-id matches.
"""

from __future__ import annotations

import functools
import os
import sysconfig
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from build import elfid
from build.analysis import dwarf, line_files, other_python, symbols
from build.analysis.elf_sections import read_sections

SYSTEM_DEBUG = Path("/usr/lib/debug")
_HEAD = 1 << 16  # the build-id note sits in the first pages of a linked file


@dataclass(frozen=True, kw_only=True)
class Found:
    path: Path
    data: bytes


def python_dirs(python: str | None = None) -> tuple[Path, ...]:
    """LIBDIR and lib-dynload of the analysing Python, or of the interpreter `python`."""
    if python is None:
        values = [sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("DESTSHARED"),
                  sysconfig.get_paths().get("platstdlib")]
    else:
        values = list(_other_python_dirs(python))
    out = []
    for v in values:
        if v and os.path.isdir(v):
            out.append(Path(v))
            if os.path.isdir(os.path.join(v, "lib-dynload")):
                out.append(Path(v) / "lib-dynload")
            # A size-built runtime (build/runtime/) keeps its unstripped copies in a build-id tree.
            if os.path.isdir(os.path.join(v, "debug", ".build-id")):
                out.append(Path(v) / "debug")
    return tuple(dict.fromkeys(out))


@functools.lru_cache(maxsize=8)
def _other_python_dirs(python: str) -> tuple[str, ...]:
    code = ("import json, sysconfig; print(json.dumps([sysconfig.get_config_var('LIBDIR'), "
            "sysconfig.get_config_var('DESTSHARED'), sysconfig.get_paths().get('platstdlib')]))")
    answer = other_python.ask(python, code)
    return tuple(v for v in answer if isinstance(v, str)) if isinstance(answer, list) else ()


def candidates(name: str, build_id: str, search: Sequence[Path]) -> Iterator[Path]:
    """Files that may be the unstripped copy of `name` (basename) with `build_id`, best first."""
    base = name.rsplit("/", 1)[-1]
    stem = base.split(".cpython-")[0].split(".so")[0]
    id_path = Path(".build-id") / build_id[:2] / f"{build_id[2:]}.debug"
    for root in (*search, SYSTEM_DEBUG):
        if root.is_file():
            yield root
            continue
        if not root.is_dir():
            continue
        yield root / id_path
        yield root / base
        # Extension modules are shipped renamed (Nuitka: _ssl.so; PyInstaller keeps the full name).
        try:
            for entry in sorted(os.listdir(root)):
                if entry != base and entry.split(".cpython-")[0].split(".so")[0] == stem:
                    yield root / entry
        except OSError:
            continue


def find_copy(name: str, build_id: str | None, search: Sequence[Path]) -> Found | None:
    """The first candidate whose build-id is `build_id` and that has a .symtab."""
    if not build_id:
        return None
    seen: set[Path] = set()
    for path in candidates(name, build_id, search):
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        try:
            with path.open("rb") as stream:
                head = stream.read(_HEAD)
            if elfid.build_id(head) != build_id:
                data = path.read_bytes()
                if elfid.build_id(data) != build_id:
                    continue
            else:
                data = path.read_bytes()
        except OSError:
            continue
        table = symbols.read_symbols(data)
        if table is not None and table.table == ".symtab":
            return Found(path=path, data=data)
    return None


def native_breakdown(data: bytes | memoryview, name: str, *, search: Sequence[Path] = (),
                     nuitka: bool = False) -> symbols.Breakdown | None:
    """Functions and units of one native file (`name`: its path in the artifact); None if it is
    not a readable ELF file."""
    sections = read_sections(data)
    if sections is None:
        return None
    own = symbols.read_symbols(data, sections)
    table, units, source = own, dwarf.dwarf_units(data), "the file's own .symtab"
    units_file: tuple[bytes | memoryview, Path | None] = (data, None)  # where the units came from
    if own is None or own.table != ".symtab" or not units:
        bid = elfid.build_id(data)
        copy = find_copy(name, bid, (*search, *python_dirs()))
        if copy is not None:
            if own is None or own.table != ".symtab":
                table = symbols.read_symbols(copy.data)
                source = f"unstripped copy {copy.path} (same build-id {bid})"
            if not units:
                units, units_file = dwarf.dwarf_units(copy.data), (copy.data, copy.path)
            if own is not None and own.table == ".symtab":
                source += f"; units from the DWARF of {copy.path} (same build-id {bid})"
        elif own is None:
            source = (f"none: the file is stripped and no unstripped copy with build-id {bid} was found"
                      if bid else "none: the file is stripped and has no build-id to find a copy by")
        elif own.table == ".dynsym":
            source = ("exported symbols only (.dynsym): the file is stripped and no unstripped copy with "
                      f"build-id {bid} was found" if bid else
                      "exported symbols only (.dynsym): the file is stripped and has no build-id")
    if nuitka and (table is None or table.table != ".symtab"):
        folder = nuitka_build_folder(search)
        if folder is not None:
            objects = [(str(p.relative_to(folder)), p.read_bytes()) for p in sorted(folder.rglob("*.o"))]
            b = symbols.objects_breakdown(sections, objects, source=(
                f"the object files in {folder} (Nuitka's build folder; not matched by build-id: sizes as "
                f"compiled, not places in the file)"))
            if sum(p.code for p in b.symbols) <= b.code_bytes:
                return b
            # More compiled code than the program holds: the folder is of another build.
            source += f"; the objects in {folder} hold more code than this program, so they are of another build"
    functions = line_files.functions_in(units, table)
    if not functions:
        return symbols.breakdown(sections, table, units, source=source, nuitka=nuitka)
    # Link-time optimised: every unit is <artificial>; each function's file is in the line table.
    files = line_files.source_files(*units_file, [start for start, _ in functions])
    b = symbols.breakdown(sections, table, line_files.split_units(units, functions, files), source=source,
                          nuitka=nuitka)
    return replace(b, units_from="DWARF line tables (an LTO build: each function's file)") if files else b


def beside(artifact: Path) -> tuple[Path, ...]:
    """Nuitka's build folder where Nuitka leaves it: <name>.build next to <name>.dist or <name>.bin."""
    stem = artifact.name.removesuffix(".dist").removesuffix(".bin")
    folder = artifact.parent / f"{stem}.build"
    return (folder,) if folder.is_dir() else ()


def nuitka_build_folder(search: Sequence[Path]) -> Path | None:
    """A folder among `search` that is Nuitka's build folder (<name>.build, with module.*.o)."""
    for root in search:
        if root.is_dir() and next(root.glob("module.*.o"), None) is not None:
            return root
    return None


def builder_dirs(manifest: Mapping[str, Any] | None, project_root: Path) -> tuple[Path, ...]:
    """Where the Python that built a slimfreeze artifact keeps unstripped copies: a size-built
    runtime's lib/debug tree, beside the build log its manifest names (relative to the project).
    A manifest is data from the artifact: an absolute name or one that climbs out is not followed."""
    toolchain = (manifest or {}).get("toolchain")
    log = toolchain.get("build_log") if isinstance(toolchain, Mapping) else None
    if not isinstance(log, str) or not log or PurePosixPath(log).is_absolute() or ".." in PurePosixPath(log).parts:
        return ()
    prefix = (project_root / log).parent
    return tuple(p for p in (prefix / "lib" / "debug", prefix / "lib") if p.is_dir())


def python_search(paths: Sequence[str | os.PathLike[str]] = (), python: str | None = None) -> tuple[Path, ...]:
    """The search list for find_copy: user paths first, then `--python`'s folders."""
    out = [Path(p) for p in paths]
    if python:
        out += python_dirs(python)
    return tuple(out)


__all__ = ["Found", "builder_dirs", "candidates", "find_copy", "native_breakdown", "python_dirs", "python_search"]
