"""bloat's own paths are checked where they enter: one line and a usage exit, before any analysis."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from build.analysis.model import NativeFile, Row, SizeReport
from build.analysis.symbols import Breakdown, Part
from build.report import jsonio
from build.report.table import native_table, render

ROOT = Path(__file__).resolve().parents[2]


def bloat(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "build.report.command", *argv],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("argv, message", [
    (["--html", "{tmp}", "{tmp}/artifact"], "--html {tmp}: is a folder; give the page's file name"),
    (["--symbols", "--debug-file", "{tmp}/missing", "{tmp}/artifact"],
     "--debug-file {tmp}/missing: No such file or directory"),
    (["--units", "{tmp}/artifact"], ("bloat needs an artifact, a dist folder or a report.json (or --diff OLD NEW); "
                                     "--units took '{tmp}/artifact' as its ROW: name the artifact first")),
    (["--diff", "{tmp}/artifact", "{tmp}/artifact", "--filter", "x"],
     "bloat --diff does not take --filter or --html"),
])
def test_a_bad_path_or_option_is_one_usage_line(tmp_path: Path, argv: list[str], message: str) -> None:
    (tmp_path / "artifact").write_bytes(b"\x7fELF" + bytes(60))
    ran = bloat(*(a.format(tmp=tmp_path) for a in argv))
    assert ran.returncode == 2, ran.stderr
    assert len(ran.stderr.splitlines()) == 1, ran.stderr
    assert ran.stderr.startswith(f"slimfreeze: error: {message.format(tmp=tmp_path)}"), ran.stderr
    assert not list(tmp_path.glob(".*.tmp"))


REPORT = SizeReport(artifact="x", format="pyinstaller-onefile", total_stored=9, total_raw=9, rows=(
    Row(name="[bootloader]", kind="bootloader", stored=9, raw=9, module="[bootloader]", package="[bootloader]",
        distribution="pyinstaller"),))


def _native(row: str, sizes: dict[str, int], units_from: str = "DWARF") -> NativeFile:
    parts = tuple(Part(name=name, kind="function", unit="a.c", size=size, code=size) for name, size in sizes.items())
    return NativeFile(row=row, size=sum(sizes.values()), breakdown=Breakdown(
        source="the file's own .symtab", units_from=units_from, code_bytes=sum(sizes.values()),
        code_in_units=sum(sizes.values()), symbols=parts, units=()))


def test_diff_of_reports_compares_only_the_native_file_asked_for(tmp_path: Path) -> None:
    # Each report.json keeps the breakdowns of several native files; --symbols ROW picks one on both sides.
    old = replace(REPORT, native=(_native("x/b.so", {"f": 10, "g": 5}), _native("x/c.so", {"h": 7})))
    new = replace(REPORT, native=(_native("x/b.so", {"f": 12, "g": 5}), _native("x/d.so", {"k": 9})))
    (tmp_path / "old.json").write_text(jsonio.dumps(old))
    (tmp_path / "new.json").write_text(jsonio.dumps(new))
    ran = bloat("--diff", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "--symbols=b.so", "--json")
    assert ran.returncode == 0, ran.stderr
    diff = json.loads(ran.stdout)
    assert [(c["name"], c["old"], c["new"]) for c in diff["changes"]] == [("b.so: f", 10, 12)]
    ran = bloat("--diff", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "--symbols=c.so")
    assert ran.returncode == 1 and ran.stderr.startswith("slimfreeze: error: ") and "no native rows match 'c.so'" in ran.stderr


def test_a_file_without_units_says_so_instead_of_units_from_none() -> None:
    text = render(native_table(_native("x/b.so", {"f": 10}, "none"), units=True, n=5, pattern=None))
    assert "Units: none (no DWARF, no file symbols, no Nuitka names in it)." in text and "Units from none" not in text
