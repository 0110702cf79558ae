"""The one interface every freezer backend implements, and the plan it is given."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Protocol

from build import proc
from build.config import SUPERVISOR, Profile
from build.errors import CommandFailed
from build.toolchain import Toolchain

MULTICALL_NAME = "slimfreeze"


@dataclass(frozen=True, kw_only=True)
class Executable:
    """One executable to produce: its file name and the app commands it bundles."""

    name: str
    commands: tuple[str, ...]

    @property
    def hidden_imports(self) -> tuple[str, ...]:
        # Commands are imported lazily by name, so freezers cannot see them: name them.
        return tuple(f"app.commands.{command}" for command in self.commands)


@dataclass(frozen=True, kw_only=True)
class BuildPlan:
    """Everything a backend needs, resolved: the backend decides nothing about policy."""

    profile: Profile
    project_root: Path
    work_dir: Path
    stage_dir: Path
    entry_script: Path
    executables: tuple[Executable, ...]
    excludes: tuple[str, ...]
    module_paths: tuple[Path, ...]
    include_modules: tuple[str, ...]
    log: Path
    toolchain: Toolchain


def bytecode_env(profile: Profile) -> dict[str, str]:
    """Environment for the freezer's own Python, which compiles the bundled bytecode.

    `debug_ranges = false` leaves out the column tables Python 3.11 adds to every code object
    (PYTHONNODEBUGRANGES, CPython's own switch): about 10 % of each .pyc; tracebacks keep their
    line numbers and lose only the ^^^ markers under the failing expression.
    """
    return {} if profile.debug_ranges else {"PYTHONNODEBUGRANGES": "1"}


def executables_for(profile: Profile) -> tuple[Executable, ...]:
    """One multi-call executable, or one executable per command (the supervisor's bundles every
    command, since it runs them all as its workers)."""
    if profile.multicall:
        return (Executable(name=MULTICALL_NAME, commands=profile.commands),)
    return tuple(Executable(name=command, commands=profile.commands if command == SUPERVISOR else (command,))
                 for command in profile.commands)


def distribution_versions(toolchain: Toolchain, names: tuple[str, ...]) -> dict[str, str]:
    """Versions of installed distributions as the toolchain's Python sees them (its own venv)."""
    if toolchain.is_host_python:
        return {name: metadata.version(name) for name in names}
    script = "import sys, importlib.metadata as m; print(' '.join(m.version(n) for n in sys.argv[1:]))"
    ran = proc.capture(toolchain.python_argv("-c", script, *names), env={**os.environ, **toolchain.env},
                       timeout=300, separate_stderr=True)
    versions = ran.output.split()
    if ran.code != 0 or len(versions) != len(names):
        raise CommandFailed(f"could not read the versions of {', '.join(names)} from {toolchain.python}: "
                            f"{(ran.errors or ran.output).strip()[-500:] or 'timed out'}")
    return dict(zip(names, versions, strict=True))


class Backend(Protocol):
    name: str

    def tool_versions(self, toolchain: Toolchain) -> dict[str, str]:
        """Versions of the freezer and what it drives, for the manifest."""
        ...

    def command_lines(self, plan: BuildPlan) -> list[list[str]]:
        """The external commands `build` runs, in order (pure, for tests and logs)."""
        ...

    def build(self, plan: BuildPlan) -> None:
        """Freeze the plan; leave the artifact files flat in `plan.stage_dir`."""
        ...
