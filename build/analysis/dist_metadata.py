"""Distribution evidence, best first: metadata bundled in the artifact (*.dist-info: METADATA's
Name, top_level.txt, RECORD), then an environment's installed metadata (the analysing Python, or
`--site-packages DIR` / `--python PATH`), then only a guess from the top-level import name
("requests?"). Pure functions over plain records; the readers (I/O) are at the bottom.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from build.analysis import other_python
from build.analysis.distributions import DistIndex, canonical, module_of_path

DIST_INFO = ".dist-info"
META_FILES = ("METADATA", "top_level.txt", "RECORD")


@dataclass(frozen=True, kw_only=True)
class DistInfo:
    """One *.dist-info folder's evidence."""

    name: str  # canonical distribution name
    folder: str  # its path in the artifact ("requests-2.32.3.dist-info")
    top_level: tuple[str, ...]
    record: tuple[str, ...]  # paths relative to site-packages (RECORD's first column)


def dist_info_folders(paths: Iterable[str]) -> dict[str, str]:
    """{dist-info folder: prefix before it} of every *.dist-info folder in a list of artifact paths."""
    out: dict[str, str] = {}
    for path in paths:
        parts = PurePosixPath(path).parts
        for i, part in enumerate(parts[:-1]):
            if part.endswith(DIST_INFO):
                out.setdefault("/".join(parts[:i + 1]), "/".join(parts[:i]))
    return out


def parse_dist_info(folder: str, files: Mapping[str, str]) -> DistInfo:
    """A DistInfo from the texts of a folder's METADATA, top_level.txt and RECORD (any may be missing)."""
    name = ""
    for line in files.get("METADATA", "").splitlines():
        if line.lower().startswith("name:"):
            name = line.split(":", 1)[1].strip()
            break
        if not line.strip():
            break
    if not name:
        name = PurePosixPath(folder).name[:-len(DIST_INFO)].split("-")[0]
    record = tuple(line.split(",", 1)[0] for line in files.get("RECORD", "").splitlines() if line.strip())
    top = tuple(files.get("top_level.txt", "").split())
    if not top:  # no top_level.txt (most wheels built by modern back ends): the RECORD says it
        top = tuple(sorted({m.split(".")[0] for m in map(module_of_path, record) if m}))
    return DistInfo(name=canonical(name), folder=folder, top_level=top, record=record)


def with_bundled(index: DistIndex, infos: Iterable[DistInfo]) -> DistIndex:
    """`index` with the artifact's own metadata put first (it describes what was frozen)."""
    modules: dict[str, str] = {}
    top: dict[str, str] = {}
    files: dict[str, str] = {}
    for info in sorted(infos, key=lambda i: i.name):
        for t in info.top_level:
            top.setdefault(t, info.name)
        for rel in info.record:
            if rel.startswith(".."):
                continue
            files.setdefault(rel, info.name)
            module = module_of_path(rel)
            if module and DIST_INFO not in rel:
                modules.setdefault(module, info.name)
                top.setdefault(module.split(".")[0], info.name)
    return DistIndex(modules={**index.modules, **modules}, top_level={**index.top_level, **top},
                     files={**index.files, **files}, basenames=index.basenames, rthooks=index.rthooks,
                     stdlib=index.stdlib)


# --- I/O --------------------------------------------------------------------------------------

def read_folder_dist_infos(root: Path, paths: Iterable[str], *, strip: str = "") -> tuple[DistInfo, ...]:
    """The *.dist-info folders among `paths` (relative to `root`), read from disk. `strip`: the
    prefix to drop so that names are as at run time (a onedir's "_internal/")."""
    out = []
    for folder in sorted(dist_info_folders(paths)):
        files = {}
        for name in META_FILES:
            try:
                files[name] = (root / folder / name).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
        out.append(parse_dist_info(folder.removeprefix(strip), files))
    return tuple(out)


def python_site_packages(python: str) -> tuple[str, ...]:
    """The sys.path folders of another interpreter (`--python PATH`), to read its metadata."""
    code = "import json, sys; print(json.dumps([p for p in sys.path if p]))"
    answer = other_python.ask(python, code)
    return tuple(p for p in answer if isinstance(p, str)) if isinstance(answer, list) else ()
