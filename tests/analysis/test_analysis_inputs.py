"""Bad input gets one clear line and a non-zero exit, never a traceback; dist folders with a
manifest are analysed exactly as the manifest lists them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_archives import dist_with_manifest, make_archive

from build import proc
from build.analysis import analyse
from build.report import command as bloat

ROOT = Path(__file__).resolve().parents[2]
LS = Path(shutil.which("ls") or "/bin/ls")


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], rc: int = 1) -> str:
    code = bloat.main(argv)
    out, err = capsys.readouterr()
    assert code == rc, (out, err)
    assert out == ""
    assert err.startswith("slimfreeze: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_a_program_that_is_not_frozen(capsys: pytest.CaptureFixture[str]) -> None:
    assert "is not a frozen artifact" in _fails([str(LS)], capsys)


def test_a_upx_packed_program(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    packed = tmp_path / "packed"
    shutil.copy(LS, packed)
    subprocess.run([proc.require_tool("upx"), "-q", str(packed)], check=True, capture_output=True, timeout=120)
    assert "UPX-packed and has no frozen archive at its end" in _fails([str(packed)], capsys)


def test_a_text_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    assert "is not a frozen artifact" in _fails([str(tmp_path / "notes.txt")], capsys)


def test_an_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert "is empty" in _fails([str(tmp_path / "empty")], capsys)


def test_a_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no such file or folder" in _fails([str(tmp_path / "nope")], capsys)


def test_an_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "dist").mkdir()
    assert "is empty" in _fails([str(tmp_path / "dist")], capsys)


def test_a_folder_without_a_frozen_executable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "d").mkdir()
    shutil.copy(LS, tmp_path / "d" / "ls")
    (tmp_path / "d" / "readme").write_text("x")
    assert "holds no frozen executable" in _fails([str(tmp_path / "d")], capsys)


def test_a_report_of_unknown_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r.json").write_text(json.dumps({"schema": "slimfreeze.size-report/99", "rows": []}))
    assert "unknown report schema 'slimfreeze.size-report/99'" in _fails([str(tmp_path / "r.json")], capsys)
    assert "unknown report schema" in _fails(["--diff", str(tmp_path / "r.json"), str(tmp_path / "r.json")], capsys)


def test_a_broken_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r.json").write_text('{"schema": ')
    assert "invalid JSON" in _fails([str(tmp_path / "r.json")], capsys)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert "-n must be" in _fails([str(LS), "-n", "-1"], capsys, rc=2)
    assert "not a valid regular expression" in _fails([str(LS), "--filter", "("], capsys, rc=2)
    assert "needs an artifact" in _fails([], capsys, rc=2)


@pytest.mark.parametrize("entry", ["build.report.command", "build.py"])
def test_no_traceback_in_a_real_process(entry: str) -> None:
    argv = [sys.executable, "-m", "build.report.command"] if entry == "build.report.command" else [sys.executable, "build.py", "bloat"]
    proc = subprocess.run([*argv, str(LS)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        f"slimfreeze: error: {LS.name} is not a frozen artifact: no PyInstaller archive, Nuitka onefile payload or "
        f"Nuitka-compiled program found in it"]


# --- dist folders with manifest.json ----------------------------------------------------------

@pytest.fixture(scope="module")
def onefile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_archive(tmp_path_factory.mktemp("of")).path


def test_manifest_lists_exactly_what_is_analysed(tmp_path: Path, onefile: Path) -> None:
    dist = dist_with_manifest(tmp_path, onefile)
    report = analyse(dist)
    assert report.total_stored == onefile.stat().st_size  # not the stray file, not the image
    assert not any(r.name.startswith(("stray", "min.squashfs", "manifest")) for r in report.rows)
    assert [(link.path, link.target) for link in report.links] == [("telemetry", "slimfreeze")]
    assert report.manifest is not None and report.manifest["profile"] == "min"
    assert report.artifact == "min"
    # A slimfreeze build: its generated entry and stand-ins are ours.
    assert {r.distribution for r in report.rows if r.module.startswith("_slimfreeze")} == {"slimfreeze"}


def test_manifest_that_does_not_match_the_folder(tmp_path: Path, onefile: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    dist = dist_with_manifest(tmp_path, onefile)
    with (dist / "slimfreeze").open("ab") as stream:
        stream.write(b"changed")
    assert "rebuild the profile" in _fails([str(dist)], capsys)
    (dist / "slimfreeze").unlink()
    assert "which is missing" in _fails([str(dist)], capsys)
    (dist / "manifest.json").write_text(json.dumps({"schema": "other/2"}))
    assert "unknown manifest schema" in _fails([str(dist)], capsys)


def test_profile_name_means_its_dist_folder(tmp_path: Path, onefile: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dist").mkdir()
    dist_with_manifest(tmp_path / "dist", onefile)
    monkeypatch.chdir(tmp_path)
    assert bloat.main(["min", "-n", "1"]) == 0
    assert "Total: " in capsys.readouterr().out
