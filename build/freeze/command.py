"""The default command, `python build.py [--profile P ...] [--list-profiles [--json]]`: build,
smoke-test and report profiles, then print the summary; or list the profiles as resolved."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from rich.table import Table

from build import log
from build.config import load_profiles, select
from build.freeze.entry_check import check_entry_point
from build.freeze.orchestrate import BuildResult, build_many
from build.project import Project, project_from

DEFAULT_PROFILE = "min"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", action="append", dest="profiles", metavar="NAME",
                        help=f"profile to build (repeatable; default: {DEFAULT_PROFILE})")
    parser.add_argument("--list-profiles", action="store_true", help="print every profile as resolved")
    parser.add_argument("--json", action="store_true", help="with --list-profiles: as JSON")


def run(args: argparse.Namespace) -> int:
    project = project_from(args)
    if args.list_profiles:
        return list_profiles(project, args.json)
    return build_command(project, args.profiles or [DEFAULT_PROFILE])


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


def print_summary(results: Sequence[BuildResult]) -> None:
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


def build_command(project: Project, names: list[str]) -> int:
    profiles = select(load_profiles(project.pyproject), names)
    for profile in profiles:  # a broken declaration stops everything before anything is built
        check_entry_point(project, profile)
    results = build_many(profiles, project)
    print_summary(results)
    for r in results:
        if r.ok:
            log.info(f"{r.profile}: {r.dist_dir} ({r.total_bytes:,} B), report "
                     f"{project.reports_root / r.profile / 'index.html'}")
    return 0 if all(r.ok for r in results) else 1
