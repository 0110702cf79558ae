"""Units of a link-time optimised file: there every DWARF compilation unit is named `<artificial>`,
so each function is given the source file its line table names instead. One `addr2line -a -i` call
over all function start addresses (0.2 s for libpython; pyelftools' line programs take seconds);
choosing the addresses, parsing and splitting the units are pure, `source_files` is the I/O edge."""

from __future__ import annotations

import bisect
import os
import posixpath
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from build import proc
from build.analysis import dwarf
from build.analysis.symbols import SymbolTable

TIMEOUT = 60.0


def placeholder(name: str) -> bool:
    """A unit name that is no file: `<artificial>` (LTO), `<stdin>`, `<built-in>`."""
    return name.startswith("<")


def functions_in(units: Sequence[tuple[int, int, str]], table: SymbolTable | None) -> list[tuple[int, int]]:
    """(start, end) of the functions inside units named by a placeholder, in address order, overlaps cut."""
    spans = sorted((lo, hi) for lo, hi, name in units if placeholder(name))
    if not spans or table is None:
        return []
    out: list[tuple[int, int]] = []
    last_end = -1
    for sym in sorted(table.symbols, key=lambda s: (s.address, -s.size)):
        if sym.kind != "function" or sym.size <= 0 or sym.address < last_end:
            continue
        if any(lo <= sym.address < hi for lo, hi in spans):
            out.append((sym.address, sym.address + sym.size))
            last_end = sym.address + sym.size
    return out


def parse(output: str) -> dict[int, str]:
    """address -> file, from `addr2line -a -i`: each address line is followed by its frames,
    innermost (inlined) first; the last is the function's own. `??` (no line info) is left out."""
    files: dict[int, str] = {}
    address: int | None = None
    for line in output.splitlines():
        if line.startswith("0x"):
            try:
                address = int(line, 16)
            except ValueError:
                address = None
            continue
        if address is None:
            continue
        file = line.rsplit(":", 1)[0] if ":" in line else line
        if file and not file.startswith("??"):
            files[address] = file
        else:
            files.pop(address, None)
    return files


def correct(files: Mapping[int, str], first: Sequence[tuple[int, int, str]]) -> dict[int, str]:
    """Files named by a placeholder (`<artificial>`: addr2line's name for DWARF 5's file 1, see
    dwarf.first_files) get the unit's file 1 from `first` (start, end, path); left out if none."""
    starts = [lo for lo, _, _ in first]
    out = {}
    for address, file in files.items():
        if placeholder(posixpath.basename(file)):
            i = bisect.bisect_right(starts, address) - 1
            if not (i >= 0 and first[i][0] <= address < first[i][1]):
                continue
            file = first[i][2]
        out[address] = posixpath.normpath(file)
    return out


def relative(files: Mapping[int, str], comp_dirs: Sequence[str] = ()) -> dict[int, str]:
    """Paths relative to the source tree, like the units' names: a file in a unit's build folder
    (DW_AT_comp_dir) relative to that, the others to their common folder (system headers under
    /usr left out of it): an out-of-tree build has its sources beside its build folder."""
    prefixes = sorted((d.rstrip("/") + "/" for d in comp_dirs if d.startswith("/")), key=len, reverse=True)

    def under_build(f: str) -> str | None:
        return next((f[len(p):] for p in prefixes if f.startswith(p)), None)

    rest = [os.path.dirname(f) for f in files.values()
            if f.startswith("/") and not f.startswith("/usr/") and under_build(f) is None]
    base = os.path.commonpath(rest) if rest else ""
    prefix = base.rstrip("/") + "/" if base else ""
    out = {}
    for a, f in files.items():
        inside = under_build(f)
        out[a] = inside if inside is not None else f[len(prefix):] if prefix and f.startswith(prefix) else f
    return out


def split_units(units: Iterable[tuple[int, int, str]], functions: Sequence[tuple[int, int]],
                files: Mapping[int, str]) -> tuple[tuple[int, int, str], ...]:
    """`units` with each placeholder-named span cut into its functions' files; functions without a
    file and the bytes between functions keep the placeholder's name."""
    out: list[tuple[int, int, str]] = []
    for lo, hi, name in sorted(units):
        if not placeholder(name):
            out.append((lo, hi, name))
            continue
        cursor = lo
        for start, end in functions:
            file = files.get(start)
            if file is None or end <= lo or start >= hi or start < cursor:
                continue
            if start > cursor:
                out.append((cursor, start, name))
            cursor = min(end, hi)
            out.append((start, cursor, file))
        if cursor < hi:
            out.append((cursor, hi, name))
    return tuple(out)


def source_files(data: bytes | memoryview, path: Path | None, addresses: Sequence[int]) -> dict[int, str]:
    """address -> source file (relative), by addr2line on `path` (or on a temporary copy of `data`);
    {} if addr2line fails or times out. ToolMissing if binutils is not installed."""
    if not addresses:
        return {}
    tool = proc.require_tool("addr2line")
    given = "".join(f"{a:#x}\n" for a in addresses).encode()
    if path is not None:
        found = _run(tool, path, given)
    else:
        with tempfile.NamedTemporaryFile(prefix="slimfreeze-lines-", suffix=".so") as copy:
            copy.write(bytes(data))
            copy.flush()
            found = _run(tool, Path(copy.name), given)
    return relative(correct(found, dwarf.first_files(data)), dwarf.comp_dirs(data)) if found else {}


def _run(tool: str, path: Path, given: bytes) -> dict[int, str]:
    try:
        ran = proc.capture([tool, "-a", "-i", "-e", path], timeout=TIMEOUT, separate_stderr=True, stdin=given)
    except OSError:
        return {}
    return parse(ran.output) if ran.code == 0 else {}


__all__ = ["correct", "functions_in", "parse", "placeholder", "relative", "source_files", "split_units"]
