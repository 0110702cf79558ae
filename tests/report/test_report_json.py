"""report.json: versioned, deterministic (size descending, then name), and strict when read back."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from build.analysis.model import Link, NativeFile, Retained, Row, Section, SizeReport
from build.analysis.symbols import Breakdown, Part
from build.analysis.ops import diff_reports
from build.errors import ArtifactError
from build.report import jsonio

ROWS = (
    Row(name="b.so", kind="library", stored=100, raw=300, module="b.so", package="libb", distribution="libb",
        children=(Section(name="text", stored=60, raw=200, estimate=True), Section(name="other", stored=40, raw=100,
                                                                                  estimate=True)), estimate=False),
    Row(name="a", kind="module", stored=100, raw=150, module="a", package="a", distribution="app", guess=True,
        estimate=True),
    Row(name="[bootloader]", kind="bootloader", stored=7, raw=7, module="[bootloader]", package="[bootloader]",
        distribution="pyinstaller"),
)
REPORT = SizeReport(artifact="x", format="pyinstaller-onefile", total_stored=207, total_raw=457, rows=ROWS,
                    links=(Link(path="t", target="x"),), files=1, notes=("n",),
                    manifest={"schema": "slimfreeze.manifest/1", "profile": "min"}, architecture="aarch64")

GOLDEN = {
    "schema": "slimfreeze.size-report/2",
    "artifact": "x",
    "format": "pyinstaller-onefile",
    "architecture": "aarch64",
    "total_stored": 207,
    "total_raw": 457,
    "files": 1,
    "notes": ["n"],
    "links": [{"path": "t", "target": "x"}],
    "rows": [
        {"name": "a", "kind": "module", "stored": 100, "raw": 150, "module": "a", "package": "a",
         "distribution": "app", "guess": True, "estimate": True, "children": []},
        {"name": "b.so", "kind": "library", "stored": 100, "raw": 300, "module": "b.so", "package": "libb",
         "distribution": "libb", "guess": False, "estimate": False,
         "children": [{"name": "text", "stored": 60, "raw": 200, "estimate": True},
                      {"name": "other", "stored": 40, "raw": 100, "estimate": True}]},
        {"name": "[bootloader]", "kind": "bootloader", "stored": 7, "raw": 7, "module": "[bootloader]",
         "package": "[bootloader]", "distribution": "pyinstaller", "guess": False, "estimate": False, "children": []},
    ],
    "manifest": {"schema": "slimfreeze.manifest/1", "profile": "min"},
}


def test_golden_json() -> None:
    text = jsonio.dumps(REPORT)
    assert json.loads(text) == GOLDEN
    assert list(json.loads(text)) == list(GOLDEN)  # key order is part of the format
    assert text == json.dumps(GOLDEN, indent=1, ensure_ascii=False) + "\n"


def test_deterministic_whatever_the_row_order() -> None:
    shuffled = replace(REPORT, rows=tuple(reversed(ROWS)))
    assert jsonio.dumps(shuffled) == jsonio.dumps(REPORT)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(jsonio.dumps(REPORT))
    back = jsonio.load(path)
    assert jsonio.dumps(back) == jsonio.dumps(REPORT)
    assert back.manifest == REPORT.manifest and back.rows[1].children == ROWS[0].children
    assert back.architecture == "aarch64"


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.update(schema="slimfreeze.size-report/3"), "unknown report schema 'slimfreeze.size-report/3'"),
    (lambda d: d.pop("schema"), "unknown report schema None"),
    (lambda d: d.pop("rows"), "malformed size report"),
    (lambda d: d["rows"][0].update(stored=-1), "malformed size report"),
    (lambda d: d["rows"][0].update(stored="100"), "malformed size report"),
    (lambda d: d.update(total_stored=1), "do not add up"),
])
def test_bad_reports(tmp_path: Path, mutate, message: str) -> None:
    data = json.loads(jsonio.dumps(REPORT))
    mutate(data)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match=message.replace("(", r"\(")):
        jsonio.load(path)


def test_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text("[1, 2]")
    with pytest.raises(ArtifactError, match="expected a JSON object"):
        jsonio.load(tmp_path / "r.json")


def test_diff_json() -> None:
    smaller = replace(REPORT, artifact="y", rows=ROWS[1:], total_stored=107)
    data = json.loads(jsonio.diff_dumps(diff_reports(REPORT, smaller)))
    assert data["schema"] == "slimfreeze.size-diff/1"
    assert data["delta"] == -100
    assert data["changes"] == [{"name": "b.so", "distribution": "libb", "change": "vanished", "old": 100, "new": 0,
                                "delta": -100}]
    assert (data["old"], data["new"]) == ({"artifact": "x", "total_stored": 207}, {"artifact": "y", "total_stored": 107})


def test_schema_1_reports_are_read_with_their_groups_renamed(tmp_path: Path) -> None:
    data = json.loads(jsonio.dumps(REPORT))
    data["schema"] = "slimfreeze.size-report/1"
    (tmp_path / "old.json").write_text(json.dumps(data))
    back = jsonio.load(tmp_path / "old.json")
    assert [c.name for c in back.rows[1].children] == ["code", "other"]  # schema 1's "text" is "code"
    assert back.total_stored == REPORT.total_stored and back.native == ()


def test_native_breakdown_round_trips(tmp_path: Path) -> None:
    units = (Part(name="Objects/a.c", kind="unit", unit="Objects/a.c", size=70, code=60),
             Part(name="[unwind tables]", kind="rest", unit="[unknown unit]", size=30, code=0))
    symbols = tuple(Part(name=f"f{i}", kind="function", unit="Objects/a.c", size=1, code=1)
                    for i in range(jsonio.JSON_SYMBOLS + 5))
    native = NativeFile(row="b.so", size=300, breakdown=Breakdown(
        source="the file's own .symtab", units_from="DWARF", code_bytes=60, code_in_units=60,
        symbols=symbols, units=units))
    data = json.loads(jsonio.dumps(replace(REPORT, native=(native,))))
    assert data["native"][0]["symbols_rest"] == [5, 5]  # the rest summed, so the file still adds up
    (tmp_path / "r.json").write_text(json.dumps(data))
    back = jsonio.load(tmp_path / "r.json").native[0]
    assert back.breakdown.units == units and back.breakdown.symbols == symbols[:jsonio.JSON_SYMBOLS]


# ---- retained sizes: an optional field, absent from reports made without an import graph ----------

RETAINED = (Retained(name="b", stored=5, raw=9, modules=("b", "b.x")),
            Retained(name="a", stored=100, raw=150, modules=("a",)),
            Retained(name="c", stored=5, raw=6, modules=()))


def test_retained_golden_and_sorted() -> None:
    data = json.loads(jsonio.dumps(replace(REPORT, retained=RETAINED)))
    assert list(data) == [*GOLDEN, "retained"]
    assert {k: v for k, v in data.items() if k != "retained"} == GOLDEN
    assert data["retained"] == [{"name": "a", "stored": 100, "raw": 150, "modules": ["a"]},
                                {"name": "b", "stored": 5, "raw": 9, "modules": ["b", "b.x"]},
                                {"name": "c", "stored": 5, "raw": 6, "modules": []}]
    assert "retained" not in json.loads(jsonio.dumps(REPORT))
    assert "retained" in json.loads(jsonio.dumps(replace(REPORT, retained=())))  # computed, and empty


def test_retained_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(jsonio.dumps(replace(REPORT, retained=RETAINED)))
    back = jsonio.load(path)
    assert back.retained is not None and sorted(back.retained, key=lambda r: r.name) == sorted(RETAINED,
                                                                                              key=lambda r: r.name)
    assert jsonio.dumps(back) == path.read_text()
    path.write_text(jsonio.dumps(REPORT))
    assert jsonio.load(path).retained is None


@pytest.mark.parametrize("bad", [
    "nope", [{"name": "a", "stored": -1, "raw": 1, "modules": []}], [{"name": "a", "stored": 1, "raw": 1}],
    [{"name": "a", "stored": 1, "raw": 1, "modules": "a"}], [{"name": "a", "stored": 1, "raw": 1, "modules": [1]}],
    ["a"],
])
def test_bad_retained(tmp_path: Path, bad) -> None:
    data = json.loads(jsonio.dumps(REPORT))
    data["retained"] = bad
    (tmp_path / "r.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="malformed size report"):
        jsonio.load(tmp_path / "r.json")
