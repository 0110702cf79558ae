"""The one interface every freezer backend implements, and the plan it is given."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from build.config import SUPERVISOR, Profile

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


class Backend(Protocol):
    name: str

    def tool_versions(self) -> dict[str, str]:
        """Versions of the freezer and what it drives, for the manifest."""
        ...

    def command_lines(self, plan: BuildPlan) -> list[list[str]]:
        """The external commands `build` runs, in order (pure, for tests and logs)."""
        ...

    def build(self, plan: BuildPlan) -> None:
        """Freeze the plan; leave the artifact files flat in `plan.stage_dir`."""
        ...
