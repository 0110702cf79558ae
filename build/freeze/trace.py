"""What the application really loads, and what a profile bundles that it never loads.

`python build.py trace [--profile P]` runs every command's smoke scenario from source (the profile's
generated entry script, so its stand-ins are in place) and records each module imported and each
shared library mapped. `exclude_unused = true` in a profile leaves out every module of the
freezer's import graph that the trace never saw; the smoke test of the result decides whether
that was right. `python build.py suggest --profile P` lists those modules with the bytes each
would save in P's last build.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any
from dataclasses import dataclass, field
from pathlib import Path

from PyInstaller.compat import PY3_BASE_MODULES

from build import log, proc
from build.analysis.retained import covered
from build.config import Profile
from build.errors import BuildFailed
from build.freeze import smoke
from build.freeze.backends import executables_for
from build.freeze.entry import entry_source
from build.freeze.excludes import plan_excludes
from build.freeze.standins import DIRECTORY as STANDINS_DIRECTORY
from build.freeze.standins import module_name
from build.paths import remove_tree
from build.project import Project

PROBE = Path(__file__).with_name("trace_probe.py")
GRAPH_PROBE = Path(__file__).with_name("import_graph_probe.py")

# Never candidates for exclusion: what a frozen program needs before or beside the application.
# What the frozen runtime needs before any of the app runs, so never "unused" whatever a trace saw:
# PyInstaller's own list of the modules its bootstrap imports (PY3_BASE_MODULES, always put into
# base_library.zip), and the C-level modules its loader uses. PyInstaller names the whole
# `encodings` package; of its codecs we keep those a Linux device's locale may ask for at start-up
# (Python 3.11 coerces the C locale to UTF-8; Latin-1 and ASCII locales remain possible), so the
# other codecs can still be left out when the trace never loads them.
LOCALE_CODECS = frozenset({"encodings.aliases", "encodings.ascii", "encodings.latin_1", "encodings.utf_8",
                           "encodings.utf_8_sig", "encodings.cp437"})
LOADER_NEEDS = frozenset({"struct", "_struct", "marshal", "zlib", "zipimport", "sys", "_thread", "_io"})
FROZEN_RUNTIME_NEEDS = frozenset(PY3_BASE_MODULES - {"encodings"}) | LOCALE_CODECS | LOADER_NEEDS
GRAPH_KINDS_WITH_BYTES = frozenset({"SourceModule", "Package", "Extension", "CompiledModule",
                                    "ExtensionPackage", "NamespacePackage"})


@dataclass(frozen=True, kw_only=True)
class Trace:
    commands: Mapping[str, frozenset[str]]   # command (or the program) -> modules it imported
    libraries: Mapping[str, frozenset[str]]  # command -> shared libraries it mapped
    scenarios: Mapping[str, frozenset[str]] = field(default_factory=dict)  # "command scenario" -> modules

    @property
    def modules(self) -> frozenset[str]:
        return frozenset().union(*self.commands.values())

    def loaded_by(self, module: str) -> list[str]:
        """The scenarios whose runs imported `module` (pure)."""
        return sorted(label for label, modules in self.scenarios.items() if module in modules)

    def to_dict(self) -> dict:
        return {"commands": {c: sorted(m) for c, m in sorted(self.commands.items())},
                "libraries": {c: sorted(m) for c, m in sorted(self.libraries.items())},
                "scenarios": {c: sorted(m) for c, m in sorted(self.scenarios.items())}}


def unused_from(graph_nodes: Mapping[str, str], traced: frozenset[str], *, keep: Iterable[str] = ()) -> list[str]:
    """Modules of the import graph that the trace never loaded, as few names as possible (pure).

    A package nobody imported is named once (its submodules go with it); a module whose package
    was imported is named itself. Modules that are needed by the frozen runtime, or that are
    parents of something traced, are never named.
    """
    protected = set(FROZEN_RUNTIME_NEEDS) | set(keep)
    traced_parents = {".".join(m.split(".")[:i]) for m in traced for i in range(1, m.count(".") + 1)}
    unused = sorted(name for name, kind in graph_nodes.items()
                    if kind in GRAPH_KINDS_WITH_BYTES and name not in traced and name not in traced_parents
                    and not covered(name, protected))
    named: list[str] = []
    for name in unused:  # sorted: a package comes before its submodules
        if not covered(name, named):
            named.append(name)
    return named


def source_paths(project: Project, profile: Profile) -> list[str]:
    """Where the app's modules are found from source: its declared folders, then the stand-ins."""
    assert profile.app is not None
    return [str((project.root / folder).resolve()) for folder in profile.app.paths] + [str(STANDINS_DIRECTORY)]


def hook_needs(graph: Mapping[str, Any], traced: frozenset[str]) -> set[str]:
    """What the freezer's runtime hooks import at start-up, for the modules that stay (pure).

    PyInstaller adds a runtime hook for a bundled module (pyi_rth_inspect for `inspect`), which
    runs before any of the app and imports what it needs (`zipfile`); a trace from source never
    runs it. For each hook whose module the trace loaded, its imports are kept, with what they
    import in turn, except below a traced module: the trace already kept what that one needs.
    """
    successors: dict[str, list[str]] = {}
    for importer, imported in graph.get("edges", ()):
        successors.setdefault(importer, []).append(imported)
    needed: set[str] = set()
    todo = [m for trigger, imported in graph.get("runtime_hooks", {}).items() if trigger in traced for m in imported]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        if name not in traced:
            todo.extend(successors.get(name, ()))
    return needed - traced


def _source_env(project: Project, profile: Profile) -> dict[str, str]:

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(source_paths(project, profile))
    env["SLIMFREEZE_TRACE_BLOCK"] = ",".join(plan_excludes(profile))
    return env


def run_trace(project: Project, profile: Profile) -> Trace:
    """Run the smoke scenarios of `profile`'s commands from source under the probe."""

    app = profile.app
    assert app is not None
    folder = project.work_root / profile.name / "trace"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.txt"):
        remove_tree(old, project.output_roots)
    entry = folder / "slimfreeze_entry.py"
    entry.write_text(entry_source(profile.effective_stand_ins, profile.name, app.entry), encoding="utf-8")
    runs: dict[Path, tuple[str, str]] = {}  # record -> (command or program, scenario label)

    def launcher(name: str, label: str) -> list[str]:
        out = folder / f"{len(runs)}.txt"
        runs[out] = (name, label)
        return [sys.executable, str(PROBE), str(out), str(entry), name]

    result = smoke.run_scenarios(app, launcher, list(profile.commands), tls=profile.tls, log=folder / "trace.log",
                                 cwd=project.root, env=_source_env(project, profile), multicall=profile.multicall)
    if not result.passed:
        raise BuildFailed(f"the app's own smoke scenario failed from source, so it cannot be traced:\n"
                          f"{result.failure_text()}")
    commands: dict[str, set[str]] = {}
    libraries: dict[str, set[str]] = {}
    scenarios: dict[str, set[str]] = {}
    for record, (name, label) in runs.items():
        if not record.is_file():  # a run that was refused before the probe started
            continue
        for line in record.read_text(encoding="utf-8").splitlines():
            kind, _, value = line.partition(" ")
            if kind == "module":
                commands.setdefault(name, set()).add(value)
                scenarios.setdefault(label, set()).add(value)
            else:
                libraries.setdefault(name, set()).add(value)
    trace = Trace(commands={c: frozenset(m) for c, m in commands.items()},
                  libraries={c: frozenset(m) for c, m in libraries.items()},
                  scenarios={c: frozenset(m) for c, m in scenarios.items()})
    (folder / "trace.json").write_text(json.dumps(trace.to_dict(), indent=1), encoding="utf-8")
    return trace


def import_graph(project: Project, profile: Profile, excludes: tuple[str, ...]) -> dict:
    """PyInstaller's module graph of the profile's entry (computed in a subprocess)."""

    app = profile.app
    assert app is not None
    folder = project.work_root / profile.name / "graph"
    folder.mkdir(parents=True, exist_ok=True)
    entry = folder / "slimfreeze_entry.py"
    entry.write_text(entry_source(profile.effective_stand_ins, profile.name, app.entry), encoding="utf-8")
    hidden = sorted({h for exe in executables_for(profile) for h in exe.hidden_imports}
                    | {module_name(s) for s in profile.effective_stand_ins})
    paths = source_paths(project, profile)
    request = {"entry": str(entry), "paths": paths, "hidden": hidden,
               "excludes": list(excludes), "workpath": str(folder / "work")}
    # The graph depends on the request, the app's and the stand-ins' sources and the installed
    # freezer and libraries: cache it on all of those, as it takes PyInstaller about 15 s.
    own_sources = [_tree_fingerprint(found) for package in app.own_packages
                   for found in _package_sources(paths, package)]
    key = hashlib.sha256(json.dumps([request, sys.version, _installed_fingerprint(), own_sources,
                                     _tree_fingerprint(STANDINS_DIRECTORY)]).encode()).hexdigest()[:20]
    out = project.work_root / "cache" / f"import-graph-{key}.json"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
        proc.run([sys.executable, str(GRAPH_PROBE), str(folder / "request.json"), str(out)],
                 log=folder / "graph.log", cwd=project.root, timeout=600)
    return json.loads(out.read_text(encoding="utf-8"))


def _package_sources(paths: Iterable[str], package: str) -> list[Path]:
    """The folder or module file of a top-level package on `paths` (none if it is installed)."""
    found = []
    for folder in map(Path, paths):
        found += [p for p in (folder / package, folder / f"{package}.py") if p.exists()]
    return found


def _tree_fingerprint(folder: Path) -> list[tuple[str, str]]:
    files = [folder] if folder.is_file() else sorted(folder.rglob("*.py"))
    return [(p.relative_to(folder.parent).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest()) for p in files]


def _installed_fingerprint() -> list[str]:
    from importlib import metadata

    return sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())


def unused_modules(project: Project, profile: Profile) -> tuple[str, ...]:
    """For `exclude_unused`: what the import graph holds and a traced run never loaded."""

    with log.step(profile.name, "tracing the app's imports from source"):
        trace = run_trace(project, profile)
    with log.step(profile.name, "computing the freezer's import graph"):
        graph = import_graph(project, profile, plan_excludes(profile))
    kinds = {name: node["kind"] for name, node in graph["nodes"].items()}
    assert profile.app is not None
    keep = ({module_name(s) for s in profile.effective_stand_ins} | set(profile.app.own_packages)
            | hook_needs(graph, trace.modules))
    unused = tuple(unused_from(kinds, trace.modules, keep=keep))
    log.info(f"[{profile.name}] {len(unused)} modules of the import graph were never loaded: leaving them out")
    return unused


# ---- sub-commands ----







