"""The report files the orchestrator writes after each build (I/O edge of the report package)."""

from __future__ import annotations

import html as _html
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from build.analysis import SizeReport, analyse
from build.analysis.commands import command_costs
from build.analysis.native import with_native
from build.analysis.retained import retained_sizes
from build.errors import SlimfreezeError
from build.manifest import MANIFEST_NAME, read_manifest
from build.paths import remove_tree
from build.report import html, jsonio
from build.report.html import IndexEntry
from build.report.sweep_section import SCRIPT_CSP_SOURCE, render_sweep_section
from build.sweep.records import check_sweep

REPORT_NAME = "report.json"
PAGE_NAME = "index.html"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and os.replace: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; reports are for everyone to read
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.replace(tmp, path)
    except BaseException:
        remove_tree(Path(tmp), (path.parent,))
        raise


def write_profile_reports(dist_dir: Path, out_dir: Path, graph: Mapping[str, Any] | None = None,
                          search: Sequence[Path] = (), trace: Mapping[str, Any] | None = None,
                          bystanders: Sequence[str] = ()) -> Path:
    """Analyse dist/<profile> and write out_dir/report.json and out_dir/index.html; return the
    report's path. Both are rendered before either is written, so a failure leaves the old ones.
    With the build's import graph (build.freeze.trace.import_graph), the report carries retained sizes;
    with its trace (trace.json's data), what each command loads."""

    # The largest native files' functions, from unstripped copies in `search` when they are stripped.
    report = with_native(analyse(Path(dist_dir)), Path(dist_dir), search=search)
    if graph is not None:
        report = replace(report, retained=retained_sizes(graph, report.rows))
    if trace is not None:
        report = replace(report, commands=command_costs(report.rows, trace.get("commands", {}),
                                                        trace.get("libraries", {}), bystanders=bystanders))
    report_text = jsonio.dumps(report)
    page_text = html.profile_page(report)
    out_dir = Path(out_dir)
    write_atomic(out_dir / REPORT_NAME, report_text)
    write_atomic(out_dir / PAGE_NAME, page_text)
    return out_dir / REPORT_NAME


def current_report(dist_dir: Path, out_dir: Path) -> SizeReport | None:
    """The size report of the build in dist_dir (None when there is none): out_dir/report.json
    when it was written for that very build (same manifest), else dist_dir analysed afresh."""
    dist_dir, report_path = Path(dist_dir), Path(out_dir) / REPORT_NAME
    if not dist_dir.is_dir():
        return None
    if report_path.is_file() and (dist_dir / MANIFEST_NAME).is_file():
        try:
            report = jsonio.load(report_path)
            manifest = read_manifest(dist_dir)  # the one strict reader, as the analysis reads it
        except SlimfreezeError:
            pass  # analysed below, which says what is wrong if the folder is not an artifact
        else:
            if report.manifest is not None and report.manifest == manifest:
                return report
    return analyse(dist_dir)


SWEEP_NAME = "sweep.json"


def write_index(reports_root: Path) -> Path:
    """size_reports/index.html comparing every profile that has a report.json. A report that
    cannot be read is listed with its error instead of failing the whole page."""
    reports_root = Path(reports_root)
    entries = []
    for report_path in sorted(reports_root.glob(f"*/{REPORT_NAME}")):
        profile = report_path.parent.name
        try:
            entries.append(IndexEntry(profile=profile, report=jsonio.load(report_path), error=None))
        except SlimfreezeError as err:
            entries.append(IndexEntry(profile=profile, report=None, error=str(err)))
    target = reports_root / PAGE_NAME
    write_atomic(target, html.index_page(entries, **_sweep_section(reports_root / SWEEP_NAME)))
    return target


def _sweep_section(path: Path) -> dict[str, str | None]:
    """The sweep's ranked table when `python build.py sweep` wrote one; an unreadable file is shown
    as its error rather than failing the page."""

    if not path.is_file():
        return {"sweep_section": "", "script_source": None}
    try:
        sweep = check_sweep(json.loads(path.read_text(encoding="utf-8")), path)
    except (OSError, ValueError, SlimfreezeError) as err:
        message = _html.escape(f"{path.name}: cannot be read ({err})")
        return {"sweep_section": f'<section><p class="muted">{message}</p></section>', "script_source": None}
    return {"sweep_section": render_sweep_section(sweep), "script_source": SCRIPT_CSP_SOURCE}
