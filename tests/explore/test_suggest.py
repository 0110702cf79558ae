"""`suggest`: what an artifact bundles that a traced run never loads, with the bytes each would save."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from build.analysis import analyse
from build.analysis.model import Row
from build.config import Profile
from build.project import Project
from build.explore.suggest import NotBuilt, Suggestion, Suggestions, render, suggestions, toml_list, unused_bundled
from build.freeze.trace import Trace

ROOT = Path(__file__).resolve().parents[2]


def row(module: str, stored: int, kind: str = "module") -> Row:
    return Row(name=f"PYZ.pyz/{module}", kind=kind, stored=stored, raw=2 * stored, module=module,
               package=module.split(".")[0], distribution="x")


ROWS = (row("app", 1), row("app.main", 50), row("paho", 10), row("paho.client", 500), row("email", 40),
        row("email.utils", 300), row("email.parser", 200), row("csv", 90), row("_csv", 600, "extension"),
        row("os", 700), row("encodings", 30), row("encodings.utf_8", 20), row("encodings.big5", 5),
        row("_slimfreeze_ssl", 70), row("pyimod02_importers", 900),  # the loader: not in the import graph
        Row(name="libz.so.1", kind="library", stored=9000, raw=9000, module="libz.so.1", package="libz",
            distribution="libz"))
GRAPH = {"root": "/w/slimfreeze_entry.py", "edges": [], "nodes": {
    name: {"kind": kind, "file": None} for name, kind in {
        "/w/slimfreeze_entry.py": "Script", "app": "Package", "app.main": "SourceModule", "paho": "Package",
        "paho.client": "SourceModule", "email": "Package", "email.utils": "SourceModule",
        "email.parser": "SourceModule", "csv": "SourceModule", "_csv": "Extension", "os": "SourceModule",
        "encodings": "Package", "encodings.utf_8": "SourceModule", "encodings.big5": "SourceModule",
        "_slimfreeze_ssl": "SourceModule", "sys": "BuiltinModule",
        "not_bundled": "SourceModule",  # in the graph, but not in the artifact's rows
    }.items()}}
TRACED = frozenset({"app", "app.main", "paho", "paho.client", "encodings", "encodings.utf_8", "sys"})
KEEP = {"app", "_slimfreeze_ssl"}


def test_unused_bundled_names_and_bytes() -> None:
    got = unused_bundled(ROWS, GRAPH, TRACED, KEEP)
    assert got == (
        Suggestion(name="_csv", stored=600, raw=1200, modules=("_csv",)),
        Suggestion(name="email", stored=540, raw=1080, modules=("email", "email.parser", "email.utils")),
        Suggestion(name="csv", stored=90, raw=180, modules=("csv",)),
        Suggestion(name="encodings.big5", stored=5, raw=10, modules=("encodings.big5",)),
    )  # not os (the frozen runtime needs it), not the stand-in, not the loader, not not_bundled


def test_nothing_unused() -> None:
    traced = TRACED | {"email", "email.utils", "email.parser", "csv", "_csv", "encodings.big5"}
    assert unused_bundled(ROWS, GRAPH, traced, KEEP) == ()


def _suggestions(items, *, exclude_unused: bool = False, exclude=("_bz2",)) -> Suggestions:
    return Suggestions(profile="lean", artifact="lean", artifact_stored=12_350, exclude_unused=exclude_unused,
                       exclude=tuple(exclude), items=tuple(items))


def test_render_table_total_and_how_to_apply() -> None:
    text = render(_suggestions(unused_bundled(ROWS, GRAPH, TRACED, KEEP)))
    lines = text.splitlines()
    assert lines[0] == "lean bundles 4 modules or packages that no traced run of its commands loads (lean, 12,350 B):"
    assert lines[1].split() == ["Stored", "B", "Raw", "B", "Exclude"]
    assert [line.split()[:3] for line in lines[2:6]] == [["600", "1,200", "_csv"], ["540", "1,080", "email"],
                                                         ["90", "180", "csv"], ["5", "10", "encodings.big5"]]
    assert lines[3].endswith("email  (and 2 submodules)")
    assert lines[6].split()[:3] == ["1,235", "2,470", "total:"] and "10.0% of the artifact" in lines[6]
    assert "exclude_unused = true" in text
    listed = text.split("exclude = ", 1)[1]
    assert tomllib.loads("exclude = " + listed)["exclude"] == ["_bz2", "_csv", "csv", "email", "encodings.big5"]


def test_render_when_exclude_unused_already_applies() -> None:
    text = render(_suggestions((), exclude_unused=True))
    assert "Nothing to suggest" in text and "exclude_unused = true already" in text
    assert "Nothing to suggest" in render(_suggestions(()))
    text = render(_suggestions([Suggestion(name="csv", stored=90, raw=180, modules=("csv",))], exclude_unused=True))
    assert "already has exclude_unused = true" in text and 'exclude = ["_bz2", "csv"]' in text


def test_toml_list_wraps_long_lists() -> None:
    names = [f"encodings.cp{i}" for i in range(100)]
    text = toml_list(names)
    assert all(len(line) <= 100 for line in text.splitlines())
    assert tomllib.loads(f"x = {text}")["x"] == names
    assert toml_list(["a", "b"]) == '["a", "b"]'


# ---- through the artifact's report ------------------------------------------------------------------

def _project(tmp_path: Path) -> Project:
    return Project.at(ROOT, dist=tmp_path / "dist", work=tmp_path / "work", reports=tmp_path / "reports")


def test_not_built_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(NotBuilt, match=r"^lean has not been built \(.*dist/lean does not exist\); build it first: "
                                       r"python build.py --profile lean$"):
        suggestions(_project(tmp_path), Profile(name="lean"), Trace(commands={}, libraries={}), GRAPH)


def test_suggestions_from_a_real_archive(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    from synthetic_archives import make_archive

    project = _project(tmp_path)
    dist = project.dist_root / "lean"
    dist.mkdir(parents=True)
    shutil.copy(make_archive(tmp_path_factory.mktemp("suggest-of")).path, dist / "slimfreeze")
    graph = {"root": "/w/e.py", "edges": [], "nodes": {
        n: {"kind": k, "file": None} for n, k in {"paho": "Package", "paho.mqtt.client": "SourceModule",
                                                  "json": "Package", "mystery_pkg": "SourceModule",
                                                  "_bisect": "Extension", "encodings": "Package",
                                                  "codecs": "SourceModule"}.items()}}
    trace = Trace(commands={"hello": frozenset({"paho", "paho.mqtt.client", "encodings"})}, libraries={})
    got = suggestions(project, Profile(name="lean"), trace, graph)
    rows = {r.module: r for r in analyse(dist).rows}
    assert [(s.name, s.stored) for s in got.items] == sorted(
        ((m, rows[m].stored) for m in ("json", "mystery_pkg", "_bisect")), key=lambda x: (-x[1], x[0]))
    assert got.artifact_stored == (dist / "slimfreeze").stat().st_size and not got.exclude_unused


@pytest.mark.integration
def test_suggest_on_min_has_nearly_nothing(built) -> None:
    built("min")
    project = built.project
    proc = subprocess.run([sys.executable, str(ROOT / "build.py"), "suggest", "--profile", "min",
                           "--project", str(ROOT), "--dist", str(project.dist_root), "--work", str(project.work_root),
                           "--reports", str(project.reports_root)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    # min has exclude_unused = true: nothing is left to suggest, or only the few modules a second
    # trace happened not to load (a traced run varies). A broken exclude_unused would list much more.
    out = proc.stdout
    share = re.search(r"total: .*, ([0-9.]+)% of the artifact", out)
    if share is None:
        assert "min bundles nothing that a traced run of its commands never loads: its exclude_unused = true " \
               "already leaves all of that out. Nothing to suggest." in out, out
    else:
        assert float(share.group(1)) < 1.0 and "min already has exclude_unused = true" in out, out
    assert "Traceback" not in proc.stderr
