"""Real builds from the orchestrator: the report accounts for the size on disk exactly, the expected
distributions appear, and --crates totals are the sums of their rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from build.report import command as bloat
from build.analysis import analyse
from build.analysis.model import display_distribution
from build.analysis.ops import check_accounted, diff_reports, group_rows
from build.report import jsonio, write_profile_reports
from build.report.table import fmt_size
from platform_names import LIBPYTHON

# `built(profile)` (tests/conftest.py) builds a shipped profile once per session and returns its
# BuildResult; these tests only read its dist folder.
EXPECTED = {  # distributions every build of the profile must show
    "min": {"pyinstaller", "python-runtime", "python-stdlib", "paho-mqtt", "app", "slimfreeze"},
    "default": {"pyinstaller", "python-runtime", "python-stdlib", "paho-mqtt", "app", "libssl", "libcrypto"},
    "onedir-min": {"pyinstaller", "python-runtime", "python-stdlib", "paho-mqtt", "app", "slimfreeze"},
    "nuitka-min": {"nuitka", "python-stdlib", "paho-mqtt", "app", "slimfreeze"},
}
FORMATS = {"min": "pyinstaller-onefile", "default": "pyinstaller-onefile", "onedir-min": "pyinstaller-onedir",
           "nuitka-min": "nuitka-onefile"}


def _manifest(dist: Path) -> dict:
    return json.loads((dist / "manifest.json").read_text())


@pytest.mark.integration
@pytest.mark.parametrize("profile", list(EXPECTED))
def test_report_accounts_for_the_size_on_disk(built, profile: str) -> None:
    dist = built(profile).dist_dir
    manifest = _manifest(dist)
    report = analyse(dist)
    check_accounted(report.rows, report.total_stored, report.artifact)
    on_disk = sum((dist / f["path"]).stat().st_size for f in manifest["files"])
    assert report.total_stored == on_disk == manifest["total_bytes"]
    assert report.format == FORMATS[profile]
    assert {(link.path, link.target) for link in report.links} == {(x["path"], x["target"]) for x in manifest["links"]}
    assert EXPECTED[profile] <= {r.distribution for r in report.rows}
    assert report.manifest == manifest


@pytest.mark.integration
@pytest.mark.parametrize("profile", list(EXPECTED))
def test_crates_totals_equal_the_sum_of_their_rows(built, profile: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    dist = built(profile).dist_dir
    report = analyse(dist)
    groups = group_rows(report.rows, "distribution")
    for g in groups:
        assert g.stored == sum(r.stored for r in report.rows if (r.distribution, r.guess) == (g.name, g.guess))
    assert sum(g.stored for g in groups) == report.total_stored
    # What `bloat --crates` prints is those sums: one line per distribution, then the total.
    assert bloat.main([str(dist), "--crates", "-n", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    printed = {cells[3]: cells[1] for cells in (line.split() for line in lines[1:len(groups) + 2])}
    expected = {display_distribution(g.name, g.guess): ("~" if g.estimate else "") + fmt_size(g.stored)
                for g in groups}
    assert printed == {**expected, "Total": fmt_size(report.total_stored)}


@pytest.mark.integration
def test_pyinstaller_onefile_holds_what_pyinstaller_put_in(built) -> None:
    report = analyse(built("default").dist_dir)
    names = {r.name.split("/", 1)[1] for r in report.rows}
    assert {"[bootloader]", "[archive index]", "PYZ.pyz/[archive index]", "PYZ.pyz/paho.mqtt.client",
            LIBPYTHON} <= names
    assert any(n.startswith("base_library.zip/encodings/") for n in names)
    lib = next(r for r in report.rows if r.name.endswith(f"/{LIBPYTHON}"))
    groups = [c.name for c in lib.children]  # default does not strip: symbol tables and debug info stay
    assert groups == [g for g in ("code", "rodata", "data", "dynamic", "unwind", "symbols", "debug", "other")
                      if g in groups] and {"code", "rodata", "data", "symbols"} <= set(groups)
    assert lib.strip_savings == sum(c.raw for c in lib.children if c.name in ("symbols", "debug")) > 0
    assert sum(c.raw for c in lib.children) == lib.raw and sum(c.stored for c in lib.children) == lib.stored


@pytest.mark.integration
def test_nuitka_onefile_is_split_into_its_files(built) -> None:
    report = analyse(built("nuitka-min").dist_dir)
    rows = {r.name: r for r in report.rows}
    assert any(name.endswith("/[bootloader]") for name in rows)
    compiled = [r for r in report.rows if "/constants/paho." in r.name]
    assert compiled and all(r.distribution == "paho-mqtt" for r in compiled)
    assert any(r.name.endswith("/[executable]") and r.guess for r in report.rows)


@pytest.mark.integration
def test_diff_of_two_builds(built) -> None:
    old, new = (analyse(built(p).dist_dir) for p in ("default", "min"))
    d = diff_reports(old, new, "distribution")
    assert d.delta == new.total_stored - old.total_stored < 0
    assert {c.name for c in d.changes if c.kind == "vanished"} >= {"libcrypto", "libssl"}


@pytest.mark.integration
def test_written_reports_of_a_real_build(built, tmp_path: Path) -> None:
    dist = built("default").dist_dir
    path = write_profile_reports(dist, tmp_path / "default")
    assert jsonio.load(path).total_stored == _manifest(dist)["total_bytes"]
    assert (tmp_path / "default" / "index.html").stat().st_size < 1_000_000
