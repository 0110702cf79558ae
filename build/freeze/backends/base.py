"""The one interface every freezer backend implements, and the plan it is given."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Protocol

from build import proc
from build.config import Profile
from build.errors import CommandFailed
from build.toolchain import Toolchain


@dataclass(frozen=True, kw_only=True)
class Executable:
    """One executable to produce: its file name, the app commands it bundles, and the modules
    those commands declare (imported by name at run time, so freezers cannot see them)."""

    name: str
    commands: tuple[str, ...]
    hidden_imports: tuple[str, ...] = ()


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
    """One multi-call executable named as the app's program, or one executable per command (a
    supervisor's bundles every command, since it runs them all as its workers)."""
    app = profile.app
    assert app is not None

    def executable(name: str, commands: tuple[str, ...]) -> Executable:
        modules = tuple(dict.fromkeys(m for c in commands for m in app.commands[c].modules))
        return Executable(name=name, commands=commands, hidden_imports=modules)

    if profile.multicall:
        return (executable(app.program, profile.commands),)
    return tuple(executable(command, app.bundled_by(command, profile.commands)) for command in profile.commands)


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
