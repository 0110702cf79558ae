"""Benchmark (issue 11): what the size-built runtime saves and what it costs, beside the system one.

    .venv/bin/python benchmarks/runtime.py [--ladder] [--size-profile min] [--system-profile min-system]
        [--runs 11] [--messages 300] [--markdown]
    .venv/bin/python benchmarks/runtime.py --speed [--balanced] [--without STEP] [--runtime FOLDER] [--rigorous]

Prints:
- libpython bytes (raw, stripped, xz -9e) of the machine's Python and of every size runtime in the
  cache (work/.cache/runtime/), one row per flag set, with the seconds its compile and its relink
  took (a compile of 0: the compiled tree was reused); `--ladder` first builds the missing ones,
  one per step of flags.SIZE_STEPS, each on top of those before (a compile each, cached; a step
  that changes only the export list is a relink of the tree before it);
- artifact bytes of the size and system profiles from their dist/*/manifest.json (built before:
  `build.py --profile min min-system`);
- the price: start-up (`hello`), start to first acknowledged publish, messages per second through
  one worker (`telemetry --interval 0.001`, the app's shortest: it caps the rate at 1,000/s, so the
  figure shows a runtime falling below that, not a maximum), each for both artifacts, and a pure-Python loop in both
  interpreters (the size venv's Python and the one running this), all in the same run, in turns.
With `--speed`, only pyperformance's subset (PYPERFORMANCE, pyperf's --fast unless --rigorous) on
the size runtime (and with `--balanced` the balanced recipe's, built when missing; with --runtime
any other of the cache; with --without STEP the size recipe without that step, built when missing),
Debian's python3.11 and the Python running this, each benchmark on each in turns, with each
benchmark's ratio to Debian's and the geometric mean.
A benchmark, not a test: it prints figures and asserts nothing about them.
"""

from __future__ import annotations

import argparse
import lzma
import math
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `build` is the source tree's package, never an installed one

from build import proc  # noqa: E402
from build.errors import SlimfreezeError  # noqa: E402
from build.manifest import read_manifest  # noqa: E402
from build.project import Project  # noqa: E402
from build.toolchain import host_architecture  # noqa: E402
from build.runtime import compile as runtime_compile  # noqa: E402
from build.runtime.flags import SIZE_STEPS, applies, merge, size_flags, step_named  # noqa: E402
from build.runtime.sources import obtain_source  # noqa: E402
from build.runtime.toolchain import export_inputs, size_runtime, size_runtime_toolchain  # noqa: E402
from build.sweep.measure import (Bench, MeasureError, Program, alternate, first_ack_medians,  # noqa: E402
                                 startup_medians)
from build.application import Scenario, load_application  # noqa: E402
from build.sweep.run import dist_program  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from memory_startup import emit, num, ratio  # noqa: E402

# pyperformance's benchmarks issue 18 names (pyperf runs them; both pinned in pyproject.toml's test extra).
PYPERFORMANCE = ("richards", "nbody", "float", "chaos", "deltablue", "json_dumps", "json_loads", "regex_compile",
                 "unpack_sequence", "logging", "pickle_pure_python")
DEBIAN_PYTHON = Path("/usr/bin/python3.11")

LOOP = ("import time\nt = time.perf_counter()\ns = 0\nfor i in range(3_000_000):\n    s += i * i % 7\n"
        "d = {}\nfor i in range(300_000):\n    d[str(i)] = [i, (i, str(i))]\nprint(time.perf_counter() - t)")


def library_bytes(path: Path) -> tuple[int, int, int]:
    """Raw, stripped (--strip-unneeded, as PyInstaller's strip does) and xz -9e bytes of a library."""
    with tempfile.TemporaryDirectory() as tmp:
        stripped = Path(tmp) / "lib.so"
        subprocess.run(["strip", "--strip-unneeded", "-o", stripped, path], check=True, timeout=120)
        data = stripped.read_bytes()
        return path.stat().st_size, len(data), len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))


def cached_runtimes(project: Project) -> list[runtime_compile.Runtime]:
    """This machine's runtimes in the cache (the ARM ones are compared in benchmarks/targets.py)."""
    folder = project.cache_root / "runtime"
    found = [runtime_compile.load(p) for p in sorted(folder.iterdir())] if folder.is_dir() else []
    return sorted((r for r in found if r is not None and r.target == host_architecture()),
                  key=lambda r: (len(r.flags.steps), r.key))


def build_ladder(project: Project, log: Path) -> None:
    source = obtain_source(project, log)
    for i in range(1, len(SIZE_STEPS) + 1):
        flags = merge(step for step in map(step_named, SIZE_STEPS[:i]) if applies(step, host_architecture()))
        print(f"runtime: building {', '.join(flags.steps)} (cached when built before) ...", file=sys.stderr)
        runtime_compile.build_runtime(project, source, flags, target=host_architecture(),
                                      export_inputs=export_inputs(flags))


def without_step(project: Project, name: str, log: Path) -> runtime_compile.Runtime:
    """The size recipe without the step `name` (built when missing: a relink from the size runtime's
    compiled tree when the step is link-only, else a compile). Without `exports` nothing is trimmed,
    so public-api, which only adds to the export list, goes too."""
    dropped = {name, "public-api"} if name == "exports" else {name}
    flags = merge(step for step in map(step_named, SIZE_STEPS) if step.name not in dropped
                  and applies(step, host_architecture()))
    return size_runtime(project, log, target=host_architecture(), flags=flags)


def library_rows(project: Project) -> list[list[str]]:
    system = Path(sysconfig.get_config_var("LIBDIR")) / sysconfig.get_config_var("INSTSONAME")
    raw, stripped, xz = library_bytes(system)
    rows = [["system (the Python running this)", num(raw), num(stripped), num(xz), "", "", "", ""]]
    for runtime in cached_runtimes(project):
        r, s, x = library_bytes(runtime.libpython)
        # How it was made: a compile (0 s: its compiled tree was reused) and the relink with its export list.
        made = [num(runtime.seconds[k], ",.1f") if k in runtime.seconds else "" for k in ("compile", "relink")]
        rows.append([" + ".join(runtime.flags.steps), num(r), num(s), num(x), f"{s / stripped - 1:+.1%}",
                     f"{x / xz - 1:+.1%}", *made])
    return rows


def artifact_rows(size_dir: Path, system_dir: Path) -> list[list[str]]:
    rows = []
    for label, folder in (("size", size_dir), ("system", system_dir)):
        manifest = read_manifest(folder)
        image = (manifest.get("image") or {}).get("size")
        rows.append([f"{manifest['profile']} ({label})", num(manifest["total_bytes"]), num(image) if image else "-",
                     manifest.get("toolchain", {}).get("source", manifest.get("python", ""))])
    return rows


def messages_per_second(program: Program, bench: Bench, messages: int) -> float:
    """Acknowledged publishes per second through one `telemetry` worker: the time of N+1 readings
    minus that of 1, so start-up and connecting cancel out."""

    def run(count: int) -> float:
        rate = Scenario(name="rate", path="benchmark", args=("--interval", "0.001", "--count", str(count)))
        argv, env, _ = bench.prepare(program.launch["telemetry"], rate, "rate")
        started = time.perf_counter()
        done = proc.capture(argv, env=env, cwd=program.cwd, timeout=300)
        if done.code != 0:
            raise MeasureError(f"{program.name} telemetry --count {count} exited {done.code}: {done.output[-500:]}")
        return time.perf_counter() - started

    return messages / max(1e-6, run(messages + 1) - run(1))


def loop_seconds(python: str, runs: int) -> list[float]:
    return [float(subprocess.run([python, "-I", "-c", LOOP], capture_output=True, text=True, timeout=600,
                                 check=True).stdout) for _ in range(runs)]


def pyperformance_means(runtimes: dict[str, Path], folder: Path, fast: bool) -> dict[str, dict[str, float]]:
    """Mean seconds of each benchmark of PYPERFORMANCE on each runtime (pyperformance makes its own
    venv of each under `folder`, with pyperf from PyPI). Benchmark by benchmark, the runtimes in
    turns: on shared cores the load changes over minutes, and each benchmark's ratios should see
    the same load."""
    import pyperf

    outs = {label: folder / f"{re.sub(r'[^a-z0-9.]+', '-', label.lower()).strip('-')[:100]}.json" for label in runtimes}
    for out in outs.values():
        if out.exists():
            out.unlink()
    for name in PYPERFORMANCE:
        for label, python in runtimes.items():
            print(f"pyperformance {name} on {label} ...", file=sys.stderr)
            proc.run([sys.executable, "-m", "pyperformance", "run", *(["--fast"] if fast else []), "-b", name,
                      "-p", python, "--append", outs[label]], log=outs[label].with_suffix(".log"), cwd=folder,
                     timeout=3600)
    means = {}
    for label, out in outs.items():
        suite = pyperf.BenchmarkSuite.load(str(out))
        means[label] = {b.get_name(): b.mean() for b in suite.get_benchmarks()}
    return means


def duration(seconds: float) -> str:
    """`seconds` in the unit pyperf would print it in (pure)."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:,.1f} {unit}"
    return f"{seconds / 1e-9:,.0f} ns"


def geometric_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def speed_rows(means: dict[str, dict[str, float]], reference: str) -> list[list[str]]:
    """One row per benchmark: its mean on each runtime and the ratio to `reference`; then the
    geometric mean of the ratios (pure)."""
    labels = list(means)
    names = sorted(set.intersection(*(set(m) for m in means.values())))
    rows = []
    for name in names:
        base = means[reference][name]
        rows.append([name, *(f"{duration(means[label][name])} (x{means[label][name] / base:.2f})" for label in labels)])
    rows.append(["geometric mean of the ratios",
                 *(f"x{geometric_mean([means[label][n] / means[reference][n] for n in names]):.3f}" for label in labels)])
    return rows


def speed(project: Project, pythons: dict[str, Path], fast: bool, md: bool) -> None:
    """pyperformance on the size-built runtimes `pythons`, Debian's python3.11 (the same source,
    built by Debian: -O2, LTO, PGO) and the Python running this (min-system's), one after another
    in one run, each benchmark on each in turns."""
    folder = project.work_root / "pyperformance"
    folder.mkdir(parents=True, exist_ok=True)
    runtimes = {**pythons, "Debian python3.11": DEBIAN_PYTHON, "system (min-system)": Path(sys.executable).resolve()}
    means = pyperformance_means(runtimes, folder, fast)
    emit(f"pyperformance {'--fast ' if fast else ''}(mean per benchmark; x: against Debian's python3.11)",
         ["benchmark", *runtimes], speed_rows(means, "Debian python3.11"), as_markdown=md, numeric=tuple(runtimes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ladder", action="store_true", help="build one runtime per flag step first (slow once)")
    parser.add_argument("--size-profile", default="min", help="profile built with runtime = size (default min)")
    parser.add_argument("--system-profile", default="min-system", help="its runtime = system twin (default min-system)")
    parser.add_argument("--runs", type=int, default=11, help="timed runs per figure (default 11)")
    parser.add_argument("--messages", type=int, default=300, help="publishes for the rate figure (default 300)")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--speed", action="store_true",
                        help="only run pyperformance's subset on the size runtime, Debian's python3.11 and this Python")
    parser.add_argument("--rigorous", action="store_true", help="with --speed: pyperformance's default runs, not --fast")
    parser.add_argument("--balanced", action="store_true",
                        help="with --speed: the balanced recipe's runtime too (built when missing)")
    parser.add_argument("--runtime", action="append", default=[], type=Path, metavar="FOLDER",
                        help="with --speed: another runtime of work/.cache/runtime/ too (a ladder step's)")
    parser.add_argument("--without", action="append", default=[], choices=SIZE_STEPS[1:], metavar="STEP",
                        help="with --speed: the size recipe without STEP too, to price one step (built when "
                             "missing: a relink for exports and public-api, a compile otherwise)")
    args = parser.parse_args(argv)
    project = Project.at(ROOT)
    md = args.markdown
    try:
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "runtime.log"
            if args.ladder:
                build_ladder(project, log)
            toolchain = size_runtime_toolchain(project, log)
        if args.speed:
            pythons = {"size runtime": project.cache_root / "runtime" / str(toolchain.facts["runtime_key"])}
            if args.balanced:
                with tempfile.TemporaryDirectory() as tmp:
                    balanced = size_runtime(project, Path(tmp) / "runtime.log", target=host_architecture(),
                                            flags=size_flags(host_architecture(), "balanced"))
                pythons["balanced runtime"] = balanced.prefix
                emit("libpython3.11.so.1.0 per recipe (bytes)", ["recipe", "raw", "stripped", "xz -9e"],
                     [[label, *map(num, library_bytes(prefix / "lib" / "libpython3.11.so.1.0"))]
                      for label, prefix in pythons.items()], as_markdown=md, numeric=("raw", "stripped", "xz -9e"))
            for name in args.without:
                with tempfile.TemporaryDirectory() as tmp:
                    pythons[f"size without {name}"] = without_step(project, name, Path(tmp) / "runtime.log").prefix
            for folder in args.runtime:
                other = runtime_compile.load(folder)
                if other is None:
                    raise SlimfreezeError(f"{folder} is not a complete runtime (no runtime.json)")
                pythons[f"`{other.key}` ({', '.join(s for s in SIZE_STEPS if s not in other.flags.steps) or 'all'} "
                        "left out)"] = other.prefix
            speed(project, {label: prefix / "bin" / "python3.11" for label, prefix in pythons.items()},
                  not args.rigorous, md)
            return 0
        emit("libpython3.11.so.1.0 per flag set (bytes; change against the system's)",
             ["runtime", "raw", "stripped", "xz -9e", "stripped vs system", "xz vs system", "compile s", "relink s"],
             library_rows(project), as_markdown=md,
             numeric=("raw", "stripped", "xz -9e", "stripped vs system", "xz vs system", "compile s", "relink s"))
        size_dir, system_dir = project.dist_root / args.size_profile, project.dist_root / args.system_profile
        emit("artifacts (dist/*/manifest.json)", ["profile", "total bytes", "image bytes", "runtime"],
             artifact_rows(size_dir, system_dir), as_markdown=md, numeric=("total bytes", "image bytes"))
        size_p = dist_program(size_dir, read_manifest(size_dir), name="size")
        system_p = dist_program(system_dir, read_manifest(system_dir), name="system")
        with Bench(load_application(ROOT / "pyproject.toml")) as bench:
            print("measuring both artifacts in turns ...", file=sys.stderr)
            programs = [size_p, system_p]
            startup = startup_medians(programs, bench=bench, runs=args.runs)
            first_ack = first_ack_medians(programs, bench=bench, runs=args.runs)
            rates = alternate([lambda p=p: messages_per_second(p, bench, args.messages) for p in programs],
                              max(3, args.runs // 3))
        loops = alternate([lambda: loop_seconds(str(toolchain.python), 1)[0],
                           lambda: loop_seconds(sys.executable, 1)[0]], max(3, args.runs // 3))
    except SlimfreezeError as err:
        print(f"runtime: error: {err}", file=sys.stderr)
        return err.return_code
    rate = {p.name: sorted(r)[len(r) // 2] for p, r in zip(programs, rates)}
    loop = [sorted(samples)[len(samples) // 2] for samples in loops]
    emit(f"the price of the size runtime (same run, in turns; medians of {args.runs})",
         ["figure", "size", "system", "size / system"],
         [["hello start-up ms", num(startup["size"], ",.1f"), num(startup["system"], ",.1f"),
           ratio(startup["size"], startup["system"])],
          ["start to first acknowledged publish ms", num(first_ack["size"], ",.1f"), num(first_ack["system"], ",.1f"),
           ratio(first_ack["size"], first_ack["system"])],
          ["acknowledged publishes per second, one worker (capped at 1,000 by --interval 0.001)", num(rate["size"], ",.0f"),
           num(rate["system"], ",.0f"), ratio(rate["size"], rate["system"])],
          ["pure-Python loop s (interpreters, not artifacts)", num(loop[0], ",.3f"), num(loop[1], ",.3f"),
           ratio(loop[0], loop[1])]],
         as_markdown=md, numeric=("size", "system", "size / system"))
    print(f"system runtime: {sys.version.split()[0]} at {sys.base_prefix}; size runtime: "
          f"{toolchain.facts['source']}, {', '.join(toolchain.facts['flag_steps'])}; {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
