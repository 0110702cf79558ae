"""`python build.py trace`, `suggest` and `why`: argument parsing and printing. The work is in
build.freeze.trace (what the app loads), build.explore.suggest and build.explore.why."""

from __future__ import annotations

import argparse
import json
import os

from build.analysis.retained import CHAIN_LIMIT
from build.config import Profile, load_profiles, select
from build.explore.suggest import render, require_built, suggestions
from build.explore.why import DEFAULT_CHAINS, exclusion_reasons, explain, profile_graph
from build.freeze.excludes import plan_excludes
from build.freeze.trace import import_graph, run_trace
from build.project import Project, project_from
from build.report import current_report


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    trace = subparsers.add_parser("trace", help="record what each command loads when run from source")
    trace.add_argument("--profile", default="min", help="profile whose stand-ins and commands to trace")
    trace.set_defaults(handler=run_trace_command)
    suggest = subparsers.add_parser("suggest", help="what a profile bundles that a traced run never loads")
    suggest.add_argument("--profile", default="min")
    suggest.set_defaults(handler=run_suggest_command)
    why = subparsers.add_parser(
        "why", help="the import chains that pull a module into a profile's artifact",
        description="Print the shortest import chains from the entry script to MODULE in the freezer's import "
                    "graph of the profile (as built: with its exclusions), and whether and with how many bytes "
                    "MODULE is in the built artifact.")
    why.add_argument("module", help="dotted module name, e.g. paho.mqtt.client")
    why.add_argument("--profile", default="min", help="profile (default: min)")
    count = why.add_mutually_exclusive_group()
    count.add_argument("-n", type=int, default=DEFAULT_CHAINS, metavar="N",
                       help=f"chains to show (default {DEFAULT_CHAINS})")
    count.add_argument("--all", action="store_true", help=f"every shortest chain (at most {CHAIN_LIMIT})")
    why.set_defaults(handler=run_why_command)


def _project_and_profile(args: argparse.Namespace) -> tuple[Project, Profile]:
    project = project_from(args)
    [profile] = select(load_profiles(project.pyproject), [args.profile])
    return project, profile


def run_trace_command(args: argparse.Namespace) -> int:
    project, profile = _project_and_profile(args)
    trace = run_trace(project, profile)
    for command, modules in sorted(trace.commands.items()):
        libraries = sorted(os.path.basename(p) for p in trace.libraries.get(command, ()))
        print(f"{command}: {len(modules)} modules, {len(libraries)} shared libraries: {', '.join(libraries)}")
    print(f"all commands: {len(trace.modules)} modules; written to "
          f"{project.work_root / profile.name / 'trace' / 'trace.json'}")
    return 0


def run_suggest_command(args: argparse.Namespace) -> int:
    project, profile = _project_and_profile(args)
    require_built(project, profile)  # before the trace: it needs a broker and takes seconds
    trace = run_trace(project, profile)
    graph = import_graph(project, profile, plan_excludes(profile))
    print(render(suggestions(project, profile, trace, graph)))
    return 0


def traced_scenarios(project: Project, profile: Profile, module: str) -> list[str] | None:
    """The scenarios whose traced runs loaded `module`, from the profile's last trace (None: no trace)."""
    path = project.work_root / profile.name / "trace" / "trace.json"
    try:
        scenarios = json.loads(path.read_text(encoding="utf-8")).get("scenarios", {})
    except (OSError, ValueError):
        return None
    return sorted(label for label, modules in scenarios.items() if module in modules)


def run_why_command(args: argparse.Namespace) -> int:
    project, profile = _project_and_profile(args)
    graph, excluded = profile_graph(project, profile)
    report = current_report(project.dist_root / profile.name, project.reports_root / profile.name)
    print(explain(args.module, graph=graph, profile=profile.name, report=report,
                  limit=None if args.all else max(args.n, 1),
                  reasons=exclusion_reasons(profile, excluded), dist=project.dist_root / profile.name,
                  loaded_by=traced_scenarios(project, profile, args.module)))
    return 0
