"""The README's measured table, made from a sweep.json (pure): the figures the README shows are
then those of the committed sweep, written between markers by scripts/readme_tables.py and checked
against it by tests/test_readme.py, so they cannot drift from what the profiles build."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
BEGIN = "<!-- measured:begin (scripts/readme_tables.py writes this table from {source}; do not edit) -->"
END = "<!-- measured:end -->"
HEADER = ("| profile | bytes on the device | start to 1st ack ms | PSS kB, {workers} processes | PSS kB, `run` |\n"
          "|---|---:|---:|---:|---:|\n")


class MarkerError(ValueError):
    """The README lacks the markers (or has them out of order)."""


def _label(record: Mapping[str, Any]) -> str:
    what = f"{record['image_format']} image" if record.get("image_format") else record.get("layout") or "?"
    # The runtime's recipe beside the bytes and times it gives (older sweeps did not record it).
    runtime = f", {record['runtime']} runtime" if record.get("runtime") else ""
    return f"{record['profile']} ({what}{runtime})"


def _figure(value: Any, baseline: Any = None) -> str:
    if value is None:
        return "-"
    text = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
    if baseline:
        text += f" (×{value / baseline:.2f})"
    return text


def measured_table(sweep: Mapping[str, Any]) -> str:
    """Every working profile of `sweep`, ranked by bytes on the device; first-ack times with their
    ratio to the app from source measured beside them; failed profiles are left out."""
    settings = sweep.get("settings") or {}
    run = (sweep.get("runs") or [{}])[0]
    declared = settings.get("supervisor")  # newer sweeps name the app's declared supervisor scenario
    supervisor = f"`{declared}` supervisor" if declared and declared != "-" else "`run` supervisor of the workers"
    intro = (f"`.venv/bin/python build.py sweep` ({run.get('machine', '?')}, Python {run.get('python', '?')}, "
             f"{settings.get('runs', '?')} timed runs each, medians); memory of {settings.get('workers', '?')} "
             f"`{settings.get('worker_command', '?')}` workers as separate processes, and of one {supervisor}; "
             f"(×N) against the app run from source in the same run.\n\n")
    rows = []
    for record in sweep["profiles"]:
        if not record["ok"]:
            continue
        source = record.get("source") or {}
        rows.append(f"| {_label(record)} | {record['device_bytes']:,} | "
                    f"{_figure(record.get('first_ack_ms'), source.get('first_ack_ms'))} | "
                    f"{_figure(record.get('pss_kb_total'))} | {_figure(record.get('pss_kb_supervisor'))} |\n")
    return intro + HEADER.format(workers=settings.get("workers", "?")) + "".join(rows)


def device_bytes_shown(block: str) -> dict[str, int]:
    """profile -> the bytes on the device a generated table shows (what the test compares)."""
    found = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].replace(",", "").isdigit():
            found[cells[0].split(" (")[0]] = int(cells[1].replace(",", ""))
    return found


def between(text: str, source: str) -> tuple[int, int]:
    """The span of the generated block (after BEGIN's line, up to END) in `text`."""
    begin = BEGIN.format(source=source)
    start, end = text.find(begin), text.find(END)
    if start < 0 or end < start:
        raise MarkerError(f"no '{begin}' ... '{END}' pair in the README")
    return start + len(begin) + 1, end


def with_table(text: str, sweep: Mapping[str, Any], source: str) -> str:
    """`text` with the block between the markers replaced by the table of `sweep`."""
    start, end = between(text, source)
    return text[:start] + "\n" + measured_table(sweep) + "\n" + text[end:]
