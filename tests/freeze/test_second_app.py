"""A second application, of another shape (tests/apps/ticker: asyncio, no MQTT, its own
dispatcher), frozen with the `min` recipe by both backends and proved by its own scenarios."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from build.config import load_profiles
from build.freeze.orchestrate import build_many
from build.project import Project

ROOT = Path(__file__).resolve().parents[2]
TICKER = ROOT / "tests" / "apps" / "ticker"


@pytest.fixture(scope="session")
def ticker_builds(tmp_path_factory: pytest.TempPathFactory):
    """Both profiles of the ticker app, built once; the size runtime from this project's cache."""
    out = tmp_path_factory.mktemp("ticker")
    project = Project.at(TICKER, dist=out / "dist", work=out / "work", reports=out / "reports",
                         cache=ROOT / "work" / ".cache")
    profiles = load_profiles(project.pyproject)
    results = build_many([profiles["min"], profiles["nuitka-min"]], project)
    return project, {r.profile: r for r in results}


@pytest.mark.integration
@pytest.mark.parametrize("profile", ["min", "nuitka-min"])
def test_the_second_app_builds_and_passes_its_own_scenarios(ticker_builds, profile):
    project, results = ticker_builds
    result = results[profile]
    assert result.ok, f"{profile}: {result.error}"
    manifest = json.loads((result.dist_dir / "manifest.json").read_text())
    checks = {c["name"]: c["passed"] for c in manifest["smoke"]["checks"]}
    # the ticker's own scenarios, and nothing of the MQTT app's
    assert checks == {"ticker version": True, "tick writes-lines": True, "tick rejects-a-zero-count": True,
                      "serve serves-until-sigterm": True}
    assert manifest["app"]["entry"] == "ticker.main:main" and manifest["executables"] == ["ticker"]
    assert sorted(manifest["commands"]) == ["serve", "tick"]
    assert manifest["device_checks"] == [{"label": "ticker version", "argv": ["ticker", "--version"], "exit": 0,
                                          "output": ["^ticker 1\\.0$"]}]
    # the link runs the command, as the scenarios did
    out = project.work_root / f"{profile}-ticks.txt"
    ran = subprocess.run([str(result.dist_dir / "tick"), "--out", str(out), "--count", "2"], capture_output=True,
                         text=True, timeout=60)
    assert ran.returncode == 0 and ran.stdout.strip() == "done 2" and len(out.read_text().splitlines()) == 2


@pytest.mark.integration
def test_the_second_apps_min_is_trimmed_to_what_its_scenarios_load(ticker_builds):
    project, results = ticker_builds
    trace = json.loads((project.work_root / "min" / "trace" / "trace.json").read_text())
    assert "asyncio" in trace["commands"]["serve"] and "ticker.serve" in trace["scenarios"]["serve serves-until-sigterm"]
    report = json.loads((project.reports_root / "min" / "report.json").read_text())
    assert report["total_stored"] == results["min"].total_bytes
    # in the freezer's import graph of asyncio (tarfile, email, http through its imports) but never
    # loaded by a scenario: left out
    bundled = {row["module"].split(".")[0] for row in report["rows"]}
    assert {"asyncio", "ticker"} <= bundled and not {"tarfile", "email", "http"} & bundled
    # what each command loads: serve alone loads the asyncio server parts, tick its file writer
    costs = {c["command"]: c for c in report["commands"]}
    assert set(costs) == {"ticker", "tick", "serve"} and costs["serve"]["own"] > 0


def test_a_broken_entry_point_is_one_line_and_builds_nothing(tmp_path):
    app = tmp_path / "app"
    (app / "ticker").mkdir(parents=True)
    text = (TICKER / "pyproject.toml").read_text().replace('entry = "ticker.main:main"', 'entry = "ticker.mian:main"')
    (app / "pyproject.toml").write_text(text)
    (app / "ticker" / "__init__.py").write_text("")
    ran = subprocess.run([sys.executable, str(ROOT / "build.py"), "--project", str(app), "--profile", "min"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert ran.returncode == 2, ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and "tool.slimfreeze.app.entry = 'ticker.mian:main': ModuleNotFoundError" in lines[0]
    assert not (app / "dist").exists() and not (app / "work").exists()
