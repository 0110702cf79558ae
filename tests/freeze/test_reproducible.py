"""Reproducible builds (issue 19): the same commit, tools and runtime give the same bytes whatever
the checkout path, umask or clock.

The integration test builds `min` and `flash-min` a second time in a clone of this checkout at
another path, under umask 077 and another clock reading, and compares every file byte for byte
with the session's builds. When they differ, diffoscope (Debian) names the place: a onefile is
first unpacked with PyInstaller's own archive reader, so the message names the entry inside it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from build.freeze.reproducible import Inputs, normalise_modes, source_date_epoch

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ("min", "flash-min")
DIFFOSCOPE_CHARS = 6000


# --- pure parts and small I/O -------------------------------------------------------------------

def test_normalised_modes_do_not_depend_on_the_umask(tmp_path: Path) -> None:
    trees = []
    for umask in (0o022, 0o077):
        old = os.umask(umask)
        try:
            tree = tmp_path / f"u{umask:o}"
            (tree / "lib").mkdir(parents=True)
            (tree / "lib" / "data").write_bytes(b"x")
            (tree / "exe").write_bytes(b"#!/bin/sh\n")
            (tree / "exe").chmod(0o700)
            os.symlink("exe", tree / "cmd")
        finally:
            os.umask(old)
        normalise_modes(tree)
        trees.append({p.relative_to(tree).as_posix(): stat.S_IMODE(p.lstat().st_mode)
                      for p in [tree, *tree.rglob("*")] if not p.is_symlink()})
    assert trees[0] == trees[1] == {".": 0o755, "lib": 0o755, "lib/data": 0o644, "exe": 0o755}


def test_source_date_epoch_is_the_commits_time_unless_given(tmp_path: Path) -> None:
    repo, plain = tmp_path / "repo", tmp_path / "plain"
    plain.mkdir()
    env = {**os.environ, "GIT_AUTHOR_DATE": "@1600000000 +0000", "GIT_COMMITTER_DATE": "@1600000123 +0000"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "f").write_text("x")
    for argv in (["add", "f"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"]):
        subprocess.run(["git", *argv], cwd=repo, env=env, check=True)
    assert source_date_epoch(repo, {}) == 1600000123  # the committer's time, not the author's or now
    assert source_date_epoch(repo, {"SOURCE_DATE_EPOCH": "42"}) == 42
    assert source_date_epoch(plain, {}) == 0  # no repository: still fixed
    assert Inputs(source_date_epoch=7).env() == {"PYTHONHASHSEED": "0", "SOURCE_DATE_EPOCH": "7"}


# --- two checkouts ------------------------------------------------------------------------------

def _files(folder: Path) -> dict[str, bytes]:
    """Every regular file of a dist folder but its manifest (which records the build's time)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.name != "manifest.json"}


def _unpack_onefile(exe: Path, out: Path) -> bool:
    """A PyInstaller onefile's entries as files (PYZ members too), so diffoscope can name one."""
    from PyInstaller.archive.readers import CArchiveReader, ZlibArchiveReader

    try:
        archive = CArchiveReader(str(exe))
    except Exception:  # not a PyInstaller executable: compare it as it is
        return False
    out.mkdir(parents=True)
    for name in archive.toc:
        data = archive.extract(name)
        if data is None:
            continue
        path = out / name.replace("/", "%")
        path.write_bytes(data)
        if archive.toc[name][-1] == "z":  # the PYZ: one file per module
            members = out / f"{path.name}.members"
            members.mkdir()
            pyz = ZlibArchiveReader(str(path))
            for member in pyz.toc:
                (members / member).write_bytes(pyz.extract(member, raw=True))
    return True


def _explain(a: Path, b: Path, work: Path) -> str:
    """diffoscope's account of how two files differ (unpacked first when they are onefiles)."""
    tool = shutil.which("diffoscope")
    if tool is None:
        return "(diffoscope is not installed: run scripts/install.sh to see where they differ)"
    left, right = work / "a", work / "b"
    if _unpack_onefile(a, left) and _unpack_onefile(b, right):
        a, b = left, right
    ran = subprocess.run([tool, "--no-progress", "--exclude-directory-metadata=yes", "--text", "-", str(a), str(b)],
                         capture_output=True, text=True, timeout=900)
    return (ran.stdout or ran.stderr)[:DIFFOSCOPE_CHARS]


@pytest.fixture(scope="session")
def second_checkout(tmp_path_factory: pytest.TempPathFactory, built) -> Path:
    """The session's commit (with any uncommitted change to tracked files) cloned at another path,
    `min` and `flash-min` built there under umask 077 with the first builds' recorded inputs."""
    first = json.loads((built("min").dist_dir / "manifest.json").read_text())["reproducible"]
    clone = tmp_path_factory.mktemp("second checkout with another path") / "slimfreeze"
    # `git stash create` records the working tree as a commit without touching it (empty when clean).
    snapshot = subprocess.run(["git", "stash", "create"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(clone)], check=True)
    if snapshot:
        subprocess.run(["git", "fetch", "-q", str(ROOT), snapshot], cwd=clone, check=True)
    subprocess.run(["git", "checkout", "-q", snapshot or "HEAD"], cwd=clone, check=True)
    # The same compiled runtime: it is an input of the build, like the tools.
    (clone / "work").mkdir()
    (clone / "work" / ".cache").symlink_to(ROOT / "work" / ".cache")
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(first["source_date_epoch"]), "TZ": "Pacific/Kiritimati"}
    argv = [sys.executable, "build.py", *(arg for p in PROFILES for arg in ("--profile", p))]
    ran = subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, timeout=3600,
                         preexec_fn=lambda: os.umask(0o077))
    assert ran.returncode == 0, f"the second build failed:\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    return clone


@pytest.mark.integration
@pytest.mark.parametrize("profile", PROFILES)
def test_two_checkouts_build_the_same_bytes(profile: str, built, second_checkout: Path, tmp_path: Path) -> None:
    first_dir = built(profile).dist_dir
    second_dir = second_checkout / "dist" / profile
    assert first_dir.resolve().parent != second_dir.resolve().parent
    first, second = _files(first_dir), _files(second_dir)
    assert sorted(first) == sorted(second)
    for name in first:
        if first[name] != second[name]:
            pytest.fail(f"{profile}: {name} differs between {first_dir} and {second_dir}:\n"
                        + _explain(first_dir / name, second_dir / name, tmp_path), pytrace=False)
    recorded = [json.loads((d / "manifest.json").read_text())["reproducible"] for d in (first_dir, second_dir)]
    assert recorded[0] == recorded[1] and recorded[0]["python_hash_seed"] == "0"
