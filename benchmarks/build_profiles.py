"""Benchmark (issue 3): build every shipped profile (or those named) and print, per profile, the
artifact's bytes, its budget, the build seconds and the smoke test's result.

    .venv/bin/python benchmarks/build_profiles.py [--profile P ...] [--markdown]
        [--dist DIR] [--work DIR] [--reports DIR]

Builds with the orchestrator itself (`build.freeze.orchestrate.build_profile`: freeze, smoke test against
a real mosquitto, manifest, report), so the figures are those a user's `python build.py` gets.
By default it writes into the project's dist/, work/ and size_reports/ like `build.py` does.
Exits non-zero if any profile failed. A benchmark, not a test: it prints, it asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `build` is the source tree's package, never an installed one

from build.config import load_profiles, select  # noqa: E402
from build.errors import SlimfreezeError  # noqa: E402
from build.freeze.orchestrate import BuildResult, build_profile  # noqa: E402
from build.project import Project  # noqa: E402

COLUMNS = ("profile", "result", "artifact bytes", "image bytes", "budget", "build s", "smoke", "reason")


def first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def rows(results: list[BuildResult], budgets: dict[str, int | None]) -> list[list[str]]:
    out = []
    for r in results:
        budget = budgets.get(r.profile)
        reason = "" if r.ok else first_line(r.error)
        out.append([r.profile, "ok" if r.ok else "FAILED",
                    f"{r.total_bytes:,}" if r.total_bytes is not None else "-",
                    f"{r.image_bytes:,}" if r.image_bytes is not None else "-",
                    f"{budget:,}" if budget is not None else "-", f"{r.seconds:.1f}",
                    {True: "passed", False: "failed", None: "-"}[r.smoke_passed] if r.ok else "-", reason])
    return out


def markdown(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---:" if c in ("artifact bytes", "image bytes", "budget", "build s") else "---"
                            for c in COLUMNS) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", action="append", dest="profiles", metavar="NAME",
                        help="profile to build (repeatable; default: every shipped profile)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--dist", type=Path)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--reports", type=Path)
    args = parser.parse_args(argv)
    try:
        project = Project.at(args.project, dist=args.dist, work=args.work, reports=args.reports)
        profiles = load_profiles(project.pyproject)
        chosen = select(profiles, args.profiles or list(profiles))
    except SlimfreezeError as err:
        print(f"build_profiles: error: {err}", file=sys.stderr)
        return err.return_code
    results = []
    for profile in chosen:
        result = build_profile(profile, project)
        print(f"{profile.name}: {'ok' if result.ok else 'FAILED'} in {result.seconds:.1f} s", file=sys.stderr)
        results.append(result)
    table = rows(results, {p.name: p.budget for p in chosen})
    if args.markdown:
        print(markdown(table))
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        out = Table(title="slimfreeze: every shipped profile built and smoke-tested")
        for column in COLUMNS:
            out.add_column(column, justify="right" if column in ("artifact bytes", "image bytes", "budget", "build s")
                           else "left")
        for row in table:
            out.add_row(*(escape(c) for c in row), style="red" if row[1] == "FAILED" else None)
        Console().print(out)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
