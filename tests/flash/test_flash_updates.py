"""Trusted updates on a device root (issue 19): `flash --trusted-key` refuses unsigned, changed and
otherwise signed builds and patches; `flash --patch` updates the slot holding the patch's base and
switches only to bytes that match the new build. Every refusal is one line and leaves the device as
it was (compared by a snapshot of every file, link, mode and time under the device root).

The builds are synthetic (test_flash.make_dist: a shell stand-in for the executable, padding
files and an image) so these run in a second; patches are made by the real zstd.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from build.flash.install import FlashRequest, flash, verify
from build.flash.patch import flash_patch
from build.update.delta import PatchRefused, make_patch, read_patch
from build.update.signing import load_private_key, sign_build, sign_file
from test_flash import (  # noqa: F401 (device: a fixture)
    assert_one_line_error,
    cli,
    device,
    make_dist,
    quiet,
    running_version,
    slot_dir,
    snapshot,
)

IMAGE = 400_000
PROJECT = Path(__file__).resolve().parents[2]


def keypair(folder: Path, name: str) -> tuple[Path, Path]:
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)], check=True)
    return private, public


def rewrite_manifest(folder: Path, *, version: str | None = None) -> None:
    """Recompute the manifest's file entries after files changed (what a tamperer would do too)."""
    manifest_path = folder / "manifest.json"
    doc = json.loads(manifest_path.read_text())
    for entry in [*doc["files"], *([doc["image"]] if doc["image"] else [])]:
        data = (folder / entry["path"]).read_bytes()
        entry["size"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    doc["total_bytes"] = sum(e["size"] for e in doc["files"])
    if version:
        doc["created"] = f"2026-11-27T00:00:00Z {version}"
    manifest_path.write_text(json.dumps(doc, indent=2))


def next_release(old: Path, new_root: Path, old_version: str, version: str) -> Path:
    """`old` with a changed executable (it says `version`) and 64 changed bytes in its image: a
    small release, as a one-line change is."""
    new = new_root / old.name
    shutil.copytree(old, new, symlinks=True)
    script = new / "slimfreeze"
    script.write_text(script.read_text().replace(old_version, version))
    image = new / f"{old.name}.squashfs"
    data = bytearray(image.read_bytes())
    data[IMAGE // 2:IMAGE // 2 + 64] = bytes(64)
    image.write_bytes(bytes(data))
    rewrite_manifest(new, version=version)
    return new


@pytest.fixture
def releases(tmp_path: Path) -> dict[str, Path]:
    """v1 and v2 of profile `app` (v2 a small change of v1), v3 an unrelated build of `app`."""
    v1 = make_dist(tmp_path / "r1", "app", version="v1", image=IMAGE)
    rewrite_manifest(v1, version="v1")
    v2 = next_release(v1, tmp_path / "r2", "v1", "v2")
    v3 = make_dist(tmp_path / "r3", "app", version="v3", image=IMAGE)
    return {"v1": v1, "v2": v2, "v3": v3}


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path / "keys"
    folder.mkdir()
    return {name: keypair(folder, name) for name in ("release", "other")}


def flash_release(release: Path, device: Path, **options: object) -> None:
    flash(FlashRequest(dist_root=release.parent, profile=release.name, target=device, **options), say=quiet)


# --- signed builds --------------------------------------------------------------------------------

def test_a_signed_build_is_flashed_and_an_unsigned_or_otherwise_signed_one_is_refused(
        releases, keys, device: Path) -> None:
    v1, v2 = releases["v1"], releases["v2"]
    sign_build(v1, load_private_key(keys["release"][0]))
    assert (v1 / "manifest.json.sig").is_file() and (v1 / "app.squashfs.sig").is_file()
    trusted = keys["release"][1]
    proc = cli("--profile", "app", "--dist", v1.parent, "--target", device, "--trusted-key", trusted)
    assert proc.returncode == 0, proc.stderr
    assert "signed by the trusted key" in proc.stdout and running_version(device) == "v1"
    before = snapshot(device)
    assert_one_line_error(cli("--profile", "app", "--dist", v2.parent, "--target", device, "--trusted-key", trusted),
                          code=1, fragment="is not signed")
    sign_build(v2, load_private_key(keys["other"][0]))
    line = assert_one_line_error(cli("--profile", "app", "--dist", v2.parent, "--target", device,
                                     "--trusted-key", trusted), code=1, fragment="not by the trusted key")
    assert "nothing was written" in line
    assert snapshot(device) == before and running_version(device) == "v1"


def test_an_image_changed_after_signing_is_refused_even_with_a_manifest_to_match(
        releases, keys, device: Path) -> None:
    v2 = releases["v2"]
    sign_build(v2, load_private_key(keys["release"][0]))
    flash_release(releases["v1"], device)
    before = snapshot(device)
    image = v2 / "app.squashfs"
    data = bytearray(image.read_bytes())
    data[1000] ^= 0x01
    image.write_bytes(bytes(data))
    # The image alone changed: its sha256 no longer matches the (signed) manifest.
    assert_one_line_error(cli("--profile", "app", "--dist", v2.parent, "--target", device,
                              "--trusted-key", keys["release"][1]), code=1, fragment="does not match its manifest")
    # The tamperer fixes the manifest too: now the signature no longer matches the manifest.
    rewrite_manifest(v2)
    assert_one_line_error(cli("--profile", "app", "--dist", v2.parent, "--target", device,
                              "--trusted-key", keys["release"][1]), code=1, fragment="changed after it was signed")
    assert snapshot(device) == before and running_version(device) == "v1"
    # Without a trusted key the same build is flashed: the key is what makes the difference.
    flash_release(v2, device)
    assert running_version(device) == "v2"


# --- patches -------------------------------------------------------------------------------------

def test_a_patch_updates_the_slot_holding_its_base_and_carries_only_the_change(
        releases, device: Path, tmp_path: Path) -> None:
    v1, v2 = releases["v1"], releases["v2"]
    patch_file = make_patch(v1, v2, tmp_path / "v1-v2.patch", work=tmp_path)
    patch = read_patch(patch_file)
    assert patch.old.manifest_sha256 == hashlib.sha256((v1 / "manifest.json").read_bytes()).hexdigest()
    assert patch.new.image_sha256 == hashlib.sha256((v2 / "app.squashfs").read_bytes()).hexdigest()
    how = {e.path: e.how for e in patch.entries}
    # Only what changed is listed (the rest is copied on the device); the image goes as a delta.
    assert set(how) == {"slimfreeze", "app.squashfs"} and how["app.squashfs"] == "delta"
    new_bytes = sum(p.stat().st_size for p in v2.rglob("*") if p.is_file() and not p.is_symlink())
    assert patch_file.stat().st_size < new_bytes // 20  # a small change gives a small patch
    flash_release(v1, device)
    lines: list[str] = []
    flash_patch(patch_file, FlashRequest(dist_root=Path(), profile="", target=device), say=lines.append)
    assert running_version(device) == "v2"
    assert (slot_dir(device, "current") / "app.squashfs").read_bytes() == (v2 / "app.squashfs").read_bytes()
    assert (slot_dir(device, "current") / "manifest.json").read_bytes() == (v2 / "manifest.json").read_bytes()
    assert any("match app's sha256" in line for line in lines)
    verify(device, say=quiet)


def test_the_cli_applies_a_patch_to_previous_when_current_is_another_version(
        releases, device: Path, tmp_path: Path) -> None:
    patch_file = make_patch(releases["v1"], releases["v2"], tmp_path / "p", work=tmp_path)
    flash_release(releases["v1"], device)
    flash_release(releases["v3"], device)  # v1 is now previous
    proc = cli("--patch", patch_file, "--target", device)
    assert proc.returncode == 0, proc.stderr
    assert running_version(device) == "v2"


def test_a_device_without_the_base_gets_one_line_and_keeps_running(releases, device: Path, tmp_path: Path) -> None:
    patch_file = make_patch(releases["v1"], releases["v2"], tmp_path / "p", work=tmp_path)
    flash_release(releases["v3"], device)
    before = snapshot(device)
    line = assert_one_line_error(cli("--patch", patch_file, "--target", device), code=1,
                                 fragment="does not hold the patch's base")
    assert "flash the full build" in line and "nothing was written" in line
    assert snapshot(device) == before and running_version(device) == "v3"


@pytest.mark.parametrize("damage", ["truncated", "blob byte", "header"])
def test_a_damaged_patch_is_refused_and_the_device_keeps_running(
        releases, device: Path, tmp_path: Path, damage: str) -> None:
    patch_file = make_patch(releases["v1"], releases["v2"], tmp_path / "p", work=tmp_path)
    data = bytearray(patch_file.read_bytes())
    if damage == "truncated":  # cut in the middle of the last member (not in the tar's end padding)
        with tarfile.open(patch_file) as tar:
            last = tar.getmembers()[-1]
        data = data[: last.offset_data + last.size // 2]
    elif damage == "blob byte":  # inside the image's delta: zstd's checksum or NEW's sha256 catches it
        image_blob = next(e.blob for e in read_patch(patch_file).entries if e.path == "app.squashfs")
        with tarfile.open(patch_file) as tar:
            member = tar.getmember(image_blob)
        data[member.offset_data + member.size // 2] ^= 0xFF
    else:
        at = data.find(b'"how": "delta"')
        data[at + 9:at + 14] = b"full "
    patch_file.write_bytes(bytes(data))
    flash_release(releases["v1"], device)
    before = snapshot(device)
    assert_one_line_error(cli("--patch", patch_file, "--target", device), code=1, fragment="nothing was written")
    assert snapshot(device) == before and running_version(device) == "v1"


def test_a_signed_patch_is_refused_with_another_key_or_once_changed(
        releases, keys, device: Path, tmp_path: Path) -> None:
    patch_file = make_patch(releases["v1"], releases["v2"], tmp_path / "p", work=tmp_path)
    flash_release(releases["v1"], device)
    before = snapshot(device)
    trusted = keys["release"][1]
    assert_one_line_error(cli("--patch", patch_file, "--target", device, "--trusted-key", trusted),
                          code=1, fragment="is not signed")
    sign_file(patch_file, load_private_key(keys["other"][0]))
    assert_one_line_error(cli("--patch", patch_file, "--target", device, "--trusted-key", trusted),
                          code=1, fragment="not by the trusted key")
    sign_file(patch_file, load_private_key(keys["release"][0]))
    data = bytearray(patch_file.read_bytes())
    data[-700] ^= 0x01
    patch_file.write_bytes(bytes(data))
    assert_one_line_error(cli("--patch", patch_file, "--target", device, "--trusted-key", trusted),
                          code=1, fragment="changed after it was signed")
    assert snapshot(device) == before and running_version(device) == "v1"


def test_build_py_delta_writes_a_signed_patch_naming_both_ends(releases, keys, tmp_path: Path) -> None:
    out = tmp_path / "out.patch"
    reports = tmp_path / "size_reports"
    (reports / "app").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "build.py", "delta",
                           str(releases["v1"]), str(releases["v2"]), "-o", str(out),
                           "--signing-key", str(keys["release"][0]), "--reports", str(reports)],
                          cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and (tmp_path / "out.patch.sig").is_file()
    assert "signed by key" in proc.stderr + proc.stdout
    # size_reports/app/: what the patch carries, by file, the largest share first.
    [record] = (reports / "app").glob("patch-*.json")
    files = json.loads(record.read_text())["files"]
    how = {f["path"]: (f["how"], f["patch_bytes"]) for f in files}
    assert how["app.squashfs"][0] == "delta" and how["app.squashfs"][1] > 0
    assert [f["patch_bytes"] for f in files] == sorted((f["patch_bytes"] for f in files), reverse=True)
    assert {f["path"] for f in files if f["how"] == "unchanged"} == {"_internal/base_library.zip",
                                                                     "_internal/lib/libdata.so"}
    assert 0 < sum(f["patch_bytes"] for f in files) < out.stat().st_size
    same = subprocess.run([sys.executable, "build.py", "delta", str(releases["v1"]),
                           str(releases["v1"]), "-o", str(tmp_path / "same.patch")],
                          cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert same.returncode == 2 and "same build" in same.stderr and not (tmp_path / "same.patch").exists()
