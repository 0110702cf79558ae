"""A Debian root of another architecture, made once per (architecture, package set, sources).

`mmdebstrap --mode=chrootless --variant=extract` only downloads and unpacks: no maintainer script
runs, so nothing of the target architecture has to execute while it works (8-10 s here). It is made
in a temporary folder beside its final place under the cache and renamed into place complete, with
a stamp (`.slimfreeze-root.json`) holding what it was made from and the Debian package versions it
holds; a root without its stamp is never used. A second call finds the stamp and downloads nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from build import proc
from build.errors import SlimfreezeError
from build.locks import held, held_if_free
from build.paths import remove_tree
from build.targets.arch import Arch
from build.targets.sources import SUITE

# Bump when the way a root is made changes: a new number is a new cache key.
RECIPE = 3  # 3: the size runtime's headers and libraries, library links made relative
# What the freezer needs to run: Python with venv and pip; binutils for PyInstaller's strip and
# objcopy (the target's own); bash, coreutils and dash for the shell scripts tools call (ldd).
RUN_PACKAGES = ("python3.11", "python3.11-venv", "libpython3.11", "python3-pip", "zlib1g", "binutils",
                "libc-bin", "bash", "coreutils", "dash")
# What compiles C in the root: PyInstaller's bootloader on armhf (PyPI has no armv7l wheel of it),
# Nuitka's generated C, and any sdist pip has to build; patchelf is Nuitka's standalone mode's.
COMPILE_PACKAGES = ("gcc", "libc6-dev", "python3.11-dev", "zlib1g-dev", "patchelf")
# The root is the sysroot the size runtime is cross-compiled against (build/runtime/cross.py): the
# headers and libraries of what its ssl, hashlib, ctypes and sqlite3 modules link.
SYSROOT_PACKAGES = ("libssl-dev", "libffi-dev", "libsqlite3-dev")
# Nuitka's upx plugin runs `upx` where Nuitka runs: the host's (backports) upx cannot run in the
# guest, so the root has bookworm's own.
NUITKA_PACKAGES = ("upx-ucl",)
# Links Debian's maintainer scripts would make (update-alternatives), which extract mode never runs:
# link -> target, both inside the root; made only where the target is there and the link is not.
ALTERNATIVES = {"usr/bin/upx": "upx-ucl", "usr/bin/cc": "gcc"}
STAMP = ".slimfreeze-root.json"
ARCHIVES = Path("var/cache/apt/archives")
# A root with a compiler is ~450 MB unpacked, its venv ~150 MB; below this, stop before starting.
MIN_FREE_BYTES = 1536 * 1024 * 1024
MAKE_TIMEOUT = 1800.0
# Runs inside a fresh root through the launcher (argv prefix); see make_root.
Launch = Callable[[Path], Sequence[str]]


class RootFailed(SlimfreezeError):
    """A target root could not be made; the message says why."""


@dataclass(frozen=True, kw_only=True)
class RootSpec:
    """Everything that determines a root's content: its cache key."""

    arch: Arch
    packages: tuple[str, ...]
    sources: str  # deb822 text (build.targets.sources)

    @property
    def key(self) -> str:
        recipe = {"recipe": RECIPE, "arch": self.arch.debian, "suite": SUITE,
                  "packages": sorted(set(self.packages)), "sources": self.sources}
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        return f"{self.arch.name}-{self.key}"


@dataclass(frozen=True, kw_only=True)
class Root:
    path: Path
    spec: RootSpec
    packages: Mapping[str, str]  # every Debian package in the root -> its version


def default_packages() -> tuple[str, ...]:
    """One package set for every architecture and both backends: one root per architecture."""
    return tuple(sorted({*RUN_PACKAGES, *COMPILE_PACKAGES, *SYSROOT_PACKAGES, *NUITKA_PACKAGES}))


_DEB = re.compile(r"^(?P<name>[^_]+)_(?P<version>[^_]+)_(?P<arch>[^_]+)\.deb$")


def deb_versions(filenames: Sequence[str]) -> dict[str, str]:
    """{package: version} from apt's archive file names (`name_version_arch.deb`, ':' as %3a)."""
    found = {}
    for filename in filenames:
        match = _DEB.match(filename)
        if match:
            found[match["name"]] = unquote(match["version"])
    return dict(sorted(found.items()))


def relative_library_links(root: Path, triplet: str) -> int:
    """Make the root's absolute library links (`usr/lib/<triplet>/libm.so -> /lib/<triplet>/libm.so.6`)
    relative, so they resolve inside the root when it is a cross compiler's sysroot too. Absolute,
    the linker follows them to this machine's /lib, finds nothing and links `libm.a` statically
    instead (a math module with unresolvable `__frexp`). Inside proot both forms resolve alike.
    Returns how many links it changed."""
    changed = 0
    folder = root / "usr" / "lib" / triplet
    for link in sorted(folder.iterdir()) if folder.is_dir() else ():
        if link.is_symlink() and (target := os.readlink(link)).startswith("/"):
            relative = os.path.relpath(root / target.lstrip("/"), link.parent)
            link.unlink()
            link.symlink_to(relative)
            changed += 1
    return changed


def failure_reason(output: str) -> str:
    """The line of mmdebstrap's output that says why it failed (apt's first `E:`), else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if any("No space left on device" in line for line in lines):
        return "no space left on device"
    errors = [line for line in lines if line.startswith("E: ") and "mmdebstrap failed" not in line]
    return errors[0] if errors else (lines[-1] if lines else "no output")


def mmdebstrap_argv(spec: RootSpec, target: Path, sources_file: Path) -> list[str]:
    # --skip=cleanup/apt/cache keeps the downloaded .debs until we have read their versions.
    return ["mmdebstrap", "--mode=chrootless", "--variant=extract", f"--arch={spec.arch.debian}",
            f"--include={','.join(sorted(set(spec.packages)))}", "--skip=cleanup/apt/cache",
            SUITE, str(target), str(sources_file)]


def read_stamp(path: Path, spec: RootSpec) -> Root | None:
    try:
        stamp = json.loads((path / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if stamp.get("key") != spec.key or not isinstance(stamp.get("packages"), dict):
        return None
    return Root(path=path, spec=spec, packages=stamp["packages"])


def make_root(spec: RootSpec, *, cache: Path, log: Path, deletable: Sequence[Path], launch: Launch) -> Root:
    """The root for `spec` under `cache`, made now if no complete one is there.

    `launch(root)` is the argv prefix that runs a program inside a root (proot + qemu); it runs the
    root's ldconfig and checks its python3.11 starts before the root is renamed into place.
    """
    final = cache / spec.name
    found = read_stamp(final, spec)
    if found:
        return found
    with held(cache / f".{spec.name}.lock"):
        found = read_stamp(final, spec)  # made by another build while we waited
        if found:
            return found
        if final.exists():  # no valid stamp: left by an older recipe's interrupted rename
            remove_tree(final, deletable)
        partial = cache / f".{spec.name}.partial"
        sources_file = cache / f".{spec.name}.sources"
        remove_tree(partial, deletable)  # our own leftover from a killed run (we hold the lock)
        try:
            _make(spec, partial, sources_file, cache, log, launch, deletable)
            os.rename(partial, final)
        finally:
            remove_tree(partial, deletable)
            remove_tree(sources_file, deletable)
    prune_replaced(cache, spec, deletable)
    made = read_stamp(final, spec)
    assert made is not None, "a root renamed into place has its stamp"
    return made


def prune_replaced(cache: Path, spec: RootSpec, deletable: Sequence[Path]) -> list[str]:
    """Delete the complete roots of `spec`'s architecture that another spec made (an older recipe or
    package set: about 0.5-1 GB each, which this code never uses again), unless one is being made
    now (its lock is held). Returns the names deleted."""
    pruned = []
    for other in sorted(cache.glob(f"{spec.arch.name}-*")):
        try:
            stamp = json.loads((other / STAMP).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not a root we made, or not complete: never ours to judge
        if not isinstance(stamp, dict) or stamp.get("key") == spec.key or other.name == spec.name:
            continue
        with held_if_free(cache / f".{other.name}.lock") as free:
            if free:
                remove_tree(other, deletable)
                pruned.append(other.name)
    return pruned


def _make(spec: RootSpec, partial: Path, sources_file: Path, cache: Path, log: Path, launch: Launch,
          deletable: Sequence[Path]) -> None:
    what = f"the {spec.arch.name} ({spec.arch.debian}) Debian root"
    free = shutil.disk_usage(cache).free
    if free < MIN_FREE_BYTES:
        raise RootFailed(f"cannot make {what}: only {free / 2**20:.0f} MiB free in {cache}, it needs about "
                         f"{MIN_FREE_BYTES / 2**20:.0f} MiB; free some space and retry")
    sources_file.write_text(spec.sources, encoding="utf-8")
    start = log.stat().st_size if log.exists() else 0
    ran = proc.run(mmdebstrap_argv(spec, partial, sources_file), log=log, timeout=MAKE_TIMEOUT, check=False)
    if ran.returncode != 0:
        with log.open("rb") as stream:
            stream.seek(start)
            output = stream.read().decode(errors="replace")
        raise RootFailed(f"cannot make {what}: mmdebstrap: {failure_reason(output)} (whole output in {log})")
    debs = sorted((partial / ARCHIVES).glob("*.deb"))
    packages = deb_versions([deb.name for deb in debs])
    for deb in debs:
        remove_tree(deb, deletable)
    relative_library_links(partial, spec.arch.triplet)
    for link, target in ALTERNATIVES.items():
        path = partial / link
        if (path.parent / target).exists() and not path.is_symlink() and not path.exists():
            path.symlink_to(target)
    # The loader cache PyInstaller asks for (`ldconfig -p`); extract mode runs no trigger to make it.
    proc.run([*launch(partial), "/sbin/ldconfig"], log=log, timeout=300)
    check = proc.run([*launch(partial), "/usr/bin/python3.11", "-c", "import ssl, zlib, venv"], log=log,
                     timeout=300, check=False)
    if check.returncode != 0:
        raise RootFailed(f"cannot use {what}: its python3.11 does not start under {spec.arch.qemu} "
                         f"(whole output in {log})")
    stamp = {"key": spec.key, "recipe": RECIPE, "architecture": spec.arch.name, "debian_arch": spec.arch.debian,
             "suite": SUITE, "requested": sorted(set(spec.packages)), "sources": spec.sources,
             "packages": packages}
    (partial / STAMP).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", encoding="utf-8")
