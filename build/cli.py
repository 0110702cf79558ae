"""`python build.py`: build profiles, list them, and the sub-commands (bloat, flash, sweep, ...).

`main()` turns SlimfreezeError into one `slimfreeze: error: ...` line and its exit status; anything
unexpected is a bug and crashes with its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from build import log
from build.config import load_profiles, select
from build.errors import SlimfreezeError
from build.project import Project

DEFAULT_PROFILE = "min"

# Sub-commands: name -> module with add_parser(subparsers) and run(args) -> int (the parser gets
# the project options and `run` as its default unless it sets its own). Imported lazily so
# a plain build does not load the report or flash machinery.
SUBCOMMANDS: dict[str, str] = {
    "bloat": "build.bloat",
    "flash": "build.flash_cli",
    "sweep": "build.sweep",
    "matrix": "build.sweep",
    "trace": "build.trace",
    "suggest": "build.trace",
    "why": "build.why",
}


PROJECT_OPTIONS = (
    ("--project", {"type": Path, "default": Path.cwd(), "help": "project folder (default: .)"}),
    ("--dist", {"type": Path, "help": "artifacts folder (default: <project>/dist)"}),
    ("--work", {"type": Path, "help": "work/cache folder (default: <project>/work)"}),
    ("--reports", {"type": Path, "help": "reports folder (default: <project>/size_reports)"}),
)


def _add_project_options(parser: argparse.ArgumentParser) -> None:
    """The folder options, except those a sub-command already defines itself."""
    for flag, options in PROJECT_OPTIONS:
        if flag not in parser._option_string_actions:
            parser.add_argument(flag, **options)


def project_from(args: argparse.Namespace) -> Project:
    return Project.at(args.project, dist=args.dist, work=args.work, reports=args.reports)


def make_parser(loaded: dict[str, ModuleType] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="build.py",
        description="Freeze the MQTT application into the smallest working executables, "
                    "smoke-test them against a real broker and report where every byte goes.")
    parser.add_argument("--profile", action="append", dest="profiles", metavar="NAME",
                        help=f"profile to build (repeatable; default: {DEFAULT_PROFILE})")
    parser.add_argument("--list-profiles", action="store_true", help="print every profile as resolved")
    parser.add_argument("--json", action="store_true", help="with --list-profiles: as JSON")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of reported errors")
    _add_project_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (loaded or {}).values():
        before = set(subparsers.choices)
        module.add_parser(subparsers)
        for name in set(subparsers.choices) - before:
            sub = subparsers.choices[name]
            _add_project_options(sub)
            if sub.get_default("run") is None:
                sub.set_defaults(run=module.run)
    return parser


def _load_subcommands() -> dict[str, ModuleType]:
    import importlib

    adders = {}
    for module_name in dict.fromkeys(SUBCOMMANDS.values()):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            continue  # not written yet
        adders[module_name] = module
    return adders


def list_profiles(project: Project, as_json: bool) -> int:
    profiles = load_profiles(project.pyproject)
    if as_json:
        print(json.dumps({name: p.to_dict() for name, p in profiles.items()}, indent=2))
        return 0
    for profile in profiles.values():
        print(f"[{profile.name}]" + (f"  # {profile.description}" if profile.description else ""))
        for key, value in profile.to_dict().items():
            if key not in ("name", "description"):
                print(f"  {key} = {json.dumps(value)}")
        print()
    return 0


def print_summary(results: Sequence) -> None:
    from rich.table import Table

    table = Table(title="slimfreeze build summary")
    for column, justify in (("profile", "left"), ("result", "left"), ("artifact bytes", "right"),
                            ("image bytes", "right"), ("smoke", "left"), ("seconds", "right")):
        table.add_column(column, justify=justify)
    for r in results:
        table.add_row(r.profile, "[green]ok[/]" if r.ok else "[red]FAILED[/]",
                      f"{r.total_bytes:,}" if r.total_bytes is not None else "-",
                      f"{r.image_bytes:,}" if r.image_bytes is not None else "-",
                      {True: "passed", False: "failed", None: "-"}[r.smoke_passed], f"{r.seconds:.1f}")
    log.console.print(table)
    for r in results:
        if not r.ok:
            log.info(f"{r.profile}: whole log in {r.log}")


def build_command(args: argparse.Namespace) -> int:
    from build.orchestrate import build_many

    project = project_from(args)
    profiles = select(load_profiles(project.pyproject), args.profiles or [DEFAULT_PROFILE])
    results = build_many(profiles, project)
    print_summary(results)
    for r in results:
        if r.ok:
            log.info(f"{r.profile}: {r.dist_dir} ({r.total_bytes:,} B), report "
                     f"{project.reports_root / r.profile / 'index.html'}")
    return 0 if all(r.ok for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    adders = _load_subcommands()
    parser = make_parser(adders)
    args = parser.parse_args(argv)
    try:
        if args.command:
            return args.run(args)
        if args.list_profiles:
            return list_profiles(project_from(args), args.json)
        return build_command(args)
    except SlimfreezeError as err:
        if getattr(args, "debug", False):
            raise
        log.error(str(err))
        return err.return_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
