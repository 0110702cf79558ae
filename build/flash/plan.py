"""What a flash writes: a dist folder's manifest read into plain records, and the space it needs.

`parse_manifest` is pure (bytes in, records out) and is used twice: for the dist folder being
flashed and for the copy of the manifest inside each slot on the device, which is what a slot is
verified against. `load_dist` adds the I/O: it checks every dist file against the manifest before
anything is written to a device, so a damaged build is never flashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from build.errors import ArtifactError, ConfigError
from build.manifest import MANIFEST_NAME
from build.manifest import SCHEMA as MANIFEST_SCHEMA
from build.toolchain import ALIASES

_SHA256 = re.compile(r"[0-9a-f]{64}")
_PROFILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_READ_CHUNK = 1 << 20

Fail = Callable[[str], ArtifactError]


@dataclass(frozen=True, kw_only=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True, kw_only=True)
class LinkEntry:
    path: str
    target: str


@dataclass(frozen=True, kw_only=True)
class Content:
    """Everything a manifest says a slot holds, besides manifest.json itself."""

    profile: str
    machine: str
    target: str  # the artifact's architecture (older manifests: the build machine's)
    files: tuple[FileEntry, ...]
    links: tuple[LinkEntry, ...]
    commands: tuple[tuple[str, str], ...]  # (command, path relative to the slot)
    executables: tuple[str, ...]
    image: FileEntry | None

    @property
    def payload(self) -> tuple[FileEntry, ...]:
        """Every regular file to write: the artifact files, then the image if there is one."""
        return self.files + ((self.image,) if self.image else ())

    @property
    def dirs(self) -> tuple[str, ...]:
        """Folders to create inside the slot, parents before children."""
        found: set[str] = set()
        for path in [e.path for e in self.payload] + [link.path for link in self.links]:
            found.update(str(p) for p in PurePosixPath(path).parents if str(p) != ".")
        return tuple(sorted(found, key=lambda d: (d.count("/"), d)))

    @property
    def payload_bytes(self) -> int:
        return sum(e.size for e in self.payload)


@dataclass(frozen=True, kw_only=True)
class FlashPlan:
    """A verified dist folder, ready to be written to a device."""

    dist_dir: Path
    content: Content
    manifest_bytes: bytes  # copied verbatim into the slot: the slot is verified against it
    modes: Mapping[str, int] = field(default_factory=dict)  # payload path -> permission bits

    @property
    def manifest_sha256(self) -> str:
        return hashlib.sha256(self.manifest_bytes).hexdigest()


def round_up(size: int, block: int) -> int:
    return -(-size // block) * block


def space_needed(content: Content, *, manifest_size: int, block_size: int) -> int:
    """Bytes a new slot takes on a filesystem with `block_size` allocation units.

    Data is rounded up to whole blocks; every folder and link, the slot folder, the two switch
    links and their temporary names get one block each: a deliberate over-estimate, since the
    real metadata cost depends on the filesystem (none on tmpfs, a block per folder on ext4).
    """
    data = sum(round_up(e.size, block_size) for e in content.payload)
    data += round_up(manifest_size, block_size)
    metadata_entries = len(content.dirs) + len(content.links) + 1 + 4
    return data + metadata_entries * block_size


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def format_bytes(size: int) -> str:
    """`1,234,567 bytes (1.2 MiB)`: the exact figure for comparisons, the rounded one to read."""
    if size >= 1 << 30:
        return f"{size:,} bytes ({size / (1 << 30):.1f} GiB)"
    if size >= 1 << 20:
        return f"{size:,} bytes ({size / (1 << 20):.1f} MiB)"
    if size >= 1 << 10:
        return f"{size:,} bytes ({size / (1 << 10):.1f} KiB)"
    return f"{size:,} bytes"


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def check_profile_name(profile: str) -> str:
    if not _PROFILE.fullmatch(profile):
        raise ConfigError(f"profile name {profile!r} is not a plain name (letters, digits, '.', '_', '-')")
    return profile


def load_dist(dist_root: Path, profile: str) -> FlashPlan:
    """Read dist/<profile>/manifest.json and check every file it lists, size and sha256."""
    dist_dir = dist_root / check_profile_name(profile)
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
        source = dist_dir / entry.path
        try:
            info = source.lstat()
        except OSError:
            raise ArtifactError(f"{source} is listed in the manifest but missing; "
                                f"rebuild profile '{profile}'") from None
        if not source.is_file() or source.is_symlink():
            raise ArtifactError(f"{source} is listed in the manifest as a file but is not a regular file")
        if info.st_size != entry.size or sha256_file(source) != entry.sha256:
            raise ArtifactError(f"{source} does not match its manifest entry (size or sha256); "
                                f"the build is damaged, rebuild profile '{profile}'")
        modes[entry.path] = info.st_mode & 0o777
    for link in content.links:
        source = dist_dir / link.path
        if not source.is_symlink() or os.readlink(source) != link.target:
            raise ArtifactError(f"{source} is listed in the manifest as a link to {link.target} but is not; "
                                f"rebuild profile '{profile}'")
    return FlashPlan(dist_dir=dist_dir, content=content, manifest_bytes=manifest_bytes, modes=modes)


def parse_manifest(data: bytes, *, origin: str) -> Content:
    """Validate a manifest (schema slimfreeze.manifest/1) into records; ArtifactError names what is wrong.

    Every path must be a normalised relative path that stays inside the slot: the manifest decides
    where files are written on the device.
    """
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{origin} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ArtifactError(f"{origin} is not a JSON object")
    if doc.get("schema") != MANIFEST_SCHEMA:
        raise ArtifactError(f"{origin} has schema {doc.get('schema')!r}, expected {MANIFEST_SCHEMA!r}")

    def fail(what: str) -> ArtifactError:
        return ArtifactError(f"{origin}: {what}")

    profile = doc.get("profile")
    machine = doc.get("machine")
    if not isinstance(profile, str) or not isinstance(machine, str):
        raise fail("'profile' and 'machine' must be strings")

    files = tuple(_file_entry(item, f"files[{i}]", fail) for i, item in enumerate(_list(doc, "files", fail)))
    links = tuple(_link_entry(item, f"links[{i}]", fail) for i, item in enumerate(_list(doc, "links", fail)))
    image_doc = doc.get("image")
    image = None if image_doc is None else _file_entry(image_doc, "image", fail)

    entries = [e.path for e in files] + [link.path for link in links] + ([image.path] if image else [])
    _check_unique(entries, fail)
    commands_doc = doc.get("commands")
    if not isinstance(commands_doc, dict):
        raise fail("'commands' must be an object")
    commands = tuple(sorted((str(name), _safe_path(path, f"commands.{name}", fail))
                            for name, path in commands_doc.items()))
    executables = tuple(_safe_path(p, f"executables[{i}]", fail)
                        for i, p in enumerate(_list(doc, "executables", fail)))
    file_paths = {e.path for e in files}
    for name, path in commands:
        if path not in file_paths and path not in {link.path for link in links}:
            raise fail(f"command {name!r} runs {path!r}, which is neither a listed file nor a link")
    for path in executables:
        if path not in file_paths:
            raise fail(f"executable {path!r} is not a listed file")
    target = doc.get("target", ALIASES.get(machine, machine))
    if not isinstance(target, str):
        raise fail("'target' must be a string")
    return Content(profile=profile, machine=machine, target=target, files=files, links=links, commands=commands,
                   executables=executables, image=image)


def _list(doc: dict[str, object], key: str, fail: Fail) -> list[object]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise fail(f"'{key}' must be a list")
    return value


def _file_entry(item: object, where: str, fail: Fail) -> FileEntry:
    if not isinstance(item, dict):
        raise fail(f"{where} must be an object")
    size, sha = item.get("size"), item.get("sha256")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise fail(f"{where}.size must be a non-negative integer")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise fail(f"{where}.sha256 must be 64 lowercase hex digits")
    return FileEntry(path=_safe_path(item.get("path"), f"{where}.path", fail), size=size, sha256=sha)


def _link_entry(item: object, where: str, fail: Fail) -> LinkEntry:
    if not isinstance(item, dict):
        raise fail(f"{where} must be an object")
    path = _safe_path(item.get("path"), f"{where}.path", fail)
    target = item.get("target")
    if not isinstance(target, str) or not target or target.startswith("/"):
        raise fail(f"{where}.target must be a relative path")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if resolved == ".." or resolved.startswith("../"):
        raise fail(f"{where}.target {target!r} points outside the artifact")
    return LinkEntry(path=path, target=target)


def _safe_path(value: object, where: str, fail: Fail) -> str:
    if not isinstance(value, str) or not value:
        raise fail(f"{where} must be a non-empty path")
    pure = PurePosixPath(value)
    if pure.is_absolute() or str(pure) != value or ".." in pure.parts or value == ".":
        raise fail(f"{where} {value!r} is not a normalised relative path inside the artifact")
    if value == MANIFEST_NAME:
        raise fail(f"{where} may not be {MANIFEST_NAME!r}: the flasher writes that itself")
    return value


def _check_unique(paths: Iterable[str], fail: Fail) -> None:
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise fail(f"{path!r} is listed twice")
        seen.add(path)
    parents = {str(p) for path in seen for p in PurePosixPath(path).parents}
    clash = sorted(seen & parents)
    if clash:
        raise fail(f"{clash[0]!r} is listed as an entry but other entries lie inside it")
