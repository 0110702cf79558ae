"""Patches from one released build to the next: `build.py delta OLD NEW`, applied by `flash --patch`.

A patch rebuilds NEW's dist folder from OLD's, file by file. A file at the same path with the same
sha256 is copied and not even listed; one OLD holds under another path is copied from there; a
changed one is a `zstd --patch-from` delta against OLD's file of the same path (the image too);
anything else is carried whole, zstd-compressed. NEW's manifest travels as a delta against OLD's
(most of its lines, every unchanged file's sha256, are OLD's), with NEW's signature if NEW was
signed; the rebuilt manifest must have the sha256 the header names, and every rebuilt file the
sha256 that manifest names, before a device switches to it.

The patch file is an uncompressed tar (its members are compressed already) holding `patch.json`
(the sha256 of both ends, their manifests and images, and the listed files), then the blobs. Its
reader takes members by name into memory and never extracts the archive, so a crafted patch cannot
write outside where it is applied.
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
from pathlib import Path
from typing import Any

from build import proc
from build.errors import ArtifactError
from build.manifest import MANIFEST_NAME, Manifest, inside, load_manifest, parse_manifest, sha256_of
from build.update.signing import SUFFIX

SCHEMA = "slimfreeze.patch/1"
HEADER = "patch.json"
MANIFEST_BLOB = "blobs/manifest.zst"
ZSTD_LEVEL = "19"
TOOL_TIMEOUT = 600.0
_BLOB = re.compile(r"blobs/([0-9]+|manifest)\.zst")
_SHA256 = re.compile(r"[0-9a-f]{64}")
HOW = ("copy", "delta", "full")


class PatchRefused(ArtifactError):
    """A patch that cannot be applied here: damaged, for another base, or its result is not NEW."""


@dataclass(frozen=True, kw_only=True)
class Entry:
    """A file of NEW that is not OLD's file at the same path with the same sha256."""

    path: str  # in NEW
    sha256: str  # NEW's
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
    """A patch file's header and members, read and checked (held in memory: a patch is small)."""

    old: End
    new: End
    manifest_how: str  # delta (against OLD's manifest.json) | full
    entries: tuple[Entry, ...]
    manifest_signature: bytes | None  # NEW's manifest.json.sig, if NEW was signed
    blobs: dict[str, bytes]


def _end(folder: Path, manifest: Manifest) -> End:
    return End(profile=manifest.profile, manifest_sha256=sha256_of(folder / MANIFEST_NAME),
               image_sha256=manifest.image.sha256 if manifest.image else None)


# ---- making ----------------------------------------------------------------------------------

def make_patch(old_dir: Path, new_dir: Path, out: Path, *, work: Path) -> Path:
    """Write the patch from dist folder `old_dir` to `new_dir` at `out` (through a temporary name)."""
    proc.require_tools("zstd")
    old, new = load_manifest(old_dir), load_manifest(new_dir)
    by_sha = {e.sha256: e.path for e in old.payload}
    old_entries = {e.path: e for e in old.payload}
    entries: list[dict[str, Any]] = []
    blobs: list[tuple[str, Path]] = []
    for entry in new.payload:
        source = inside(new_dir, entry.path)
        same = old_entries.get(entry.path)
        if same is not None and same.sha256 == entry.sha256:
            continue  # copied from the same path: not listed
        record = {"path": entry.path, "sha256": entry.sha256,
                  "mode": 0o755 if source.stat().st_mode & 0o111 else 0o644, "base": None, "blob": None}
        if entry.sha256 in by_sha:
            entries.append({**record, "how": "copy", "base": by_sha[entry.sha256]})
            continue
        name = f"blobs/{len(blobs)}.zst"
        how, base, chosen = _smallest(source, inside(old_dir, entry.path) if same else None, work / str(len(blobs)))
        entries.append({**record, "how": how, "base": entry.path if base else None, "blob": name})
        blobs.append((name, chosen))
    manifest_how, _, manifest_blob = _smallest(new_dir / MANIFEST_NAME, old_dir / MANIFEST_NAME, work / "manifest")
    header = {"schema": SCHEMA, "tool": "zstd", "old": vars(_end(old_dir, old)), "new": vars(_end(new_dir, new)),
              "manifest": manifest_how, "entries": entries}
    members: list[tuple[str, bytes | Path]] = [
        (HEADER, (json.dumps(header, indent=1, sort_keys=True) + "\n").encode()), (MANIFEST_BLOB, manifest_blob)]
    signature = new_dir / (MANIFEST_NAME + SUFFIX)
    if signature.is_file():
        members.append((MANIFEST_NAME + SUFFIX, signature.read_bytes()))
    members += blobs
    tmp = out.with_name(out.name + ".tmp")
    _write_tar(tmp, members)
    os.replace(tmp, out)
    return out


def _smallest(source: Path, base: Path | None, stem: Path) -> tuple[str, Path | None, Path]:
    """('full', None, blob) or ('delta', base, blob): whichever blob is smaller."""
    full = stem.with_name(stem.name + ".full.zst")
    _zstd([source, "-o", full])
    if base is None:
        return "full", None, full
    delta = stem.with_name(stem.name + ".delta.zst")
    _zstd([f"--patch-from={base}", source, "-o", delta])
    if delta.stat().st_size < full.stat().st_size:
        return "delta", base, delta
    return "full", None, full


def _zstd(args: list[str | Path]) -> None:
    # -f: the outputs are ours (a temporary folder); -q: the log stays readable.
    ran = proc.capture(["zstd", "-q", "-f", f"-{ZSTD_LEVEL}", *map(str, args)], timeout=TOOL_TIMEOUT,
                       separate_stderr=True)
    if ran.code != 0:
        raise ArtifactError(f"zstd failed ({ran.errors.strip() or 'timed out'})")


def _write_tar(path: Path, members: list[tuple[str, bytes | Path]]) -> None:
    """A tar whose bytes depend only on its members: fixed time, owner and mode; it ends with the
    two zero blocks that close an archive, without padding to tar's 10 KiB records (a small patch
    would otherwise pay up to 10,239 bytes of zeros)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            payload = data if isinstance(data, bytes) else data.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(payload), 0, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(payload))
        end = tar.offset
    path.write_bytes(buffer.getvalue()[:end + 2 * tarfile.BLOCKSIZE])


def carried(patch: Patch, new: Manifest) -> list[dict[str, Any]]:
    """What a patch carries, by file of the new build, largest share of the patch first (pure):
    how each file gets to the device and the bytes of the patch it takes."""
    listed = {e.path: e for e in patch.entries}
    rows = [{"path": MANIFEST_NAME, "new_bytes": None, "how": patch.manifest_how,
             "patch_bytes": len(patch.blobs[MANIFEST_BLOB])}]
    for wanted in new.payload:
        entry = listed.get(wanted.path)
        rows.append({"path": wanted.path, "new_bytes": wanted.size, "how": entry.how if entry else "unchanged",
                     "patch_bytes": len(patch.blobs[entry.blob]) if entry and entry.blob else 0})
    return sorted(rows, key=lambda r: (-r["patch_bytes"], r["path"]))


# ---- reading ---------------------------------------------------------------------------------

def read_patch(path: Path) -> Patch:
    """Read and check a patch file's structure; PatchRefused names what is wrong (one line)."""
    try:
        members = _members(path)
    except OSError as exc:
        raise PatchRefused(f"cannot read the patch {path}: {exc.strerror or exc}") from None
    except (tarfile.TarError, EOFError) as exc:
        raise PatchRefused(f"{path} is not a readable slimfreeze patch ({exc}); it may be truncated") from None
    try:
        header = json.loads(members[HEADER])
    except (KeyError, ValueError):
        raise PatchRefused(f"{path} has no readable {HEADER}; it is not a slimfreeze patch or is damaged") from None
    if not isinstance(header, dict) or header.get("schema") != SCHEMA:
        raise PatchRefused(f"{path}: unknown patch schema (expected {SCHEMA})")
    try:
        old, new = _read_end(header["old"]), _read_end(header["new"])
        entries = tuple(_read_entry(item) for item in header["entries"])
        manifest_how = header["manifest"]
        if manifest_how not in ("delta", "full") or len({e.path for e in entries}) != len(entries):
            raise ValueError("inconsistent entries")
    except (KeyError, TypeError, ValueError) as exc:
        raise PatchRefused(f"{path}: {HEADER} is damaged ({exc})") from None
    blobs = {k: v for k, v in members.items() if _BLOB.fullmatch(k)}
    for needed in [MANIFEST_BLOB, *(e.blob for e in entries if e.blob is not None)]:
        if needed not in blobs:
            raise PatchRefused(f"{path} lacks {needed}; it is truncated or damaged")
    return Patch(old=old, new=new, manifest_how=manifest_how, entries=entries,
                 manifest_signature=members.get(MANIFEST_NAME + SUFFIX), blobs=blobs)


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
    entry = Entry(path=doc["path"], sha256=doc["sha256"], mode=int(doc["mode"]), how=doc["how"],
                  base=doc.get("base"), blob=doc.get("blob"))
    if entry.how not in HOW or (entry.how != "full") != (entry.base is not None) \
            or (entry.how == "copy") != (entry.blob is None):
        raise ValueError(f"entry {entry.path!r} is inconsistent")
    if entry.mode not in (0o644, 0o755):
        raise ValueError(f"mode {entry.mode:o} of {entry.path!r}")
    return entry


# ---- applying --------------------------------------------------------------------------------

def apply_patch(patch: Patch, base: Path, out: Path) -> Manifest:
    """Rebuild NEW's dist folder at `out` (which must not exist) from `base`, a folder holding OLD
    (a device slot or a dist folder); every file is checked against NEW's sha256. Returns NEW's manifest."""
    proc.require_tools("zstd")
    with tempfile.TemporaryDirectory(prefix="slimfreeze-patch-") as tmp:
        work = Path(tmp)
        manifest_bytes = patched_manifest(patch, base / MANIFEST_NAME, work)
        try:
            manifest = parse_manifest(manifest_bytes, origin=f"the patched {MANIFEST_NAME}")
        except ArtifactError as exc:
            raise PatchRefused(str(exc)) from None
        listed = {e.path: e for e in patch.entries}
        if not set(listed) <= {e.path for e in manifest.payload}:
            raise PatchRefused("the patch lists files the new build does not have; it is damaged")
        out.mkdir()
        for folder in manifest.dirs:
            (out / folder).mkdir(exist_ok=True)
        for n, wanted in enumerate(manifest.payload):
            dest = out / wanted.path
            entry = listed.get(wanted.path)
            if entry is None:  # unchanged: OLD's file at the same path
                source = inside(base, wanted.path)
                shutil.copyfile(source, dest)
                mode = 0o755 if source.stat().st_mode & 0o111 else 0o644
            elif entry.how == "copy":
                shutil.copyfile(inside(base, entry.base or ""), dest)
                mode = entry.mode
            else:
                _decode(patch, entry.blob or "", inside(base, entry.base) if entry.base else None, dest, work,
                        what=entry.path, base=base)
                mode = entry.mode
            os.chmod(dest, mode)
            if (entry is not None and entry.sha256 != wanted.sha256) or sha256_of(dest) != wanted.sha256:
                raise PatchRefused(f"applying the patch to {base} gave {wanted.path} with another sha256 than the "
                                   f"new build's; the base is not {patch.old.describe()} or the patch is damaged")
    for link in manifest.links:
        os.symlink(link.target, out / link.path)
    (out / MANIFEST_NAME).write_bytes(manifest_bytes)
    if patch.manifest_signature is not None:
        (out / (MANIFEST_NAME + SUFFIX)).write_bytes(patch.manifest_signature)
    return manifest


def patched_manifest(patch: Patch, old_manifest: Path, work: Path) -> bytes:
    """NEW's manifest.json, rebuilt from OLD's, if it has the sha256 the header names."""
    data = _decode(patch, MANIFEST_BLOB, old_manifest if patch.manifest_how == "delta" else None,
                   work / MANIFEST_NAME, work, what=MANIFEST_NAME, base=old_manifest.parent).read_bytes()
    if hashlib.sha256(data).hexdigest() != patch.new.manifest_sha256:
        raise PatchRefused(f"applying the patch to {old_manifest.parent} did not give the new build's "
                           f"{MANIFEST_NAME}; the base is not {patch.old.describe()} or the patch is damaged")
    return data


def _decode(patch: Patch, blob: str, against: Path | None, dest: Path, work: Path, *, what: str, base: Path) -> Path:
    """Decompress one blob (against OLD's file, for a delta) to `dest`."""
    source = work / "blob.zst"
    source.write_bytes(patch.blobs[blob])
    args = [*([f"--patch-from={against}"] if against else []), "-d", str(source), "-o", str(dest)]
    try:
        ran = proc.capture(["zstd", "-q", "-f", *args], timeout=TOOL_TIMEOUT, separate_stderr=True)
    finally:
        source.unlink()
    if ran.code != 0:
        detail = ran.errors.strip().splitlines()[-1] if ran.errors.strip() else "zstd failed"
        raise PatchRefused(f"the patch's data for {what} does not apply to {base} ({detail})")
    return dest
