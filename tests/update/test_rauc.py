"""A signed RAUC bundle of a build's image (issue 19): made by the real `rauc bundle`, verified by
`rauc info --keyring` with the signing certificate and refused with another one."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from build.manifest import SCHEMA

PROJECT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("rauc") is None, reason="rauc is not installed (scripts/install.sh)")


def certificate(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key.pem", folder / f"{name}.cert.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)], check=True)
    subprocess.run(["openssl", "req", "-new", "-x509", "-key", str(key), "-out", str(cert), "-days", "30",
                    "-subj", f"/CN={name}"], check=True, capture_output=True)
    return key, cert


def dist_with_image(folder: Path, *, image: bool = True) -> Path:
    dist = folder / "dist" / "flash-x"
    (dist / "tree").mkdir(parents=True)
    (dist / "tree" / "app").write_text("#!/bin/sh\necho hi\n")
    # RAUC wants its bundle's squashfs over 4 KiB: give the image data that does not compress.
    (dist / "tree" / "data").write_bytes(bytes(
        b for i in range(400) for b in hashlib.sha256(i.to_bytes(2, "big")).digest()))
    record = None
    if image:
        subprocess.run(["mksquashfs", str(dist / "tree"), str(dist / "flash-x.squashfs"), "-quiet", "-no-progress"],
                       check=True)
        data = (dist / "flash-x.squashfs").read_bytes()
        record = {"path": "flash-x.squashfs", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    files = [{"path": f"tree/{name}", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
             for name in ("app", "data") for data in [(dist / "tree" / name).read_bytes()]]
    (dist / "manifest.json").write_text(json.dumps({
        "schema": SCHEMA, "profile": "flash-x", "machine": "x86_64", "commands": {}, "executables": [],
        "files": files, "links": [], "image": record, "git_commit": "0123456789abcdef"}))
    return dist


def rauc_cmd(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "build.py", "rauc", *map(str, args)], cwd=PROJECT, capture_output=True,
                          text=True, timeout=300)


def test_a_bundle_verifies_with_its_certificate_only(tmp_path: Path) -> None:
    key, cert = certificate(tmp_path, "release")
    _, other = certificate(tmp_path, "other")
    dist = dist_with_image(tmp_path)
    out = tmp_path / "x.raucb"
    made = rauc_cmd(dist, "--cert", cert, "--key", key, "-o", out, "--compatible", "acme-gateway")
    assert made.returncode == 0, made.stderr
    info = subprocess.run(["rauc", "info", "--keyring", str(cert), str(out)], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert "Verified inline signature by 'CN = release'" in info.stderr + info.stdout
    assert "'acme-gateway'" in info.stdout and "verity" in info.stdout and "flash-x.squashfs" in info.stdout
    refused = subprocess.run(["rauc", "info", "--keyring", str(other), str(out)], capture_output=True, text=True)
    assert refused.returncode != 0 and "signature verification failed" in refused.stderr


def test_a_build_without_an_image_or_a_key_in_the_project_is_one_line(tmp_path: Path) -> None:
    key, cert = certificate(tmp_path, "release")
    no_image = rauc_cmd(dist_with_image(tmp_path / "a", image=False), "--cert", cert, "--key", key)
    assert no_image.returncode == 1 and "has no flash image" in no_image.stderr
    assert len(no_image.stderr.strip().splitlines()) == 1 and "Traceback" not in no_image.stderr
    inside = rauc_cmd(dist_with_image(tmp_path / "b"), "--cert", cert, "--key", PROJECT / "pyproject.toml")
    assert inside.returncode == 2 and "inside the project" in inside.stderr
