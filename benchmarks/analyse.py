"""Benchmark: how long the size analysis of an artifact takes and how big its reports are.

    python benchmarks/analyse.py [DIST_DIR ...] [--repeat N]

DIST_DIR defaults to dist/default (the largest artifact). Prints one table row per artifact:
bytes analysed, rows, the metadata index load (once per process), the analysis (best of N), the
analysis with symbols (the breakdown of the largest native files into functions and units, as
`bloat --json/--html` does), rendering JSON and HTML, and the sizes of report.json and index.html.
Targets live here, not in tests: analysis with symbols <= 3 s and a page well under 1 MB for the
default profile (the largest artifact).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from build.analysis import analyse  # noqa: E402
from build.analysis.distributions import load_index  # noqa: E402
from build.analysis.debug_copies import builder_dirs  # noqa: E402
from build.analysis.native import with_native  # noqa: E402
from build.report import html, jsonio  # noqa: E402
from build.report.table import fmt_size  # noqa: E402


def best_of(repeat: int, func):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - started)
    return best, result


def cpu_of(repeat: int, func) -> float:
    """The least CPU time of `repeat` runs: on a machine shared with other work, wall time shows the
    load as much as the analysis."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        func()
        best = min(best, time.process_time() - started)
    return best


def with_symbols(path: Path):
    """As `bloat --symbols` does it: unstripped copies from the runtime that built the artifact too."""
    report = analyse(path)
    return with_native(report, path, search=builder_dirs(report.manifest, ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "dist" / "default"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    load_index()
    index_s = time.perf_counter() - started

    table = Table(title="slimfreeze size analysis")
    for column in ("artifact", "format", "bytes", "rows", "index load s", "analyse s", "with symbols s",
                   "with symbols cpu s", "native files", "json s", "html s", "report.json", "index.html"):
        table.add_column(column, justify="left" if column in ("artifact", "format") else "right")
    for path in args.paths:
        seconds, report = best_of(args.repeat, lambda: analyse(path))
        symbols_s, report = best_of(args.repeat, lambda: with_symbols(path))
        symbols_cpu = cpu_of(args.repeat, lambda: with_symbols(path))
        json_s, json_text = best_of(args.repeat, lambda: jsonio.dumps(report))
        html_s, html_text = best_of(args.repeat, lambda: html.profile_page(report))
        json_bytes, html_bytes = len(json_text.encode()), len(html_text.encode())
        table.add_row(str(path), report.format, f"{report.total_stored:,}", f"{len(report.rows):,}", f"{index_s:.2f}",
                      f"{seconds:.2f}", f"{symbols_s:.2f}", f"{symbols_cpu:.2f}", str(len(report.native)), f"{json_s:.3f}", f"{html_s:.3f}",
                      f"{json_bytes:,} ({fmt_size(json_bytes)})", f"{html_bytes:,} ({fmt_size(html_bytes)})")
    Console(width=200).print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
