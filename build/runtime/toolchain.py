"""`runtime = "size"`: the freezer runs in a venv of the size-built CPython with the pinned packages.

The venv is cached beside the runtime, keyed by the runtime and the pins; a second build reuses
both. Facts for the manifest: the runtime's source version, its flags, its build log (relative to
the project, like every path in a manifest).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from build import log as terminal
from build import proc
from build.errors import CommandFailed, ConfigError
from build.locks import exclusive
from build.paths import remove_tree
from build.project import Project, freezer_pins
from build.runtime.compile import (ExportInputs, Runtime, RuntimeBuildFailed, build_runtime, elf_files,
                                   host_site_packages)
from build.runtime.cross import Cross
from build.runtime.flags import EXPORTS, SOURCE_PACKAGE, FlagSet, size_flags
from build.runtime.sources import obtain_source
from build.toolchain import Toolchain, host_architecture

VENV_STAMP = "slimfreeze-venv.json"


def export_inputs(flags: FlagSet) -> ExportInputs:
    """The pinned packages' extension modules and PyInstaller's bootloaders, as installed for the
    Python that runs build.py (the same pins the size venv gets)."""
    if EXPORTS.name not in flags.steps:
        return ExportInputs()
    packages = host_site_packages()
    bootloaders = tuple(p for folder in packages for p in sorted(folder.glob("PyInstaller/bootloader/*/*"))
                        if p.is_file())
    return ExportInputs(users=elf_files(packages), by_name=bootloaders)


def size_runtime(project: Project, log: Path, *, target: str, cross: Cross | None = None,
                 flags: FlagSet | None = None) -> Runtime:
    """Build (or reuse) the size runtime for `target`: on this machine, or cross-compiled (`cross`)
    against the target's Debian root. The export list comes from the pinned packages installed here:
    the C API names they import are the same on every architecture."""
    if cross is None and target != host_architecture():
        raise ConfigError(f"the size runtime for target = \"{target}\" is cross-compiled against its Debian root; "
                          "build it through the profile's toolchain (build/freeze/toolchains.py)")
    flags = flags or size_flags(target)
    source = obtain_source(project, log)
    where = f"cross-compiled for {target}" if cross else "for this machine"
    terminal.info(f"size runtime: {SOURCE_PACKAGE} {source.version} {where} ({', '.join(flags.steps)})")
    return build_runtime(project, source, flags, target=target, export_inputs=export_inputs(flags), cross=cross)


def size_runtime_toolchain(project: Project, log: Path, *, flags: FlagSet | None = None) -> Toolchain:
    """The size runtime for this machine and its venv: the Toolchain that runs the freezer in it."""
    target = host_architecture()
    runtime = size_runtime(project, log, target=target, flags=flags)
    found = freezer_pins(project)
    venv = make_venv(project, runtime, [*found.run, *found.build], log)
    return Toolchain(python=venv / "bin" / "python", target=target, facts=facts(project, runtime))


def facts(project: Project, runtime: Runtime) -> dict[str, object]:
    return {
        "runtime": "size",
        "python": runtime.source_version.split("-")[0],
        "source": f"{SOURCE_PACKAGE} {runtime.source_version}",
        "flags": runtime.flags.describe(),
        "flag_steps": list(runtime.flags.steps),
        "exported_symbols": runtime.exported,
        "runtime_key": runtime.key,
        "build_log": _relative(runtime.build_log, project),
    }


def _relative(path: Path, project: Project) -> str:
    """`path` as the manifest names it: relative to the project, through work/.cache when that is a
    link to the cache (a bigger disk, a CI cache), so `bloat --units` finds the runtime's unstripped
    libraries beside it again; else only its name (nothing about the machine's folders)."""
    try:
        return path.relative_to(project.root).as_posix()
    except ValueError:
        pass
    seen_as = project.root / "work" / ".cache"  # the default place, maybe a link to the real one
    if seen_as.resolve() == project.cache_root and path.is_relative_to(project.cache_root):
        return (Path("work/.cache") / path.relative_to(project.cache_root)).as_posix()
    return path.name


def make_venv(project: Project, runtime: Runtime, requirements: list[str], log: Path) -> Path:
    """A venv of the runtime with `requirements`, in work/.cache/runtime/<key>-venv-<pins>/ (reused)."""
    pins = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:12]
    final = runtime.prefix.with_name(f"{runtime.key}-venv-{pins}")
    if (final / VENV_STAMP).is_file():
        return final
    with exclusive(final):
        if not (final / VENV_STAMP).is_file():
            _make_venv(project, runtime, requirements, log, final)
    return final


def _make_venv(project: Project, runtime: Runtime, requirements: list[str], log: Path, final: Path) -> None:
    tmp = final.with_name(final.name + ".tmp")
    remove_tree(tmp, project.output_roots)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    try:
        # ensurepip seeds pip from the wheel in the runtime's own standard library: no download.
        proc.run([runtime.python, "-m", "venv", tmp], log=log, env=env, timeout=600)
        (tmp / "requirements.txt").write_text("\n".join(requirements) + "\n")
        proc.run([tmp / "bin" / "python", "-m", "pip", "install", "--no-input", "--disable-pip-version-check", "-q",
                  "-r", tmp / "requirements.txt"], log=log, env=env, timeout=1800)
    except CommandFailed as err:
        raise RuntimeBuildFailed(f"size runtime: installing the pinned packages into its venv failed: {err}") from None
    (tmp / VENV_STAMP).write_text(json.dumps({"runtime": runtime.key, "requirements": requirements}, indent=2) + "\n")
    remove_tree(final, project.output_roots)  # a leftover without its stamp (we hold the lock): never a venv
    os.replace(tmp, final)

