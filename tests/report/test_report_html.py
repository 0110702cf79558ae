"""The HTML pages as text: self-contained, escaped, small; and the files written atomically."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from build.analysis.model import Row, SizeReport
from build.errors import ArtifactError
from build.report import html, jsonio, write_index, write_profile_reports
from build.report.html import IndexEntry

HOSTILE = "</script><script>alert(1)</script><!--"


def report(rows: int = 5, *, name: str = "min", manifest: dict | None = None) -> SizeReport:
    out = tuple(Row(name=f"PYZ.pyz/mod{i}", kind="module", stored=1000 + i, raw=3000 + i, module=f"pkg{i % 40}.mod{i}",
                    package=f"pkg{i % 40}", distribution=f"dist{i % 7}") for i in range(rows))
    out += (Row(name=HOSTILE, kind="data", stored=5, raw=5, module=HOSTILE, package=HOSTILE, distribution=HOSTILE),)
    return SizeReport(artifact=name, format="pyinstaller-onefile", total_stored=sum(r.stored for r in out),
                      total_raw=sum(r.raw for r in out), rows=out, manifest=manifest)


def _embedded(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert match
    return json.loads(match.group(1))


def test_data_is_embedded_safely() -> None:
    page = html.profile_page(report())
    assert page.count("<script") == 2 and page.count("</script>") == 2  # the data cannot close its tag
    assert HOSTILE not in page and "<!--" not in page
    data = _embedded(page)
    assert HOSTILE in [row[0] for row in data["rows"]]  # and the name arrives intact


def test_page_is_self_contained() -> None:
    page = html.profile_page(report(manifest={"resolved_profile": {"name": "min"}, "smoke": {"passed": True}}))
    assert not re.search(r"(?i)(src|href)\s*=", page)  # nothing to load
    assert not re.search(r"(?i)https?://|//cdn|@import|url\(", page)
    assert "default-src 'none'" in page  # and the browser is told so


def test_page_stays_small_for_a_big_build() -> None:
    big = report(20_000)
    page = html.profile_page(big)
    assert len(page.encode()) < 1_000_000
    rows = _embedded(page)["rows"]
    assert len(rows) <= html.MAX_PAGE_ROWS + 40 * 7 + 1
    assert sum(r[2] for r in rows) == big.total_stored  # aggregated, never dropped


def test_typical_page_size() -> None:
    assert len(html.profile_page(report(1200)).encode()) < 300_000


def _entry(profile: str, rep: SizeReport | None, error: str | None = None) -> IndexEntry:
    return IndexEntry(profile=profile, report=rep, error=error)


def test_index_page_escapes_and_links() -> None:
    manifest = {"image": {"size": 123456}, "smoke": {"passed": False}}
    page = html.index_page([_entry("min", report(manifest=manifest)), _entry("default", report(50, name="default")),
                            _entry("<b>bad</b>", None, "r.json: unknown report schema 'x'")])
    assert HOSTILE not in page and "<b>bad</b>" not in page and "&lt;b&gt;bad&lt;/b&gt;" in page
    assert 'href="min/index.html"' in page and 'href="default/index.html"' in page
    assert "123,456" in page and "FAILED" in page and "unknown report schema" in page
    assert "<script" not in page  # static page


def test_index_headline_and_bars_use_bytes_on_the_device() -> None:
    """As the sweep ranks: the image's bytes where a build made one, and a failed build never wins."""
    plain = report(20, name="min")  # ~20 KB artifact, no image
    flashed = report(40, name="flash-min", manifest={"image": {"size": 9000}, "smoke": {"passed": True}})
    broken = report(2, name="tiny-broken", manifest={"smoke": {"passed": False}})
    page = html.index_page([_entry("min", plain), _entry("flash-min", flashed), _entry("tiny-broken", broken)])
    assert "smallest on the device <b>flash-min (9,000 bytes on the device)</b>" in page
    bars = page[page.index('<div class="bars">'):page.index('<div class="legend">')]
    assert bars.index("flash-min/index.html") < bars.index('"min/index.html"')  # ordered by device bytes
    assert html.device_bytes(flashed) == 9000 and html.device_bytes(plain) == plain.total_stored


def _onefile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synthetic_archives import make_archive

    return make_archive(tmp_path_factory.mktemp("html-of")).path


def test_write_profile_reports_and_index(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    dist = tmp_path / "dist" / "min"
    dist.mkdir(parents=True)
    shutil.copy(_onefile(tmp_path_factory), dist / "slimfreeze")
    out = tmp_path / "size_reports" / "min"
    path = write_profile_reports(dist, out)
    assert path == out / "report.json"
    assert jsonio.load(path).total_stored == (dist / "slimfreeze").stat().st_size
    assert (out / "index.html").read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "report.json"]  # no temp files left
    assert (out / "report.json").stat().st_mode & 0o044  # readable by others (not mkstemp's 0600)

    (tmp_path / "size_reports" / "junk").mkdir()
    (tmp_path / "size_reports" / "junk" / "report.json").write_text('{"schema": "nope"}')
    index = write_index(tmp_path / "size_reports")
    text = index.read_text()
    assert index == tmp_path / "size_reports" / "index.html"
    assert 'href="min/index.html"' in text and "unknown report schema" in text


def test_failed_analysis_leaves_previous_reports(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    out.mkdir()
    (out / "report.json").write_text("previous")
    (out / "index.html").write_text("previous")
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "file.txt").write_text("not frozen")
    with pytest.raises(ArtifactError):
        write_profile_reports(tmp_path / "dist", out)
    assert (out / "report.json").read_text() == "previous" and (out / "index.html").read_text() == "previous"
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "report.json"]


# ---- retained sizes ------------------------------------------------------------------------------

def test_retained_table_is_static_escaped_html() -> None:
    from dataclasses import replace
    from html import escape

    from build.analysis.model import Retained

    base = report()
    many = tuple(f"m{i}" for i in range(html.RETAINED_TIP_NAMES + 5))
    rep = replace(base, retained=(Retained(name="small", stored=10, raw=20, modules=("small",)),
                                  Retained(name=HOSTILE, stored=2000, raw=4000, modules=many)))
    page = html.profile_page(rep)
    section = page[page.index('<section id="retained">'):]
    section = section[:section.index("</section>")]
    assert html.RETAINED_TITLE in section and HOSTILE not in page
    assert escape(HOSTILE) in section
    cells = re.findall(r"<tr><td[^>]*>(.*?)</td><td[^>]*>(.*?)</td>", section)
    assert cells == [(escape(HOSTILE), "2,000"), ("small", "10")]  # largest first
    assert f'title="{", ".join(many[:html.RETAINED_TIP_NAMES])}, ..."' in section
    assert page.count("<script") == 2
    assert 'id="retained"' not in html.profile_page(base)  # no graph, no table
    assert "no top-level import retains any bytes" in html.profile_page(replace(base, retained=()))


def test_write_profile_reports_with_the_import_graph(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    dist = tmp_path / "dist" / "min"
    dist.mkdir(parents=True)
    shutil.copy(_onefile(tmp_path_factory), dist / "slimfreeze")
    root = "/w/slimfreeze_entry.py"
    graph = {"root": root, "nodes": {n: {"kind": k, "file": None} for n, k in {
        root: "Script", "app.main": "SourceModule", "paho": "Package", "paho.mqtt.client": "SourceModule",
        "json": "Package", "_bisect": "Extension", "codecs": "SourceModule"}.items()},
        "edges": [[root, "app.main"], ["app.main", "paho.mqtt.client"], ["paho.mqtt.client", "paho"],
                  ["app.main", "json"], ["json", "codecs"], ["paho.mqtt.client", "codecs"], ["json", "_bisect"]]}
    out = tmp_path / "size_reports" / "min"
    back = jsonio.load(write_profile_reports(dist, out, graph=graph))
    stored = {r.module: r.stored for r in back.rows}
    assert [(r.name, r.stored, r.modules) for r in back.retained] == sorted([
        ("paho", stored["paho"] + stored["paho.mqtt.client"], ("paho", "paho.mqtt.client")),
        ("paho.mqtt.client", stored["paho"] + stored["paho.mqtt.client"], ("paho", "paho.mqtt.client")),
        ("json", stored["json"] + stored["_bisect"], ("_bisect", "json")),  # not codecs: paho imports it too
    ], key=lambda x: (-x[1], x[0]))
    assert html.RETAINED_TITLE in (out / "index.html").read_text()


def test_current_report_is_the_one_of_that_build(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    from dataclasses import replace

    from build.report import current_report

    dist, out = tmp_path / "dist" / "min", tmp_path / "size_reports" / "min"
    assert current_report(dist, out) is None
    dist.mkdir(parents=True)
    shutil.copy(_onefile(tmp_path_factory), dist / "slimfreeze")
    size = (dist / "slimfreeze").stat().st_size
    manifest = {"schema": "slimfreeze.manifest/1", "profile": "min", "machine": "x86_64", "commands": {},
                "executables": ["slimfreeze"], "links": [],
                "files": [{"path": "slimfreeze", "size": size, "sha256": "0" * 64}]}
    (dist / "manifest.json").write_text(json.dumps(manifest))
    write_profile_reports(dist, out)
    stored = jsonio.load(out / "report.json")
    marked = replace(stored, artifact="from-report.json")  # to tell which one comes back
    (out / "report.json").write_text(jsonio.dumps(marked))
    assert current_report(dist, out).artifact == "from-report.json"
    (dist / "manifest.json").write_text(json.dumps({**manifest, "created": "later"}))  # a newer build
    fresh = current_report(dist, out)
    assert fresh.artifact == "min" and fresh.manifest["created"] == "later"
    # A manifest the strict reader refuses is never matched against the stored report: the
    # folder is analysed, and that says what is wrong with it.
    damaged = {**manifest, "created": "later", "executables": ["../slimfreeze"]}
    (dist / "manifest.json").write_text(json.dumps(damaged))
    (out / "report.json").write_text(jsonio.dumps(replace(marked, manifest=damaged)))
    with pytest.raises(ArtifactError, match="not a normalised relative path"):
        current_report(dist, out)


def test_the_profile_pages_csp_allows_exactly_the_inline_script_it_holds() -> None:
    # As a browser checks it: the page's own policy lists the sha256 of its one executable script
    # (the JSON data block is not executed), and no 'unsafe-inline'.
    page = html.profile_page(report())
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    allowed = re.search(r"script-src ([^;]*)", policy).group(1).split()
    assert len(scripts) == 1
    assert allowed == ["'sha256-" + base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode() + "'"]


# ---- what each command loads ---------------------------------------------------------------------

def test_the_commands_table_is_static_escaped_html_and_round_trips_through_report_json(tmp_path: Path) -> None:
    from dataclasses import replace
    from html import escape

    from build.analysis.model import CommandCost

    base = report()
    rep = replace(base, commands=(CommandCost(command="store", loaded=900, own=600,
                                              own_rows=("libsqlite3.so.0", HOSTILE, "a", "b", "c")),
                                  CommandCost(command="hello", loaded=100, own=0, own_rows=())))
    page = html.profile_page(rep)
    section = page[page.index('<section id="commands">'):]
    section = section[:section.index("</section>")]
    assert html.COMMANDS_TITLE in section and HOSTILE not in page and escape(HOSTILE) in section
    cells = re.findall(r'<tr><td class="name">(.*?)</td><td class="num">(.*?)</td><td class="num">(.*?)</td>', section)
    assert [c[:2] for c in cells] == [("store", "900"), ("hello", "100")] and cells[0][2].startswith("600 (")
    assert 'id="commands"' not in html.profile_page(base)  # no trace, no table
    path = tmp_path / "report.json"
    path.write_text(jsonio.dumps(rep))
    assert jsonio.load(path).commands == rep.commands
    broken = json.loads(path.read_text())
    broken["commands"][0]["own"] = -1
    path.write_text(json.dumps(broken))
    with pytest.raises(ArtifactError, match=r"commands\[0\]"):
        jsonio.load(path)
