"""Flash images: the squashfs beside the artifact is what goes on the device, so run from it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from build.application import load_application
from build.config import Profile
from build.freeze import smoke
from build.freeze.image import compressor_options, mksquashfs_command
from build.manifest import sha256_of

ROOT = Path(__file__).resolve().parents[2]


def test_xz_images_use_the_machines_branch_filter():
    profile = Profile(name="p", image="squashfs", image_compressor="xz", image_block_size=131072)
    argv = mksquashfs_command(Path("in"), Path("out.sq"), profile, machine="x86_64", epoch=1_700_000_000)
    assert argv[argv.index("-comp") + 1] == "xz" and argv[argv.index("-Xbcj") + 1] == "x86"
    assert argv[argv.index("-b") + 1] == "131072"
    # reproducible: the commit's time everywhere, not the clock
    assert "-all-root" in argv and argv[argv.index("-all-time") + 1] == argv[argv.index("-mkfs-time") + 1] == "1700000000"
    assert compressor_options(profile, "riscv64") == []
    zstd = Profile(name="p", image="squashfs", image_compressor="zstd")
    assert compressor_options(zstd, "x86_64") == ["-Xcompression-level", "22"]


@contextmanager
def opened_image(image: Path, folder: Path) -> Iterator[tuple[Path, str]]:
    """The image's content, read-only: loop-mounted where permitted, else unpacked by unsquashfs."""
    mountpoint = folder / "mnt"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "squashfs", "-o", "loop,ro", str(image), str(mountpoint)],
                             capture_output=True, text=True).returncode == 0
    if mounted:
        try:
            yield mountpoint, "loop mount"
        finally:
            subprocess.run(["umount", str(mountpoint)], check=True)
        return
    if os.environ.get("CI") and os.geteuid() == 0:
        pytest.fail("CI runs as root: the image must be loop-mountable")
    unpacked = folder / "unpacked"
    subprocess.run([shutil.which("unsquashfs") or "/usr/bin/unsquashfs", "-no-xattrs", "-d", str(unpacked), str(image)],
                   check=True, capture_output=True)
    yield unpacked, "unsquashfs"


@pytest.mark.integration
def test_flash_min_image_runs_every_command_against_the_broker(built, tmp_path):
    result = built("flash-min")
    manifest = json.loads((result.dist_dir / "manifest.json").read_text())
    record = manifest["image"]
    image = result.dist_dir / record["path"]
    assert record["size"] == image.stat().st_size == result.image_bytes
    assert record["sha256"] == sha256_of(image) and record["compressor"] == "xz"
    assert record["size"] < manifest["total_bytes"]  # the image is what makes onedir small on flash
    with opened_image(image, tmp_path) as (root, how):
        # the image holds the artifact and its links, not the manifest or itself
        assert sorted(p.name for p in root.iterdir()) == sorted(["slimfreeze", "_internal", *manifest["commands"]])
        assert (root / "telemetry").is_symlink()
        app = load_application(ROOT / "pyproject.toml")
        checked = smoke.run(app, root, manifest["commands"], tls=False, log=tmp_path / "smoke.log", multicall=True)
    assert checked.passed, f"from the image ({how}):\n{checked.failure_text()}"
    # every declared scenario of every bundled command ran from the image
    assert {c.name for c in checked.checks} == {label for label, _, _ in smoke.plan(
        app, list(manifest["commands"]), tls=False, multicall=True)}


def test_the_apps_code_is_written_after_the_runtime(tmp_path):
    """The -sort lines name what a release changes (the app, its dependencies), not the standard
    library, the stand-ins for part of it or the shared libraries: those keep their fragments."""
    from build.freeze.image import sort_lines

    contents = tmp_path / "_internal"
    for folder in ("app/commands", "paho/mqtt", "json", "encodings"):
        (contents / folder).mkdir(parents=True)
    for name in ("os.pyc", "_slimfreeze_ssl.pyc", "typing_extensions.pyc", "libpython3.11.so.1.0", "base_library.zip"):
        (contents / name).write_bytes(b"x")
    assert sort_lines(tmp_path) == ["_internal/app -100", "_internal/paho -100", "_internal/typing_extensions.pyc -100"]
    assert sort_lines(tmp_path / "_internal" / "app") == []  # no contents folder (a onefile's image): no order
