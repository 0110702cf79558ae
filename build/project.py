"""Where a project's inputs and outputs live. Work files never go under `build/` (our package)."""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import dataclass
from pathlib import Path

from build.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Project:
    root: Path
    dist_root: Path
    work_root: Path
    reports_root: Path
    # work/.cache: no profile name starts with a dot, so no profile's work folder is ever this one.
    # Slow things built once and reused across builds, keyed by their inputs: Debian roots of other
    # architectures, size-built runtimes. The test suite points it at the project's own, so that
    # the README's first build and the tests build each once per CI run.
    cache_root: Path

    @property
    def pyproject(self) -> Path:
        return self.root / "pyproject.toml"

    @property
    def output_roots(self) -> tuple[Path, ...]:
        """The only folders slimfreeze ever deletes anything inside (see build.paths.remove_tree)."""
        return (self.work_root, self.dist_root, self.reports_root, self.cache_root)

    @classmethod
    def at(cls, root: Path, *, dist: Path | None = None, work: Path | None = None,
           reports: Path | None = None, cache: Path | None = None) -> Project:
        root = root.resolve()
        if not (root / "pyproject.toml").is_file():
            raise ConfigError(f"{root} has no pyproject.toml; run from the project folder")
        work_root = (work or root / "work").resolve()
        project = cls(root=root, dist_root=(dist or root / "dist").resolve(), work_root=work_root,
                      reports_root=(reports or root / "size_reports").resolve(),
                      cache_root=(cache or work_root / ".cache").resolve())
        for folder in project.output_roots:
            if folder == root or folder in root.parents:
                raise ConfigError(f"output folder {folder} would hold the project itself; choose a folder inside it")
            if folder.exists() and not folder.is_dir():  # said now, not after a build of several minutes
                raise ConfigError(f"output folder {folder} is not a folder; give a folder's path")
        package = root / "build"
        if project.work_root == package or package in project.work_root.parents:
            raise ConfigError(f"work folder {project.work_root} is inside the build/ package; choose another")
        return project


# The folder options every command takes (a sub-command may define one of them itself).
PROJECT_OPTIONS = (
    ("--project", {"type": Path, "default": Path.cwd(), "help": "project folder (default: .)"}),
    ("--dist", {"type": Path, "help": "artifacts folder (default: <project>/dist)"}),
    ("--work", {"type": Path, "help": "work/cache folder (default: <project>/work)"}),
    ("--reports", {"type": Path, "help": "reports folder (default: <project>/size_reports)"}),
    ("--cache", {"type": Path, "help": "folder of compiled runtimes and target roots, reusable by other "
                                       "projects (default: <work>/.cache)"}),
)


def add_project_options(parser: argparse.ArgumentParser) -> None:
    """The folder options, except those the parser already defines itself."""
    for flag, options in PROJECT_OPTIONS:
        if flag not in parser._option_string_actions:
            parser.add_argument(flag, **options)


def project_from(args: argparse.Namespace) -> Project:
    return Project.at(args.project, dist=args.dist, work=args.work, reports=args.reports,
                      cache=getattr(args, "cache", None))


@dataclass(frozen=True, kw_only=True)
class Pins:
    """The project's pinned Python packages, from pyproject.toml (the one place they are listed)."""

    run: tuple[str, ...]  # [project] dependencies: what the app imports
    build: tuple[str, ...]  # the `build` extra: the freezers and what the orchestrator uses


def pins(pyproject_text: str) -> Pins:
    """The pins of a pyproject.toml's text (pure)."""
    project = tomllib.loads(pyproject_text).get("project", {})
    return Pins(run=tuple(project.get("dependencies", [])),
                build=tuple(project.get("optional-dependencies", {}).get("build", [])))


# slimfreeze's own pyproject.toml: the freezers and what a build runs are pinned there, whatever
# application is built (for this repository's app it is the same file).
TOOL_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def freezer_pins(project: Project) -> Pins:
    """What a freezer's venv gets: the application's run-time pins, slimfreeze's build pins."""
    return Pins(run=pins(project.pyproject.read_text(encoding="utf-8")).run,
                build=pins(TOOL_PYPROJECT.read_text(encoding="utf-8")).build)

