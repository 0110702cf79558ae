"""Names that become paths are checked where they enter; nothing outside work/, dist/ and
size_reports/ is ever deleted. The first test is the data-loss bug: a profile named '..'."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from build.errors import ConfigError
from build.paths import UnsafeDelete, check_deletable, is_plain_name, plain_name, remove_tree

ROOT = Path(__file__).resolve().parent.parent
HOSTILE_NAMES = ["..", ".", "/tmp/x", "a/b", "-x", "", "a\nb", "x" * 200]


def _copy_project(dest: Path) -> Path:
    for name in ("build.py", "pyproject.toml"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("build", "app"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_profile_whose_name_is_a_path_is_refused_and_the_project_stays_intact(tmp_path, name):
    project = tmp_path / "project"
    project.mkdir()
    _copy_project(project)
    (project / "work").mkdir()
    (project / "work" / "keep").write_text("cached")
    toml_key = '"' + name.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') + '"'
    with (project / "pyproject.toml").open("a", encoding="utf-8") as f:
        f.write(f'\n[tool.slimfreeze.profiles.{toml_key}]\ninherits = "min"\n')
    before = _snapshot(project)
    run = subprocess.run([sys.executable, "build.py", f"--profile={name}"], cwd=project, capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a plain name" in lines[0], run.stderr
    assert "tool.slimfreeze.profiles" in lines[0]
    after = {p for p in _snapshot(project) if "__pycache__" not in p}
    assert after == {p for p in before if "__pycache__" not in p}


@pytest.mark.parametrize("name", HOSTILE_NAMES + [None, 3])
def test_plain_name_refuses_what_is_not_one_path_component(name):
    assert not is_plain_name(name)
    with pytest.raises(ConfigError, match="somewhere"):
        plain_name(name, "somewhere")


@pytest.mark.parametrize("name", ["min", "flash-min-tls", "min_2", "v1.2", "_x", "A" * 128])
def test_plain_names_pass_unchanged(name):
    assert plain_name(name, "here") == name


def test_remove_tree_deletes_strictly_inside_its_roots(tmp_path):
    root = tmp_path / "work"
    (root / "a" / "b").mkdir(parents=True)
    (root / "file").write_text("x")
    remove_tree(root / "a", [root])
    remove_tree(root / "file", [root])
    assert list(root.iterdir()) == []
    remove_tree(root / "missing", [root])  # missing_ok by default
    with pytest.raises(FileNotFoundError):
        remove_tree(root / "missing", [root], missing_ok=False)


@pytest.mark.parametrize("relative", [".", "..", "../outside", "a/../..", ""])
def test_remove_tree_refuses_the_root_itself_and_anything_outside(tmp_path, relative):
    root = tmp_path / "work"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    with pytest.raises(UnsafeDelete):
        remove_tree(root / relative if relative else root, [root])
    assert root.is_dir() and (tmp_path / "outside").is_dir()


def test_remove_tree_follows_links_in_parents_but_deletes_a_link_itself(tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    precious = tmp_path / "precious"
    (precious / "inner").mkdir(parents=True)
    (root / "escape").symlink_to(precious)
    # A link inside the root is removed as a link; what it points to stays.
    remove_tree(root / "escape", [root])
    assert precious.is_dir() and not (root / "escape").exists()
    # A path that goes through a link to outside the root is refused.
    (root / "escape").symlink_to(precious)
    with pytest.raises(UnsafeDelete):
        check_deletable(root / "escape" / "inner", [root])
    assert (precious / "inner").is_dir()


def test_the_cache_is_never_a_profiles_work_folder(tmp_path):
    from build.project import Project

    (tmp_path / "pyproject.toml").write_text("")
    project = Project.at(tmp_path)
    assert project.cache_root.parent == project.work_root
    assert not is_plain_name(project.cache_root.name)  # so no profile can be named like it
    assert project.cache_root in project.output_roots


@pytest.mark.parametrize("option", ["dist", "work", "reports"])
def test_an_output_folder_that_is_a_file_is_refused_before_anything_runs(tmp_path, option):
    from build.project import Project

    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "a-file").write_text("precious")
    with pytest.raises(ConfigError, match=f"output folder {tmp_path / 'a-file'} is not a folder"):
        Project.at(tmp_path, **{option: tmp_path / "a-file"})
    assert (tmp_path / "a-file").read_text() == "precious"
    Project.at(tmp_path, **{option: tmp_path / "missing"})  # made when first written
