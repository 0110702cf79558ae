"""Renderers of one size model: terminal tables, report.json, and self-contained HTML pages.

Public API used by the orchestrator after each build:
  write_profile_reports(dist_dir, out_dir, graph=None) -> Path
                                                     out_dir/report.json + out_dir/index.html (with
                                                     retained sizes when given the import graph)
  current_report(dist_dir, out_dir) -> SizeReport | None   the report of the build in dist_dir
  write_index(reports_root) -> Path                  reports_root/index.html comparing profiles
"""

from __future__ import annotations

from build.report.pages import current_report, write_index, write_profile_reports

__all__ = ["current_report", "write_index", "write_profile_reports"]
