"""Configure, make, relink with the export list, install and strip: work/.cache/runtime/<key>/.

Two levels of cache. The compiled tree (`<compile key>-compiled/`: the edited source, the build
folder and `make install`'s result) depends on everything but the export list; a runtime
(`<key>/`) is a copy of its install with libpython relinked for one export list, stripped and
checked. A new dependency with a C extension changes only the export list, so it costs a relink of
that tree, not a compile. Each level is complete only with its stamp (`compiled.json`,
`runtime.json`), written last; a runtime is renamed into place from `<key>.tmp`, so a failed or
interrupted build never leaves one that looks usable, and never touches the previous one. The
compile's log and the relink's make up the runtime's build log (`build.log`); the manifest names it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from build import proc
from build.errors import CommandFailed, SlimfreezeError
from build.paths import remove_tree
from build.project import Project
from build.locks import exclusive
from build.runtime import cross as crossing
from build.runtime import edits, exports, guards
from build.runtime.cross import Cross
from build.runtime.flags import OPT, SOURCE_PACKAGE, FlagSet, cache_key, compiled_part
from build.runtime.sources import Source

MINOR = "3.11"
STAMP = "runtime.json"
COMPILED_STAMP = "compiled.json"
LOG_NAME = "build.log"
JOBS = "2"
COMPILE_TIMEOUT = 3 * 3600


class RuntimeBuildFailed(SlimfreezeError):
    """The size runtime did not compile, or the result does not run."""


@dataclass(frozen=True, kw_only=True)
class Runtime:
    prefix: Path
    key: str
    source_version: str
    flags: FlagSet
    exported: int | None  # symbols libpython exports when trimmed, else None
    target: str  # the architecture it runs on
    compiled: str | None = None  # the compiled tree it was linked from (its folder name)
    # How long its making took: "compile" (0 when the compiled tree was reused), "relink".
    seconds: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def python(self) -> Path:
        return self.prefix / "bin" / f"python{MINOR}"

    @property
    def libpython(self) -> Path:
        return self.prefix / "lib" / f"libpython{MINOR}.so.1.0"

    @property
    def build_log(self) -> Path:
        return self.prefix / LOG_NAME


@dataclass(frozen=True, kw_only=True)
class ExportInputs:
    """Who imports from libpython besides its own modules: the pinned packages' extension modules and
    the bootloaders that dlsym() it."""

    users: tuple[Path, ...] = ()
    by_name: tuple[Path, ...] = ()

    def names(self) -> set[str]:
        return exports.wanted(self.users, self.by_name)


def runtime_key(source: Source, flags: FlagSet, target: str, export_inputs: ExportInputs,
                cross: Cross | None = None) -> str:
    trims = "exports" in flags.steps
    extra = {"exports": hashlib.sha256(",".join(sorted(export_inputs.names())).encode()).hexdigest() if trims else "all"}
    if cross is not None:  # the sysroot's libraries are linked in: another root, another runtime
        extra["sysroot"] = cross.sysroot_key
    return cache_key(source_version=source.version, flags=flags, target=target, extra=extra)


def compile_key(source: Source, flags: FlagSet, target: str, cross: Cross | None = None) -> str:
    """The compiled tree's key: the runtime's inputs but the export list and the link-only steps."""
    extra = {"sysroot": cross.sysroot_key} if cross is not None else {}
    return cache_key(source_version=source.version, flags=compiled_part(flags), target=target, extra=extra) + "-compiled"


def load(prefix: Path) -> Runtime | None:
    """The runtime in `prefix` if it is complete."""
    try:
        data = json.loads((prefix / STAMP).read_text())
        flags = FlagSet(**{k: tuple(v) for k, v in data["flags"].items()})
        return Runtime(prefix=prefix, key=data["key"], source_version=data["source_version"], flags=flags,
                       exported=data.get("exported"), target=data["target"], compiled=data.get("compiled"),
                       seconds=data.get("seconds") or {})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build_runtime(project: Project, source: Source, flags: FlagSet, *, target: str,
                  export_inputs: ExportInputs = ExportInputs(), cross: Cross | None = None) -> Runtime:
    """The runtime for these inputs: reused from work/.cache/runtime/<key>/ when built before.
    `cross`: compiled for another architecture (build/runtime/cross.py), `target` names it."""
    key = runtime_key(source, flags, target, export_inputs, cross)
    final = project.cache_root / "runtime" / key
    existing = load(final)
    if existing is not None:
        return existing
    with exclusive(final):
        return load(final) or _build(project, source, flags, target, export_inputs, key, final, cross)


def _build(project: Project, source: Source, flags: FlagSet, target: str, export_inputs: ExportInputs, key: str,
           final: Path, cross: Cross | None) -> Runtime:
    tmp = final.with_name(f"{key}.tmp")
    remove_tree(tmp, project.output_roots)
    tmp.mkdir(parents=True)
    log = tmp / LOG_NAME
    compiled, compile_seconds = compiled_tree(project, source, flags, target, cross)
    shutil.copyfile(compiled / LOG_NAME, log)
    prefix = tmp / "prefix"
    exported, relink_seconds = None, 0.0
    env = {**os.environ, "LC_ALL": "C"}
    with exclusive(compiled):  # the relink writes into the compiled tree's build folder
        shutil.copytree(compiled / "installed", prefix, symlinks=True)
        if "exports" in flags.steps:
            # After the install: `make install` would otherwise relink the test programs against the
            # trimmed library, and they use API nobody ships. The static library keeps everything.
            started = time.monotonic()
            tree = compiled / "src" if (compiled / "src").is_dir() else source.tree  # edited, or as fetched
            names = export_inputs.names() | (exports.public_api(tree) if "public-api" in flags.steps else set())
            exported = _relink(compiled / "build", log, env, names, project.output_roots)
            relink_seconds = round(time.monotonic() - started, 1)
            shutil.copyfile(compiled / "build" / f"libpython{MINOR}.so.1.0", prefix / "lib" / f"libpython{MINOR}.so.1.0")
    _strip(prefix, log, cross.strip if cross else "strip")
    _check_runs(prefix, log, cross.run if cross else ())
    seconds = {"compile": compile_seconds, "relink": relink_seconds}
    runtime = Runtime(prefix=final, key=key, source_version=source.version, flags=flags, exported=exported,
                      target=target, compiled=compiled.name, seconds=seconds)
    (prefix / STAMP).write_text(json.dumps({
        "key": key, "package": SOURCE_PACKAGE, "source_version": source.version, "target": target,
        "flags": {k: list(v) for k, v in vars(flags).items()}, "exported": exported, "compiled": compiled.name,
        "seconds": seconds}, indent=2) + "\n")
    shutil.move(str(log), prefix / LOG_NAME)
    if final.exists():  # a leftover without its stamp: never a complete runtime
        remove_tree(final, project.output_roots)
    os.replace(prefix, final)
    remove_tree(tmp, project.output_roots)
    return runtime


def compiled_tree(project: Project, source: Source, flags: FlagSet, target: str,
                  cross: Cross | None) -> tuple[Path, float]:
    """The compiled tree for these inputs (work/.cache/runtime/<compile key>/) and the seconds its
    compile took now (0.0 when reused). It is built where it stays: make's rules name its folders."""
    folder = project.cache_root / "runtime" / compile_key(source, flags, target, cross)
    if (folder / COMPILED_STAMP).is_file():
        return folder, 0.0
    proc.require_tools(*((cross.compiler, cross.strip) if cross else ("gcc", "strip")), "make", "patchelf")
    if cross:
        proc.require_tool(crossing.BUILD_PYTHON)
    with exclusive(folder):
        if (folder / COMPILED_STAMP).is_file():
            return folder, 0.0
        remove_tree(folder, project.output_roots)  # a leftover without its stamp: never a compiled tree
        (folder / "build").mkdir(parents=True)
        started = time.monotonic()
        _compile(source, flags, folder, folder / LOG_NAME, cross)
        seconds = round(time.monotonic() - started, 1)
        (folder / COMPILED_STAMP).write_text(json.dumps({
            "package": SOURCE_PACKAGE, "source_version": source.version, "target": target,
            "flags": {k: list(v) for k, v in vars(compiled_part(flags)).items()}, "seconds": seconds}, indent=2) + "\n")
    return folder, seconds


def configure_argv(tree: Path, prefix: Path, flags: FlagSet) -> list[str]:
    """configure's command line (pure)."""
    return [str(tree / "configure"), f"--prefix={prefix}", *flags.configure, f"CFLAGS={' '.join(flags.cflags)}",
            f"LDFLAGS={' '.join(flags.ldflags)}", f"OPT={OPT}"]


def _step(what: str, log: Path, argv: list[str | Path], cwd: Path, env: dict[str, str] | None = None,
          timeout: float = COMPILE_TIMEOUT) -> None:
    try:
        proc.run(argv, log=log, cwd=cwd, env=env, timeout=timeout)
    except CommandFailed as err:
        raise RuntimeBuildFailed(f"size runtime: {what} failed (build log {log}): {err}") from None


def _edited_tree(source: Source, flags: FlagSet, folder: Path, log: Path, cross: Cross | None) -> Path:
    """The source tree configure runs from: the cached one, or an edited copy in the compiled tree's
    folder, checked for what the edits rely on (build/runtime/guards.py) before anything compiles."""
    if not flags.edits and cross is None:
        return source.tree
    tree = folder / "src"
    shutil.copytree(source.tree, tree, symlinks=True)
    try:
        if cross is not None:
            edits.apply(tree, "cross-sysconfigdata")
        for edit in flags.edits:
            edits.apply(tree, edit)
    except edits.EditError as err:
        raise RuntimeBuildFailed(f"size runtime: editing the source ({edit if cross is None or flags.edits else 'cross'}): "
                                 f"{err}") from None
    problems = guards.check_tree(tree, flags.edits)
    if problems:
        raise RuntimeBuildFailed(f"size runtime: {problems[0].line()}"
                                 + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    if "frozen-import-only" in flags.edits:
        # Regenerates Python/frozen.c and Makefile.pre.in's freeze rules from the edited list.
        _step("source edit frozen-import-only", log, [sys.executable, tree / "Tools" / "scripts" / "freeze_modules.py"],
              tree, timeout=600)
    return tree


def _compile(source: Source, flags: FlagSet, folder: Path, log: Path, cross: Cross | None) -> None:
    """Configure, make and `make install` into `folder`/installed, the prefix the runtime is configured
    with: its build-time paths (sysconfig's LIBDIR, INCLUDEPY) name that unstripped install, which
    stays beside the build; every runtime copied from it finds its home from its own executable."""
    build_python = proc.require_tool(crossing.BUILD_PYTHON) if cross else None
    build = folder / "build"
    env = {**os.environ, "LC_ALL": "C"}
    tree = _edited_tree(source, flags, folder, log, cross)
    argv = configure_argv(tree, folder / "installed", flags)
    if cross is not None and build_python is not None:
        site = folder / "config.site"
        site.write_text(crossing.CONFIG_SITE)
        env |= crossing.environment(cross, site)
        argv += crossing.configure_args(cross, build_python, crossing.build_triplet())
    _step("configure", log, argv, build, env)
    _step("make", log, ["make", f"-j{JOBS}"], build, env)
    _step("make install", log, ["make", "install"], build, env)


def _relink(build: Path, log: Path, env: dict[str, str], wanted: set[str], deletable: Sequence[Path]) -> int:
    """Link libpython again, exporting only `wanted` and what its own modules import, so LTO drops the rest."""
    own = [*build.glob("build/lib.*/*.so"), *build.glob("Modules/*.so"), build / "python"]
    names = wanted | exports.wanted(own, ())
    script = build / "exports.map"
    script.write_text(exports.version_script(names))
    library = build / f"libpython{MINOR}.so.1.0"
    remove_tree(library, deletable, missing_ok=False)
    remove_tree(build / f"libpython{MINOR}.so", deletable)
    # LIBC is empty in CPython's Makefile and only the libpython rule runs in this make: the version
    # script reaches that one link and no extension module (whose PyInit_* it would hide).
    _step("relink with the export list", log, ["make", f"libpython{MINOR}.so", f"LIBC=-Wl,--version-script={script}"],
          build, env)
    return len(names)


def _strip(prefix: Path, log: Path, strip: str) -> None:
    libraries = [prefix / "lib" / f"libpython{MINOR}.so.1.0",
                 *sorted((prefix / "lib" / f"python{MINOR}" / "lib-dynload").glob("*.so"))]
    _keep_debug_copies(prefix, libraries)
    _step("strip", log, [strip, "--strip-unneeded", *libraries], prefix)
    python = prefix / "bin" / f"python{MINOR}"
    _step("strip", log, [strip, python], prefix)
    # The interpreter finds its libpython beside it wherever the folder is (built in <key>.tmp).
    _step("set the interpreter's rpath", log, ["patchelf", "--set-rpath", "$ORIGIN/../lib", python], prefix)


def _keep_debug_copies(prefix: Path, libraries: list[Path]) -> None:
    """The unstripped libraries under lib/debug/.build-id/xx/yyyy.debug, where `bloat --symbols`
    finds a stripped file's symbols and source files by build-id (`--python` this runtime)."""
    for library in libraries:
        bid = exports.build_id(library)
        if bid:
            copy = prefix / "lib" / "debug" / ".build-id" / bid[:2] / f"{bid[2:]}.debug"
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(library, copy)


def _check_runs(prefix: Path, log: Path, launch: Sequence[str]) -> None:
    """The interpreter starts and loads what the app and the freezer need, before it is published
    (through `launch`, the emulator, when it is another architecture's)."""
    probe = ("import ssl, json, ctypes, zlib, _socket, select, hashlib, math, sys; "
             "ctypes.CDLL(None).strlen(b'x'); print(sys.version)")
    _step("first run of the new interpreter", log, [*launch, prefix / "bin" / f"python{MINOR}", "-I", "-c", probe],
          prefix, timeout=300)


def elf_files(folders: Iterable[Path]) -> tuple[Path, ...]:
    """Every shared object under `folders` (the pinned packages' extension modules)."""
    return tuple(sorted(p for folder in folders for p in folder.rglob("*.so") if p.is_file()))


def host_site_packages() -> tuple[Path, ...]:
    return tuple(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
