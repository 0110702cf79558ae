"""`why` and retained sizes: shortest import chains and dominated bytes on synthetic import graphs,
and (integration) `python build.py why` on a real build of `min`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from build.analysis.model import Row, SizeReport
from build.analysis.retained import CHAIN_LIMIT, exclude_from_graph, module_of_row, module_sizes, retained_sizes, \
    shortest_chains, top_level_imports
from build.explore.why import NotInGraph, display_chain, explain

ROOT = Path(__file__).resolve().parents[2]
ENTRY = "/build/work/min/graph/slimfreeze_entry.py"  # the probe names the root by its path

KINDS = {
    ENTRY: "Script", "app": "Package", "app.main": "SourceModule", "alpha": "SourceModule",
    "alpha_dep": "SourceModule", "leaf": "SourceModule", "shared": "SourceModule", "beta": "SourceModule",
    "beta_ext": "Extension", "pkg": "Package", "pkg.sub": "SourceModule", "pkg.helper": "SourceModule",
    "gamma": "SourceModule", "d1": "SourceModule", "d2": "SourceModule", "d3": "SourceModule",
    "delta": "SourceModule", "sys": "BuiltinModule", "gone": "ExcludedModule",
}
EDGES = [
    (ENTRY, "app.main"), ("app.main", "app"),
    ("app.main", "alpha"), ("alpha", "alpha_dep"), ("alpha_dep", "leaf"), ("alpha", "shared"),
    ("leaf", "shared"),  # a longer way to `shared`: never among its shortest chains
    ("app.main", "beta"), ("beta", "shared"), ("beta", "beta_ext"),
    ("app.main", "pkg.sub"), ("pkg.sub", "pkg"), ("pkg.sub", "pkg.helper"), ("pkg.helper", "pkg"),
    ("app.main", "gamma"), ("gamma", "d1"), ("gamma", "d2"), ("d1", "d3"), ("d2", "d3"),  # a diamond
    ("app.main", "delta"), ("alpha", "delta"),  # imported by the app itself, too: alpha does not retain it
    ("app.main", "sys"), ("alpha", "sys"), ("beta", "gone"),
]
STORED = {"app": 1, "app.main": 9999, "alpha": 100, "alpha_dep": 20, "leaf": 3, "shared": 1000, "beta": 200,
          "pkg": 7, "pkg.sub": 70, "pkg.helper": 700, "gamma": 5, "d1": 11, "d2": 13, "d3": 17, "delta": 400}


def graph(edges=EDGES, kinds=KINDS) -> dict:
    return {"root": ENTRY, "nodes": {n: {"kind": k, "file": None} for n, k in kinds.items()},
            "edges": sorted([a, b] for a, b in edges)}


def rows() -> tuple[Row, ...]:
    out = [Row(name=f"PYZ.pyz/{m}", kind="module", stored=s, raw=3 * s, module=m, package=m.split(".")[0],
               distribution="x") for m, s in STORED.items()]
    # An extension module copied into two executables (onedir), and bytes no module owns.
    out += [Row(name=f"{exe}/beta_ext.so", kind="extension", stored=25, raw=60, module="beta_ext", package="beta_ext",
                distribution="x") for exe in ("one", "two")]
    out += [Row(name="libfoo.so.1", kind="library", stored=5000, raw=9000, module="libfoo.so.1", package="libfoo",
                distribution="libfoo"),
            Row(name="[bootloader]", kind="bootloader", stored=70, raw=70, module="[bootloader]",
                package="[bootloader]", distribution="pyinstaller")]
    return tuple(out)


def report(rows_: tuple[Row, ...] = ()) -> SizeReport:
    rows_ = rows_ or rows()
    return SizeReport(artifact="min", format="pyinstaller-onefile", total_stored=sum(r.stored for r in rows_),
                      total_raw=sum(r.raw for r in rows_), rows=rows_)


# ---- retained sizes ------------------------------------------------------------------------------

def test_candidates_are_the_apps_direct_imports_and_top_level_packages() -> None:
    assert top_level_imports(graph()) == ["alpha", "beta", "delta", "gamma", "pkg", "pkg.sub", "sys"]


def test_retained_sizes_exact() -> None:
    got = {r.name: (r.stored, r.raw, r.modules) for r in retained_sizes(graph(), rows())}
    assert got == {
        "pkg": (777, 2331, ("pkg", "pkg.helper", "pkg.sub")),  # the package and everything in it
        "pkg.sub": (777, 2331, ("pkg", "pkg.helper", "pkg.sub")),  # the package is reached only through it
        "delta": (400, 1200, ("delta",)),
        "beta": (250, 720, ("beta", "beta_ext")),  # both copies of its extension; not `shared`
        "alpha": (123, 369, ("alpha", "alpha_dep", "leaf")),  # not shared (beta), not delta (app.main)
        "gamma": (46, 138, ("d1", "d2", "d3", "gamma")),  # the whole diamond
    }  # sys: no bytes of its own, left out; libfoo and the bootloader: nobody's
    assert [r.name for r in retained_sizes(graph(), rows())] == ["pkg", "pkg.sub", "delta", "beta", "alpha", "gamma"]


def test_a_second_way_in_takes_the_bytes_away() -> None:
    # The entry imports `leaf` itself: alpha no longer retains it; and d3 from outside the diamond.
    edges = [*EDGES, (ENTRY, "leaf"), ("beta", "d3")]
    got = {r.name: r.stored for r in retained_sizes(graph(edges), rows())}
    assert got["alpha"] == 120 and got["gamma"] == 29 and got["beta"] == 250  # beta never dominated d3


def test_shared_dependency_is_attributed_to_nobody() -> None:
    retained = retained_sizes(graph(), rows())
    assert retained and not any("shared" in r.modules or "app.main" in r.modules for r in retained)


def test_module_of_row() -> None:
    def row(kind: str, module: str) -> Row:
        return Row(name="x", kind=kind, stored=1, raw=1, module=module, package="p", distribution="d")

    assert module_of_row(row("module", "paho.mqtt.client")) == "paho.mqtt.client"
    assert module_of_row(row("extension", "_socket")) == "_socket"
    assert module_of_row(row("constants", "paho.mqtt.client")) == "paho.mqtt.client"  # Nuitka
    assert module_of_row(row("data", "paho/mqtt/client.pyc")) == "paho.mqtt.client"  # loose bytecode
    assert module_of_row(row("data", "paho/__init__.pyc")) == "paho"
    assert module_of_row(row("data", "certifi/cacert.pem")) is None
    assert module_of_row(row("library", "libz.so.1")) is None
    assert module_of_row(row("script", "slimfreeze_entry")) is None
    assert module_sizes(rows())["beta_ext"] == (50, 120)


def test_exclude_from_graph_is_what_the_freezer_would_make() -> None:
    g = exclude_from_graph(graph(), ["alpha", "pkg"])
    assert g["nodes"]["alpha"]["kind"] == "ExcludedModule" and g["nodes"]["pkg.sub"]["kind"] == "ExcludedModule"
    assert ["app.main", "alpha"] in g["edges"] and not [e for e in g["edges"] if e[0] in ("alpha", "pkg.sub")]
    # What only the excluded imported is gone; what others import stays.
    assert "alpha_dep" not in g["nodes"] and "leaf" not in g["nodes"] and "pkg.helper" not in g["nodes"]
    assert "shared" in g["nodes"] and "delta" in g["nodes"]
    assert all(a in g["nodes"] and b in g["nodes"] for a, b in g["edges"])
    assert {r.name: r.stored for r in retained_sizes(g, rows())}["beta"] == 1250  # now beta alone holds shared


# ---- chains -----------------------------------------------------------------------------------------

def test_shortest_chains_only_and_in_name_order() -> None:
    chains, total = shortest_chains(graph(), "shared")
    assert total == 2
    assert chains == [(ENTRY, "app.main", "alpha", "shared"), (ENTRY, "app.main", "beta", "shared")]
    assert shortest_chains(graph(), "shared", limit=1) == ([(ENTRY, "app.main", "alpha", "shared")], 2)
    assert shortest_chains(graph(), "d3") == ([(ENTRY, "app.main", "gamma", "d1", "d3"),
                                               (ENTRY, "app.main", "gamma", "d2", "d3")], 2)
    assert shortest_chains(graph(), "nowhere") == ([], 0)


def test_chains_are_counted_exactly_and_listed_up_to_the_bound() -> None:
    # A ladder: every level doubles the number of shortest chains (2**12 of them).
    levels = 12
    edges = [(ENTRY, "a0"), (ENTRY, "b0")]
    for i in range(levels - 1):
        edges += [(f"{x}{i}", f"{y}{i + 1}") for x in "ab" for y in "ab"]
    edges += [(f"a{levels - 1}", "t"), (f"b{levels - 1}", "t")]
    kinds = {n: "SourceModule" for e in edges for n in e} | {ENTRY: "Script"}
    chains, total = shortest_chains(graph(edges, kinds), "t", limit=None)
    assert total == 2 ** levels
    assert len(chains) == CHAIN_LIMIT == len(set(chains))
    assert all(len(c) == levels + 2 and c[0] == ENTRY and c[-1] == "t" for c in chains)
    assert chains[0] == (ENTRY, *(f"a{i}" for i in range(levels)), "t")


def test_display_chain_names_the_entry_not_the_machine_path() -> None:
    assert display_chain((ENTRY, "app.main", "alpha")) == "slimfreeze_entry -> app.main -> alpha"


# ---- explain ----------------------------------------------------------------------------------------

def test_explain_a_bundled_module() -> None:
    text = explain("shared", graph=graph(), profile="min", report=report(), limit=3)
    lines = text.splitlines()
    assert lines[0].startswith("shared is in min's artifact: 1,000 B stored, 3,000 B raw (")
    assert "PYZ.pyz/shared" in lines[0]
    assert lines[1] == "all 2 shortest import chains (3 imports from the entry script):"
    assert lines[2:4] == ["  slimfreeze_entry -> app.main -> alpha -> shared",
                          "  slimfreeze_entry -> app.main -> beta -> shared"]
    assert lines[4] == "imported directly by 3: alpha, beta, leaf"
    assert ENTRY not in text


def test_explain_limits_and_says_so() -> None:
    text = explain("shared", graph=graph(), profile="min", report=report(), limit=1)
    assert "1 of 2 shortest import chains" in text and "--all" in text
    assert text.count(" -> ") == 3


def test_explain_package_counts_its_submodules() -> None:
    text = explain("pkg", graph=graph(), profile="min", report=report(), limit=3)
    assert text.splitlines()[0].startswith("pkg is in min's artifact: 7 B stored")
    assert "its 2 submodules in the artifact hold 770 B stored more" in text


def test_not_in_graph_suggests_the_closest() -> None:
    with pytest.raises(NotInGraph, match=r"^alpha_de is not in min's import graph; closest: alpha_dep"):
        explain("alpha_de", graph=graph(), profile="min", report=report(), limit=3)
    with pytest.raises(NotInGraph, match="no module with a similar name"):
        explain("zzzzzz", graph=graph(), profile="min", report=report(), limit=3)
    with pytest.raises(NotInGraph, match="min's import graph"):  # the root is not a module
        explain(ENTRY, graph=graph(), profile="min", report=report(), limit=3)


def test_left_out_by_the_profile() -> None:
    g = exclude_from_graph(graph(), ["alpha"])
    reasons = {"alpha": "exclude_unused: a traced run of the commands never loads it"}
    # Dropped out of the graph entirely (only alpha imported it): one line, with the reason.
    with pytest.raises(NotInGraph, match=r"^leaf is not in min's import graph nor its artifact: the profile leaves "
                                         r"it out \(exclude_unused"):
        explain("leaf", graph=g, profile="min", report=report(), limit=3, reasons={"leaf": reasons["alpha"]})
    # Still imported by someone: shown as excluded, with the chains that would pull it in.
    text = explain("alpha", graph=g, profile="min", report=report(), limit=3, reasons=reasons)
    assert text.startswith("alpha is NOT in min's artifact: the profile leaves it out (exclude_unused")
    assert "  slimfreeze_entry -> app.main -> alpha" in text
    assert "built into" in explain("sys", graph=g, profile="min", report=report(), limit=3)


def test_in_the_graph_but_not_built_or_not_in_the_artifact() -> None:
    text = explain("delta", graph=graph(), profile="min", report=None, limit=3, dist=Path("/x/dist/min"))
    assert text.startswith("delta is in min's import graph; min has not been built (/x/dist/min does not exist)")
    without = report(tuple(r for r in rows() if r.module != "delta"))
    text = explain("delta", graph=graph(), profile="min", report=without, limit=3)
    assert text.startswith("delta is in min's import graph but NOT in its built artifact")


# ---- the real thing ---------------------------------------------------------------------------------

def _cli(built, *args: str) -> subprocess.CompletedProcess:
    project = built.project
    return subprocess.run([sys.executable, str(ROOT / "build.py"), *args, "--project", str(ROOT),
                           "--dist", str(project.dist_root), "--work", str(project.work_root),
                           "--reports", str(project.reports_root)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.integration
def test_why_on_the_min_build(built) -> None:
    result = built("min")
    proc = _cli(built, "why", "paho.mqtt.client", "--profile", "min")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("paho.mqtt.client is in min's artifact: ")
    chains = [line.strip() for line in lines if " -> " in line]
    assert chains and all(c.startswith("slimfreeze_entry -> ") and c.endswith(" -> paho.mqtt.client") for c in chains)
    assert any(" -> app.mqtt -> " in c for c in chains)
    assert str(built.project.work_root) not in proc.stdout

    # lzma is imported (by shutil) and min's inherited `exclude` leaves it out: why names that reason.
    proc = _cli(built, "why", "lzma", "--profile", "min")
    out = proc.stdout + proc.stderr
    assert out.startswith("lzma is NOT in min's artifact: the profile leaves it out (the profile's exclude = "
                          "[..., 'lzma', ...]); without that it would come in through these"), out
    assert any(line.strip().endswith(" -> shutil -> lzma") for line in out.splitlines()), out
    assert "Traceback" not in out
    # Whatever the graph says about it, what the trace never loads is not in the artifact.
    data = json.loads((built.project.reports_root / "min" / "report.json").read_text())
    modules = {row["module"] for row in data["rows"]}
    assert "paho.mqtt.client" in modules and not {"unicodedata", "lzma", "_lzma", "bz2"} & modules

    # The report written by the build carries the retained sizes.
    data = json.loads((built.project.reports_root / "min" / "report.json").read_text())
    retained = {r["name"]: r for r in data["retained"]}
    assert 0 < retained["paho.mqtt.client"]["stored"] <= retained["paho"]["stored"] < data["total_stored"]
    assert "paho.mqtt.client" in retained["paho.mqtt.client"]["modules"]
    assert [r["stored"] for r in data["retained"]] == sorted((r["stored"] for r in data["retained"]), reverse=True)
    assert result.dist_dir == built.project.dist_root / "min"
    page = (built.project.reports_root / "min" / "index.html").read_text()
    assert "Retained size of each top-level import (what would go if it went)" in page
