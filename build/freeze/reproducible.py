"""What makes a build's bytes depend on its commit alone, not on the checkout path, clock, umask or user.

- The freezer's Python runs with a fixed hash seed: PyInstaller orders base_library.zip by walking
  sets of module names, so a random seed gives a different entry order at every build (seen as
  41 "changed" entries between two checkouts, issue 19).
- SOURCE_DATE_EPOCH (reproducible-builds.org) is the commit's time: the image's timestamps and any
  tool that honours the variable use it instead of the clock.
- Permission bits are normalised before packing: the umask decides them otherwise, and squashfs
  stores them.
Paths inside code objects are PyInstaller's concern: it rewrites every co_filename to the module's
relative name, and the spec's absolute paths never reach the artifact.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from build import proc

HASH_SEED = "0"
GIT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Inputs:
    """The settings of a build that go into its bytes besides its sources and tools (the manifest
    records them)."""

    source_date_epoch: int
    hash_seed: str = HASH_SEED

    def env(self) -> dict[str, str]:
        return {"PYTHONHASHSEED": self.hash_seed, "SOURCE_DATE_EPOCH": str(self.source_date_epoch)}

    def to_dict(self) -> dict[str, object]:
        return {"source_date_epoch": self.source_date_epoch, "python_hash_seed": self.hash_seed}


def source_date_epoch(project_root: Path, environ: dict[str, str] | None = None) -> int:
    """SOURCE_DATE_EPOCH if the caller set it (a distribution's build), else HEAD's commit time,
    else 0 (no git: still the same at every build)."""
    environ = dict(os.environ) if environ is None else environ
    given = environ.get("SOURCE_DATE_EPOCH", "")
    if given.isdigit():
        return int(given)
    try:
        ran = proc.capture(["git", "log", "-1", "--format=%ct", "HEAD"], cwd=project_root, timeout=GIT_TIMEOUT,
                           separate_stderr=True)
    except OSError:
        return 0
    out = ran.output.strip()
    return int(out) if ran.code == 0 and out.isdigit() else 0


def inputs_for(project_root: Path) -> Inputs:
    return Inputs(source_date_epoch=source_date_epoch(project_root))


def normalise_modes(folder: Path) -> None:
    """Folders 755; files 755 if anyone may execute them, else 644; links untouched (whatever the
    umask made them)."""
    for root, dirs, files in os.walk(folder):
        os.chmod(root, 0o755)
        for name in files:
            path = os.path.join(root, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                os.chmod(path, 0o755 if info.st_mode & 0o111 else 0o644)
        dirs.sort()
