"""One strict manifest reader (build.manifest.parse_manifest) for flash, sweep and bloat: the same
damaged manifest is the same clear error in each, and names or paths that would lead outside the
artifact (a command with '/', a symlinked parent folder) are refused where they enter."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from build.analysis import analyse
from build.errors import ArtifactError, ConfigError
from build.flash.plan import load_dist
from build.manifest import SCHEMA, load_manifest, parse_manifest
from build.sweep.run import dist_program


def entry(folder: Path, rel: str) -> dict:
    data = (folder / rel).read_bytes()
    return {"path": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def make(folder: Path, **override: object) -> Path:
    (folder / "lib").mkdir(parents=True)
    (folder / "app").write_bytes(b"#!/bin/sh\necho hello\n")
    (folder / "app").chmod(0o755)
    (folder / "lib" / "data").write_bytes(b"x" * 100)
    os.symlink("app", folder / "hello")
    files = [entry(folder, "app"), entry(folder, "lib/data")]
    doc = {"schema": SCHEMA, "profile": folder.name, "machine": "x86_64", "commands": {"hello": "hello"},
           "executables": ["app"], "files": files, "links": [{"path": "hello", "target": "app"}], "image": None,
           "total_bytes": sum(f["size"] for f in files), "resolved_profile": {"name": folder.name},
           "build_seconds": 1.5}
    doc.update(override)
    (folder / "manifest.json").write_text(json.dumps(doc))
    return folder


def test_a_good_manifest_reads_the_same_for_each_command(tmp_path: Path) -> None:
    folder = make(tmp_path / "dist" / "p")
    checked = load_manifest(folder)
    assert checked.commands == (("hello", "hello"),) and checked.total_bytes == 121
    assert load_dist(tmp_path / "dist", "p").content.files == checked.files
    assert dist_program(folder, checked.doc).launch == {"hello": [str(folder / "hello")]}


@pytest.mark.parametrize("override, fragment", [
    ({"commands": {"a/b": "hello"}}, "command 'a/b' is not a plain name"),
    ({"commands": {"..": "hello"}}, "command '..' is not a plain name"),
    ({"commands": {"hello": "../hello"}}, "not a normalised relative path"),
    ({"profile": "../p"}, "'profile' must be a plain name"),
    ({"total_bytes": "big"}, "'total_bytes' must be a whole number"),
    ({"total_bytes": 5}, "not the sum of the files' sizes"),
    ({"build_seconds": -1}, "'build_seconds' must be"),
    ({"resolved_profile": []}, "'resolved_profile' must be an object"),
    ({"image": {"path": "i.img", "size": 1, "sha256": "0" * 64, "format": 7}}, "image: 'format' must be a string"),
])
def test_a_bad_manifest_is_the_same_error_for_flash_sweep_and_bloat(tmp_path: Path, override: dict,
                                                                    fragment: str) -> None:
    folder = make(tmp_path / "dist" / "p", **override)
    for read in (lambda: load_dist(tmp_path / "dist", "p"), lambda: load_manifest(folder), lambda: analyse(folder)):
        with pytest.raises(ArtifactError, match="manifest.json") as caught:
            read()
        assert fragment in str(caught.value)


def test_a_symlinked_parent_folder_is_refused_before_anything_is_read_through_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data").write_bytes(b"x" * 100)  # the same bytes: only the link gives it away
    folder = make(tmp_path / "dist" / "p")
    (folder / "lib" / "data").unlink()
    (folder / "lib").rmdir()
    os.symlink(outside, folder / "lib")
    with pytest.raises(ArtifactError, match="whose folder is a link out of"):
        load_dist(tmp_path / "dist", "p")


def test_a_profile_name_that_is_a_path_is_refused_before_the_dist_folder_is_read(tmp_path: Path) -> None:
    make(tmp_path / "dist" / "p")
    for name in ("../dist/p", "/tmp/x", ".", "", "-x"):
        with pytest.raises(ConfigError, match="not a plain name"):
            load_dist(tmp_path / "dist", name)


def test_parse_is_pure_and_names_its_origin() -> None:
    with pytest.raises(ArtifactError, match="^somewhere: 'commands' must be an object"):
        parse_manifest(json.dumps({"schema": SCHEMA, "profile": "p", "machine": "m", "files": [], "links": [],
                                   "executables": [], "commands": []}).encode(), origin="somewhere")


def test_bloat_does_not_read_through_a_symlinked_parent_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data").write_bytes(b"x" * 100)
    folder = make(tmp_path / "dist" / "p")
    (folder / "lib" / "data").unlink()
    (folder / "lib").rmdir()
    os.symlink(outside, folder / "lib")
    with pytest.raises(ArtifactError, match="whose folder is a link out of"):
        analyse(folder)
