"""Real builds of the shipped profiles: they work, they are as small as promised, relative to each other."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from build.application import load_application
from build.freeze.smoke import plan
from build.manifest import MANIFEST_NAME, SCHEMA, sha256_of

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration
APP = load_application(ROOT / "pyproject.toml")
COMMANDS = list(APP.command_names)  # what the app declares, in its order


def declared_checks(*, tls: bool, multicall: bool) -> set[str]:
    """The labels of every scenario a build of all the commands runs (build.freeze.smoke.plan)."""
    return {label for label, _, _ in plan(APP, COMMANDS, tls=tls, multicall=multicall)}


def manifest_of(result) -> dict:
    return json.loads((result.dist_dir / MANIFEST_NAME).read_text())


def check_manifest(result, *, machine_paths: tuple[str, ...]) -> dict:
    manifest = manifest_of(result)
    assert manifest["schema"] == SCHEMA and manifest["profile"] == result.profile
    assert manifest["smoke"]["passed"] is True
    assert manifest["total_bytes"] == result.total_bytes == sum(f["size"] for f in manifest["files"])
    for entry in manifest["files"]:
        path = result.dist_dir / entry["path"]
        assert path.stat().st_size == entry["size"] and sha256_of(path) == entry["sha256"]
    on_disk = sum(p.stat().st_size for p in result.dist_dir.rglob("*")
                  if p.is_file() and not p.is_symlink() and p.name != MANIFEST_NAME
                  and p.name != (manifest["image"] or {}).get("path"))
    assert on_disk == manifest["total_bytes"]
    text = json.dumps(manifest)
    for path in machine_paths:  # nothing about the build machine's folders
        assert path not in text
    assert manifest["python"].startswith("3.") and manifest["machine"] and manifest["tools"]
    assert manifest["resolved_profile"]["name"] == result.profile
    return manifest


def run(path: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(path), *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_min_is_a_working_multicall_onefile_within_budget(built, tmp_path):
    result = built("min")
    manifest = check_manifest(result, machine_paths=(str(ROOT), str(tmp_path.parent.parent), "/root/"))
    assert manifest["executables"] == ["slimfreeze"] and manifest["layout"] == "onefile"
    assert sorted(link["path"] for link in manifest["links"]) == sorted(COMMANDS)
    assert all(link["target"] == "slimfreeze" for link in manifest["links"])
    checks = {c["name"]: c["passed"] for c in manifest["smoke"]["checks"]}
    assert checks == dict.fromkeys(declared_checks(tls=False, multicall=True), True)
    assert {"telemetry tls-refused", "store stores-and-forwards", "run workers", "slimfreeze help"} <= set(checks)
    assert result.total_bytes <= 3 * 1024 * 1024
    assert (result.dist_dir / "slimfreeze").stat().st_size == result.total_bytes  # one file


def test_min_runs_away_from_the_source_tree(built, tmp_path):
    """The artifact is self-contained: copied elsewhere, through a link named after a command."""
    copy = tmp_path / "device"
    shutil.copytree(built("min").dist_dir, copy, symlinks=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    hello = subprocess.run([str(copy / "hello")], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert hello.returncode == 0 and "Hello from slimfreeze" in hello.stdout
    listing = subprocess.run([str(copy / "slimfreeze"), "--help"], capture_output=True, text=True, timeout=60,
                             cwd=tmp_path, env=env)
    assert listing.returncode == 0
    for command in COMMANDS:
        assert command in listing.stdout


def test_min_refuses_tls_clearly(built, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not used\n")
    out = run(built("min").dist_dir / "telemetry", "--tls-ca", str(ca), "--count", "1", "--port", "1")
    assert out.returncode != 0
    assert "TLS is not available in this build" in out.stderr
    assert "Traceback" not in out.stderr


def test_min_tls_verifies_tls_and_is_larger_than_min(built):
    min_tls, min_ = built("min-tls"), built("min")
    manifest = check_manifest(min_tls, machine_paths=(str(ROOT),))
    checks = {c["name"]: c["passed"] for c in manifest["smoke"]["checks"]}
    assert checks == dict.fromkeys(declared_checks(tls=True, multicall=True), True) and checks["telemetry tls"]
    assert min_.total_bytes < min_tls.total_bytes


def test_default_is_the_largest_onefile(built):
    default, min_tls, min_ = built("default"), built("min-tls"), built("min")
    check_manifest(default, machine_paths=(str(ROOT),))
    assert min_.total_bytes < min_tls.total_bytes < default.total_bytes


def test_onedir_min_shares_one_runtime_between_per_command_executables(built):
    result = built("onedir-min")
    manifest = check_manifest(result, machine_paths=(str(ROOT),))
    assert manifest["executables"] == COMMANDS and manifest["links"] == []
    top = sorted(p.name for p in result.dist_dir.iterdir() if p.name != MANIFEST_NAME)
    assert top == sorted([*COMMANDS, "_internal"])
    runtime = [f for f in manifest["files"] if f["path"].startswith("_internal/")]
    assert any(f["path"].startswith("_internal/libpython3") for f in runtime)
    # each executable is small: the runtime is shared, not repeated
    for command in COMMANDS:
        assert (result.dist_dir / command).stat().st_size < sum(f["size"] for f in runtime) / 4


def test_nuitka_min_works(built):
    result = built("nuitka-min")
    manifest = check_manifest(result, machine_paths=(str(ROOT),))
    assert manifest["backend"] == "nuitka" and "nuitka" in manifest["tools"]
    assert sorted(link["path"] for link in manifest["links"]) == sorted(COMMANDS)
    hello = run(result.dist_dir / "hello")
    assert hello.returncode == 0 and "Hello from slimfreeze" in hello.stdout


def test_failed_builds_do_not_stop_the_others_and_leave_no_artifact(tmp_path):
    """One invocation, three profiles: a freezer error, an artifact that does not work, a good one."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(ROOT / "app", project / "app", ignore=shutil.ignore_patterns("__pycache__"))
    text = (ROOT / "pyproject.toml").read_text()
    app_tables = text[text.index("[tool.slimfreeze.app]"):text.index("[tool.slimfreeze.profiles.")]
    (project / "pyproject.toml").write_text(app_tables + """
[tool.slimfreeze.profiles.bad-flag]
commands = ["hello"]
pyinstaller_args = ["--no-such-pyinstaller-flag"]

[tool.slimfreeze.profiles.broken]
description = "select left out: paho-mqtt cannot import, so the smoke test must fail it"
commands = ["hello", "heartbeat"]
exclude = ["select"]
strip = true

[tool.slimfreeze.profiles.good]
commands = ["hello"]
strip = true
""")
    out = subprocess.run([sys.executable, str(ROOT / "build.py"), "--project", str(project), "--profile", "bad-flag",
                          "--profile", "broken", "--profile", "good"],
                         capture_output=True, text=True, timeout=900, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 1, out.stderr
    # the broken artifact's own traceback is shown; slimfreeze itself must not crash
    assert not re.search(r'File ".*/build/[a-z_/]+\.py"', out.stderr), out.stderr
    assert "profile 'bad-flag' failed" in out.stderr and "--no-such-pyinstaller-flag" in out.stderr
    assert "profile 'broken' failed: smoke test failed" in out.stderr
    assert "heartbeat" in out.stderr
    summary = out.stderr[out.stderr.index("build summary"):]
    assert summary.count("FAILED") == 2 and " ok " in summary
    broken_row = next(line for line in summary.splitlines() if " broken " in line)
    assert "failed" in broken_row  # its smoke result is reported, as are its bytes
    assert re.search(r"\d{1,3}(,\d{3})+", broken_row)
    assert not (project / "dist" / "bad-flag").exists()
    assert not (project / "dist" / "broken").exists()
    good = project / "dist" / "good"
    assert (good / MANIFEST_NAME).is_file()
    assert run(good / "hello").returncode == 0


def test_min_bootloader_is_upx_packed_and_still_works(built):
    """UPX applied where it works here: the onefile's bootloader (its libraries stay unpacked)."""
    result = built("min")
    head = (result.dist_dir / "slimfreeze").read_bytes()[:4096]
    assert b"UPX!" in head
    assert manifest_of(result)["tools"]["upx"][0].isdigit()


def test_upx_packs_the_shared_runtime_of_onedir_and_it_still_works(built):
    packed, plain = built("onedir-min-upx"), built("onedir-min")
    manifest = check_manifest(packed, machine_paths=(str(ROOT),))
    assert manifest["smoke"]["passed"]
    libpython = next(f for f in manifest["files"] if f["path"].startswith("_internal/libpython3"))
    plain_libpython = next(f for f in manifest_of(plain)["files"] if f["path"] == libpython["path"])
    assert libpython["size"] < plain_libpython["size"] * 0.8
    assert packed.total_bytes < plain.total_bytes
