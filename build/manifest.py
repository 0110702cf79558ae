"""dist/<profile>/manifest.json: what was built, from what, and proof that it works.

Only relative paths and versions go in: nothing about the build machine's folders or secrets.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import posixpath
import re
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from build import jsonshape, proc
from build.errors import ArtifactError
from build.jsonshape import COUNT, FLAG, NUMBER, OBJECT, TEXT, Fail, list_of, shape
from build.paths import is_plain_name
from build.toolchain import ALIASES, Toolchain, host_architecture

SCHEMA = "slimfreeze.manifest/1"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True, kw_only=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True, kw_only=True)
class LinkEntry:
    """A symlink of the artifact: its path and its (relative) target, as written."""
    path: str
    target: str


def sha256_of(path: Path, *, uncached: bool = False) -> str:
    """The file's sha256. `uncached` reads what the disk holds, not the page cache (where the
    filesystem allows dropping it), and refuses a symlink: what a flash verifies a device with."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (os.O_NOFOLLOW if uncached else 0))
    try:
        if uncached:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


def scan(folder: Path, *, skip: tuple[str, ...] = (MANIFEST_NAME,)) -> tuple[list[FileEntry], list[LinkEntry]]:
    """Every regular file (size, sha256) and every symlink under `folder`, sorted by path."""
    files, links = [], []
    for root, dirs, names in os.walk(folder):
        for name in sorted(dirs + names):
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                links.append(LinkEntry(path=rel, target=os.readlink(path)))
            elif path.is_file() and rel not in skip:
                files.append(FileEntry(path=rel, size=path.stat().st_size, sha256=sha256_of(path)))
    files.sort(key=lambda f: f.path)
    links.sort(key=lambda link: link.path)
    return files, links


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files under `folder` (symlinks not followed; files that vanish while
    it walks, as in a onefile's unpack folder, and a folder that is gone count 0)."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


GIT_TIMEOUT = 10.0


def git_commit(project_root: Path, *, timeout: float = GIT_TIMEOUT) -> str | None:
    """HEAD's commit, with "-dirty" if tracked files changed; None when git is missing, slow or
    says no (the manifest then records no commit rather than failing the build)."""
    def git(*args: str) -> str | None:
        try:
            ran = proc.capture(["git", *args], cwd=project_root, timeout=timeout, separate_stderr=True)
        except OSError:
            return None
        return ran.output.strip() if ran.code == 0 else None

    head = git("rev-parse", "HEAD")
    if not head:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    if status is None:
        return None
    return head + ("-dirty" if status else "")


def build_manifest(*, folder: Path, profile: dict[str, Any], tools: dict[str, str], commands: dict[str, str],
                   executables: list[str], smoke: dict[str, Any], build_seconds: float,
                   commit: str | None, image: dict[str, Any] | None = None,
                   toolchain: Toolchain | None = None, app: dict[str, Any] | None = None,
                   device_checks: list[dict[str, Any]] | None = None,
                   reproducible: dict[str, Any] | None = None) -> dict[str, Any]:
    files, links = scan(folder, skip=(MANIFEST_NAME, *([image["path"]] if image else [])))
    return {
        "schema": SCHEMA,
        "profile": profile["name"],
        "resolved_profile": profile,
        "backend": profile["backend"],
        "layout": profile["layout"],
        "multicall": profile["multicall"],
        "tools": tools,
        # The freezer's Python: the runtime the artifact carries (a toolchain says when it is not ours).
        "python": (toolchain.facts.get("python") if toolchain else None) or platform.python_version(),
        "python_implementation": sys.implementation.name,
        "platform": sys.platform,
        "machine": platform.machine(),
        # The artifact's architecture and how it was made (a Debian root, a size-built runtime).
        "target": toolchain.target if toolchain else host_architecture(),
        "toolchain": dict(toolchain.facts) if toolchain else {},
        "commands": commands,
        "executables": executables,
        # The application as it declared itself, and the checks `flash` runs on a device after an install.
        "app": app,
        "device_checks": device_checks or [],
        "files": [vars(f) for f in files],
        "links": [vars(link) for link in links],
        "total_bytes": sum(f.size for f in files),
        "image": image,
        "smoke": smoke,
        "build_seconds": round(build_seconds, 2),
        "git_commit": commit,
        # What besides sources and tools decides the bytes: the same values rebuild them exactly.
        "reproducible": reproducible or {},
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    path = folder / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


# ---- the one strict reader (flash, sweep and bloat all read manifests through it) ----

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, kw_only=True)
class DeviceCheck:
    """A declared check `flash` runs on the device: argv[0] relative to the artifact folder."""

    label: str
    argv: tuple[str, ...]
    exit: int
    output: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """A manifest whose every field this version uses was checked: paths normalised, relative and
    inside the artifact; names plain; sizes, digests and the other fields of the right type."""

    doc: dict[str, Any]  # the whole document, as reports embed it
    profile: str
    machine: str
    target: str  # the artifact's architecture (older manifests: the build machine's)
    files: tuple[FileEntry, ...]
    links: tuple[LinkEntry, ...]
    commands: tuple[tuple[str, str], ...]  # (command, path relative to the artifact folder), by name
    executables: tuple[str, ...]
    image: FileEntry | None
    device_checks: tuple[DeviceCheck, ...] = ()

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def payload(self) -> tuple[FileEntry, ...]:
        """Every regular file the artifact folder holds besides manifest.json: the artifact's
        files, then the image if there is one."""
        return self.files + ((self.image,) if self.image else ())

    @property
    def payload_bytes(self) -> int:
        return sum(e.size for e in self.payload)

    @property
    def dirs(self) -> tuple[str, ...]:
        """Folders inside the artifact folder, parents before children."""
        found: set[str] = set()
        for path in [e.path for e in self.payload] + [link.path for link in self.links]:
            found.update(str(p) for p in PurePosixPath(path).parents if str(p) != ".")
        return tuple(sorted(found, key=lambda d: (d.count("/"), d)))


def parse_manifest(data: bytes, *, origin: str) -> Manifest:
    """Check a manifest (schema slimfreeze.manifest/1); ArtifactError names what is wrong (pure).

    Every path must be a normalised relative path that stays inside the artifact: the manifest
    decides which files are read, run, and written onto a device."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{origin} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ArtifactError(f"{origin} is not a JSON object")
    if doc.get("schema") != SCHEMA:
        raise ArtifactError(f"{origin}: unknown manifest schema {doc.get('schema')!r} (expected {SCHEMA})")

    def fail(what: str) -> ArtifactError:
        return ArtifactError(f"{origin}: {what}")

    profile, machine = doc.get("profile"), doc.get("machine")
    if not is_plain_name(profile) or not isinstance(machine, str):
        raise fail("'profile' must be a plain name and 'machine' a string")
    files = tuple(_file_entry(item, f"files[{i}]", fail) for i, item in enumerate(_list(doc, "files", fail)))
    links = tuple(_link_entry(item, f"links[{i}]", fail) for i, item in enumerate(_list(doc, "links", fail)))
    image_doc = doc.get("image")
    image = None if image_doc is None else _file_entry(image_doc, "image", fail)
    _check_unique([e.path for e in files] + [link.path for link in links] + ([image.path] if image else []), fail)
    commands_doc = doc.get("commands")
    if not isinstance(commands_doc, dict):
        raise fail("'commands' must be an object")
    for name in commands_doc:
        if not is_plain_name(name):
            raise fail(f"command {name!r} is not a plain name")
    commands = tuple(sorted((name, _safe_path(path, f"commands.{name}", fail)) for name, path in commands_doc.items()))
    executables = tuple(_safe_path(p, f"executables[{i}]", fail) for i, p in enumerate(_list(doc, "executables", fail)))
    file_paths, link_paths = {e.path for e in files}, {link.path for link in links}
    for name, path in commands:
        if path not in file_paths and path not in link_paths:
            raise fail(f"command {name!r} runs {path!r}, which is neither a listed file nor a link")
    for path in executables:
        if path not in file_paths:
            raise fail(f"executable {path!r} is not a listed file")
    target = doc.get("target", ALIASES.get(machine, machine))
    if not isinstance(target, str):
        raise fail("'target' must be a string")
    _check_types(doc, fail)
    checks = tuple(_device_check(item, f"device_checks[{i}]", fail, file_paths | link_paths)
                   for i, item in enumerate(doc.get("device_checks") or []))
    return Manifest(doc=doc, profile=profile, machine=machine, target=target, files=files, links=links,
                    commands=commands, executables=executables, image=image, device_checks=checks)


def _device_check(item: Any, where: str, fail: Callable[[str], ArtifactError], runnable: set[str]) -> DeviceCheck:
    label, argv, code, output = item["label"], item["argv"], item["exit"], item["output"]  # types: _OPTIONAL
    if not argv:
        raise fail(f"{where}.argv is empty")
    program = _safe_path(argv[0], f"{where}.argv[0]", fail)
    if program not in runnable:
        raise fail(f"{where} runs {program!r}, which is neither a listed file nor a link")
    for pattern in output:
        try:
            re.compile(pattern)
        except re.error:
            raise fail(f"{where}.output: {pattern!r} is not a regular expression") from None
    return DeviceCheck(label=label, argv=(program, *argv[1:]), exit=code, output=tuple(output))


def load_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{folder}: no {MANIFEST_NAME}; build the profile first") from None
    except OSError as err:
        raise ArtifactError(f"{path}: not a readable manifest ({err.strerror})") from None
    return parse_manifest(data, origin=str(path))


def read_manifest(folder: Path) -> dict[str, Any]:
    """The checked manifest of a dist folder as its document (see parse_manifest)."""
    return load_manifest(folder).doc


def inside(folder: Path, rel: str) -> Path:
    """`folder / rel`, if no symlinked parent folder takes it elsewhere; else ArtifactError."""
    path = folder / rel
    real_folder = os.path.realpath(folder)
    if os.path.commonpath([real_folder, os.path.realpath(path.parent)]) != real_folder:
        raise ArtifactError(f"{folder / MANIFEST_NAME} lists {rel!r}, whose folder is a link out of {folder}")
    return path


# Fields used beside the file lists (sweep, reports): a kind each; absent is allowed (older builds).
_OPTIONAL = {"total_bytes": COUNT, "build_seconds": NUMBER, "resolved_profile": OBJECT, "tools": OBJECT,
             "toolchain": OBJECT, "smoke": OBJECT, "python": TEXT, "backend": TEXT, "layout": TEXT, "multicall": FLAG,
             "git_commit": TEXT, "created": TEXT, "app": OBJECT, "reproducible": OBJECT,
             "image": shape({"format": TEXT, "compressor": TEXT, "block_size": COUNT}),
             # The app's `device = true` scenarios, for flash (paths checked in _device_check).
             "device_checks": list_of(shape({"label": TEXT.needed(), "argv": list_of(TEXT).needed(),
                                             "exit": COUNT.needed(), "output": list_of(TEXT).needed()}))}


def _check_types(doc: dict[str, Any], fail: Fail) -> None:
    jsonshape.check(doc, _OPTIONAL, "", fail)
    total = doc.get("total_bytes")
    if total is not None and total != sum(entry["size"] for entry in doc["files"]):
        raise fail(f"'total_bytes' {total:,} is not the sum of the files' sizes")


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
    if not isinstance(target, str) or not target or target.startswith("/") or "\0" in target:
        raise fail(f"{where}.target must be a relative path")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if resolved == ".." or resolved.startswith("../"):
        raise fail(f"{where}.target {target!r} points outside the artifact")
    return LinkEntry(path=path, target=target)


def _safe_path(value: object, where: str, fail: Fail) -> str:
    if not isinstance(value, str) or not value:
        raise fail(f"{where} must be a non-empty path")
    pure = PurePosixPath(value)
    if pure.is_absolute() or str(pure) != value or ".." in pure.parts or value == "." or "\0" in value:
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
