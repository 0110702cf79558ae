"""Benchmark (issue 5, item 4): does one `run` supervisor that imports once, gc.freeze()s and forks
its workers use less memory than the same commands as separate processes?

    .venv/bin/python benchmarks/supervisor_memory.py [--launcher "dist/min/slimfreeze"]
        [--commands telemetry heartbeat control] [--rounds 3]

Against a real mosquitto (build.testbed.broker.Broker, through build.sweep.measure.Bench) it starts
  (a) one process per command: `<launcher> telemetry`, `<launcher> heartbeat`, `<launcher> control`;
  (b) one supervisor: `<launcher> run telemetry heartbeat control`;
one variant after the other, never side by side. Once every worker of a variant has announced
"online", it reads /proc/<pid>/smaps_rollup of every process in each tree (the supervisor and its
children; a onefile's starter and its child) and prints RSS and PSS per process and in total.
<launcher> defaults to `python -m app` (this Python, from the source tree); with a built artifact,
pass the program that takes a command as its first argument, e.g. --launcher dist/min/slimfreeze.

A benchmark, not a test: it prints figures and asserts nothing about them. PSS splits each shared
page among all processes mapping it, this script's own Python included when the launcher is this
Python (it maps the same libpython and extension modules), for both variants alike. The share of the
operating system's files (libc, libm, the loader, locale data) depends on how many other processes
on the machine map them, so it is printed apart: "PSS without them" is the same on a busy machine
and an idle one.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `build` is the source tree's package, never an installed one

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from build.errors import SlimfreezeError  # noqa: E402
from build.application import Messages, Scenario, load_application  # noqa: E402
from build.sweep.measure import Bench, MemoryResult, WorkerSpec, help_commands, measure_workers  # noqa: E402

SOURCE_LAUNCHER = [sys.executable, "-m", "app"]
DEFAULT_COMMANDS = ("telemetry", "heartbeat", "control")


def launcher_argv(text: str | None) -> list[str]:
    """The launcher as an argument list; a relative program path is made absolute (the workers run
    in the source tree)."""
    if not text:
        return list(SOURCE_LAUNCHER)
    argv = shlex.split(text)
    program = Path(argv[0])
    if "/" in argv[0] and not program.is_absolute():
        argv[0] = str(program.resolve())
    return argv


def online(args: list[str], workers: int) -> Scenario:
    """Running until SIGTERM, ready once `workers` MQTT clients said "online" on the device's status."""
    return Scenario(name="online", path="benchmark", args=tuple(args), stop="SIGTERM",
                    ready=(Messages(topic="devices/{device}/status", payload="online", count=workers),))


def separate_specs(launcher: list[str], commands: list[str]) -> list[WorkerSpec]:
    return [WorkerSpec(launch=(*launcher, command), scenario=online([], 1), cwd=ROOT, label=command)
            for command in commands]


def supervisor_spec(launcher: list[str], commands: list[str]) -> WorkerSpec:
    # Every worker of the supervisor announces "online" on the same devices/<id>/status.
    return WorkerSpec(launch=(*launcher, "run"), scenario=online(commands, len(commands)), cwd=ROOT, label="run")


def process_rows(variant: str, memory: MemoryResult) -> list[list[str]]:
    rows = []
    for worker in memory.workers:
        for position, p in enumerate(worker.processes):
            role = "started" if position == 0 else f"child of {p.ppid}"
            rows.append([variant, worker.label, str(p.pid), role, f"{p.rss_kb:,}", f"{p.pss_kb:,}"])
    rows.append([variant, "TOTAL", "", f"{memory.process_count} processes", f"{memory.rss_kb:,}",
                 f"{memory.pss_kb:,}"])
    return rows


def summary_rows(separate: list[MemoryResult], supervised: list[MemoryResult]) -> list[list[str]]:
    def median(results: list[MemoryResult], key: str) -> int:
        return round(statistics.median(getattr(r, key) for r in results))

    def own(results: list[MemoryResult]) -> int:
        return round(statistics.median(r.pss_kb - r.os_files_pss_kb for r in results))

    rows = []
    for name, results in (("separate processes", separate), ("supervisor (run)", supervised)):
        rows.append([name, str(results[-1].process_count), f"{median(results, 'rss_kb'):,}",
                     f"{median(results, 'pss_kb'):,}", f"{median(results, 'os_files_pss_kb'):,}",
                     f"{own(results):,}", ", ".join(f"{r.pss_kb:,}" for r in results)])
    rss_delta = median(supervised, "rss_kb") - median(separate, "rss_kb")
    pss_delta = median(supervised, "pss_kb") - median(separate, "pss_kb")
    own_delta = own(supervised) - own(separate)
    rows.append(["supervisor - separate", "", f"{rss_delta:+,} ({rss_delta / median(separate, 'rss_kb'):+.0%})",
                 f"{pss_delta:+,} ({pss_delta / median(separate, 'pss_kb'):+.0%})", "",
                 f"{own_delta:+,} ({own_delta / own(separate):+.0%})", ""])
    return rows


def table(title: str, columns: list[str], rows: list[list[str]], numeric: tuple[str, ...]) -> Table:
    t = Table(title=title)
    for column in columns:
        t.add_column(column, justify="right" if column in numeric else "left")
    for row in rows:
        t.add_row(*row)
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launcher", metavar="PROGRAM",
                        help="program taking the command as its first argument, e.g. dist/min/slimfreeze "
                             "(default: this Python's `-m app` from the source tree)")
    parser.add_argument("--commands", nargs="+", default=list(DEFAULT_COMMANDS), metavar="CMD",
                        help=f"the workers (default: {' '.join(DEFAULT_COMMANDS)})")
    parser.add_argument("--rounds", type=int, default=3, help="measure each variant this many times; totals "
                                                              "are medians (default: 3)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    launcher = launcher_argv(args.launcher)
    offered = help_commands(launcher, cwd=ROOT)
    missing = [c for c in ("run", *args.commands) if c not in offered]
    if missing:
        print(f"supervisor_memory: error: `{shlex.join(launcher)} --help` does not list {', '.join(missing)}; "
              "build it with those commands included", file=sys.stderr)
        return 1
    separate: list[MemoryResult] = []
    supervised: list[MemoryResult] = []
    try:
        with Bench(load_application(ROOT / "pyproject.toml")) as bench:
            print(f"measuring `{shlex.join(launcher)}`: {len(args.commands)} separate processes against "
                  f"`run {' '.join(args.commands)}`, {args.rounds} round(s) ...", file=sys.stderr)
            for _ in range(args.rounds):
                separate.append(measure_workers(separate_specs(launcher, args.commands), bench=bench))
                supervised.append(measure_workers([supervisor_spec(launcher, args.commands)], bench=bench))
    except SlimfreezeError as err:
        print(f"supervisor_memory: error: {err}", file=sys.stderr)
        return err.return_code

    console = Console() if sys.stdout.isatty() else Console(width=110)  # a file or pipe: no wrapping
    console.print(table(f"memory per process, last round (smaps_rollup, kB): `{shlex.join(launcher)}`",
                        ["variant", "worker", "pid", "process", "RSS kB", "PSS kB"],
                        process_rows("separate", separate[-1]) + process_rows("supervisor", supervised[-1]),
                        numeric=("RSS kB", "PSS kB")))
    console.print(table(f"total of {len(args.commands)} workers (median of {args.rounds} round(s), kB)",
                        ["variant", "processes", "RSS kB", "PSS kB", "of it OS files kB", "PSS without them kB",
                         "PSS kB each round"],
                        summary_rows(separate, supervised),
                        numeric=("processes", "RSS kB", "PSS kB", "of it OS files kB", "PSS without them kB")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
