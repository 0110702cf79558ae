"""dist/<profile>/manifest.json: what was built, from what, and proof that it works.

Only relative paths and versions go in: nothing about the build machine's folders or secrets.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import stat
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from build import proc
from build.errors import ArtifactError
from build.toolchain import Toolchain, host_architecture

SCHEMA = "slimfreeze.manifest/1"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True, kw_only=True)
class FileEntry:
    path: str
    size: int
    sha256: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def scan(folder: Path, *, skip: tuple[str, ...] = (MANIFEST_NAME,)) -> tuple[list[FileEntry], list[dict[str, str]]]:
    """Every regular file (size, sha256) and every symlink under `folder`, sorted by path."""
    files, links = [], []
    for root, dirs, names in os.walk(folder):
        for name in sorted(dirs + names):
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                links.append({"path": rel, "target": os.readlink(path)})
            elif path.is_file() and rel not in skip:
                files.append(FileEntry(path=rel, size=path.stat().st_size, sha256=sha256_of(path)))
    files.sort(key=lambda f: f.path)
    links.sort(key=lambda link: link["path"])
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
                   toolchain: Toolchain | None = None) -> dict[str, Any]:
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
        "files": [vars(f) for f in files],
        "links": links,
        "total_bytes": sum(f.size for f in files),
        "image": image,
        "smoke": smoke,
        "build_seconds": round(build_seconds, 2),
        "git_commit": commit,
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    path = folder / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{folder}: no {MANIFEST_NAME}; build the profile first") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{path}: not a readable manifest ({err})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ArtifactError(f"{path}: unknown manifest schema {data.get('schema') if isinstance(data, dict) else None!r} "
                            f"(expected {SCHEMA})")
    return data
