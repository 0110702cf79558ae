"""What a flash writes: a dist folder's manifest, checked against its files, and the space it needs.

build.manifest's one strict reader is used twice: for the dist folder being flashed and for the
copy of the manifest inside each slot on the device, which is what a slot is verified against.
`load_dist` adds the I/O: it checks every dist file against the manifest before anything is
written to a device, so a damaged build is never flashed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from build.errors import ArtifactError
# The manifest's records are build.manifest's; flash code and its tests take them from here too.
from build.manifest import MANIFEST_NAME as MANIFEST_NAME
from build.manifest import DeviceCheck as DeviceCheck
from build.manifest import FileEntry as FileEntry
from build.manifest import LinkEntry as LinkEntry
from build.manifest import Manifest as Manifest
from build.manifest import inside, parse_manifest, sha256_of
from build.paths import plain_name


@dataclass(frozen=True, kw_only=True)
class FlashPlan:
    """A verified dist folder, ready to be written to a device."""

    dist_dir: Path
    content: Manifest
    manifest_bytes: bytes  # copied verbatim into the slot: the slot is verified against it
    modes: Mapping[str, int] = field(default_factory=dict)  # payload path -> permission bits

    @property
    def manifest_sha256(self) -> str:
        return hashlib.sha256(self.manifest_bytes).hexdigest()


def round_up(size: int, block: int) -> int:
    return -(-size // block) * block


def space_needed(content: Manifest, *, manifest_size: int, block_size: int) -> int:
    """Bytes a new slot takes on a filesystem with `block_size` allocation units.

    Data is rounded up to whole blocks; every folder and link, the slot folder, the two switch
    links and their temporary names get one block each: a deliberate over-estimate, since the
    real metadata cost depends on the filesystem (none on tmpfs, a block per folder on ext4).
    """
    data = sum(round_up(e.size, block_size) for e in content.payload)
    data += round_up(manifest_size, block_size)
    metadata_entries = len(content.dirs) + len(content.links) + 1 + 4
    return data + metadata_entries * block_size


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def load_dist(dist_root: Path, profile: str) -> FlashPlan:
    """Read dist/<profile>/manifest.json and check every file it lists, size and sha256."""
    dist_dir = dist_root / plain_name(profile, "--profile")
    manifest_path = dist_dir / MANIFEST_NAME
    if not dist_dir.is_dir():
        raise ArtifactError(f"no build of profile '{profile}' in {dist_dir}; "
                            f"run `python build.py --profile {profile}` first (or pass --dist)")
    try:
        manifest_bytes = manifest_path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"cannot read {manifest_path}: {exc.strerror}; rebuild profile '{profile}'") from None
    content = parse_manifest(manifest_bytes, origin=str(manifest_path))
    modes: dict[str, int] = {}
    for entry in content.payload:
        source = inside(dist_dir, entry.path)
        try:
            info = source.lstat()
        except OSError:
            raise ArtifactError(f"{source} is listed in the manifest but missing; "
                                f"rebuild profile '{profile}'") from None
        if not source.is_file() or source.is_symlink():
            raise ArtifactError(f"{source} is listed in the manifest as a file but is not a regular file")
        if info.st_size != entry.size or sha256_of(source) != entry.sha256:
            raise ArtifactError(f"{source} does not match its manifest entry (size or sha256); "
                                f"the build is damaged, rebuild profile '{profile}'")
        modes[entry.path] = info.st_mode & 0o777
    for link in content.links:
        source = inside(dist_dir, link.path)
        if not source.is_symlink() or os.readlink(source) != link.target:
            raise ArtifactError(f"{source} is listed in the manifest as a link to {link.target} but is not; "
                                f"rebuild profile '{profile}'")
    return FlashPlan(dist_dir=dist_dir, content=content, manifest_bytes=manifest_bytes, modes=modes)
