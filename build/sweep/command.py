"""`python build.py sweep` and `python build.py matrix`: argument parsing and the terminal table."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from build import log
from build.config import Profile, load_profiles, select
from build.errors import ConfigError
from build.project import Project, project_from
from build.sweep.records import (
    SOURCE,
    SWEEP_NAME,
    matrix,
    strategy,
    sweep_ok,
)
from build.sweep.run import MeasureSettings, collect, run_sweep


def _num(value: Any, fmt: str = ",") -> str:
    return "-" if value is None else format(value, fmt)


def _versus(value: Any, base: Any, fmt: str) -> str:
    if value is None:
        return "-"
    text = format(value, fmt)
    return f"{text} (×{value / base:.2f})" if base else text


def table_rows(sweep: Mapping[str, Any]) -> list[list[str]]:
    """The rows of the terminal table: the source baseline first, then the ranked profiles (pure)."""
    rows = []
    source = sweep.get("source")
    if source:
        rows.append(["", SOURCE, "ok" if source["ok"] else "FAILED", "-", "-", "-", "-",
                     _num(source.get("startup_ms"), ",.1f"), _num(source.get("first_ack_ms"), ",.1f"),
                     _num(source.get("pss_kb_total")), _num(source.get("pss_kb_supervisor")),
                     _num(source.get("rss_kb_total")), "-",
                     "the app from source" if source["ok"] else f"the app from source: {_first_line(source.get('error'))}"])
    for r in sweep["profiles"]:
        base = r.get("source") or {}
        rows.append([_num(r.get("rank")), r["profile"], "ok" if r["ok"] else "FAILED",
                     _num(r.get("device_bytes")), _num(r.get("artifact_bytes")), _num(r.get("image_bytes")),
                     _num(r.get("build_seconds"), ",.1f"),
                     _versus(r.get("startup_ms"), base.get("startup_ms"), ",.1f"),
                     _versus(r.get("first_ack_ms"), base.get("first_ack_ms"), ",.1f"),
                     _versus(r.get("pss_kb_total"), base.get("pss_kb_total"), ","),
                     _versus(r.get("pss_kb_supervisor"), base.get("pss_kb_supervisor"), ","),
                     _num(r.get("rss_kb_total")), _num(r.get("unpack_bytes")),
                     strategy(r) if r["ok"] else _first_line(r.get("error"))])
    return rows


TABLE_COLUMNS = (("#", "right"), ("profile", "left"), ("result", "left"), ("device B", "right"),
                 ("artifact B", "right"), ("image B", "right"), ("build s", "right"), ("hello ms", "right"),
                 ("1st ack ms", "right"), ("PSS kB", "right"), ("PSS kB run", "right"), ("RSS kB", "right"), ("unpacked B", "right"),
                 ("strategy / reason", "left"))


def _first_line(text: Any) -> str:
    return str(text or "").strip().splitlines()[0] if str(text or "").strip() else ""


def print_table(sweep: Mapping[str, Any]) -> None:

    settings = sweep.get("settings") or {}
    table = Table(title=f"slimfreeze sweep: ranked by bytes on the device; memory of {settings.get('workers', '?')} "
                        f"concurrent `{settings.get('worker_command', '?')}` workers, and of `{settings.get('supervisor', '?')}` "
                        f"(one supervisor); (×N) = against source, same run")
    for name, justify in TABLE_COLUMNS:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in table_rows(sweep):
        style = "red" if row[2] == "FAILED" else None
        table.add_row(*(escape(cell) for cell in row), style=style)
    Console().print(table)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    sweep = subparsers.add_parser(
        "sweep", help="build profiles, measure size, start-up and memory, rank them by bytes on the device",
        description="Build each profile (default: every one in pyproject.toml), smoke-test and measure it, "
                    "and write size_reports/sweep.json ranked by bytes on the device. With --collect, merge "
                    "the size_reports/ folders of several CI runners instead.")
    sweep.add_argument("--profile", action="append", dest="profiles", metavar="NAME",
                       help="profile to sweep (repeatable; default: all)")
    sweep.add_argument("--collect", type=Path, metavar="DIR",
                       help="merge the runners' size_reports/ folders found under DIR; build nothing")
    sweep.add_argument("--no-build", action="store_true", help="measure what dist/<profile> holds; build nothing")
    sweep.add_argument("--runs", type=_positive, default=MeasureSettings.runs, metavar="N",
                       help=f"timed runs per start-up figure (default {MeasureSettings.runs})")
    sweep.add_argument("--workers", type=_positive, default=MeasureSettings.workers, metavar="N",
                       help=f"concurrent workers for the memory figures (default {MeasureSettings.workers})")
    sweep.set_defaults(handler=run_sweep_command)
    matrix_parser = subparsers.add_parser(
        "matrix", help="print the profiles as a GitHub Actions matrix (JSON)",
        description='Print {"include": [{"profile": NAME}, ...]} for a workflow\'s strategy.matrix.')
    matrix_parser.add_argument("--profile", action="append", dest="profiles", metavar="NAME",
                               help="only these profiles (repeatable; default: all)")
    matrix_parser.set_defaults(handler=run_matrix_command)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _project_and_profiles(args: argparse.Namespace) -> tuple[Project, list[Profile]]:

    project = project_from(args)
    profiles = load_profiles(project.pyproject)
    return project, select(profiles, args.profiles or list(profiles))


def run_matrix_command(args: argparse.Namespace) -> int:
    _, profiles = _project_and_profiles(args)
    print(json.dumps(matrix(p.name for p in profiles)))
    return 0


def run_sweep_command(args: argparse.Namespace) -> int:

    if args.collect is not None:
        if args.profiles or args.no_build:
            raise ConfigError("--collect merges finished sweeps; it takes no --profile or --no-build")

        reports_root = project_from(args).reports_root
        sweep = collect(args.collect, reports_root)
        print_table(sweep)
        log.info(f"merged {len(sweep['runs'])} run(s) into {reports_root / SWEEP_NAME}")
    else:
        project, profiles = _project_and_profiles(args)
        sweep = run_sweep(project, profiles, settings=MeasureSettings.of(profiles[0].app, runs=args.runs, workers=args.workers),
                          build=not args.no_build)
        print_table(sweep)
        log.info(f"written to {project.reports_root / SWEEP_NAME}")
    for record in sweep["profiles"]:
        if not record["ok"]:
            log.error(f"profile '{record['profile']}' failed: {_first_line(record['error'])}")
    for run in sweep.get("runs", []):
        if not run.get("source"):
            log.error(f"run {run['run_id']} recorded no source baseline, so its figures have nothing to compare with")
        elif not run["source"]["ok"]:
            log.error(f"the source baseline failed: {_first_line(run['source']['error'])}")
    return 0 if sweep_ok(sweep) else 1
