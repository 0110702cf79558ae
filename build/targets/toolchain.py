"""A profile's `target` as a `build.toolchain.Toolchain`: the root's venv Python behind proot + qemu."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from build import proc
from build.project import Project
from build.targets import emulation, root, sources, venv
from build.targets.arch import Arch, arch_for
from build.toolchain import Toolchain

SUBFOLDER = "targets"


def emulator_version(qemu: str) -> str:
    """`qemu-aarch64-static 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18+b3)`, for the manifest."""
    first = proc.tool_output([qemu, "--version"]).splitlines()[:1]
    match = re.search(r"version\s+(.+)", first[0]) if first else None
    return f"{Path(qemu).name} {match.group(1).strip() if match else 'unknown'}"


@dataclass(frozen=True, kw_only=True)
class TargetRoot:
    """A made (or cached) Debian root of one architecture and how to run its programs."""

    arch: Arch
    made: root.Root
    qemu: str  # the emulator's path
    _launch: Callable[[Path, str | None], tuple[str, ...]]

    def launcher(self, venv_bin: str | None = None) -> tuple[str, ...]:
        """The argv prefix that runs a guest program (with `venv_bin` first on its PATH)."""
        return self._launch(self.made.path, venv_bin)


def target_root(target: str, project: Project, log: Path) -> TargetRoot:
    """Make (or reuse from the cache) the Debian root for `target`."""
    arch = arch_for(target)
    tools = {name: proc.require_tool(name) for name in ("mmdebstrap", "proot", arch.qemu)}
    binds = emulation.host_binds(project)

    def launch(root_path: Path, venv_bin: str | None = None) -> tuple[str, ...]:
        return emulation.launcher_argv(root=root_path, proot=tools["proot"], qemu=tools[arch.qemu],
                                       binds=binds, env=emulation.guest_env(arch, venv_bin))

    spec = root.RootSpec(arch=arch, packages=root.default_packages(), sources=sources.machine_sources())
    made = root.make_root(spec, cache=project.cache_root / SUBFOLDER, log=log, deletable=project.output_roots,
                          launch=launch)
    return TargetRoot(arch=arch, made=made, qemu=tools[arch.qemu], _launch=launch)


def target_toolchain(target: str, project: Project, log: Path, backend: str = "pyinstaller",
                     base: venv.BasePython | None = None, made: TargetRoot | None = None) -> Toolchain:
    """The root for `target` and a venv in it with the pinned packages, of the root's own python3.11
    or of `base` (the size runtime cross-compiled for it; its facts join the manifest's)."""
    made = made or target_root(target, project, log)
    reqs = venv.requirements(project.pyproject.read_text(encoding="utf-8"), backend)
    env = venv.make_venv(made.made.path, made.made.spec.key, reqs, launch=made.launcher(), log=log,
                         deletable=project.output_roots, base=base)
    described = facts(made.arch, made.made, env, made.qemu)
    if base is not None:
        described |= dict(base.facts)
    return Toolchain(python=Path(env.python), launcher=made.launcher(str(env.guest / "bin")),
                     target=made.arch.name, facts=described)


def facts(arch: Arch, made: root.Root, env: venv.Venv, qemu: str) -> dict[str, object]:
    return {
        "architecture": arch.name,
        "debian_arch": arch.debian,
        "python": made.packages.get("python3.11", "").split("-")[0] or None,
        "root": made.spec.name,
        "root_packages": dict(made.packages),
        "venv_requirements": list(env.requirements),
        "emulator": emulator_version(qemu),
    }
