"""A signed RAUC bundle of a build's flash image, for devices that update with RAUC (Debian's rauc).

The bundle is in RAUC's `verity` format and holds the image as one slot image; `rauc info
--keyring CA.pem BUNDLE` verifies it on the device. RAUC signs with CMS, which (rauc 1.8,
OpenSSL 3.0) takes RSA or ECDSA keys but not Ed25519, so the bundle has its own certificate and key,
given by path and kept outside the project like the release key.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from build import proc
from build.errors import ArtifactError, ConfigError
from build.manifest import load_manifest

TOOL_TIMEOUT = 600.0
SLOT_CLASS = "appfs"  # the slot class the device's system.conf names for slimfreeze's image


def raucm(compatible: str, version: str, image_name: str) -> str:
    """The bundle's manifest.raucm (pure)."""
    return (f"[update]\ncompatible={compatible}\nversion={version}\n\n[bundle]\nformat=verity\n\n"
            f"[image.{SLOT_CLASS}]\nfilename={image_name}\n")


def make_bundle(dist: Path, out: Path, *, cert: Path, key: Path, compatible: str | None, project_root: Path) -> Path:
    """Write a RAUC bundle of `dist`'s image at `out` (through a temporary name)."""
    proc.require_tools("rauc")
    for what, path in (("certificate", cert), ("key", key)):
        if not path.is_file():
            raise ConfigError(f"the RAUC {what} {path} is not a readable file")
        real, project = os.path.realpath(path), os.path.realpath(project_root)
        if what == "key" and os.path.commonpath([real, project]) == project:
            raise ConfigError(f"the RAUC key {path} lies inside the project; keep it outside the repository")
    manifest = load_manifest(dist)
    if manifest.image is None:
        raise ArtifactError(f"{dist} has no flash image (profile {manifest.profile} sets no `image`); "
                            f"a RAUC bundle carries one")
    commit = manifest.doc.get("git_commit") or "unknown"
    with tempfile.TemporaryDirectory(prefix="slimfreeze-rauc-") as tmp:
        content = Path(tmp) / "content"
        content.mkdir()
        shutil.copyfile(dist / manifest.image.path, content / manifest.image.path)
        (content / "manifest.raucm").write_text(
            raucm(compatible or f"slimfreeze-{manifest.profile}", commit[:40], manifest.image.path))
        partial = Path(tmp) / "bundle.raucb"
        ran = proc.capture(["rauc", "bundle", "--cert", str(cert), "--key", str(key), str(content), str(partial)],
                           timeout=TOOL_TIMEOUT, separate_stderr=True)
        if ran.code != 0:
            reason = (ran.errors.strip() or ran.output.strip() or "rauc failed").splitlines()[-1]
            raise ArtifactError(f"rauc bundle failed: {reason}")
        shutil.move(str(partial), out)
    return out
