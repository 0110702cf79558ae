"""build.paths.publish_tree: dist/<profile> (and size_reports/<profile>) is never missing while a
new build replaces it, and a publish cut short leaves the old or the new version, nothing else."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from build import paths
from build.paths import UnsafeDelete, publish_tree

# Watches a folder in a tight loop; prints how often it was missing, and how often it looked.
WATCHER = """
import os, sys, time
target, stop = sys.argv[1], sys.argv[2]
missing = looks = 0
while not os.path.exists(stop):
    looks += 1
    if not os.path.isfile(os.path.join(target, "manifest.json")):
        missing += 1
print(missing, looks)
"""


def staged(root: Path, version: int) -> Path:
    stage = root / "work" / f"stage-{version}"
    (stage / "sub").mkdir(parents=True)
    (stage / "manifest.json").write_text(f'{{"version": {version}}}')
    (stage / "sub" / "file").write_bytes(b"x" * version)
    return stage


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, tuple[Path, ...]]:
    roots = (tmp_path / "work", tmp_path / "dist")
    for root in roots:
        root.mkdir()
    return tmp_path, roots


def test_a_first_publish_moves_the_stage_into_place(project) -> None:
    root, roots = project
    stage = staged(root, 1)
    publish_tree(stage, root / "dist" / "min", roots)
    assert (root / "dist" / "min" / "manifest.json").read_text() == '{"version": 1}'
    assert not stage.exists()
    assert sorted(p.name for p in (root / "dist").iterdir()) == ["min"]


def test_a_new_version_replaces_the_old_one_and_leaves_nothing_beside_it(project) -> None:
    root, roots = project
    target = root / "dist" / "min"
    publish_tree(staged(root, 1), target, roots)
    publish_tree(staged(root, 2), target, roots)
    assert (target / "manifest.json").read_text() == '{"version": 2}'
    assert (target / "sub" / "file").read_bytes() == b"xx"
    assert sorted(p.name for p in (root / "dist").iterdir()) == ["min"]


def test_the_folder_is_never_missing_while_versions_replace_each_other(project) -> None:
    root, roots = project
    target = root / "dist" / "min"
    publish_tree(staged(root, 1), target, roots)
    stop = root / "stop"
    watcher = subprocess.Popen([sys.executable, "-c", WATCHER, str(target), str(stop)], stdout=subprocess.PIPE,
                               text=True)
    try:
        time.sleep(0.3)  # let it start looking
        for version in range(2, 200):
            publish_tree(staged(root, version), target, roots)
    finally:
        stop.touch()
        out, _ = watcher.communicate(timeout=30)
    missing, looks = map(int, out.split())
    assert looks > 1000, "the watcher hardly looked; the test proves nothing"
    assert missing == 0, f"dist/min was missing {missing} times out of {looks}"
    assert (target / "manifest.json").read_text() == '{"version": 199}'


def test_where_the_exchange_is_unavailable_renames_still_publish(project, monkeypatch) -> None:
    root, roots = project
    target = root / "dist" / "min"
    publish_tree(staged(root, 1), target, roots)
    monkeypatch.setattr(paths, "_exchange", lambda a, b: False)
    publish_tree(staged(root, 2), target, roots)
    assert (target / "manifest.json").read_text() == '{"version": 2}'
    assert sorted(p.name for p in (root / "dist").iterdir()) == ["min"]


def test_leftovers_of_a_publish_cut_short_are_removed_by_the_next(project) -> None:
    root, roots = project
    target = root / "dist" / "min"
    publish_tree(staged(root, 1), target, roots)
    (root / "dist" / ".min.incoming").mkdir()  # killed after moving the stage beside it
    (root / "dist" / ".min.outgoing").mkdir()
    publish_tree(staged(root, 2), target, roots)
    assert sorted(p.name for p in (root / "dist").iterdir()) == ["min"]


def test_a_target_outside_the_output_folders_is_refused_before_anything_moves(project) -> None:
    root, roots = project
    stage = staged(root, 1)
    with pytest.raises(UnsafeDelete):
        publish_tree(stage, root / "elsewhere" / "min", roots)
    assert stage.is_dir() and not (root / "elsewhere").exists()
