"""Patches from one released build to the next: `build.py delta OLD NEW`, applied by `flash --patch`.

A patch rebuilds NEW's dist folder from OLD's, file by file: a file OLD already holds (same
sha256, any path) is copied; a changed one is a `zstd --patch-from` delta against OLD's file of
the same path (the image too); anything else is carried whole, zstd-compressed. NEW's manifest
(and its signature, if NEW was signed) travel in the patch, so the result is checked against
NEW's sha256s before a device switches to it.

The patch file is an uncompressed tar (its members are compressed already) holding `patch.json`
first, then `manifest.json`, `manifest.json.sig` and `blobs/<n>.zst`. `patch.json` names the sha256
of both ends (their manifests and images). Its reader takes members by name into memory and
never extracts the archive, so a crafted patch cannot write outside where it is applied.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from build import proc
from build.errors import ArtifactError
from build.manifest import MANIFEST_NAME, Manifest, inside, load_manifest, parse_manifest, sha256_of
from build.update.signing import SUFFIX

SCHEMA = "slimfreeze.patch/1"
HEADER = "patch.json"
ZSTD_LEVEL = "19"
TOOL_TIMEOUT = 600.0
_BLOB = re.compile(r"blobs/[0-9]+\.zst")
_SHA256 = re.compile(r"[0-9a-f]{64}")
HOW = ("copy", "delta", "full")


class PatchRefused(ArtifactError):
    """A patch that cannot be applied here: damaged, for another base, or its result is not NEW."""


@dataclass(frozen=True, kw_only=True)
class Entry:
    path: str  # in NEW
    sha256: str  # NEW's
    size: int
    mode: int
    how: str  # copy | delta | full
    base: str | None  # OLD's file the bytes come from (copy, delta)
    blob: str | None  # the member holding them (delta, full)


@dataclass(frozen=True, kw_only=True)
class End:
    profile: str
    manifest_sha256: str
    image_sha256: str | None

    def describe(self) -> str:
        return f"{self.profile} (manifest {self.manifest_sha256[:12]})"


@dataclass(frozen=True, kw_only=True)
class Patch:
    """A patch file's header and members, read and checked (members held in memory: a patch is small)."""

    old: End
    new: End
    entries: tuple[Entry, ...]
    manifest_bytes: bytes  # NEW's manifest.json, verbatim
    manifest_signature: bytes | None
    blobs: dict[str, bytes]

    @property
    def manifest(self) -> Manifest:
        return parse_manifest(self.manifest_bytes, origin=f"the patch's {MANIFEST_NAME}")


def _end(folder: Path, manifest: Manifest) -> End:
    return End(profile=manifest.profile, manifest_sha256=sha256_of(folder / MANIFEST_NAME),
               image_sha256=manifest.image.sha256 if manifest.image else None)


# ---- making ----------------------------------------------------------------------------------

def make_patch(old_dir: Path, new_dir: Path, out: Path, *, work: Path) -> Path:
    """Write the patch from dist folder `old_dir` to `new_dir` at `out` (through a temporary name)."""
    proc.require_tools("zstd")
    old, new = load_manifest(old_dir), load_manifest(new_dir)
    by_sha = {e.sha256: e.path for e in old.payload}
    old_paths = {e.path for e in old.payload}
    entries: list[dict[str, Any]] = []
    blobs: list[tuple[str, Path]] = []
    for entry in new.payload:
        source = inside(new_dir, entry.path)
        mode = 0o755 if source.stat().st_mode & 0o111 else 0o644
        record = {"path": entry.path, "sha256": entry.sha256, "size": entry.size, "mode": mode,
                  "base": None, "blob": None}
        if entry.sha256 in by_sha:
            entries.append({**record, "how": "copy", "base": by_sha[entry.sha256]})
            continue
        name = f"blobs/{len(blobs)}.zst"
        full = work / f"{len(blobs)}.full.zst"
        _zstd([source, "-o", full])
        chosen, how, base = full, "full", None
        if entry.path in old_paths:
            delta = work / f"{len(blobs)}.delta.zst"
            _zstd([f"--patch-from={inside(old_dir, entry.path)}", source, "-o", delta])
            if delta.stat().st_size < full.stat().st_size:
                chosen, how, base = delta, "delta", entry.path
        entries.append({**record, "how": how, "base": base, "blob": name})
        blobs.append((name, chosen))
    header = {"schema": SCHEMA, "tool": "zstd", "old": vars(_end(old_dir, old)), "new": vars(_end(new_dir, new)),
              "entries": entries}
    members: list[tuple[str, bytes | Path]] = [
        (HEADER, (json.dumps(header, indent=2, sort_keys=True) + "\n").encode()),
        (MANIFEST_NAME, (new_dir / MANIFEST_NAME).read_bytes())]
    signature = new_dir / (MANIFEST_NAME + SUFFIX)
    if signature.is_file():
        members.append((MANIFEST_NAME + SUFFIX, signature.read_bytes()))
    members += blobs
    tmp = out.with_name(out.name + ".tmp")
    _write_tar(tmp, members)
    os.replace(tmp, out)
    return out


def _zstd(args: list[str | Path]) -> None:
    # -f: the outputs are ours (work folder); --no-progress, -q: the log stays readable.
    ran = proc.capture(["zstd", "-q", "-f", f"-{ZSTD_LEVEL}", *map(str, args)], timeout=TOOL_TIMEOUT,
                       separate_stderr=True)
    if ran.code != 0:
        raise ArtifactError(f"zstd failed ({ran.errors.strip() or 'timed out'})")


def _write_tar(path: Path, members: list[tuple[str, bytes | Path]]) -> None:
    """A tar whose bytes depend only on its members: fixed time, owner and mode."""
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            payload = data if isinstance(data, bytes) else data.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(payload), 0, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(payload))


# ---- reading ---------------------------------------------------------------------------------

def read_patch(path: Path) -> Patch:
    """Read and check a patch file; PatchRefused names what is wrong (one line)."""
    try:
        members = _members(path)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise PatchRefused(f"{path} is not a readable slimfreeze patch ({exc}); it may be truncated") from None
    try:
        header = json.loads(members[HEADER])
    except (KeyError, ValueError):
        raise PatchRefused(f"{path} has no readable {HEADER}; it is not a slimfreeze patch or is damaged") from None
    if not isinstance(header, dict) or header.get("schema") != SCHEMA:
        raise PatchRefused(f"{path}: unknown patch schema (expected {SCHEMA})")
    if MANIFEST_NAME not in members:
        raise PatchRefused(f"{path} does not carry the new build's {MANIFEST_NAME}; it is damaged")
    try:
        old, new = _read_end(header["old"]), _read_end(header["new"])
        entries = tuple(_read_entry(item) for item in header["entries"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PatchRefused(f"{path}: {HEADER} is damaged ({exc})") from None
    manifest_bytes = members[MANIFEST_NAME]
    if hashlib.sha256(manifest_bytes).hexdigest() != new.manifest_sha256:
        raise PatchRefused(f"{path}: the {MANIFEST_NAME} it carries is not the one its header names; it is damaged")
    patch = Patch(old=old, new=new, entries=entries, manifest_bytes=manifest_bytes,
                  manifest_signature=members.get(MANIFEST_NAME + SUFFIX),
                  blobs={k: v for k, v in members.items() if _BLOB.fullmatch(k)})
    try:
        manifest = patch.manifest
    except ArtifactError as exc:
        raise PatchRefused(f"{path}: {exc}") from None
    if sorted(e.path for e in entries) != sorted(e.path for e in manifest.payload):
        raise PatchRefused(f"{path}: its entries are not the new build's files; it is damaged")
    for entry in entries:
        if entry.blob is not None and entry.blob not in patch.blobs:
            raise PatchRefused(f"{path} lacks {entry.blob} for {entry.path}; it is truncated or damaged")
    return patch


def _members(path: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    with tarfile.open(path, "r:") as tar:
        for info in tar:
            if not info.isfile():
                raise tarfile.TarError(f"member {info.name!r} is not a regular file")
            stream = tar.extractfile(info)
            assert stream is not None  # a regular file always has one
            data = stream.read()
            if len(data) != info.size:
                raise EOFError(f"member {info.name!r} is cut short")
            found[info.name] = data
    return found


def _read_end(doc: dict[str, Any]) -> End:
    image = doc.get("image_sha256")
    if not _SHA256.fullmatch(doc["manifest_sha256"]) or (image is not None and not _SHA256.fullmatch(image)):
        raise ValueError("a sha256 is not 64 hex digits")
    return End(profile=str(doc["profile"]), manifest_sha256=doc["manifest_sha256"], image_sha256=image)


def _read_entry(doc: dict[str, Any]) -> Entry:
    entry = Entry(path=doc["path"], sha256=doc["sha256"], size=int(doc["size"]), mode=int(doc["mode"]),
                  how=doc["how"], base=doc.get("base"), blob=doc.get("blob"))
    if entry.how not in HOW or (entry.how != "full") != (entry.base is not None) \
            or (entry.how == "copy") != (entry.blob is None):
        raise ValueError(f"entry {entry.path!r} is inconsistent")
    for rel in (entry.path, entry.base):
        if rel is not None and (PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts):
            raise ValueError(f"path {rel!r} leaves the folder")
    if entry.mode not in (0o644, 0o755):
        raise ValueError(f"mode {entry.mode:o} of {entry.path!r}")
    return entry


# ---- applying --------------------------------------------------------------------------------

def apply_patch(patch: Patch, base: Path, out: Path) -> None:
    """Rebuild NEW's dist folder at `out` (which must not exist) from `base`, a folder holding OLD
    (a device slot or a dist folder), and check every file against NEW's sha256."""
    proc.require_tools("zstd")
    manifest = patch.manifest
    out.mkdir()
    for folder in manifest.dirs:
        (out / folder).mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="slimfreeze-patch-") as tmp:
        for n, entry in enumerate(patch.entries):
            dest = out / entry.path
            if entry.how == "copy":
                shutil.copyfile(inside(base, entry.base or ""), dest)
            else:
                blob = Path(tmp) / f"{n}.zst"
                blob.write_bytes(patch.blobs[entry.blob or ""])
                args: list[str | Path] = ["-d", blob, "-o", dest]
                if entry.how == "delta":
                    args.insert(0, f"--patch-from={inside(base, entry.base or '')}")
                ran = proc.capture(["zstd", "-q", "-f", *map(str, args)], timeout=TOOL_TIMEOUT, separate_stderr=True)
                if ran.code != 0:
                    raise PatchRefused(f"the patch's delta for {entry.path} does not apply to {base} "
                                       f"({ran.errors.strip().splitlines()[-1] if ran.errors.strip() else 'zstd failed'})")
            os.chmod(dest, entry.mode)
            if sha256_of(dest) != entry.sha256:
                raise PatchRefused(f"applying the patch to {base} gave {entry.path} with another sha256 than the "
                                   f"new build's; the base is not {patch.old.describe()} or the patch is damaged")
    for link in manifest.links:
        os.symlink(link.target, out / link.path)
    (out / MANIFEST_NAME).write_bytes(patch.manifest_bytes)
    if patch.manifest_signature is not None:
        (out / (MANIFEST_NAME + SUFFIX)).write_bytes(patch.manifest_signature)
