"""`python build.py sweep`: build a set of profiles, measure each working artifact on the things a
device cares about, and rank them by bytes on the device; `python build.py matrix` splits that
work over CI runners and `sweep --collect DIR` merges the runners' results.

    python build.py sweep [--profile P ...] [--no-build] [--runs N] [--workers N]
    python build.py sweep --collect DIR
    python build.py matrix [--profile P ...]

Per profile: bytes on the device (the flash image's when the profile makes one, else the
artifact's), build seconds, start-up (median of `hello` runs), start to first acknowledged
publish (`heartbeat --count 1` against a real mosquitto), total RSS/PSS of concurrent `control`
workers (a onefile's starter and child both count) and the bytes a onefile unpacks at start.
`python -m app` from source is measured in the same run as the baseline: once on its own (the
`source` record), and again beside each artifact, the two timed in turns, into the artifact's
record (its `source` figures). So every ratio compares like with like, even after runners' files
are merged.
"""

from __future__ import annotations

import argparse
import json
import re
import os
import platform
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from build.errors import ArtifactError, ConfigError
from build.report_sweep import strategy

if TYPE_CHECKING:
    from build.config import Profile
    from build.measure import Bench, Program
    from build.project import Project

SCHEMA = "slimfreeze.sweep/1"
SWEEP_NAME = "sweep.json"
REPORT_NAME = "report.json"
SOURCE = "source"
# The figures measured for every artifact and for the source baseline.
FIGURES = ("startup_ms", "first_ack_ms", "pss_kb_total", "rss_kb_total", "unpack_bytes", "worker_processes",
           "pss_kb_supervisor", "rss_kb_supervisor")
# The supervisor's workers: one of each long-running command, in one process tree.
SUPERVISED = ("telemetry", "heartbeat", "control")
RECORD_KEYS = ("profile", "ok", "error", "rank", "device_bytes", "artifact_bytes", "image_bytes", "image_format",
               "build_seconds", *FIGURES, "backend", "layout", "tls", "multicall", "run_id", "source")


@dataclass(frozen=True, kw_only=True)
class MeasureSettings:
    runs: int = 11                   # timed runs per start-up figure (median reported)
    workers: int = 3                 # concurrent workers for the memory figures
    worker_command: str = "control"  # idle and long-running: memory at rest

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "workers": self.workers, "worker_command": self.worker_command}


# ---- records (pure) ----

def empty_record(profile: str, **known: Any) -> dict[str, Any]:
    """A record with every key; `ok` is false unless `known` says otherwise."""
    record: dict[str, Any] = dict.fromkeys(RECORD_KEYS)
    record.update({"profile": profile, "ok": False, **known})
    return record


def profile_facts(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The strategy columns of a record, from a resolved profile (manifest or config)."""
    return {"backend": resolved.get("backend"), "layout": resolved.get("layout"), "tls": resolved.get("tls"),
            "multicall": resolved.get("multicall")}


def sizes_from_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """artifact, image and on-device bytes: the image is what goes on flash when there is one."""
    artifact = manifest["total_bytes"]
    image = manifest.get("image") or {}
    size = image.get("size")
    image_format = " ".join(str(image[k]) for k in ("format", "compressor") if image.get(k)) or None
    return {"artifact_bytes": artifact, "image_bytes": size, "image_format": image_format if size is not None else None,
            "device_bytes": size if size is not None else artifact}


def source_figures(source: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: (source or {}).get(key) for key in FIGURES}


def rank(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Working variants by bytes on the device (then name), numbered from 1; failed ones after
    them by name, without a rank (pure)."""
    records = [dict(r) for r in records]
    working = sorted((r for r in records if r["ok"]), key=lambda r: (r["device_bytes"], r["profile"]))
    failed = sorted((r for r in records if not r["ok"]), key=lambda r: r["profile"])
    for number, record in enumerate(working, 1):
        record["rank"] = number
    for record in failed:
        record["rank"] = None
    return working + failed


def make_sweep(records: Iterable[Mapping[str, Any]], *, source: Mapping[str, Any] | None,
               settings: Mapping[str, Any], run_id: str, created: str) -> dict[str, Any]:
    run = {"run_id": run_id, "created": created, "python": platform.python_version(),
           "machine": platform.machine(), "source": dict(source) if source else None}
    return {"schema": SCHEMA, "created": created, "settings": dict(settings), "source": run["source"],
            "runs": [run], "profiles": rank(records)}


def merge(sweeps: Sequence[Mapping[str, Any]], *, created: str) -> dict[str, Any]:
    """One sweep from several runners' (pure). A profile found more than once keeps its working
    record over a failed one, then the newer run's. The top-level source baseline is the first
    run's; each record keeps the source figures measured beside it."""
    runs = sorted((run for sweep in sweeps for run in sweep.get("runs", [])), key=lambda r: (r["created"], r["run_id"]))
    created_of = {run["run_id"]: run["created"] for run in runs}
    chosen: dict[str, dict[str, Any]] = {}
    for sweep in sweeps:
        for record in sweep.get("profiles", []):
            key = (bool(record["ok"]), created_of.get(record.get("run_id"), ""))
            have = chosen.get(record["profile"])
            if have is None or key > (bool(have["ok"]), created_of.get(have.get("run_id"), "")):
                chosen[record["profile"]] = dict(record)
    settings = next((dict(s["settings"]) for s in sweeps if s.get("settings")), {})
    return {"schema": SCHEMA, "created": created, "settings": settings,
            "source": runs[0]["source"] if runs else None, "runs": runs, "profiles": rank(chosen.values())}


def matrix(profile_names: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """A GitHub Actions matrix with one job per profile (pure)."""
    return {"include": [{"profile": name} for name in profile_names]}


def check_sweep(data: Any, where: Path) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        schema = data.get("schema") if isinstance(data, dict) else None
        raise ArtifactError(f"{where}: unknown sweep schema {schema!r} (expected {SCHEMA})")
    records, runs = data.get("profiles"), data.get("runs")
    if not isinstance(records, list) or not all(isinstance(r, dict) and {"profile", "ok", "device_bytes"} <= set(r)
                                                for r in records):
        raise ArtifactError(f"{where}: 'profiles' is not a list of sweep records")
    if not isinstance(runs, list) or not all(isinstance(r, dict) and {"run_id", "created"} <= set(r) for r in runs):
        raise ArtifactError(f"{where}: 'runs' is not a list of runs")
    for record in records:
        # profile names become folder names when runners' results are merged: nothing like "../x"
        if not isinstance(record["profile"], str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", record["profile"]):
            raise ArtifactError(f"{where}: {record['profile']!r} is not a profile name")
    return data


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# ---- measuring (real processes) ----

def program_figures(programs: Sequence[Program], *, settings: MeasureSettings, bench: Bench) -> dict[str, dict[str, Any]]:
    """The FIGURES of each program. Timings are taken in turns across the programs (so an artifact
    and the source beside it share the machine's slow spells); memory is measured per program,
    at rest. A command a program lacks leaves its figure None; one that fails raises MeasureError."""
    from build import measure

    startup = measure.startup_medians(programs, bench=bench, runs=settings.runs)
    first_ack = measure.first_ack_medians(programs, bench=bench, runs=settings.runs)
    results = {}
    for program in programs:
        figures: dict[str, Any] = dict.fromkeys(FIGURES)
        figures.update(startup_ms=startup[program.name], first_ack_ms=first_ack[program.name])
        if settings.worker_command in program.launch:
            spec = measure.WorkerSpec(argv=tuple(program.launch[settings.worker_command]), cwd=program.cwd,
                                      label=settings.worker_command)
            memory = measure.measure_workers([spec] * settings.workers, bench=bench)
            figures.update(pss_kb_total=memory.pss_kb, rss_kb_total=memory.rss_kb,
                           unpack_bytes=memory.unpack_bytes, worker_processes=memory.process_count)
        if "run" in program.launch and all(c in program.launch for c in SUPERVISED):
            # The other way to share one runtime: `run` imports once, gc.freeze()s and forks.
            spec = measure.WorkerSpec(argv=(*program.launch["run"], *SUPERVISED), cwd=program.cwd,
                                      label="run", ready=len(SUPERVISED))
            memory = measure.measure_workers([spec], bench=bench)
            figures.update(pss_kb_supervisor=memory.pss_kb, rss_kb_supervisor=memory.rss_kb)
        results[program.name] = figures
    return results


def dist_program(dist_dir: Path, manifest: Mapping[str, Any], name: str = "artifact") -> Program:
    """The artifact in a dist folder: each command through its link or its own executable."""
    from build.measure import Program

    return Program(name=name, launch={c: [str(dist_dir / path)] for c, path in manifest["commands"].items()},
                   cwd=dist_dir)


def source_program(project_root: Path, name: str = SOURCE) -> Program:
    """`python -m app <command>` from the source tree, with this Python."""
    from build.config import ALL_COMMANDS
    from build.measure import Program

    return Program(name=name, launch={c: [sys.executable, "-m", "app", c] for c in ALL_COMMANDS}, cwd=project_root)


def measure_dist(dist_dir: Path, *, settings: MeasureSettings = MeasureSettings(), bench: Bench | None = None,
                 build_seconds: float | None = None, baseline_root: Path | None = None) -> dict[str, Any]:
    """A sweep record (without rank/run) for the built artifact in `dist_dir`, measured now. With
    `baseline_root`, `python -m app` from that source tree is measured beside it, in turns, into
    the record's `source`.

    Raises ArtifactError if it has no readable manifest and MeasureError if it does not run.
    """
    from build.manifest import read_manifest
    from build.measure import Bench

    dist_dir = Path(dist_dir).resolve()
    manifest = read_manifest(dist_dir)
    if bench is None:
        with Bench() as own:
            return measure_dist(dist_dir, settings=settings, bench=own, build_seconds=build_seconds,
                                baseline_root=baseline_root)
    programs = [dist_program(dist_dir, manifest)]
    if baseline_root is not None:
        programs.append(source_program(baseline_root, name="baseline"))
    figures = program_figures(programs, settings=settings, bench=bench)
    return empty_record(manifest["profile"], ok=True, **sizes_from_manifest(manifest),
                        build_seconds=manifest.get("build_seconds") if build_seconds is None else round(build_seconds, 2),
                        **figures["artifact"], **profile_facts(manifest["resolved_profile"]),
                        source=figures.get("baseline"))


def measure_source(project_root: Path, *, settings: MeasureSettings = MeasureSettings(),
                   bench: Bench) -> dict[str, Any]:
    """The run's baseline record: `python -m app` from the source tree on its own."""
    figures = program_figures([source_program(project_root)], settings=settings, bench=bench)[SOURCE]
    return {"profile": SOURCE, "ok": True, "error": None, **figures}


# ---- writing ----

def write_json_atomic(path: Path, data: Any) -> None:
    from build.report.pages import write_atomic  # one atomic writer, honouring the umask

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def copy_folder_atomic(source: Path, target: Path) -> None:
    """Replace `target` by a copy of `source`: copied beside it first, then renamed into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        shutil.copytree(source, incoming, symlinks=True, dirs_exist_ok=True)
        if target.exists():
            outgoing = target.with_name(f".{target.name}.outgoing-{secrets.token_hex(3)}")
            os.replace(target, outgoing)
            os.replace(incoming, target)
            shutil.rmtree(outgoing, ignore_errors=True)
        else:
            os.replace(incoming, target)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise


def refresh_index(reports_root: Path) -> None:
    """Rewrite size_reports/index.html, which shows the sweep's ranking beside the size reports."""
    from build.report import write_index

    write_index(reports_root)


def collect(folder: Path, reports_root: Path) -> dict[str, Any]:
    """Merge the size_reports/ folders the CI runners uploaded (anywhere under `folder`, each
    with a sweep.json and <profile>/report.json) into `reports_root`; return the merged sweep."""
    folder, reports_root = Path(folder).resolve(), Path(reports_root).resolve()
    if not folder.is_dir():
        raise ConfigError(f"--collect {folder}: no such folder")
    # The target's own sweep.json (when DIR holds it) is an old result, not a runner's.
    found = sorted(p for p in folder.rglob(SWEEP_NAME) if p.is_file() and reports_root not in p.parents)
    if not found:
        raise ArtifactError(f"--collect {folder}: no {SWEEP_NAME} found in it; download the runners' "
                            f"size_reports/ folders there first")
    sweeps, runner_of = [], {}
    for path in found:
        try:
            data = check_sweep(json.loads(path.read_text(encoding="utf-8")), path)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ArtifactError(f"{path}: not valid JSON ({err})") from None
        sweeps.append(data)
        for run in data.get("runs", []):
            runner_of[run["run_id"]] = path.parent
    merged = merge(sweeps, created=now())
    # Each profile's report folder comes from the runner whose record won; then any other
    # report folder that no record names, from the first runner that has it.
    copied = set()
    for record in merged["profiles"]:
        runner = runner_of.get(record.get("run_id"))
        if runner and (runner / record["profile"] / REPORT_NAME).is_file():
            copy_folder_atomic(runner / record["profile"], reports_root / record["profile"])
            copied.add(record["profile"])
    for path in found:
        for report in sorted(path.parent.glob(f"*/{REPORT_NAME}")):
            if report.parent.name not in copied:
                copy_folder_atomic(report.parent, reports_root / report.parent.name)
                copied.add(report.parent.name)
    write_json_atomic(reports_root / SWEEP_NAME, merged)
    refresh_index(reports_root)
    return merged


# ---- the sweep ----

def run_sweep(project: Project, profiles: Sequence[Profile], *, settings: MeasureSettings,
              build: bool = True) -> dict[str, Any]:
    """Build (unless `build` is false: measure what dist/ holds), measure, rank, write sweep.json."""
    profiles = list({p.name: p for p in profiles}.values())
    built, records = _build(project, profiles) if build else _find_built(project, profiles)
    run_id = f"{now()}-{secrets.token_hex(3)}"
    source, measured = _measure(project, built, settings)
    records.update(measured)
    for profile in profiles:
        if records[profile.name]["backend"] is None:  # failed before a manifest said it
            records[profile.name].update(profile_facts(profile.to_dict()))
    for record in records.values():
        record["run_id"] = run_id
        if record.get("source") is None:  # nothing measured beside it: the run's own baseline
            record["source"] = source_figures(source if source["ok"] else None)
    sweep = make_sweep([records[p.name] for p in profiles], source=source, settings=settings.to_dict(),
                       run_id=run_id, created=now())
    write_json_atomic(project.reports_root / SWEEP_NAME, sweep)
    refresh_index(project.reports_root)
    return sweep


Built = dict[str, tuple[Path, float | None]]  # profile -> (dist folder, build seconds) of working builds


def _build(project: Project, profiles: Sequence[Profile]) -> tuple[Built, dict[str, dict[str, Any]]]:
    """Build each profile (each smoke-tested by the orchestrator); failed ones become records."""
    from build.orchestrate import build_many

    built: Built = {}
    failed = {}
    for result in build_many(list(profiles), project):
        if result.ok and result.dist_dir is not None:
            built[result.profile] = (result.dist_dir, result.seconds)
        else:
            failed[result.profile] = empty_record(result.profile, error=result.error,
                                                  build_seconds=round(result.seconds, 2))
    return built, failed


def _find_built(project: Project, profiles: Sequence[Profile]) -> tuple[Built, dict[str, dict[str, Any]]]:
    """--no-build: what dist/ holds; a profile without a manifest there is listed as failed."""
    from build.manifest import MANIFEST_NAME

    built: Built = {}
    failed = {}
    for profile in profiles:
        dist_dir = project.dist_root / profile.name
        if (dist_dir / MANIFEST_NAME).is_file():
            built[profile.name] = (dist_dir, None)
        else:
            failed[profile.name] = empty_record(
                profile.name, error=f"not built: the dist folder has no {profile.name}/{MANIFEST_NAME} "
                                    f"(build it, or sweep without --no-build)")
    return built, failed


def _measure(project: Project, built: Built, settings: MeasureSettings) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The source baseline, then each built artifact beside the source, against one broker. An
    artifact that cannot be measured is a failed record that keeps its sizes."""
    from build import log
    from build.manifest import read_manifest
    from build.measure import Bench, MeasureError

    records = {}
    with Bench() as bench:
        try:
            with log.step(SOURCE, "measuring `python -m app` from source (baseline)"):
                source = measure_source(project.root, settings=settings, bench=bench)
        except MeasureError as err:
            source = {"profile": SOURCE, "ok": False, "error": str(err), **dict.fromkeys(FIGURES)}
        for name, (dist_dir, seconds) in built.items():
            try:
                with log.step(name, "measuring start-up, first acknowledged publish and memory"):
                    records[name] = measure_dist(dist_dir, settings=settings, bench=bench, build_seconds=seconds,
                                                 baseline_root=project.root)
            except (MeasureError, ArtifactError) as err:
                record = empty_record(name, error=f"measuring failed: {err}")
                try:
                    manifest = read_manifest(dist_dir)
                    record.update(sizes_from_manifest(manifest), **profile_facts(manifest["resolved_profile"]))
                except ArtifactError:
                    pass
                records[name] = record
    return source, records


def sweep_ok(sweep: Mapping[str, Any]) -> bool:
    runs_ok = all((run.get("source") or {}).get("ok", False) for run in sweep.get("runs", []))
    return runs_ok and all(r["ok"] for r in sweep["profiles"])


# ---- terminal table ----

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
                     "python -m app" if source["ok"] else f"python -m app: {_first_line(source.get('error'))}"])
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
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    settings = sweep.get("settings") or {}
    table = Table(title=f"slimfreeze sweep: ranked by bytes on the device; memory of {settings.get('workers', '?')} "
                        f"concurrent `{settings.get('worker_command', '?')}` workers, and of `run {' '.join(SUPERVISED)}` "
                        f"(one supervisor); (×N) = against source, same run")
    for name, justify in TABLE_COLUMNS:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in table_rows(sweep):
        style = "red" if row[2] == "FAILED" else None
        table.add_row(*(escape(cell) for cell in row), style=style)
    Console().print(table)


# ---- sub-commands ----

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
    sweep.set_defaults(run=run_sweep_command)
    matrix_parser = subparsers.add_parser(
        "matrix", help="print the profiles as a GitHub Actions matrix (JSON)",
        description='Print {"include": [{"profile": NAME}, ...]} for a workflow\'s strategy.matrix.')
    matrix_parser.add_argument("--profile", action="append", dest="profiles", metavar="NAME",
                               help="only these profiles (repeatable; default: all)")
    matrix_parser.set_defaults(run=run_matrix_command)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _project_and_profiles(args: argparse.Namespace) -> tuple[Project, list[Profile]]:
    from build.cli import project_from
    from build.config import load_profiles, select

    project = project_from(args)
    profiles = load_profiles(project.pyproject)
    return project, select(profiles, args.profiles or list(profiles))


def run_matrix_command(args: argparse.Namespace) -> int:
    _, profiles = _project_and_profiles(args)
    print(json.dumps(matrix(p.name for p in profiles)))
    return 0


def run_sweep_command(args: argparse.Namespace) -> int:
    from build import log

    if args.collect is not None:
        if args.profiles or args.no_build:
            raise ConfigError("--collect merges finished sweeps; it takes no --profile or --no-build")
        from build.cli import project_from

        reports_root = project_from(args).reports_root
        sweep = collect(args.collect, reports_root)
        print_table(sweep)
        log.info(f"merged {len(sweep['runs'])} run(s) into {reports_root / SWEEP_NAME}")
    else:
        project, profiles = _project_and_profiles(args)
        sweep = run_sweep(project, profiles, settings=MeasureSettings(runs=args.runs, workers=args.workers),
                          build=not args.no_build)
        print_table(sweep)
        log.info(f"written to {project.reports_root / SWEEP_NAME}")
    for record in sweep["profiles"]:
        if not record["ok"]:
            log.error(f"profile '{record['profile']}' failed: {_first_line(record['error'])}")
    for run in sweep.get("runs", []):
        if run.get("source") and not run["source"]["ok"]:
            log.error(f"the source baseline failed: {_first_line(run['source']['error'])}")
    return 0 if sweep_ok(sweep) else 1


