"""The sweep's comparison as a self-contained HTML fragment for size_reports/index.html.

`render_sweep_section(sweep)` takes the data of size_reports/sweep.json and returns one
<section>: a table ranked by bytes on the device (the source baseline pinned above it), failed
variants marked with their reason, every text escaped. The ranking is in the HTML itself; a small
inline script makes the columns sortable by click or Enter. A page whose Content-Security-Policy
forbids inline scripts still shows the ranked table; to allow the sorting, add SCRIPT_CSP_SOURCE
to its `script-src`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from build.report.html import script_source
from build.sweep.records import strategy

# (heading, record key, kind): kind "bytes"/"int"/"ms"/"s" are numbers, "text" is text.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("#", "rank", "int"),
    ("Profile", "profile", "text"),
    ("Result", "ok", "text"),
    ("Bytes on device", "device_bytes", "bytes"),
    ("Artifact bytes", "artifact_bytes", "bytes"),
    ("Image bytes", "image_bytes", "bytes"),
    ("Build s", "build_seconds", "s"),
    ("Start-up ms (hello)", "startup_ms", "ms"),
    ("Start to 1st ack ms", "first_ack_ms", "ms"),
    ("PSS kB total", "pss_kb_total", "int"),
    ("PSS kB, one supervisor", "pss_kb_supervisor", "int"),
    ("RSS kB total", "rss_kb_total", "int"),
    ("Unpacked at start, bytes", "unpack_bytes", "bytes"),
    ("Strategy / reason", "strategy", "text"),
)
NUM_CLASS = ' class="sf-num"'
# Figures shown with their ratio to the source baseline of the same run.
VERSUS_SOURCE = ("startup_ms", "first_ack_ms", "pss_kb_total", "pss_kb_supervisor")

STYLE = """
.sf-sweep { margin: 24px 0; }
.sf-sweep table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
.sf-sweep th, .sf-sweep td { padding: 4px 8px; border-bottom: 1px solid #e3e6ec; vertical-align: top; }
.sf-sweep .sf-scroll { overflow-x: auto; }
.sf-sweep th { text-align: left; background: #f6f7f9; font-size: 0.9em; }
.sf-sweep td b { white-space: nowrap; }
.sf-sweep td:last-child { min-width: 18em; }
.sf-sweep th.sf-sortable { cursor: pointer; }
.sf-sweep th[aria-sort=ascending]::after { content: " \\25B2"; }
.sf-sweep th[aria-sort=descending]::after { content: " \\25BC"; }
.sf-sweep .sf-num { text-align: right; white-space: nowrap; }
.sf-sweep .sf-ratio { color: var(--muted, #6b7280); font-size: 0.85em; margin-left: 4px; }
.sf-sweep .sf-note { color: var(--muted, #6b7280); }
.sf-sweep tr.sf-baseline td { background: #f3f6fb; font-style: italic; }
.sf-sweep tr.sf-failed td { background: #fdf1f1; }
.sf-sweep .sf-badge-ok { color: #177245; font-weight: 600; }
.sf-sweep .sf-badge-failed { color: #b42318; font-weight: 600; }
.sf-sweep details pre { white-space: pre-wrap; margin: 4px 0 0; font-size: 0.85em; }
"""

# Progressive enhancement only: the rows arrive ranked. Empty cells (failed rows) sort last in
# both directions; numbers compare as numbers (data-v holds the raw value).
SCRIPT = """(function () {
  var section = document.currentScript && document.currentScript.parentNode;
  var table = section && section.querySelector("table.sf-sweep-table");
  if (!table) return;
  var body = table.tBodies[table.tBodies.length - 1];
  var heads = table.tHead.rows[0].cells;
  function value(row, i) { var v = row.cells[i] && row.cells[i].getAttribute("data-v"); return v === null ? "" : v; }
  Array.prototype.forEach.call(heads, function (th, i) {
    th.tabIndex = 0;
    th.classList.add("sf-sortable");
    function sort() {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = value(a, i), y = value(b, i);
        if (x === "" || y === "") return (x === "") - (y === "");
        var nx = Number(x), ny = Number(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : (x < y ? -1 : x > y ? 1 : 0);
        return ascending ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
    });
  });
})();"""

SCRIPT_CSP_SOURCE = script_source(SCRIPT)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _format(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "ms":
        return f"{value:,.1f}"
    if kind == "s":
        return f"{value:,.1f}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _first_line(text: Any) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else ""




def _reason_cell(error: Any) -> str:
    text = str(error or "failed (no reason recorded)").strip()
    first = _first_line(text)
    if "\n" not in text:
        return f'<td data-v="{_e(first)}">{_e(text)}</td>'
    return (f'<td data-v="{_e(first)}"><details><summary>{_e(first)}</summary>'
            f"<pre>{_e(text)}</pre></details></td>")


def _number_cell(value: Any, kind: str, base: Any = None) -> str:
    raw = "" if value is None or isinstance(value, bool) else repr(value)
    ratio = ""
    if value is not None and isinstance(base, (int, float)) and base:
        ratio = f'<span class="sf-ratio" title="against the app from source, same run">×{value / base:.2f}</span>'
    return f'<td class="sf-num" data-v="{_e(raw)}">{_e(_format(value, kind))}{ratio}</td>'


def _row(record: Mapping[str, Any]) -> str:
    base = record.get("source") or {}
    cells = []
    for _, key, kind in COLUMNS:
        if key == "profile":
            cells.append(f'<td data-v="{_e(record["profile"])}"><b>{_e(record["profile"])}</b></td>')
        elif key == "ok":
            badge = ('<span class="sf-badge-ok">ok</span>' if record["ok"]
                     else '<span class="sf-badge-failed">FAILED</span>')
            cells.append(f'<td data-v="{"ok" if record["ok"] else "failed"}">{badge}</td>')
        elif key == "strategy":
            cells.append(f'<td data-v="{_e(strategy(record))}">{_e(strategy(record))}</td>' if record["ok"]
                         else _reason_cell(record.get("error")))
        else:
            cells.append(_number_cell(record.get(key), kind, base.get(key) if key in VERSUS_SOURCE else None))
    css = "sf-ok" if record["ok"] else "sf-failed"
    return f'<tr class="{css}" data-profile="{_e(record["profile"])}">{"".join(cells)}</tr>'


def _baseline_row(source: Mapping[str, Any]) -> str:
    cells = []
    for _, key, kind in COLUMNS:
        if key == "profile":
            cells.append("<td>source</td>")
        elif key == "ok":
            cells.append('<td><span class="sf-badge-ok">ok</span></td>' if source.get("ok")
                         else '<td><span class="sf-badge-failed">FAILED</span></td>')
        elif key == "strategy":
            cells.append("<td>the app from source (baseline)</td>" if source.get("ok") else _reason_cell(source.get("error")))
        elif key in ("startup_ms", "first_ack_ms", "pss_kb_total", "pss_kb_supervisor", "rss_kb_total"):
            cells.append(_number_cell(source.get(key), kind))
        else:
            cells.append('<td class="sf-num">-</td>')
    return f'<tr class="sf-baseline">{"".join(cells)}</tr>'


def render_sweep_section(sweep: Mapping[str, Any]) -> str:
    """A <section> comparing the sweep's profiles, ranked by bytes on the device (pure)."""
    settings = sweep.get("settings") or {}
    records = list(sweep.get("profiles") or [])
    failed = sum(1 for r in records if not r.get("ok"))
    runs = sweep.get("runs") or []
    head = "".join(f'<th scope="col"{NUM_CLASS if kind != "text" else ""}>{_e(title)}</th>'
                   for title, _, kind in COLUMNS)
    baseline = sweep.get("source")
    baseline_body = f'<tbody class="sf-baseline-body">{_baseline_row(baseline)}</tbody>' if baseline else ""
    rows = "\n".join(_row(r) for r in records) or (
        f'<tr><td colspan="{len(COLUMNS)}" class="sf-note">no profiles in this sweep</td></tr>')
    note = (f"{len(records)} profile(s), {failed} failed; {len(runs)} run(s). Ranked by bytes on the device "
            f"(the flash image when the profile makes one, else the artifact). Start-up: median of "
            f"{_e(settings.get('runs', '?'))} runs. Memory: total of {_e(settings.get('workers', '?'))} concurrent "
            f"<code>{_e(settings.get('worker_command', '?'))}</code> workers (a onefile's starter and child both "
            f"count). ×N: against the app run from source in the same run. "
            f"Click a heading to sort.")
    return (f'<section class="sf-sweep" id="sweep">\n<style>{STYLE}</style>\n'
            f"<h2>Strategy sweep</h2>\n<p class=\"sf-note\">{note}</p>\n"
            f'<div class="sf-scroll"><table class="sf-sweep-table">\n<thead><tr>{head}</tr></thead>\n{baseline_body}\n'
            f"<tbody>\n{rows}\n</tbody>\n</table></div>\n<script>{SCRIPT}</script>\n</section>\n")
