"""Build one profile end to end, or several side by side.

freeze -> links -> UPX -> budget -> smoke test -> image -> manifest -> swap into dist/ -> reports.
Everything is assembled in the profile's work folder; dist/<profile>/ is replaced only by a
complete, smoke-tested artifact, so a failed build never leaves a half-written one behind.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from build import log
from build.analysis.debug_copies import builder_dirs
from build.analysis.retained import exclude_from_graph
from build.config import Profile
from build.errors import BuildFailed, SlimfreezeError
from build.freeze import image, reproducible, smoke, upx
from build.freeze.backends import BACKENDS, BuildPlan, executables_for
from build.freeze.entry import entry_source
from build.freeze.excludes import plan_excludes
from build.freeze.standins import DIRECTORY as STANDINS_DIRECTORY
from build.freeze.standins import module_name
from build.freeze.toolchains import needs_making, toolchain_for
from build.freeze.trace import import_graph, unused_modules
from build.manifest import build_manifest, folder_bytes, git_commit, write_manifest
from build.paths import publish_tree, remove_tree
from build.project import Project
from build.report import write_index, write_profile_reports
from build.update.signing import configured_key, sign_build

ENTRY_NAME = "slimfreeze_entry.py"


@dataclass(frozen=True, kw_only=True)
class BuildResult:
    profile: str
    ok: bool
    seconds: float
    log: Path
    dist_dir: Path | None = None
    total_bytes: int | None = None
    image_bytes: int | None = None
    smoke_passed: bool | None = None
    error: str | None = None


def describe(profile: Profile) -> str:
    """The resolved profile on one line, for the start of its build (pure)."""
    parts = []
    for key, value in profile.to_dict().items():
        if key in ("name", "description"):
            continue
        if isinstance(value, list):
            value = " ".join(value) if key == "commands" else f"[{len(value)}]"
        parts.append(f"{key}={value:,}" if isinstance(value, int) and not isinstance(value, bool) and value > 9999
                     else f"{key}={value}")
    return " ".join(parts)




def command_paths(profile: Profile) -> dict[str, str]:
    """How each command is run from the dist folder: its link (multicall) or its own executable."""
    return {command: command for command in profile.commands}


def make_links(stage: Path, profile: Profile) -> None:
    if not profile.multicall:
        return
    assert profile.app is not None
    for command in profile.commands:
        (stage / command).symlink_to(profile.app.program)


def device_checks(profile: Profile) -> list[dict[str, object]]:
    """The declared checks (`device = true`) that `flash` runs on an installed device, with the
    path of what each runs relative to the dist folder (pure)."""
    app = profile.app
    assert app is not None
    checks: list[dict[str, object]] = []
    for label, name, scenario in smoke.plan(app, profile.commands, tls=profile.tls, multicall=profile.multicall):
        if scenario.device:
            checks.append({"label": label, "argv": [command_paths(profile).get(name, name), *scenario.args],
                           "exit": scenario.exit, "output": list(scenario.output)})
    return checks


def check_budget(profile: Profile, total: int) -> None:
    if profile.budget is not None and total > profile.budget:
        raise BuildFailed(f"artifact is {total:,} B, over the profile's budget of {profile.budget:,} B "
                          f"by {total - profile.budget:,} B")


@dataclass(kw_only=True)
class _Known:
    """What a build has measured so far, so that a failed build still reports it."""

    total_bytes: int | None = None
    image_bytes: int | None = None
    smoke_passed: bool | None = None


def build_profile(profile: Profile, project: Project) -> BuildResult:
    """Build, smoke-test and publish one profile. User-facing failures become a failed result."""
    started = time.monotonic()
    work = project.work_root / profile.name
    log_path = work / "build.log"
    known = _Known()
    try:
        remove_tree(work, project.output_roots)
        work.mkdir(parents=True)
        _build(profile, project, work, log_path, started, known)
    except (SlimfreezeError, OSError) as err:
        # OSError: a full disk or a permission problem in this profile must not stop the others.
        return BuildResult(profile=profile.name, ok=False, seconds=time.monotonic() - started, log=log_path,
                           error=str(err), **vars(known))
    return BuildResult(profile=profile.name, ok=True, seconds=time.monotonic() - started, log=log_path,
                       dist_dir=project.dist_root / profile.name, **vars(known))


def _build(profile: Profile, project: Project, work: Path, log_path: Path, started: float, known: _Known) -> None:
    log.info(f"[{profile.name}] resolved profile: {describe(profile)}")
    signing_key = configured_key(project.root)  # a bad key fails the build before it starts
    backend = BACKENDS[profile.backend]
    # Named like the profile: the report analysed from it (before it is published) carries that name.
    stage = work / "stage" / profile.name
    stage.mkdir(parents=True)
    entry = work / ENTRY_NAME
    assert profile.app is not None
    entry.write_text(entry_source(profile.effective_stand_ins, profile.name, profile.app.entry), encoding="utf-8")
    unused: tuple[str, ...] = ()
    if profile.exclude_unused:
        unused = unused_modules(project, profile)
    graph = _build_graph(project, profile, unused)
    # A root or a size runtime is made once and cached under work/.cache: minutes the first time.
    made = needs_making(profile)
    with log.step(profile.name, f"toolchain ({profile.target}, {profile.runtime} runtime)") if made else nullcontext():
        toolchain = toolchain_for(profile, project, log_path)
    plan = BuildPlan(
        profile=profile, project_root=project.root, work_dir=work, stage_dir=stage, entry_script=entry,
        executables=executables_for(profile), excludes=plan_excludes(profile, unused),
        module_paths=(STANDINS_DIRECTORY,),
        include_modules=tuple(module_name(name) for name in profile.effective_stand_ins), log=log_path,
        toolchain=toolchain)

    with log.step(profile.name, f"freezing with {backend.name} ({profile.layout}, "
                                f"{'multi-call' if profile.multicall else 'one executable per command'})"):
        backend.build(plan)
    make_links(stage, profile)
    tools = backend.tool_versions(toolchain)
    if profile.upx:
        with log.step(profile.name, "UPX"):
            tools.update(upx.apply(profile, stage, [exe.name for exe in plan.executables], log_path, toolchain))
    total = known.total_bytes = folder_bytes(stage)
    check_budget(profile, total)
    where = f" ({toolchain.target}, emulated)" if toolchain.emulated else ""
    with log.step(profile.name, f"smoke test against a real mosquitto{where}"):
        result = smoke.run(profile.app, stage, command_paths(profile), tls=profile.tls, log=log_path,
                           multicall=profile.multicall, toolchain=toolchain)
    known.smoke_passed = result.passed
    if not result.passed:
        raise BuildFailed(f"smoke test failed; the artifact does not work:\n{result.failure_text()}")
    image_record = None
    inputs = reproducible.inputs_for(project.root)
    if profile.image:
        with log.step(profile.name, f"{profile.image} image ({profile.image_compressor})"):
            image_record = image.make(profile, stage, work, log_path, inputs)
        known.image_bytes = image_record["size"]
        tools.update(image.tool_versions())
    manifest = build_manifest(
        folder=stage, profile=profile.to_dict(), tools=tools, commands=command_paths(profile),
        executables=[exe.name for exe in plan.executables], smoke=result.to_dict(),
        build_seconds=time.monotonic() - started, commit=git_commit(project.root), image=image_record,
        toolchain=toolchain, app=profile.app.summary(), device_checks=device_checks(profile),
        reproducible=inputs.to_dict())
    write_manifest(stage, manifest)
    if signing_key is not None:
        sign_build(stage, signing_key)
        log.info(f"[{profile.name}] signed the manifest and image with key {signing_key.key_id[:16]}")
    with log.step(profile.name, "size report"):
        # Written before anything is published, so a report that fails leaves the old artifact and
        # its old report together; then both are swapped in by renames.
        reports = work / "reports" / profile.name
        write_profile_reports(stage, reports, graph=graph, search=builder_dirs(manifest, project.root),
                              trace=_trace_data(work),
                              bystanders=(profile.app.program, *(c for c in profile.commands
                                                                 if profile.app.commands[c].supervisor)))
    # Each swapped in by one atomic exchange: dist/<profile> is never missing, even if killed here.
    publish_tree(stage, project.dist_root / profile.name, project.output_roots)
    publish_tree(reports, project.reports_root / profile.name, project.output_roots)
    write_index(project.reports_root)


def _trace_data(work: Path) -> dict | None:
    """This build's trace of the app's scenarios (exclude_unused profiles run one), if any."""
    path = work / "trace" / "trace.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _build_graph(project: Project, profile: Profile, unused: tuple[str, ...]) -> dict:
    """The freezer's import graph with this build's exclusions, for the report's retained sizes.
    `unused_modules` has already computed (and cached) the graph without the unused ones."""

    with log.step(profile.name, "import graph for retained sizes"):
        return exclude_from_graph(import_graph(project, profile, plan_excludes(profile)), unused)


def build_many(profiles: list[Profile], project: Project) -> list[BuildResult]:
    """Build each profile; one failing does not stop the others."""
    results = []
    for profile in profiles:
        result = build_profile(profile, project)
        if not result.ok:
            log.error(f"profile '{profile.name}' failed: {result.error}")
        results.append(result)
    return results
