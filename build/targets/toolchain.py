"""A profile's `target` as a `build.toolchain.Toolchain`: the root's venv Python behind proot + qemu."""

from __future__ import annotations

import re
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


def target_toolchain(target: str, project: Project, log: Path, backend: str = "pyinstaller") -> Toolchain:
    """Make (or reuse from the cache) the root and venv for `target`, and describe them."""
    arch = arch_for(target)
    tools = {name: proc.require_tool(name) for name in ("mmdebstrap", "proot", arch.qemu)}
    cache = project.cache_root / SUBFOLDER
    binds = emulation.host_binds(project)
    deletable = project.output_roots

    def launch(root_path: Path, venv_bin: str | None = None) -> tuple[str, ...]:
        return emulation.launcher_argv(root=root_path, proot=tools["proot"], qemu=tools[arch.qemu],
                                       binds=binds, env=emulation.guest_env(arch, venv_bin))

    spec = root.RootSpec(arch=arch, packages=root.default_packages(), sources=sources.machine_sources())
    made = root.make_root(spec, cache=cache, log=log, deletable=deletable, launch=launch)
    reqs = venv.requirements(project.pyproject.read_text(encoding="utf-8"), backend)
    env = venv.make_venv(made.path, spec.key, reqs, launch=launch(made.path), log=log, deletable=deletable)
    return Toolchain(python=Path(env.python), launcher=launch(made.path, str(env.guest / "bin")),
                     target=arch.name, facts=facts(arch, made, env, tools[arch.qemu]))


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
