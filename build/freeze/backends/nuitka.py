"""Nuitka backend: compile the entry to C and link it, one Nuitka run per executable.

Nuitka has no shared runtime folder for several programs, so a profile with `multicall = false`
builds one standalone or onefile program per command (checked in config: onedir needs multicall).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from build import proc
from build.freeze.backends.base import (
    BuildPlan,
    Executable,
    bytecode_env,
    distribution_versions,
)
from build.paths import remove_tree
from build.toolchain import Toolchain


def _flags(plan: BuildPlan, exe: Executable, output_dir: Path) -> list[str]:
    profile = plan.profile
    flags = [
        "--onefile" if profile.layout == "onefile" else "--standalone",
        f"--output-dir={output_dir}",
        f"--output-filename={exe.name}",
        "--assume-yes-for-downloads",  # it may only use what is installed: the machine has no internet
        "--no-progressbar",
        "--remove-output",
    ]
    flags += [f"--include-module={name}" for name in (*exe.hidden_imports, *plan.include_modules)]
    flags += [f"--nofollow-import-to={name}" for name in plan.excludes]
    if profile.optimize >= 1:
        flags.append("--python-flag=no_asserts")
    if profile.optimize >= 2:
        flags.append("--python-flag=no_docstrings")
    if profile.layout == "onefile" and profile.effective_compression == "none":
        flags.append("--onefile-no-compression")
    if profile.upx:
        flags.append("--plugin-enable=upx")
    return [*flags, *profile.nuitka_args]


class NuitkaBackend:
    name = "nuitka"

    def tool_versions(self, toolchain: Toolchain) -> dict[str, str]:
        return distribution_versions(toolchain, ("nuitka", "zstandard"))

    def _output_dir(self, plan: BuildPlan, exe: Executable) -> Path:
        return plan.work_dir / "nuitka" / exe.name

    def command_lines(self, plan: BuildPlan) -> list[list[str]]:
        return [plan.toolchain.python_argv("-m", "nuitka", *_flags(plan, exe, self._output_dir(plan, exe)),
                                           str(plan.entry_script)) for exe in plan.executables]

    def build(self, plan: BuildPlan) -> None:
        env = {**os.environ, **plan.toolchain.env, **bytecode_env(plan.profile)}
        # The app package and the stand-ins are found through the path, as in the source tree.
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (plan.project_root, *plan.module_paths))
        for exe, argv in zip(plan.executables, self.command_lines(plan), strict=True):
            output_dir = self._output_dir(plan, exe)
            remove_tree(output_dir, (plan.work_dir,))
            # Run in the work folder: a failing Nuitka writes nuitka-crash-report.xml into its
            # working directory, which must not be the user's project.
            output_dir.mkdir(parents=True, exist_ok=True)
            proc.run(argv, log=plan.log, env=env, cwd=output_dir, timeout=3600)
            if plan.profile.layout == "onefile":
                shutil.move(str(output_dir / exe.name), plan.stage_dir / exe.name)
            else:
                folder = output_dir / f"{plan.entry_script.stem}.dist"
                for item in folder.iterdir():
                    shutil.move(str(item), plan.stage_dir / item.name)
        if plan.profile.strip and plan.profile.layout == "onedir":
            # Nuitka leaves extension modules and copied libraries unstripped (the onefile payload
            # is packed inside Nuitka, out of reach).
            libraries = sorted(str(p) for p in plan.stage_dir.rglob("*.so*") if p.is_file())
            if libraries:
                proc.run(["strip", "--strip-unneeded", *libraries], log=plan.log)
