"""Benchmark (issue 5, item 4): memory and start-up of a built artifact beside `python -m app`
from source, measured in the same run against a real mosquitto.

    .venv/bin/python benchmarks/memory_startup.py [--profile min | --dist-dir DIR] [--workers 3]
        [--command control] [--runs 11] [--supervise telemetry heartbeat control] [--markdown]

Prints:
- start-up (median `hello` wall time) and start to first acknowledged publish
  (`heartbeat --count 1`, median), artifact and source;
- RSS and PSS of N concurrent workers, per process and in total, from /proc/<pid>/smaps_rollup
  while all N run (a onefile's starter and its child both count);
- the bytes a onefile unpacks into TMPDIR at every start;
- if the app has `run` (one supervisor that imports once, gc.freeze()s and forks its workers):
  the supervisor against the same commands as separate processes, from source and from the
  artifact. Without `run` it says so.
A benchmark, not a test: it prints figures and asserts nothing about them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `build` is the source tree's package, never an installed one

from build.errors import SlimfreezeError  # noqa: E402
from build.manifest import read_manifest  # noqa: E402
from build.sweep.measure import (  # noqa: E402
    Bench, MemoryResult, WorkerSpec, first_ack_medians, help_commands, measure_workers, startup_medians,
)
from build.application import Messages, Scenario, load_application  # noqa: E402
from build.sweep.run import dist_program, source_program  # noqa: E402

SOURCE_ARGV = [sys.executable, "-m", "app"]


# ---- output ----

def emit(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, as_markdown: bool,
         numeric: Sequence[str] = ()) -> None:
    if as_markdown:
        print(f"\n**{title}**\n")
        print("| " + " | ".join(columns) + " |")
        print("|" + "|".join("---:" if c in numeric else "---" for c in columns) + "|")
        for row in rows:
            print("| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column in numeric else "left")
    for row in rows:
        table.add_row(*(escape(str(cell)) for cell in row))
    Console().print(table)


def ratio(value: float | None, base: float | None) -> str:
    return f"×{value / base:.2f}" if value is not None and base else "-"


def num(value: float | int | None, fmt: str = ",") -> str:
    return "-" if value is None else format(value, fmt)


def process_rows(target: str, memory: MemoryResult) -> list[list[str]]:
    rows = []
    for index, worker in enumerate(memory.workers, 1):
        for position, p in enumerate(worker.processes):
            role = "started" if position == 0 else f"child of {p.ppid}"
            rows.append([target, f"{index} {worker.label}", str(p.pid), role, p.name, f"{p.rss_kb:,}", f"{p.pss_kb:,}"])
        rows.append([target, f"{index} {worker.label}", "", "worker total", "", f"{worker.rss_kb:,}", f"{worker.pss_kb:,}"])
    rows.append([target, "ALL", "", f"{memory.process_count} processes", "", f"{memory.rss_kb:,}", f"{memory.pss_kb:,}"])
    return rows


# ---- measuring ----

def supervisor_argv(dist_dir: Path, manifest: dict) -> list[str] | None:
    """How to start the artifact's `run` supervisor, or None if this artifact has none."""
    if "run" in manifest["commands"]:
        return [str(dist_dir / manifest["commands"]["run"])]
    if manifest.get("multicall") and manifest.get("executables"):
        exe = [str(dist_dir / manifest["executables"][0])]
        if "run" in help_commands(exe, cwd=dist_dir):
            return [*exe, "run"]
    return None


def online(args: list[str], workers: int) -> Scenario:
    """Running until SIGTERM, ready once `workers` MQTT clients said "online" on the device's status."""
    return Scenario(name="online", path="benchmark", args=tuple(args), stop="SIGTERM",
                    ready=(Messages(topic="devices/{device}/status", payload="online", count=workers),))


def supervisor_rows(label: str, run_argv: list[str], launch: Mapping[str, Sequence[str]], commands: list[str],
                    cwd: Path, bench: Bench) -> list[list[str]]:
    separate = measure_workers([WorkerSpec(launch=tuple(launch[c]), scenario=online([], 1), cwd=cwd, label=c)
                                for c in commands], bench=bench)
    supervised = measure_workers([WorkerSpec(launch=tuple(run_argv), scenario=online(commands, len(commands)), cwd=cwd,
                                             label="run")], bench=bench)
    return [[label, f"{len(commands)} separate processes", f"{separate.process_count}", f"{separate.rss_kb:,}",
             f"{separate.pss_kb:,}", ""],
            [label, f"supervisor `run {' '.join(commands)}`", f"{supervised.process_count}",
             f"{supervised.rss_kb:,}", f"{supervised.pss_kb:,}",
             f"{supervised.pss_kb - separate.pss_kb:+,} kB PSS ({ratio(supervised.pss_kb, separate.pss_kb)})"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--profile", default="min", help="measure dist/<profile> (default: min)")
    where.add_argument("--dist-dir", type=Path, help="a built dist folder (with manifest.json)")
    parser.add_argument("--workers", type=int, default=3, help="concurrent workers (default 3)")
    parser.add_argument("--command", default="control", help="the workers' command (default: control)")
    parser.add_argument("--runs", type=int, default=11, help="timed runs per start-up figure (default 11)")
    parser.add_argument("--supervise", nargs="+", default=["telemetry", "heartbeat", "control"], metavar="CMD",
                        help="commands for the supervisor comparison (default: telemetry heartbeat control)")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.runs < 1:
        parser.error("--workers and --runs must be at least 1")
    dist_dir = (args.dist_dir or ROOT / "dist" / args.profile).resolve()
    try:
        return measure_all(dist_dir, args)
    except SlimfreezeError as err:
        print(f"memory_startup: error: {err}", file=sys.stderr)
        return err.return_code


def measure_all(dist_dir: Path, args: argparse.Namespace) -> int:
    manifest = read_manifest(dist_dir)
    profile = manifest["profile"]
    artifact = dist_program(dist_dir, manifest)  # named "artifact"
    app = load_application(ROOT / "pyproject.toml")
    source = source_program(ROOT, app, ROOT / "work" / "benchmark-source", name="source")
    for command in ("hello", "heartbeat", args.command):
        if command not in artifact.launch:
            raise SlimfreezeError(f"{profile} has no '{command}' command; pick a profile that includes it")
    source_run = [*SOURCE_ARGV, "run"] if "run" in help_commands(SOURCE_ARGV, cwd=ROOT) else None
    md = args.markdown

    with Bench(app) as bench:
        print(f"measuring {profile} ({dist_dir}) and `python -m app` from source, in turns ...", file=sys.stderr)
        programs = [artifact, source]
        startup = startup_medians(programs, bench=bench, runs=args.runs)
        first_ack = first_ack_medians(programs, bench=bench, runs=args.runs)
        memory = {p.name: measure_workers([WorkerSpec(launch=tuple(p.launch[args.command]), scenario=online([], 1),
                                                      cwd=p.cwd, label=args.command)] * args.workers, bench=bench)
                  for p in programs}
        supervised: list[list[str]] = []
        notes: list[str] = []
        if source_run is None:
            notes.append("supervisor (`app run <cmd> ...`): not available: `python -m app --help` lists no `run`")
        else:
            supervised += supervisor_rows("source", source_run, source.launch, args.supervise, ROOT, bench)
            artifact_run = supervisor_argv(dist_dir, manifest)
            if artifact_run is None:
                notes.append(f"supervisor in {profile}: not available in this artifact (rebuild it with `run` included)")
            else:
                supervised += supervisor_rows(profile, artifact_run, artifact.launch, args.supervise, dist_dir, bench)

    a, s = memory["artifact"], memory["source"]
    image = (manifest.get("image") or {}).get("size")
    emit(f"{profile} against python -m app from source (same run, in turns; medians of {args.runs})",
         ["figure", profile, "source", f"{profile} / source"],
         [["hello start-up ms", num(startup["artifact"], ",.1f"), num(startup["source"], ",.1f"),
           ratio(startup["artifact"], startup["source"])],
          ["start to first acknowledged publish ms", num(first_ack["artifact"], ",.1f"), num(first_ack["source"], ",.1f"),
           ratio(first_ack["artifact"], first_ack["source"])],
          [f"RSS kB, {args.workers} × {args.command}", num(a.rss_kb), num(s.rss_kb), ratio(a.rss_kb, s.rss_kb)],
          [f"PSS kB, {args.workers} × {args.command}", num(a.pss_kb), num(s.pss_kb), ratio(a.pss_kb, s.pss_kb)],
          ["processes", str(a.process_count), str(s.process_count), ""],
          ["bytes unpacked at each start (TMPDIR)", num(a.unpack_bytes), "0", ""],
          ["bytes on the device", num(image if image is not None else manifest["total_bytes"]), "-", ""]],
         as_markdown=md, numeric=(profile, "source"))
    emit(f"memory per process: {args.workers} concurrent `{args.command}` workers (smaps_rollup, kB)",
         ["target", "worker", "pid", "process", "name", "RSS kB", "PSS kB"],
         process_rows(profile, a) + process_rows("source", s), as_markdown=md, numeric=("RSS kB", "PSS kB"))
    if supervised:
        emit("one supervisor forking its workers against separate processes (kB)",
             ["target", "variant", "processes", "RSS kB", "PSS kB", "supervisor vs separate"], supervised,
             as_markdown=md, numeric=("processes", "RSS kB", "PSS kB"))
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
