"""Debian's python3.11 source package: a deb-src entry, the download, the .dsc checksums, the unpack.

Trust: apt fetches the .dsc only after checking it against the Sources index, whose hash is in the
Release file signed by the Debian archive key (the entry keeps the machine's own `Signed-By`). The
.dsc then vouches for the tarballs by their SHA-256; we check those ourselves before dpkg-source
unpacks anything, so a tampered or truncated tarball in the cache stops the build.

The deb-src entry is derived from the machine's own Debian entry exactly as scripts/install.sh
derives bookworm-backports: the first deb822 stanza (or one-line `deb` entry) that names the plain
release, with `Types: deb-src` and only that release; no mirror address is written into the
repository.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from build import proc
from build.apt_sources import deb822_sources, one_line, one_line_sources
from build.deb822 import signed_stanza
from build.errors import CommandFailed, SlimfreezeError
from build.locks import exclusive
from build.manifest import sha256_of
from build.paths import remove_tree
from build.project import Project
from build.runtime.flags import SOURCE_PACKAGE

APT_SOURCES = Path("/etc/apt/sources.list.d")
APT_SOURCES_LIST = Path("/etc/apt/sources.list")
DEB_SRC_NAME = "slimfreeze-deb-src"
# The one tree we unpack into (work/.cache/runtime/src/<this>/), with the verified .dsc beside it.
TREE = "tree"


class RuntimeSourceError(SlimfreezeError):
    """The runtime's source could not be obtained or did not verify."""


# --- deriving the deb-src entry (pure) -------------------------------------------------------

def has_deb_src(deb822: Iterable[str], one_line: str | None) -> bool:
    """Whether any enabled entry already offers source packages."""
    entries = [e for text in deb822 for e in deb822_sources(text)] + one_line_sources(one_line or "")
    return any("deb-src" in e.types and e.enabled for e in entries)


def deb_src_from_deb822(text: str, release: str) -> str | None:
    """A deb-src stanza from the first stanza whose Suites name plain `release`, or None."""
    for entry in deb822_sources(text):
        if "deb" in entry.types and release in entry.suites and entry.enabled:
            out = {**dict(entry.fields), "Types": "deb-src", "Suites": release}
            return "".join(f"{k}: {v}\n" for k, v in out.items())
    return None


def deb_src_from_one_line(text: str, release: str) -> str | None:
    """`deb [options] URI release components` -> the same as `deb-src`, or None."""
    for entry in one_line_sources(text):
        if entry.types == ("deb",) and entry.suites == (release,):
            return one_line(entry, "deb-src")
    return None


@dataclass(frozen=True, kw_only=True)
class DebSrcEntry:
    path: Path
    text: str


def derive_deb_src(deb822: Mapping[Path, str], one_line: str | None, release: str,
                   folder: Path = APT_SOURCES) -> DebSrcEntry | None:
    """The entry to write, from the first .sources file that has one (sorted by name), else from
    sources.list; None when the machine has no Debian `release` entry to start from."""
    for path in sorted(deb822):
        text = deb_src_from_deb822(deb822[path], release)
        if text:
            return DebSrcEntry(path=folder / f"{DEB_SRC_NAME}.sources", text=text)
    if one_line is not None:
        text = deb_src_from_one_line(one_line, release)
        if text:
            return DebSrcEntry(path=folder / f"{DEB_SRC_NAME}.list", text=text)
    return None


# --- checking the .dsc (pure but for reading the files) --------------------------------------

@dataclass(frozen=True, kw_only=True)
class Dsc:
    source: str
    version: str
    files: tuple[tuple[str, int, str], ...]  # (name, size, sha256)


def parse_dsc(text: str) -> Dsc:
    """The fields we need from a (possibly clear-signed) .dsc."""
    fields = signed_stanza(text)  # a truncated signed .dsc has no fields: the clear error below
    files = []
    for line in fields.get("Checksums-Sha256", "").splitlines():
        words = line.split()
        if len(words) == 3 and re.fullmatch(r"[0-9a-f]{64}", words[0]) and words[1].isdigit():
            files.append((words[2], int(words[1]), words[0]))
    if not fields.get("Source") or not fields.get("Version") or not files:
        raise RuntimeSourceError("checking the runtime's source: the .dsc has no Source, Version or "
                                 "Checksums-Sha256 field")
    return Dsc(source=fields["Source"], version=fields["Version"], files=tuple(files))


def verify_dsc(dsc_path: Path) -> Dsc:
    """Check every file the .dsc lists against its size and SHA-256; RuntimeSourceError on the first
    that is missing or differs."""
    dsc = parse_dsc(dsc_path.read_text(encoding="utf-8", errors="replace"))
    for name, size, sha in dsc.files:
        path = dsc_path.parent / name
        if "/" in name or not path.is_file():
            raise RuntimeSourceError(f"checking the runtime's source: {name} (listed in {dsc_path.name}) is missing")
        if path.stat().st_size != size or sha256_of(path) != sha:
            raise RuntimeSourceError(f"checking the runtime's source: {path} does not match the SHA-256 in "
                                     f"{dsc_path.name} (checksum mismatch); delete {path.parent} to download again")
    return dsc


# --- the I/O ---------------------------------------------------------------------------------

def debian_release(os_release: Path = Path("/etc/os-release")) -> str:
    try:
        text = os_release.read_text()
    except OSError:
        text = ""
    match = re.search(r"^VERSION_CODENAME=\"?([a-z]+)\"?$", text, re.MULTILINE)
    if not match:
        raise RuntimeSourceError("getting the runtime's source: this is not Debian (no VERSION_CODENAME in "
                                 f"{os_release}); runtime = \"size\" builds from Debian's source package")
    return match.group(1)


def ensure_deb_src(log: Path, *, folder: Path = APT_SOURCES, sources_list: Path = APT_SOURCES_LIST) -> None:
    """Add a deb-src entry derived from the machine's Debian entry (unless one exists), then update."""
    deb822 = {p: p.read_text(errors="replace") for p in sorted(folder.glob("*.sources"))}
    one_line = sources_list.read_text(errors="replace") if sources_list.is_file() else None
    if has_deb_src(deb822.values(), one_line):
        return
    release = debian_release()
    entry = derive_deb_src(deb822, one_line, release, folder)
    if entry is None:
        raise RuntimeSourceError(f"adding a deb-src entry: no Debian '{release}' entry in {folder}/*.sources or "
                                 f"{sources_list} to derive one from; add a deb-src entry for {release} yourself")
    tmp = entry.path.with_name(entry.path.name + ".tmp")
    try:
        tmp.write_text(entry.text)
        os.replace(tmp, entry.path)
    except OSError as err:
        raise RuntimeSourceError(f"adding a deb-src entry: cannot write {entry.path} ({err.strerror}); run as root "
                                 f"or add this entry yourself:\n{entry.text}") from None
    try:
        proc.run(["apt-get", "update", "-qq"], log=log, timeout=600)
    except CommandFailed as err:
        raise RuntimeSourceError(f"apt-get update after adding {entry.path} failed: {err}") from None


def _cached(src: Path, package: str, marker: str) -> Path | None:
    """The unpacked tree if a verified download and its tree are complete (tree is renamed in last)."""
    dscs = sorted(src.glob(f"{package}_*.dsc"))
    if len(dscs) == 1 and (src / TREE / marker).is_file():
        return dscs[0]
    return None


@dataclass(frozen=True, kw_only=True)
class Source:
    version: str
    tree: Path
    dsc: Path


# Another Debian source package the runtime is built from: its folder under work/.cache/runtime/ and
# the file of its unpacked tree whose presence says the unpack finished (python3.11: "src", configure).
@dataclass(frozen=True, kw_only=True)
class Package:
    name: str
    folder: str
    marker: str


PYTHON = Package(name=SOURCE_PACKAGE, folder="src", marker="configure")


def obtain_source(project: Project, log: Path, package: Package = PYTHON) -> Source:
    """Debian's source of `package` (python3.11 unless told), verified and unpacked under
    work/.cache/runtime/<package.folder>/ (reused when there)."""
    src = project.cache_root / "runtime" / package.folder
    dsc = _cached(src, package.name, package.marker)
    if dsc is None:
        with exclusive(src):
            dsc = _cached(src, package.name, package.marker) or _download(project, src, log, package.name)
    # Checked again on reuse: the cache is only as good as its files.
    version = verify_dsc(dsc).version
    return Source(version=version, tree=src / TREE, dsc=dsc)


def _download(project: Project, src: Path, log: Path, package: str) -> Path:
    tmp = src.with_name(f"{src.name}.tmp")
    remove_tree(tmp, project.output_roots)
    tmp.mkdir(parents=True)
    proc.require_tools("apt-get", "dpkg-source")
    ensure_deb_src(log)
    try:
        proc.run(["apt-get", "source", "--download-only", package], log=log, cwd=tmp, timeout=1800)
    except CommandFailed as err:
        raise RuntimeSourceError(f"downloading the runtime's source (apt-get source {package}) failed; "
                                 f"is a deb-src entry for it enabled? {err}") from None
    dscs = sorted(tmp.glob(f"{package}_*.dsc"))
    if len(dscs) != 1:
        raise RuntimeSourceError(f"downloading the runtime's source: expected one {package} .dsc in {tmp}, "
                                 f"found {len(dscs)}; whole output in {log}")
    verify_dsc(dscs[0])
    try:
        proc.run(["dpkg-source", "-x", dscs[0].name, TREE], log=log, cwd=tmp, timeout=1800)
    except CommandFailed as err:
        raise RuntimeSourceError(f"unpacking the runtime's source (dpkg-source -x) failed: {err}") from None
    remove_tree(src, project.output_roots)
    os.replace(tmp, src)
    return src / dscs[0].name
