"""Configure, make, relink with the export list, install and strip: work/.cache/runtime/<key>/.

Built once per key (source version, flags, target, export inputs): a complete runtime folder holds
`runtime.json`, written last, and the whole folder is renamed into place from `<key>.tmp`, so a
failed or interrupted compile never leaves a runtime that looks usable, and never touches the
previous one. The build log stays inside the runtime folder (`build.log`); the manifest names it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from build import proc
from build.errors import CommandFailed, SlimfreezeError
from build.paths import remove_tree
from build.project import Project
from build.locks import exclusive
from build.runtime import cross as crossing
from build.runtime import exports
from build.runtime.cross import Cross
from build.runtime.flags import OPT, SOURCE_EDITS, SOURCE_PACKAGE, FlagSet, cache_key
from build.runtime.sources import Source

MINOR = "3.11"
STAMP = "runtime.json"
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


def load(prefix: Path) -> Runtime | None:
    """The runtime in `prefix` if it is complete."""
    try:
        data = json.loads((prefix / STAMP).read_text())
        flags = FlagSet(**{k: tuple(v) for k, v in data["flags"].items()})
        return Runtime(prefix=prefix, key=data["key"], source_version=data["source_version"], flags=flags,
                       exported=data.get("exported"), target=data["target"])
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
    (tmp / "build").mkdir(parents=True)
    log = tmp / LOG_NAME
    exported = _compile(source, flags, final, tmp, log, export_inputs, project.output_roots, cross)
    runtime = Runtime(prefix=final, key=key, source_version=source.version, flags=flags, exported=exported,
                      target=target)
    prefix = tmp / "prefix"
    _check_runs(prefix, log, cross.run if cross else ())
    for scratch in ("build", "src", "root"):
        remove_tree(tmp / scratch, project.output_roots)
    (prefix / STAMP).write_text(json.dumps({
        "key": key, "package": SOURCE_PACKAGE, "source_version": source.version, "target": target,
        "flags": {k: list(v) for k, v in vars(flags).items()}, "exported": exported}, indent=2) + "\n")
    shutil.move(str(log), prefix / LOG_NAME)
    if final.exists():  # a leftover without its stamp: never a complete runtime
        remove_tree(final, project.output_roots)
    os.replace(prefix, final)
    remove_tree(tmp, project.output_roots)
    return runtime


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


# Markers in Tools/scripts/freeze_modules.py (CPython 3.11) around what `frozen-import-only` removes.
_FROZEN_FROM = "    ('stdlib - startup, without site (python -S)', ["
_FROZEN_TO = "    (TESTS_SECTION, ["
_EMPTY_SECTION = ("        if not lines[0]:", "        if lines and not lines[0]:")


def frozen_import_only(script: str) -> str:
    """freeze_modules.py with only the import system (and the tiny test modules) left to freeze (pure)."""
    start, end = script.find(_FROZEN_FROM), script.find(_FROZEN_TO)
    if start < 0 or end < start or _EMPTY_SECTION[0] not in script:
        raise RuntimeBuildFailed("size runtime: editing the source (frozen-import-only): "
                                 "Tools/scripts/freeze_modules.py is not the one this edit was written for")
    return (script[:start] + script[end:]).replace(*_EMPTY_SECTION)


def _edited_tree(source: Source, flags: FlagSet, tmp: Path, log: Path, cross: Cross | None) -> Path:
    """The source tree configure runs from: the cached one, or an edited copy in the temp folder."""
    if not flags.edits and cross is None:
        return source.tree
    tree = tmp / "src"
    shutil.copytree(source.tree, tree, symlinks=True)
    if cross is not None:
        configure = tree / "configure"
        try:
            configure.write_text(crossing.sysconfigdata_edit(configure.read_text()))
        except ValueError as err:
            raise RuntimeBuildFailed(f"size runtime: editing the source for a cross build: {err}") from None
    for edit in flags.edits:
        if edit == "frozen-import-only":
            script = tree / "Tools" / "scripts" / "freeze_modules.py"
            script.write_text(frozen_import_only(script.read_text()))
            # Regenerates Python/frozen.c and Makefile.pre.in's freeze rules from the edited list.
            _step("source edit frozen-import-only", log, [sys.executable, script], tree, timeout=600)
        elif edit in SOURCE_EDITS:
            for relative in dict.fromkeys(file for file, _old, _new in SOURCE_EDITS[edit]):
                path = tree / relative
                path.write_text(source_edited(edit, relative, path.read_text()))
        elif edit == "pyexpat-core-module":
            module = tree / "Modules" / "pyexpat.c"
            module.write_text(pyexpat_core_module(module.read_text()))
        else:
            raise RuntimeBuildFailed(f"size runtime: unknown source edit {edit!r}")
    return tree


def source_edited(edit: str, relative: str, text: str) -> str:
    """`text` (the file `relative` of CPython's tree) with the edit's replacements for it (pure)."""
    for file, old, new in SOURCE_EDITS[edit]:
        if file == relative:
            if text.count(old) != 1:
                raise RuntimeBuildFailed(f"size runtime: editing the source ({edit}): {relative} is not the one "
                                         "this edit was written for")
            text = text.replace(old, new)
    return text


_CORE_MODULE = "#ifndef Py_BUILD_CORE_BUILTIN\n#  define Py_BUILD_CORE_MODULE 1\n#endif\n"


def pyexpat_core_module(text: str) -> str:
    """pyexpat.c declaring itself a core module, as CPython 3.12's does (pure; idempotent)."""
    return text if "Py_BUILD_CORE_MODULE" in text else _CORE_MODULE + text


def _compile(source: Source, flags: FlagSet, final: Path, tmp: Path, log: Path, export_inputs: ExportInputs,
             deletable: Sequence[Path], cross: Cross | None) -> int | None:
    compiler, strip = (cross.compiler, cross.strip) if cross else ("gcc", "strip")
    proc.require_tools(compiler, "make", strip, "patchelf")
    build_python = proc.require_tool(crossing.BUILD_PYTHON) if cross else None
    build = tmp / "build"
    env = {**os.environ, "LC_ALL": "C"}
    tree = _edited_tree(source, flags, tmp, log, cross)
    argv = configure_argv(tree, final, flags)
    if cross is not None and build_python is not None:
        site = tmp / "config.site"
        site.write_text(crossing.CONFIG_SITE)
        env |= crossing.environment(cross, site)
        argv += crossing.configure_args(cross, build_python, crossing.build_triplet())
    _step("configure", log, argv, build, env)
    _step("make", log, ["make", f"-j{JOBS}"], build, env)
    root = tmp / "root"
    _step("make install", log, ["make", "install", f"DESTDIR={root}"], build, env)
    prefix = tmp / "prefix"
    os.replace(root / final.relative_to(final.anchor), prefix)
    exported = None
    if "exports" in flags.steps:
        # After the install: `make install` would otherwise relink the test programs against the
        # trimmed library, and they use API nobody ships. The static library keeps everything.
        exported = _relink(build, log, env, export_inputs, deletable)
        shutil.copyfile(build / f"libpython{MINOR}.so.1.0", prefix / "lib" / f"libpython{MINOR}.so.1.0")
    _strip(prefix, log, strip)
    return exported


def _relink(build: Path, log: Path, env: dict[str, str], export_inputs: ExportInputs,
            deletable: Sequence[Path]) -> int:
    """Link libpython again, exporting only what its users import, so LTO drops the rest."""
    own = [*build.glob("build/lib.*/*.so"), *build.glob("Modules/*.so"), build / "python"]
    names = export_inputs.names() | exports.wanted(own, ())
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
