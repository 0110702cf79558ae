"""Benchmark (issue 10): ARM artifacts beside the x86_64 ones, and a target build's cold time.

    .venv/bin/python benchmarks/targets.py [--no-build] [--dist DIR] [--work DIR] [--reports DIR]

Builds min-system, min, flash-min and the aarch64 and armv7 profiles (on the size runtime cross-compiled
for them, and -system on the root's own python3.11) with the orchestrator (the figures a
user's `python build.py --profile P` gets: frozen inside the target's Debian root, smoke-tested
under emulation against a real mosquitto), then prints
- per profile: its target, artifact bytes, image bytes, the issue's size target, build seconds,
  the smoke test's result;
- the cold build time of min-aarch64 with its Debian root and venv already in the cache (made
  first, untimed): what every later CI run and every developer build costs;
- the five largest rows that differ between min-aarch64-system and min-aarch64 (what the size
  runtime saves on the device), and between min (x86_64) and min-aarch64 (one recipe, two
  architectures) (`bloat --diff`).
With --no-build it reads what dist/ and size_reports/ already hold (no timings then).
A benchmark, not a test: it prints and asserts nothing; it exits non-zero if a build failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `build` is the source tree's package, never an installed one

from build.analysis.ops import diff_reports  # noqa: E402
from build.config import load_profiles  # noqa: E402
from build.errors import SlimfreezeError  # noqa: E402
from build.freeze.orchestrate import build_profile  # noqa: E402
from build.freeze.toolchains import toolchain_for  # noqa: E402
from build.project import Project  # noqa: E402
from build.report import jsonio  # noqa: E402

MIB = 1024 * 1024
# The targets: onefile <= 3.5 MiB on both ARM targets, the aarch64 flash image <= 2.5 MiB,
# a cold min-aarch64 build <= 3 minutes with the root and venv cached.
# min, flash-min and the ARM profiles run on the size runtime (issue 11); the -system ones on the
# Python of this machine or of the root: the like-for-like comparisons.
PROFILES = {"min-system": None, "min": None, "min-aarch64-system": None, "min-aarch64": ("artifact", 3.5 * MIB),
            "min-armv7-system": None, "min-armv7": ("artifact", 3.5 * MIB), "flash-min": None,
            "flash-min-aarch64": ("image", 2.5 * MIB), "flash-min-armv7": None}
DIFFS = (("min-aarch64-system", "min-aarch64"), ("min-armv7-system", "min-armv7"), ("min", "min-aarch64"))
COLD_TARGET_SECONDS = 180.0
COLUMNS = ("profile", "target", "runtime", "artifact bytes", "image bytes", "issue target", "build s", "smoke")


def manifest(project: Project, name: str) -> dict | None:
    try:
        return json.loads((project.dist_root / name / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def fmt(value: int | None) -> str:
    return f"{value:,}" if value is not None else "-"


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)))
    for row in rows:
        print("  ".join(cell.rjust(w) if cell[:1].isdigit() else cell.ljust(w) for cell, w in zip(row, widths)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-build", action="store_true", help="report what dist/ already holds")
    parser.add_argument("--dist", type=Path)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--reports", type=Path)
    args = parser.parse_args(argv)
    try:
        project = Project.at(ROOT, dist=args.dist, work=args.work, reports=args.reports)
        profiles = load_profiles(project.pyproject)
    except SlimfreezeError as err:
        print(f"targets: error: {err}", file=sys.stderr)
        return err.return_code
    seconds: dict[str, float] = {}
    failed = []
    if not args.no_build:
        for name in ("min-aarch64", "min-armv7"):  # untimed: the cached root, runtime and venv later builds reuse
            started = time.monotonic()
            toolchain_for(profiles[name], project, project.work_root / f"toolchain-{name}.log")
            print(f"{name}: root, size runtime and venv ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
        for name in PROFILES:
            result = build_profile(profiles[name], project)
            seconds[name] = result.seconds
            print(f"{name}: {'ok' if result.ok else 'FAILED'} in {result.seconds:.1f} s", file=sys.stderr)
            if not result.ok:
                failed.append(f"{name}: {(result.error or '').splitlines()[0] if result.error else ''}")
    rows = []
    for name, target in PROFILES.items():
        found = manifest(project, name)
        goal = "-" if target is None else f"{target[0]} <= {target[1] / MIB:.1f} MiB"
        if found is None:
            rows.append([name, profiles[name].target, profiles[name].runtime, "-", "-", goal, "-", "not built"])
            continue
        image = (found.get("image") or {}).get("size")
        rows.append([name, found["target"], found["resolved_profile"].get("runtime", "system"),
                     fmt(found["total_bytes"]), fmt(image), goal,
                     f"{seconds[name]:.1f}" if name in seconds else "-",
                     "passed" if found["smoke"]["passed"] else "FAILED"])
    print_table(rows)
    if "min-aarch64" in seconds:
        print(f"\ncold min-aarch64 build (root, runtime and venv cached): {seconds['min-aarch64']:.1f} s "
              f"(issue target <= {COLD_TARGET_SECONDS:.0f} s)")
    for old, new in DIFFS:
        reports = [project.reports_root / n / "report.json" for n in (old, new)]
        if all(p.is_file() for p in reports):
            diff = diff_reports(jsonio.load(reports[0]), jsonio.load(reports[1]))
            print(f"\nfive largest rows that differ, {old} -> {new} (total {diff.delta:+,} B):")
            for change in sorted(diff.changes, key=lambda c: -abs(c.delta))[:5]:
                print(f"  {change.delta:+12,} B  {change.kind:<8}  {change.distribution:<15}  {change.name}")
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
