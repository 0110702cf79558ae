"""The manifest's git commit: a git that hangs or fails costs the build nothing but the field."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from build.manifest import git_commit
from processes import left_running


def fake_git(folder: Path, script: str) -> dict[str, str]:
    folder.mkdir()
    git = folder / "git"
    git.write_text(f"#!/bin/sh\n{script}\n")
    git.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}:{os.environ['PATH']}"}


def test_a_hanging_git_status_gives_no_commit_and_leaves_nothing_running(tmp_path: Path, token: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # rev-parse answers; status hangs (in a child, as git's helpers would): the second call used to
    # be outside the try, and its timeout ended every profile's build.
    env = fake_git(tmp_path / "bin", f'case "$1" in rev-parse) echo abc123;; *) sh -c "sleep 300; :" {token} & wait;; esac')
    monkeypatch.setenv("PATH", env["PATH"])
    assert git_commit(tmp_path, timeout=1) is None
    assert left_running(token) == []


def test_git_missing_or_failing_gives_no_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert git_commit(tmp_path) is None
    monkeypatch.setenv("PATH", fake_git(tmp_path / "bin", "exit 128")["PATH"])
    assert git_commit(tmp_path) is None


def test_this_checkout_gives_its_head() -> None:
    root = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
    assert git_commit(root).removesuffix("-dirty") == head.stdout.strip()
