"""`python build.py sweep`: build a set of profiles, measure each working artifact on the things a
device cares about, and rank them by bytes on the device; `python build.py matrix` splits that
work over CI runners and `sweep --collect DIR` merges the runners' results.

    python build.py sweep [--profile P ...] [--no-build] [--runs N] [--workers N]
    python build.py sweep --collect DIR
    python build.py matrix [--profile P ...]

Per profile: bytes on the device (the flash image's when the profile makes one, else the
artifact's), build seconds, and what the application declares for each measure
(`[tool.slimfreeze.app.measure]`, a scenario each): start-up (median of its `startup` runs), start
to its first message delivered (`first_message`, against a real mosquitto), total RSS/PSS of
concurrent `worker`s and of one `supervisor` (a onefile's starter and child both count) and the
bytes a onefile unpacks at start. The app run from source is measured in the same run as the
baseline: once on its own (the `source` record), and again beside each artifact, the two timed in
turns, into the artifact's record (its `source` figures). So every ratio compares like with like,
even after runners' files are merged.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from build import log
from build.application import Application
from build.errors import ArtifactError, ConfigError
from build.freeze.entry import source_launcher
from build.freeze.orchestrate import build_many
from build.manifest import MANIFEST_NAME, inside, read_manifest
from build.paths import plain_name, publish_tree, remove_tree
from build.report import write_index
from build.report.pages import write_atomic
from build.sweep import measure
from build.sweep.measure import Bench, MeasureError, Program
from build.sweep.records import (
    FIGURES,
    REPORT_NAME,
    SOURCE,
    SWEEP_NAME,
    check_sweep,
    empty_record,
    make_sweep,
    merge,
    now,
    profile_facts,
    sizes_from_manifest,
    source_figures,
)
from build.toolchain import host_architecture

if TYPE_CHECKING:
    from build.config import Profile
    from build.project import Project
    from build.sweep.measure import Bench, Program



@dataclass(frozen=True, kw_only=True)
class MeasureSettings:
    runs: int = 11                   # timed runs per start-up figure (median reported)
    workers: int = 3                 # concurrent workers for the memory figures
    # The app's declared worker and supervisor scenarios (command/scenario), for the record.
    worker_command: str = "-"
    supervisor: str = "-"

    @classmethod
    def of(cls, app: Application, **kwargs: Any) -> MeasureSettings:
        return cls(worker_command=app.measures.worker or "-", supervisor=app.measures.supervisor or "-", **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "workers": self.workers, "worker_command": self.worker_command,
                "supervisor": self.supervisor}


# ---- records (pure) ----





















# ---- measuring (real processes) ----

def program_figures(programs: Sequence[Program], *, settings: MeasureSettings, bench: Bench) -> dict[str, dict[str, Any]]:
    """The FIGURES of each program. Timings are taken in turns across the programs (so an artifact
    and the source beside it share the machine's slow spells); memory is measured per program,
    at rest. A command a program lacks leaves its figure None; one that fails raises MeasureError."""

    startup = measure.startup_medians(programs, bench=bench, runs=settings.runs)
    first_ack = measure.first_ack_medians(programs, bench=bench, runs=settings.runs)
    results = {}
    for program in programs:
        figures: dict[str, Any] = dict.fromkeys(FIGURES)
        figures.update(startup_ms=startup[program.name], first_ack_ms=first_ack[program.name])
        worker = measure.worker_spec(program, bench.app.measures.worker, bench.app)
        if worker is not None:
            memory = measure.measure_workers([worker] * settings.workers, bench=bench)
            figures.update(pss_kb_total=memory.pss_kb, rss_kb_total=memory.rss_kb,
                           unpack_bytes=memory.unpack_bytes, worker_processes=memory.process_count)
        supervisor = measure.worker_spec(program, bench.app.measures.supervisor, bench.app)
        if supervisor is not None and set(supervisor.scenario.needs) <= set(program.launch):
            # The other way to share one runtime: one process that imports once and forks its workers.
            memory = measure.measure_workers([supervisor], bench=bench)
            figures.update(pss_kb_supervisor=memory.pss_kb, rss_kb_supervisor=memory.rss_kb)
        results[program.name] = figures
    return results


def dist_program(dist_dir: Path, manifest: Mapping[str, Any], name: str = "artifact") -> Program:
    """The artifact in a dist folder: each command through its link or its own executable."""

    return Program(name=name, launch={c: [str(inside(dist_dir, path))] for c, path in manifest["commands"].items()},
                   cwd=dist_dir)


def source_program(project_root: Path, app: Application, folder: Path, name: str = SOURCE) -> Program:
    """The app from its source tree, with this Python: each command through a link named after it
    to the entry point (written into `folder`), as an artifact's links run it."""

    launch = source_launcher(app, [str((project_root / p).resolve()) for p in app.paths], folder, sys.executable)
    return Program(name=name, launch=launch, cwd=project_root)


def measure_dist(dist_dir: Path, app: Application, *, settings: MeasureSettings = MeasureSettings(),
                 bench: Bench | None = None,
                 build_seconds: float | None = None, baseline_root: Path | None = None) -> dict[str, Any]:
    """A sweep record (without rank/run) for the built artifact in `dist_dir`, measured now. With
    `baseline_root`, the app from that source tree is measured beside it, in turns, into
    the record's `source`.

    Raises ArtifactError if it has no readable manifest and MeasureError if it does not run.
    """

    dist_dir = Path(dist_dir).resolve()
    manifest = read_manifest(dist_dir)
    if bench is None:
        with Bench(app) as own:
            return measure_dist(dist_dir, app, settings=settings, bench=own, build_seconds=build_seconds,
                                baseline_root=baseline_root)
    target = manifest.get("target") or host_architecture()
    if target != host_architecture():
        # Its smoke test ran it under qemu; start-up and memory there measure the emulator, so they
        # are not taken at all rather than set beside native figures. Its sizes rank with the rest.
        return empty_record(manifest["profile"], ok=True, **sizes_from_manifest(manifest),
                            build_seconds=manifest.get("build_seconds") if build_seconds is None
                            else round(build_seconds, 2),
                            **profile_facts(manifest.get("resolved_profile") or {}), emulated=True,
                            note=f"{target}: sizes only; timings and memory under emulation are not comparable")
    programs = [dist_program(dist_dir, manifest)]
    if baseline_root is not None:
        programs.append(source_program(baseline_root, app, bench.folder / "source", name="baseline"))
    figures = program_figures(programs, settings=settings, bench=bench)
    return empty_record(manifest["profile"], ok=True, **sizes_from_manifest(manifest),
                        build_seconds=manifest.get("build_seconds") if build_seconds is None else round(build_seconds, 2),
                        **figures["artifact"], **profile_facts(manifest.get("resolved_profile") or {}),
                        source=figures.get("baseline"))


def measure_source(project_root: Path, *, settings: MeasureSettings = MeasureSettings(),
                   bench: Bench) -> dict[str, Any]:
    """The run's baseline record: the app from the source tree on its own."""
    program = source_program(project_root, bench.app, bench.folder / "source")
    figures = program_figures([program], settings=settings, bench=bench)[SOURCE]
    return {"profile": SOURCE, "ok": True, "error": None, **figures}


# ---- writing ----

def write_json_atomic(path: Path, data: Any) -> None:

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def copy_folder_atomic(source: Path, target: Path) -> None:
    """Replace `target` (inside size_reports/) by a copy of `source`: copied beside it first, then
    exchanged with it in one step (build.paths.publish_tree), so it is never missing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    roots = (target.parent,)
    incoming = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        shutil.copytree(source, incoming, symlinks=True, dirs_exist_ok=True)
        publish_tree(incoming, target, roots)
    finally:
        remove_tree(incoming, roots)  # gone already unless the copy failed


def refresh_index(reports_root: Path) -> None:
    """Rewrite size_reports/index.html, which shows the sweep's ranking beside the size reports."""

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
        except OSError as err:
            raise ArtifactError(f"{path}: cannot read it ({err.strerror})") from None
        sweeps.append(data)
        for run in data.get("runs", []):
            runner_of[run["run_id"]] = path.parent
    merged = merge(sweeps, created=now())
    # Each profile's report folder comes from the runner whose record won; then any other
    # report folder that no record names, from the first runner that has it.
    chosen: dict[str, Path] = {}
    for record in merged["profiles"]:
        runner = runner_of.get(record.get("run_id"))
        if runner and (runner / record["profile"] / REPORT_NAME).is_file():
            chosen[record["profile"]] = runner / record["profile"]
    for path in found:
        for report in sorted(path.parent.glob(f"*/{REPORT_NAME}")):
            chosen.setdefault(report.parent.name, report.parent)
    for name, source in chosen.items():  # all checked before anything is copied
        plain_name(name, f"--collect: report folder {source}")
        if source.is_symlink():
            raise ArtifactError(f"--collect: report folder {source} is a link; copy the runner's files there instead")
    for name, source in chosen.items():
        try:
            copy_folder_atomic(source, reports_root / name)
        except (OSError, shutil.Error) as err:  # what was copied before stays whole: each folder is swapped in
            raise ArtifactError(f"--collect: cannot copy {source}: {err}") from None
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
    app = profiles[0].app
    assert app is not None
    source, measured = _measure(project, app, built, settings)
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


def _measure(project: Project, app: Application, built: Built,
             settings: MeasureSettings) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The source baseline, then each built artifact beside the source, against one broker. An
    artifact that cannot be measured is a failed record that keeps its sizes."""

    records = {}
    with Bench(app) as bench:
        try:
            with log.step(SOURCE, "measuring the app from source (baseline)"):
                source = measure_source(project.root, settings=settings, bench=bench)
        except MeasureError as err:
            source = {"profile": SOURCE, "ok": False, "error": str(err), **dict.fromkeys(FIGURES)}
        for name, (dist_dir, seconds) in built.items():
            try:
                with log.step(name, "measuring start-up, first message and memory"):
                    records[name] = measure_dist(dist_dir, app, settings=settings, bench=bench, build_seconds=seconds,
                                                 baseline_root=project.root)
            except (MeasureError, ArtifactError) as err:
                record = empty_record(name, error=f"measuring failed: {err}")
                try:
                    manifest = read_manifest(dist_dir)
                    record.update(sizes_from_manifest(manifest), **profile_facts(manifest.get("resolved_profile") or {}))
                except ArtifactError:
                    pass
                records[name] = record
    return source, records




# ---- terminal table ----













# ---- sub-commands ----











