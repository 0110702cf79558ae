"""README.md's measured table is the committed sweep's (benchmarks/results/sweep.json): a figure
changed by hand, or a sweep committed without rewriting the table, fails here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from build.report.readme import BEGIN, MarkerError, between, device_bytes_shown, measured_table, with_table
from build.sweep.records import check_sweep, empty_record, make_sweep

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "benchmarks" / "results" / "sweep.json"
SOURCE = "benchmarks/results/sweep.json"


def test_the_readmes_device_bytes_are_those_of_the_committed_sweep() -> None:
    sweep = check_sweep(json.loads(COMMITTED.read_text()), COMMITTED)
    readme = (ROOT / "README.md").read_text()
    start, end = between(readme, SOURCE)
    shown = device_bytes_shown(readme[start:end])
    # Read from the sweep's records directly, not through the table maker.
    assert shown == {r["profile"]: r["device_bytes"] for r in sweep["profiles"] if r["ok"]} and shown
    assert readme[start:end].strip() == measured_table(sweep).strip()


def test_the_check_fails_when_a_figure_is_edited_by_hand(tmp_path: Path) -> None:
    ran = subprocess.run([sys.executable, "scripts/readme_tables.py", "--check"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    readme = (ROOT / "README.md").read_text()
    start, end = between(readme, SOURCE)
    first = next(iter(device_bytes_shown(readme[start:end]).values()))
    edited = readme[:start] + readme[start:end].replace(f"{first:,}", f"{first - 1:,}", 1) + readme[end:]
    sweep = json.loads(COMMITTED.read_text())
    assert with_table(edited, sweep, SOURCE) == readme  # the command puts the sweep's figure back


def test_the_table_ranks_working_profiles_and_names_images_and_runtimes() -> None:
    records = [empty_record("min", ok=True, device_bytes=1_739_818, layout="onefile", first_ack_ms=90.0,
                            source={"first_ack_ms": 100.0}),
               empty_record("flash-min", ok=True, device_bytes=1_310_720, image_format="squashfs xz"),
               empty_record("min-balanced", ok=True, device_bytes=2_000_000, layout="onefile", runtime="balanced",
                            first_ack_ms=80.0, source={"first_ack_ms": 100.0}),
               empty_record("broken", error="smoke test failed")]
    table = measured_table(make_sweep(records, source=None, settings={"workers": 3}, run_id="r", created="c"))
    assert device_bytes_shown(table) == {"flash-min": 1_310_720, "min": 1_739_818, "min-balanced": 2_000_000}
    assert "| flash-min (squashfs xz image) | 1,310,720 |" in table and "| 90.0 (×0.90) |" in table
    assert "| min-balanced (onefile, balanced runtime) | 2,000,000 | 80.0 (×0.80) |" in table
    assert table.index("flash-min") < table.index("| min (onefile)") < table.index("min-balanced")


def test_a_readme_without_the_markers_is_refused() -> None:
    with pytest.raises(MarkerError):
        with_table("# no table here\n", {"profiles": []}, SOURCE)
    assert BEGIN.format(source=SOURCE) in (ROOT / "README.md").read_text()
