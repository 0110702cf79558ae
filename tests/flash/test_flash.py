"""Flashing to a device (issue 6).

Most tests use synthetic dist folders (a #!/bin/sh stand-in for a frozen multicall executable that
answers `--version` and `hello` with its version, padding files, a manifest per ARCHITECTURE.md)
and a plain folder standing for the device. The `integration` ones mount a small tmpfs as the
device (root needed: CI runs as root; elsewhere they skip with the reason) and flash the real
`min` build.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from build.errors import ArtifactError, ConfigError
from build.flash.arch import WrongArchitecture, device_architecture
from build.flash.install import FlashRequest, checks_for, flash, rollback, verify
from build.flash.device import (
    KILL_AT_ENV,
    CheckFailed,
    CorruptSlot,
    DeviceError,
    DeviceWriter,
    Layout,
    NoSpace,
    read_state,
)
from build.flash.plan import FileEntry, LinkEntry, Manifest, space_needed
from build.manifest import parse_manifest
from build.toolchain import host_architecture
from processes import without_dac_override

PROJECT = Path(__file__).resolve().parents[2]

ARTIFACT = """#!/bin/sh
# Stand-in for the frozen multicall executable: the command is argv[0]'s name or the first argument;
# every command answers --version except hello, which (like the real one) takes no arguments.
name=$(basename "$0")
if [ "$name" = slimfreeze ]; then name=$1; shift; fi
case "$name" in
  --version) echo "synthetic {version}"; exit 0;;
  hello) [ $# -eq 0 ] || {{ echo "hello: unexpected argument '$1'" >&2; exit 2; }}
         echo "hello from {version}"; exit {hello_rc};;
esac
if [ "$1" = --version ]; then echo "synthetic {version}"; exit 0; fi
echo "$name {version}"
"""

def make_dist(dist_root: Path, profile: str, *, version: str | None = None, pad: int = 300_000,
              hello_rc: int = 0, machine: str | None = None, image: int | None = None) -> Path:
    """Write dist_root/<profile>/ like a real build: files, command links, manifest.json."""
    version = version or profile
    out = dist_root / profile
    (out / "_internal" / "lib").mkdir(parents=True)
    executable = out / "slimfreeze"
    executable.write_text(ARTIFACT.format(version=version, hello_rc=hello_rc))
    executable.chmod(0o755)
    filler = hashlib.sha256(version.encode()).digest()
    (out / "_internal" / "base_library.zip").write_bytes((filler * (pad // 32 + 1))[:pad])
    (out / "_internal" / "lib" / "libdata.so").write_bytes((filler[::-1] * (pad // 96 + 1))[:pad // 3])
    links = {"hello": "slimfreeze", "telemetry": "slimfreeze"}
    for name, target in links.items():
        os.symlink(target, out / name)
    image_entry = None
    if image is not None:
        (out / f"{profile}.squashfs").write_bytes((filler * (image // 32 + 1))[:image])
        image_entry = {**_file_entry(out, f"{profile}.squashfs"), "compressor": "xz", "block_size": 1 << 20}
    files = [_file_entry(out, p) for p in sorted(["slimfreeze", "_internal/base_library.zip",
                                                  "_internal/lib/libdata.so"])]
    manifest = {
        "schema": "slimfreeze.manifest/1", "profile": profile, "resolved_profile": {"name": profile},
        "backend": "pyinstaller", "layout": "onedir", "multicall": True, "tools": {}, "python": "3.11.7",
        "platform": "linux", "machine": machine or platform.machine(),
        "commands": {name: name for name in links}, "executables": ["slimfreeze"], "files": files,
        # As the build records the app's `device = true` scenarios.
        "device_checks": [
            {"label": "slimfreeze version", "argv": ["slimfreeze", "--version"], "exit": 0, "output": ["^synthetic "]},
            {"label": "hello greets", "argv": ["hello"], "exit": 0, "output": ["^hello from "]},
            {"label": "telemetry version", "argv": ["telemetry", "--version"], "exit": 0, "output": []}],
        "links": [{"path": name, "target": target} for name, target in sorted(links.items())],
        "total_bytes": sum(f["size"] for f in files), "image": image_entry,
        "smoke": {"passed": True, "checks": []}, "build_seconds": 0.1, "git_commit": None,
        "created": "2026-11-26T03:00:00Z",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def _file_entry(root: Path, path: str) -> dict[str, object]:
    data = (root / path).read_bytes()
    return {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    for version in ("v1", "v2", "v3"):
        make_dist(root, version)
    return root


@pytest.fixture
def device(tmp_path: Path) -> Path:
    target = tmp_path / "device"
    target.mkdir()
    return target


def do_flash(dist: Path, profile: str, target: Path, **options: object) -> list[str]:
    lines: list[str] = []
    flash(FlashRequest(dist_root=dist, profile=profile, target=target, **options), say=lines.append)
    return lines


def quiet(_line: str) -> None:
    pass


def cli(*args: str | Path, env_extra: dict[str, str] | None = None,
        entry: tuple[str, ...] = ("-m", "build.flash.command")) -> subprocess.CompletedProcess[str]:
    """The flash sub-command in its own process: by default without loading the rest of the CLI
    (fast, for the many killed flashes); entry=("build.py",) is the user's command."""
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, *entry, "flash", *map(str, args)], cwd=PROJECT,
                          env=env, capture_output=True, text=True, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *, code: int, fragment: str) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("slimfreeze: error: "), proc.stderr
    assert fragment in lines[0]
    return lines[0]


def running_version(target: Path, command: str = "slimfreeze") -> str:
    """What `current` runs: `<device>/slimfreeze/current/<command> --version` -> v1, v2 ..."""
    proc = subprocess.run([target / "slimfreeze" / "current" / command, "--version"], capture_output=True,
                          text=True, timeout=30, check=True)
    return proc.stdout.split()[-1]


def slot_dir(target: Path, link: str) -> Path:
    return target / "slimfreeze" / os.readlink(target / "slimfreeze" / link)


def profile_of(target: Path, link: str) -> str:
    return json.loads((slot_dir(target, link) / "manifest.json").read_text())["profile"]


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything under root: links with their targets, folders, files with mode, content, mtime."""
    seen: dict[str, tuple[object, ...]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            info = path.lstat()
            if path.is_symlink():
                seen[str(path.relative_to(root))] = ("link", os.readlink(path))
            elif path.is_dir():
                seen[str(path.relative_to(root))] = ("dir", info.st_mode, info.st_mtime_ns)
            else:
                seen[str(path.relative_to(root))] = ("file", info.st_mode, info.st_mtime_ns,
                                                     hashlib.sha256(path.read_bytes()).hexdigest())
    return seen


def damage(path: Path) -> None:
    """Flip one byte in place, keeping the size: only the sha256 can tell."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# --- pure parts ---------------------------------------------------------------------------------

def test_space_needed_rounds_every_file_up_to_whole_blocks_and_adds_metadata() -> None:
    content = Manifest(doc={}, profile="p", machine="x86_64", target="x86_64", commands=(), executables=(),
                       image=None, files=(FileEntry(path="a", size=1, sha256="0" * 64),
                                          FileEntry(path="d/b", size=4096, sha256="0" * 64),
                                          FileEntry(path="d/e/c", size=4097, sha256="0" * 64)),
                       links=(LinkEntry(path="l", target="a"),))
    # data 1+1+2 blocks, manifest 1 block; metadata: folders d and d/e, one link, slot folder, 4 link names
    assert space_needed(content, manifest_size=10, block_size=4096) == (4 + 1) * 4096 + (2 + 1 + 1 + 4) * 4096
    bigger = space_needed(content, manifest_size=10, block_size=65536)
    assert bigger > space_needed(content, manifest_size=10, block_size=4096)


@pytest.mark.parametrize("field, value", [
    ("path", "../escape"), ("path", "/etc/passwd"), ("path", "a/../../b"), ("path", "./a"),
    ("path", "a//b"), ("path", "manifest.json"), ("target", "../../outside"), ("target", "/bin/sh"),
])
def test_manifest_paths_must_stay_inside_the_slot(field: str, value: str) -> None:
    doc = {"schema": "slimfreeze.manifest/1", "profile": "p", "machine": "x86_64", "commands": {},
           "executables": [], "image": None, "files": [{"path": "a", "size": 1, "sha256": "0" * 64}],
           "links": [{"path": "sub/l", "target": "../a"}]}
    if field == "path":
        doc["files"][0]["path"] = value
    else:
        doc["links"][0]["target"] = value
    with pytest.raises(ArtifactError, match="m.json"):
        parse_manifest(json.dumps(doc).encode(), origin="m.json")
    ok = dict(doc, files=[{"path": "a", "size": 1, "sha256": "0" * 64}], links=[{"path": "sub/l", "target": "../a"}])
    assert parse_manifest(json.dumps(ok).encode(), origin="m.json").links[0].target == "../a"


def test_manifest_with_another_schema_is_refused() -> None:
    with pytest.raises(ArtifactError, match="schema"):
        parse_manifest(b'{"schema": "slimfreeze.manifest/2"}', origin="m.json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        parse_manifest(b'{"schema": ', origin="m.json")


def test_the_checks_are_the_ones_the_app_declared_for_a_device(dist: Path) -> None:
    content = parse_manifest((dist / "v1" / "manifest.json").read_bytes(), origin="m")
    assert [(c.label, c.argv, c.exit, c.output) for c in checks_for(content)] == [
        ("slimfreeze version", ("slimfreeze", "--version"), 0, ("^synthetic ",)),
        ("hello greets", ("hello",), 0, ("^hello from ",)),
        ("telemetry version", ("telemetry", "--version"), 0, ())]


def test_a_declared_check_whose_output_does_not_match_switches_back(dist: Path, device: Path) -> None:
    do_flash(dist, "v1", device)
    manifest = json.loads((dist / "v2" / "manifest.json").read_text())
    manifest["device_checks"][1]["output"] = ["^goodbye"]
    (dist / "v2" / "manifest.json").write_text(json.dumps(manifest))
    ran = cli("--profile", "v2", "--target", device, "--dist", dist)
    line = assert_one_line_error(ran, code=1, fragment="`hello greets` run from the device printed 'hello from v2'")
    assert "does not match '^goodbye'" in line and "switched back" in line
    assert running_version(device) == "v1"


def test_a_device_check_that_runs_outside_the_artifact_is_refused(dist: Path) -> None:
    manifest = json.loads((dist / "v1" / "manifest.json").read_text())
    manifest["device_checks"][0]["argv"] = ["../../bin/sh", "-c", "true"]
    with pytest.raises(ArtifactError, match=r"device_checks\[0\]"):
        parse_manifest(json.dumps(manifest).encode(), origin="m")


# --- flashing a folder standing for a device ----------------------------------------------------

def test_flash_writes_a_slot_that_matches_the_build_and_runs_from_current(dist: Path, device: Path) -> None:
    lines = do_flash(dist, "v1", device)
    assert running_version(device) == "v1"
    assert running_version(device, "telemetry") == "v1"
    slot = slot_dir(device, "current")
    assert slot.parent == device / "slimfreeze" / "slots" and not slot.name.startswith(".")
    source = dist / "v1"
    for rel in ("slimfreeze", "_internal/base_library.zip", "_internal/lib/libdata.so", "manifest.json"):
        assert (slot / rel).read_bytes() == (source / rel).read_bytes()
        assert (slot / rel).stat().st_mode & 0o777 == (source / rel).stat().st_mode & 0o777
    assert os.readlink(slot / "telemetry") == "slimfreeze"
    assert not (device / "slimfreeze" / "previous").exists()
    assert os.listdir(device / "slimfreeze" / "slots") == [slot.name]
    assert any(line.startswith("flash: ran current/hello greets: hello from v1") for line in lines)
    assert any("match their sha256" in line for line in lines)


def test_each_flash_keeps_exactly_the_replaced_version_as_previous(dist: Path, device: Path) -> None:
    do_flash(dist, "v1", device)
    first = slot_dir(device, "current").name
    do_flash(dist, "v1", device)  # the same build again still gets its own slot
    second = slot_dir(device, "current").name
    assert second != first and slot_dir(device, "previous").name == first
    do_flash(dist, "v2", device)
    do_flash(dist, "v3", device)
    assert running_version(device) == "v3"
    assert profile_of(device, "previous") == "v2"
    state = read_state(Layout(device))
    assert sorted(state.slots) == sorted([state.current, state.previous]) and not state.leftovers


def test_rollback_restores_the_previous_version_and_can_go_forward_again(dist: Path, device: Path) -> None:
    do_flash(dist, "v1", device)
    do_flash(dist, "v2", device)
    v1_slot, v2_slot = slot_dir(device, "previous").name, slot_dir(device, "current").name
    proc = cli("--rollback", "--target", device)
    assert proc.returncode == 0, proc.stderr
    assert "hello from v1" in proc.stdout
    assert running_version(device) == "v1"
    assert (slot_dir(device, "current").name, slot_dir(device, "previous").name) == (v1_slot, v2_slot)
    assert rollback(device, say=quiet) == v2_slot
    assert running_version(device) == "v2"


def test_rollback_without_a_previous_version_is_refused(dist: Path, device: Path) -> None:
    assert_one_line_error(cli("--rollback", "--target", device), code=1, fragment="no previous version")
    do_flash(dist, "v1", device)
    before = snapshot(device)
    assert_one_line_error(cli("--rollback", "--target", device), code=1, fragment="no previous version")
    assert snapshot(device) == before


def test_dry_run_lists_the_writes_and_the_space_and_writes_nothing(dist: Path, device: Path) -> None:
    proc = cli("--profile", "v1", "--dist", dist, "--target", device, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(device) == []
    do_flash(dist, "v1", device)
    before = snapshot(device)
    proc = cli("--profile", "v2", "--dist", dist, "--target", device, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert snapshot(device) == before
    size = (dist / "v2" / "_internal" / "base_library.zip").stat().st_size
    assert re.search(rf"write +slots/\.incoming-\S+/_internal/base_library\.zip +{size:,} bytes", proc.stdout)
    assert re.search(r"link +current -> slots/", proc.stdout)
    assert re.search(r"needs [\d,]+ bytes .* on the device", proc.stdout)
    assert "nothing was written" in proc.stdout


def test_build_py_flash_flashes_verifies_and_rolls_back(dist: Path, device: Path) -> None:
    user = ("build.py",)
    do_flash(dist, "v1", device)
    proc = cli("--profile", "v2", "--dist", dist, "--target", device, entry=user)
    assert proc.returncode == 0, proc.stderr
    assert "hello from v2" in proc.stdout
    assert cli("--rollback", "--target", device, entry=user).returncode == 0
    assert running_version(device) == "v1"
    assert_one_line_error(cli("--profile", "nosuch", "--dist", dist, "--target", device, entry=user),
                          code=1, fragment="no build of profile 'nosuch'")


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_target_that_is_not_a_directory_gets_one_line(dist: Path, tmp_path: Path, kind: str) -> None:
    target = tmp_path / "not-a-device"
    if kind == "file":
        target.write_text("x")
    line = assert_one_line_error(cli("--profile", "v1", "--dist", dist, "--target", target), code=1,
                                 fragment=str(target))
    assert ("does not exist" if kind == "missing" else "is not a directory") in line
    assert_one_line_error(cli("--verify", "--target", target), code=1, fragment=str(target))


def test_usage_errors_exit_2(dist: Path, device: Path) -> None:
    assert_one_line_error(cli("--target", device), code=2, fragment="--profile")
    assert_one_line_error(cli("--rollback", "--profile", "v1", "--target", device), code=2,
                          fragment="no --profile")
    assert_one_line_error(cli("--profile", "../v1", "--dist", dist, "--target", device), code=2,
                          fragment="plain name")


def test_a_kill_at_hook_that_is_not_a_number_is_one_line(dist: Path, device: Path) -> None:
    line = assert_one_line_error(cli("--profile", "v1", "--dist", dist, "--target", device,
                                     env_extra={KILL_AT_ENV: "abc"}), code=2, fragment=KILL_AT_ENV)
    assert "'abc'" in line
    assert not (device / "slimfreeze").exists()


def test_an_unreadable_device_state_is_one_line_and_nothing_changes(dist: Path, device: Path) -> None:
    do_flash(dist, "v1", device, run_commands=False)
    do_flash(dist, "v2", device, run_commands=False)
    slots = device / "slimfreeze" / "slots"
    before = snapshot(device)
    slots.chmod(0)
    try:
        ran = subprocess.run([*without_dac_override(), sys.executable, "-m", "build.flash.command", "flash", "--verify",
                              "--no-run", "--target", str(device)], cwd=PROJECT, capture_output=True, text=True,
                             timeout=120)
    finally:
        slots.chmod(0o755)
    line = assert_one_line_error(ran, code=1, fragment=f"cannot read {slots}")
    assert "Permission denied" in line
    assert snapshot(device) == before


def test_corrupted_current_is_detected_and_blocks_a_flash_until_forced(dist: Path, device: Path) -> None:
    do_flash(dist, "v1", device)
    do_flash(dist, "v2", device)
    v1_slot, v2_slot = slot_dir(device, "previous").name, slot_dir(device, "current").name
    damage(slot_dir(device, "current") / "_internal" / "base_library.zip")
    line = assert_one_line_error(cli("--verify", "--target", device), code=1, fragment="corrupted")
    assert "current slot" in line and "_internal/base_library.zip has the wrong sha256" in line
    assert "--rollback" in line
    before = snapshot(device)
    line = assert_one_line_error(cli("--profile", "v3", "--dist", dist, "--target", device), code=1,
                                 fragment="corrupted")
    assert snapshot(device) == before
    lines = do_flash(dist, "v3", device, force=True)
    assert any("warning" in line and "corrupted" in line for line in lines)
    assert running_version(device) == "v3"
    # the damaged slot is not kept for rollback; the intact older one still is
    assert slot_dir(device, "previous").name == v1_slot
    assert not (device / "slimfreeze" / "slots" / v2_slot).exists()
    assert verify(device, say=quiet) == slot_dir(device, "current").name


def test_rollback_from_a_corrupted_current_drops_it(dist: Path, device: Path) -> None:
    do_flash(dist, "v1", device)
    do_flash(dist, "v2", device)
    v2 = slot_dir(device, "current")
    (v2 / "slimfreeze").unlink()
    assert rollback(device, say=quiet) == slot_dir(device, "current").name
    assert running_version(device) == "v1"
    assert not (device / "slimfreeze" / "previous").exists() and not v2.exists()


def test_corrupted_previous_is_reported_and_not_rolled_back_to(dist: Path, device: Path) -> None:
    do_flash(dist, "v1", device)
    do_flash(dist, "v2", device)
    (slot_dir(device, "previous") / "manifest.json").write_text("{")
    with pytest.raises(CorruptSlot, match="previous slot .* manifest.json is damaged"):
        verify(device, say=quiet)
    before = snapshot(device)
    with pytest.raises(CorruptSlot, match="not rolling back"):
        rollback(device, say=quiet)
    assert snapshot(device) == before and running_version(device) == "v2"


def test_leftovers_of_a_killed_flash_are_never_current_and_the_next_flash_removes_them(
        dist: Path, device: Path) -> None:
    do_flash(dist, "v1", device)
    root = device / "slimfreeze"
    # what a flash killed at various points leaves: a complete incoming slot, an orphan slot,
    # a temporary link
    shutil.copytree(dist / "v2", root / "slots" / ".incoming-20990101T000000Z-aaaaaaaaaaaa", symlinks=True)
    shutil.copytree(dist / "v2", root / "slots" / "20990101T000000Z-bbbbbbbbbbbb", symlinks=True)
    os.symlink("slots/20990101T000000Z-bbbbbbbbbbbb", root / ".current.tmp")
    lines: list[str] = []
    verify(device, say=lines.append)
    assert running_version(device) == "v1"
    assert sum("left over" in line for line in lines) == 3
    lines = do_flash(dist, "v3", device)
    assert sum(line.startswith("flash: removing ") for line in lines) == 3
    state = read_state(Layout(device))
    assert running_version(device) == "v3" and not state.leftovers and not state.orphans
    assert sorted(os.listdir(root)) == ["current", "previous", "slots"]


def test_a_version_whose_commands_fail_is_switched_back_and_removed(dist: Path, device: Path) -> None:
    make_dist(dist, "broken", version="v9", hello_rc=3)
    do_flash(dist, "v1", device)
    do_flash(dist, "v2", device)
    before = {name: slot_dir(device, name).name for name in ("current", "previous")}
    with pytest.raises(CheckFailed, match=r"`hello greets` .* status 3 \(expected 0\): hello from v9; switched back"):
        do_flash(dist, "broken", device)
    assert {name: slot_dir(device, name).name for name in ("current", "previous")} == before
    assert sorted(os.listdir(device / "slimfreeze" / "slots")) == sorted(before.values())
    assert running_version(device) == "v2"


def test_a_first_flash_whose_commands_fail_says_there_is_nothing_to_go_back_to(dist: Path, device: Path) -> None:
    make_dist(dist, "broken", version="v9", hello_rc=3)
    with pytest.raises(CheckFailed, match="no intact earlier version"):
        do_flash(dist, "broken", device)


def test_a_damaged_or_missing_build_is_not_flashed(dist: Path, device: Path) -> None:
    do_flash(dist, "v1", device)
    before = snapshot(device)
    damage(dist / "v2" / "_internal" / "lib" / "libdata.so")
    with pytest.raises(ArtifactError, match="libdata.so does not match its manifest entry"):
        do_flash(dist, "v2", device)
    line = assert_one_line_error(cli("--profile", "nosuch", "--dist", dist, "--target", device), code=1,
                                 fragment="no build of profile 'nosuch'")
    assert "python build.py --profile nosuch" in line
    assert snapshot(device) == before


FOREIGN = "armv7" if host_architecture() != "armv7" else "aarch64"


def test_a_foreign_architecture_needs_no_run(dist: Path, device: Path) -> None:
    make_dist(dist, "arm", machine=FOREIGN)
    with pytest.raises(ConfigError, match="--no-run"):
        do_flash(dist, "arm", device)
    assert os.listdir(device) == []
    lines = do_flash(dist, "arm", device, run_commands=False)
    assert not any(line.startswith("flash: ran ") for line in lines)
    assert verify(device, run_commands=False, say=quiet)


def test_the_image_is_flashed_into_the_slot_and_verified(tmp_path: Path, device: Path) -> None:
    dist = tmp_path / "dist"
    make_dist(dist, "img", image=200_000)
    do_flash(dist, "img", device)
    image = slot_dir(device, "current") / "img.squashfs"
    assert image.read_bytes() == (dist / "img" / "img.squashfs").read_bytes()
    damage(image)
    with pytest.raises(CorruptSlot, match="img.squashfs has the wrong sha256"):
        verify(device, say=quiet)


def test_a_slot_that_does_not_read_back_as_written_is_never_switched_to(
        dist: Path, device: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    do_flash(dist, "v1", device)
    before = read_state(Layout(device))
    real_copy = DeviceWriter.copy_file

    def failing_device(self: DeviceWriter, source: Path, dest: Path, mode: int) -> None:
        real_copy(self, source, dest, mode)
        if dest.name == "libdata.so":  # what a failing flash chip does: accepts, returns other bytes
            damage(dest)

    monkeypatch.setattr(DeviceWriter, "copy_file", failing_device)
    with pytest.raises(CorruptSlot, match="does not read back as written .*libdata.so has the wrong sha256"):
        do_flash(dist, "v2", device)
    assert read_state(Layout(device)) == before
    assert running_version(device) == "v1"


def test_a_second_flash_while_one_is_running_is_refused(dist: Path, device: Path) -> None:
    do_flash(dist, "v1", device)
    before = snapshot(device)
    fd = os.open(device / "slimfreeze", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a running flash holds
        assert_one_line_error(cli("--profile", "v2", "--dist", dist, "--target", device), code=1,
                              fragment="another flash is running")
    finally:
        os.close(fd)
    assert snapshot(device) == before


# --- a tmpfs mounted as the device ---------------------------------------------------------------

@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """mount(size) -> a fresh tmpfs of that size; unmounted afterwards. Skips without root, except
    in CI (CI is set) where these tests must run."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        def unavailable(reason: str) -> None:
            if os.environ.get("CI"):
                pytest.fail(f"the device tests must run in CI: {reason}")
            pytest.skip(reason)

        if os.geteuid() != 0:
            unavailable("mounting a tmpfs as the device needs root")
        point = tmp_path / f"tmpfs{len(mounted)}"
        point.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            unavailable(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", str(point)], check=True)


def free_bytes(path: Path) -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


@pytest.mark.integration
def test_an_artifact_too_big_for_the_device_is_refused_and_the_old_version_still_runs(
        tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
    device = tmpfs("2m")
    dist = tmp_path / "dist"
    make_dist(dist, "v1", pad=450_000)
    make_dist(dist, "huge", pad=1_500_000)
    make_dist(dist, "v2", pad=300_000)
    do_flash(dist, "v1", device)
    before, free = snapshot(device), free_bytes(device)
    proc = cli("--profile", "huge", "--dist", dist, "--target", device)
    line = assert_one_line_error(proc, code=1, fragment="not enough space")
    need, have = (int(n.replace(",", "")) for n in re.findall(r"([\d,]+) bytes", line))
    assert have == free and need > free
    assert need >= (dist / "huge" / "_internal" / "base_library.zip").stat().st_size
    assert snapshot(device) == before and free_bytes(device) == free
    assert running_version(device) == "v1" and verify(device, say=quiet)
    # an artifact that fits on the same device goes in
    do_flash(dist, "v2", device)
    assert running_version(device) == "v2"


@pytest.mark.integration
def test_running_out_of_space_while_writing_removes_the_new_slot(
        tmp_path: Path, tmpfs: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The space check is an estimate; if the filesystem still fills up, the device is left as it was."""
    device = tmpfs("2m")
    dist = tmp_path / "dist"
    make_dist(dist, "v1", pad=450_000)
    make_dist(dist, "huge", pad=1_500_000)
    do_flash(dist, "v1", device)
    before, free = read_state(Layout(device)), free_bytes(device)
    monkeypatch.setattr("build.flash.install.space_needed", lambda *args, **kwargs: 0)
    with pytest.raises(NoSpace, match="ran out of space while writing .*base_library.zip; the new slot was removed"):
        do_flash(dist, "huge", device)
    assert read_state(Layout(device)) == before and free_bytes(device) == free
    assert running_version(device) == "v1"


@pytest.mark.integration
def test_space_held_by_a_killed_flash_counts_as_free(tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
    device = tmpfs("2m")
    dist = tmp_path / "dist"
    make_dist(dist, "v1", pad=500_000)
    make_dist(dist, "v2", pad=800_000)
    do_flash(dist, "v1", device)
    leftover = device / "slimfreeze" / "slots" / ".incoming-20990101T000000Z-aaaaaaaaaaaa"
    shutil.copytree(dist / "v2", leftover, symlinks=True)
    assert free_bytes(device) < (dist / "v2" / "_internal" / "base_library.zip").stat().st_size
    do_flash(dist, "v2", device)
    assert running_version(device) == "v2" and not leftover.exists()


@pytest.mark.integration
def test_flash_killed_at_every_write_point_leaves_a_working_device(
        tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
    device = tmpfs("4m")
    dist = tmp_path / "dist"
    for version in ("v1", "v2", "v3"):
        make_dist(dist, version, pad=600_000)  # several write chunks per file
    baseline = device / "baseline"  # v1 installed; copied as the starting state of every cut
    baseline.mkdir()
    do_flash(dist, "v1", baseline)
    running_after: dict[int, str] = {}
    point = 0
    while True:
        point += 1
        assert point < 1000, "the flash never completed"
        target = device / f"cut{point}"
        shutil.copytree(baseline, target, symlinks=True)
        proc = cli("--profile", "v2", "--dist", dist, "--target", target, env_extra={KILL_AT_ENV: str(point)})
        if proc.returncode == 0:
            assert running_version(target) == "v2"
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        cut = read_state(Layout(target))
        running_after[point] = running_version(target)
        # the replaced version stays reachable for --rollback from the moment v2 runs
        assert running_after[point] == "v1" or profile_of(target, "previous") == "v1"
        assert verify(target, say=quiet) == cut.current  # sha256 of every file, and the commands run
        do_flash(dist, "v3", target, run_commands=False)
        after = read_state(Layout(target))
        assert running_version(target) == "v3"
        assert after.previous == cut.current and not after.leftovers and not after.orphans
        shutil.rmtree(target)
    assert len(running_after) >= 20, f"only {len(running_after)} cut points"
    order = [running_after[p] for p in sorted(running_after)]
    # v1 until the switch, v2 from then on: one switch, never a mix
    assert order == sorted(order) and {"v1", "v2"} <= set(order)


@pytest.mark.integration
def test_rollback_killed_at_every_write_point_leaves_a_working_device(
        tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
    device = tmpfs("4m")
    dist = tmp_path / "dist"
    for version in ("v1", "v2", "v3"):
        make_dist(dist, version, pad=100_000)
    point, seen = 0, set()
    while True:
        point += 1
        assert point < 100, "the rollback never completed"
        target = device / f"cut{point}"
        target.mkdir()
        do_flash(dist, "v1", target, run_commands=False)
        do_flash(dist, "v2", target, run_commands=False)
        proc = cli("--rollback", "--target", target, env_extra={KILL_AT_ENV: str(point)})
        if proc.returncode == 0:
            assert running_version(target) == "v1"
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        seen.add(running_version(target))
        # the version rolled back from may be dropped by a cut, the one rolled back to never
        assert running_version(target) == "v1" or profile_of(target, "previous") == "v1"
        assert verify(target, say=quiet)
        do_flash(dist, "v3", target)
        assert running_version(target) == "v3"
        shutil.rmtree(target)
    assert point - 1 >= 4 and seen == {"v1", "v2"}


@pytest.mark.integration
def test_a_read_only_device_is_refused_but_can_be_verified(tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
    device = tmpfs("4m")
    dist = tmp_path / "dist"
    for version in ("v1", "v2", "v3"):
        make_dist(dist, version)
    do_flash(dist, "v1", device)
    do_flash(dist, "v2", device)
    subprocess.run(["mount", "-o", "remount,ro", str(device)], check=True)
    with pytest.raises(OSError) as probe:  # the filesystem really refuses writes
        (device / "probe").write_text("x")
    assert probe.value.errno == errno.EROFS
    for args in (["--profile", "v3", "--dist", dist], ["--profile", "v3", "--dist", dist, "--dry-run"],
                 ["--rollback"]):
        assert_one_line_error(cli(*args, "--target", device), code=1, fragment="is read-only")
    proc = cli("--verify", "--target", device)
    assert proc.returncode == 0, proc.stderr
    assert running_version(device) == "v2"


@pytest.mark.integration
def test_flash_the_real_min_build(built, tmpfs: Callable[[str], Path]) -> None:
    dist_dir = built("min").dist_dir
    manifest = json.loads((dist_dir / "manifest.json").read_text())
    payload = manifest["total_bytes"] + (manifest["image"]["size"] if manifest["image"] else 0)
    device = tmpfs(f"{(2 * payload >> 20) + 4}m")  # two versions and room to spare
    lines = do_flash(dist_dir.parent, dist_dir.name, device)
    assert any(line.startswith("flash: ran current/") and "hello" in line for line in lines)
    slot = slot_dir(device, "current")
    for entry in manifest["files"]:
        assert hashlib.sha256((slot / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    assert verify(device, say=quiet) == slot.name
    # a second flash of the same build gets its own slot and keeps the first for rollback
    do_flash(dist_dir.parent, dist_dir.name, device)
    assert slot_dir(device, "previous") == slot != slot_dir(device, "current")
    assert verify(device, say=quiet) == slot_dir(device, "current").name
    # a device smaller than the artifact refuses it before writing anything
    small_mib = max(1, payload >> 21)
    assert small_mib << 20 < payload
    small = tmpfs(f"{small_mib}m")
    with pytest.raises(NoSpace, match="not enough space"):
        do_flash(dist_dir.parent, dist_dir.name, small)
    assert os.listdir(small) == []


@pytest.mark.parametrize("device_arch, loader", [("aarch64", "lib/ld-linux-aarch64.so.1"),
                                                 ("armv7", "lib/ld-linux-armhf.so.3"),
                                                 ("x86_64", "lib64/ld-linux-x86-64.so.2")])
def test_an_artifact_for_another_architecture_than_the_device_root_shows_is_refused(
        tmp_path: Path, device: Path, device_arch: str, loader: str) -> None:
    (device / loader).parent.mkdir(parents=True)
    (device / loader).symlink_to("elsewhere")  # as on a device root: often a link into the multiarch folder
    assert device_architecture(device) == device_arch
    dist = tmp_path / "dist"
    for arch in ("x86_64", "aarch64", "armv7"):
        make_dist(dist, f"for-{arch}", machine=arch)
    before = snapshot(device)
    for arch in {"x86_64", "aarch64", "armv7"} - {device_arch}:
        with pytest.raises(WrongArchitecture, match=f"built for {arch} but .* runs {device_arch}"):
            do_flash(dist, f"for-{arch}", device, run_commands=False)
        assert snapshot(device) == before
    do_flash(dist, f"for-{device_arch}", device, run_commands=False)
    assert verify(device, run_commands=False, say=quiet)


def test_arch_says_what_a_root_without_a_loader_runs_and_the_cli_refuses_in_one_line(
        tmp_path: Path, device: Path) -> None:
    dist = tmp_path / "dist"
    make_dist(dist, "for-x86", machine="x86_64")
    assert device_architecture(device) is None  # an empty root says nothing
    line = assert_one_line_error(cli("--profile", "for-x86", "--dist", dist, "--target", device, "--arch", "arm64",
                                     "--no-run"), code=2, fragment="built for x86_64 but")
    assert "aarch64" in line and os.listdir(device) == []
    assert_one_line_error(cli("--profile", "for-x86", "--dist", dist, "--target", device, "--arch", "sparc"),
                          code=2, fragment="unknown architecture 'sparc'")
    do_flash(dist, "for-x86", device, arch="x86_64", run_commands=False)


def test_the_device_writer_deletes_only_inside_the_slimfreeze_folder(dist: Path, device: Path) -> None:
    do_flash(dist, "v1", device, run_commands=False)
    (device / "user-data").write_text("the user's own file\n")
    root = device / "slimfreeze"
    os.symlink(device, root / "slots" / ".incoming-evil")  # a leftover that is a link out of slimfreeze/
    writer = DeviceWriter()
    for outside in (device / "user-data", device, root, root / ".." / "user-data"):
        with pytest.raises(DeviceError, match="refusing to delete"):
            writer.remove_tree(outside, root)
    writer.remove_tree(root / "slots" / ".incoming-evil", root)  # removes the link, not what it points to
    assert (device / "user-data").read_text() == "the user's own file\n" and running_version(device) == "v1"
