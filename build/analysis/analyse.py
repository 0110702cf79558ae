"""`analyse(path)`: recognise an artifact (file or dist folder), run the readers, attribute the rows.

This is the I/O edge of the analysis: it reads files and hands plain records to the pure parts.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from build.analysis import elf
from build.analysis.attribute import Context, flatten
from build.analysis.dist_metadata import (
    DistInfo,
    dist_info_folders,
    parse_dist_info,
    python_site_packages,
    read_folder_dist_infos,
    with_bundled,
)
from build.analysis.distributions import PYTHON_RUNTIME, DistIndex, load_index
from build.analysis.model import Link, Row, SizeReport
from build.analysis.nuitka import file_region, onefile_regions
from build.analysis.nuitka_constants import find_blob, looks_compiled
from build.analysis.nuitka_payload import looks_like_starter
from build.analysis.ops import check_accounted, sort_rows
from build.analysis.pyinstaller import executable_regions, zip_file_regions
from build.analysis.pyinstaller_archive import (
    CArchive,
    looks_like_bootloader,
    other_python,
    read_carchive,
)
from build.analysis.regions import Region
from build.errors import ArtifactError, ConfigError
from build.manifest import MANIFEST_NAME
from build.manifest import inside
from build.manifest import read_manifest as read_checked_manifest

CONTENTS_OPTION = "pyi-contents-directory "

NOTE_ESTIMATE = ("Stored sizes marked ~ are estimates: the bytes share one compressed stream and are "
                 "apportioned by their position in it. Totals are exact.")
NOTE_GUESS = "Distributions marked ? are guesses (inferred from names, not found in package metadata)."
NOTE_NUITKA = ("Nuitka compiles modules to C: their code is in [executable] together with the Python "
               "runtime, and only their constants and bytecode are attributed per module (the executable is "
               "stripped; build with Nuitka's --unstripped to see each module's compiled code).")
NOTE_NUITKA_SYMBOLS = ("Nuitka compiles modules to C: the compiled code of {count} modules is attributed to them by "
                       "the symbol table (code/<module> rows); [executable] is the Python runtime, Nuitka's own "
                       "runtime and what no module's symbols cover.")


@dataclass(frozen=True, kw_only=True)
class _FileResult:
    region: Region
    format: str | None  # the frozen format this file is, if it is a frozen executable
    contents_dir: str | None = None
    python: str | None = None  # the artifact's Python version when it is not the analysing one's
    scripts: tuple[str, ...] = ()  # the entry scripts' names (the application)
    metadata: tuple[DistInfo, ...] = ()  # *.dist-info bundled inside this file


def analyse(path: Path, *, site_packages: tuple[Path, ...] = (), python: str | None = None) -> SizeReport:
    """Account for every byte of a frozen executable or a dist folder (see SizeReport).

    Distributions are named from the metadata bundled in the artifact, then from the metadata
    installed in `site_packages` and `python`'s environment (default: the analysing one's)."""
    path = Path(path)
    index = environment_index(site_packages, python)
    if path.is_dir():
        return _analyse_folder(path, index)
    if not path.exists():
        raise ArtifactError(f"{path}: no such file or folder")
    if not path.is_file():
        raise ArtifactError(f"{path}: not a regular file or folder")
    data = _read(path)
    result = _analyse_file(path, path.name, data, strict=True)
    ctx = Context(index=with_bundled(index, result.metadata), app=_app_names(path.name, [result]))
    rows = flatten(result.region, ctx, prefix="")
    check_accounted(rows, len(data), path.name)
    return _report(path.name, result.format or "file", rows, files=1, links=(), manifest=None,
                   python=result.python, architecture=elf.architecture(data))


def environment_index(site_packages: tuple[Path, ...] = (), python: str | None = None) -> DistIndex:
    """The installed metadata to name distributions by (I/O, cached per argument)."""
    if not site_packages and python is None:
        return load_index()
    for folder in site_packages:
        try:
            os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            raise ConfigError(f"--site-packages {folder}: no such folder") from None
        except OSError as err:  # e.g. a folder it may not read
            raise ConfigError(f"--site-packages {folder}: cannot read it ({err.strerror or err})") from None
    paths = [str(Path(p)) for p in site_packages]
    if python is not None:
        found = python_site_packages(python)
        if not found:
            raise ConfigError(f"--python {python}: cannot run it to find its site-packages "
                              f"(give the interpreter's path, e.g. venv/bin/python)")
        paths += found
    return load_index(tuple(paths))


def _app_names(label: str, results: list[_FileResult]) -> frozenset[str]:
    names = {s for r in results for s in r.scripts}
    stem = Path(label).name.split(".")[0]
    if stem.isidentifier():
        names.add(stem)  # Nuitka names the program after its main script
    return frozenset(n for n in names if n.isidentifier())


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ArtifactError(f"{path}: cannot read it ({err.strerror})") from None


def _analyse_file(path: Path, label: str, data: bytes, *, strict: bool) -> _FileResult:
    """One file as a region (name = ""). `strict`: it must be a frozen executable."""
    whole = ((0, len(data)),)
    if not data:
        if strict:
            raise ArtifactError(f"{label} is empty, not a frozen artifact")
        return _FileResult(region=Region(name="", kind="data", spans=whole, raw=0, file=label), format=None)
    head = data[:4]
    if head == b"\x7fELF" or strict:
        archive = read_carchive(path, len(data))
        if archive is not None:
            children = executable_regions(path, data, archive, label=label)
            return _FileResult(region=Region(name="", kind="executable", spans=whole, raw=len(data),
                                             children=children),
                               format=_pyinstaller_format(archive), contents_dir=_contents_dir(archive),
                               python=other_python(archive), scripts=_scripts(archive),
                               metadata=_archive_metadata(data, archive))
        if looks_like_bootloader(data[:1 << 20]):
            raise ArtifactError(f"{label} is a PyInstaller executable without its archive (truncated or "
                                f"corrupted): no archive cookie found")
        if looks_like_starter(data):
            children, _ = onefile_regions(data, label=label)
            return _FileResult(region=Region(name="", kind="executable", spans=whole, raw=len(data),
                                             children=children), format="nuitka-onefile")
        if looks_compiled(data) and find_blob(data) is not None:
            return _FileResult(region=file_region("", data, spans=whole, content=None, path=label),
                               format="nuitka-standalone")
    if strict:
        if b"UPX!" in data[:4096]:
            # slimfreeze's own UPX step packs only the bootloader and keeps the archive at the end,
            # so a packed file without one is cut short, or was packed whole by hand.
            raise ArtifactError(f"{label} is UPX-packed and has no frozen archive at its end: it is truncated, "
                                f"or was packed whole by hand (then analyse an unpacked copy: "
                                f"upx -d -o unpacked {label})")
        raise ArtifactError(f"{label} is not a frozen artifact: no PyInstaller archive, Nuitka onefile payload "
                            f"or Nuitka-compiled program found in it")
    if data[:2] == b"PK" and label.endswith(".zip"):
        dist = PYTHON_RUNTIME if label.endswith("base_library.zip") else None
        return _FileResult(region=zip_file_regions(data, label=label, distribution=dist), format=None)
    if elf.is_elf(data):
        return _FileResult(region=file_region("", data, spans=whole, content=None, path=label), format=None)
    return _FileResult(region=Region(name="", kind="data", spans=whole, raw=len(data)), format=None)


def _scripts(archive: CArchive) -> tuple[str, ...]:
    return tuple(e.name for e in archive.entries if e.typecode == "s"
                 and not e.name.startswith(("pyi_rth_", "pyiboot", "pyimod")))


def _archive_metadata(data: bytes, archive: CArchive) -> tuple[DistInfo, ...]:
    """The *.dist-info files PyInstaller bundled (copy_metadata), read from the archive."""
    folders = dist_info_folders(e.name for e in archive.entries)
    if not folders:
        return ()
    texts: dict[str, dict[str, str]] = {folder: {} for folder in folders}
    for e in archive.entries:
        folder, _, base = e.name.rpartition("/")
        if folder in texts and base in ("METADATA", "top_level.txt", "RECORD") and e.stored:
            blob = data[archive.start + e.offset:archive.start + e.offset + e.stored]
            try:
                raw = zlib.decompress(blob) if e.compressed else blob
            except zlib.error:
                continue  # a damaged entry is reported by the reader; here it is only evidence lost
            texts[folder][base] = raw.decode("utf-8", "replace")
    return tuple(parse_dist_info(folder, files) for folder, files in sorted(texts.items()))


def _pyinstaller_format(archive: CArchive) -> str:
    # A onedir executable's archive holds only Python code; a onefile one carries the runtime too.
    if any(e.typecode == "b" for e in archive.entries):
        return "pyinstaller-onefile"
    return "pyinstaller-onedir"


def _contents_dir(archive: CArchive) -> str | None:
    for option in archive.options:
        if option.startswith(CONTENTS_OPTION):
            return option[len(CONTENTS_OPTION):].strip() or None
    return None


# --- folders ----------------------------------------------------------------------------------

def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The dist folder's manifest (build.manifest reads and checks it), or None for a plain folder."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return None
    return read_checked_manifest(folder)


def _listing(folder: Path, manifest: dict[str, Any] | None) -> tuple[list[tuple[str, int]], list[Link]]:
    """(relative path, size) of every file to account for, and the symlinks."""
    if manifest is not None:
        files = []
        for entry in manifest["files"]:  # checked by build.manifest: normalised paths inside the folder
            rel, size = entry["path"], entry["size"]
            target = inside(folder, rel)  # and no symlinked parent folder takes it elsewhere
            if target.is_symlink() or not target.is_file():
                raise ArtifactError(f"{folder / MANIFEST_NAME} lists {rel!r}, which is missing; rebuild the profile")
            actual = target.stat().st_size
            if actual != size:
                raise ArtifactError(f"{folder / MANIFEST_NAME} lists {rel!r} with {size} bytes but it has "
                                    f"{actual}; the folder changed after the build, rebuild the profile")
            files.append((rel, size))
        links = [Link(path=link["path"], target=link["target"]) for link in manifest["links"]]
        return sorted(files), sorted(links, key=lambda link: link.path)
    files, links = [], []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(dirs + names):
            full = Path(root) / name
            rel = full.relative_to(folder).as_posix()
            if full.is_symlink():
                links.append(Link(path=rel, target=os.readlink(full)))
            elif full.is_file():
                files.append((rel, full.stat().st_size))
    return sorted(files), sorted(links, key=lambda link: link.path)


def _analyse_folder(folder: Path, index: DistIndex) -> SizeReport:
    manifest = read_manifest(folder)
    files, links = _listing(folder, manifest)
    if not files:
        raise ArtifactError(f"{folder} is empty: no files to analyse (expected a dist folder with a frozen "
                            f"executable)")
    results: list[tuple[str, _FileResult]] = []
    on_disk: dict[str, int] = {}
    for rel, _size in files:
        data = _read(folder / rel)
        on_disk[rel] = len(data)
        results.append((rel, _analyse_file(folder / rel, rel, data, strict=False)))
    formats = sorted({r.format for _, r in results if r.format})
    if not formats:
        raise ArtifactError(f"{folder} holds no frozen executable (no PyInstaller archive, Nuitka payload or "
                            f"Nuitka-compiled program in any of its {len(files)} files)")
    contents = next((r.contents_dir for _, r in results if r.contents_dir), None)
    prefix = f"{contents}/" if contents else ""
    bundled = [*read_folder_dist_infos(folder, (rel for rel, _ in files), strip=prefix),
               *(m for _, r in results for m in r.metadata)]
    apps: set[str] = set()
    for rel, result in results:
        if result.format:  # a frozen executable: its scripts (and a Nuitka program's name) are the app
            apps |= _app_names(rel, [result])
    ctx = Context(index=with_bundled(index, bundled), slimfreeze_build=manifest is not None,
                  contents_prefix=prefix, app=frozenset(apps))
    rows: list[Row] = []
    for rel, result in results:
        file_rows = flatten(result.region, ctx, prefix=rel)
        check_accounted(file_rows, on_disk[rel], f"{folder.name}/{rel}")
        rows += file_rows
    fmt = formats[0] if len(formats) == 1 else "folder"
    python = next((r.python for _, r in results if r.python), None)
    # The architecture of its frozen executables (their bootloaders or Nuitka programs).
    architecture = next((arch for rel, r in results if r.format and (arch := elf.architecture(_head(folder / rel)))),
                        None)
    return _report(folder.name, fmt, rows, files=len(files), links=tuple(links), manifest=manifest, python=python,
                   architecture=architecture)


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(64)


def _report(name: str, fmt: str, rows: list[Row] | tuple[Row, ...], *, files: int, links: tuple[Link, ...],
            manifest: dict[str, Any] | None, python: str | None = None, architecture: str | None = None) -> SizeReport:
    rows = sort_rows(rows)
    notes = []
    if python:
        notes.append(f"Built with Python {python} (this analyser runs another version): sizes are read from the "
                     f"archive's own tables; its bytecode is never loaded.")
    if any(r.estimate for r in rows):
        notes.append(NOTE_ESTIMATE)
    if any(r.guess for r in rows):
        notes.append(NOTE_GUESS)
    if fmt.startswith("nuitka"):
        compiled = sum(1 for r in rows if r.kind == "code" and "/code/" in f"/{r.name}")
        notes.append(NOTE_NUITKA_SYMBOLS.format(count=compiled) if compiled else NOTE_NUITKA)
    return SizeReport(artifact=name, format=fmt, total_stored=sum(r.stored for r in rows),
                      total_raw=sum(r.raw for r in rows), rows=rows, links=links, files=files,
                      notes=tuple(notes), manifest=manifest, architecture=architecture)
