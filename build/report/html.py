"""Self-contained HTML pages (pure: model in, text out).

The profile page embeds its data as JSON in <script type="application/json"> with every '<', '>'
and '&' escaped, and renders it with DOM calls and textContent only (assets/report.js). The index
page is static HTML with every value passed through html.escape. Neither page loads anything:
no CDN, no fonts, no network; both work opened from disk.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from build.analysis.elf_sections import LABELS
from build.analysis.model import (
    CommandCost,
    NativeFile,
    Retained,
    Row,
    SizeReport,
    display_distribution,
)
from build.analysis.ops import group_rows, sort_rows
from build.report.table import fmt_size

ASSETS = Path(__file__).with_name("assets")
# A typical build has ~1,000 rows (~150 KB of page); beyond this many, the smallest rows of each
# package are summed into one row so the page stays well under 1 MB.
MAX_PAGE_ROWS = 3000


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def embed_json(value: Any) -> str:
    """JSON safe inside <script>: no '</script>', '<!--' or entity can be formed from the data."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def page_rows(rows: tuple[Row, ...], limit: int = MAX_PAGE_ROWS) -> tuple[Row, ...]:
    """At most `limit` rows: the largest, plus one "[N smaller rows]" row per package for the rest
    (so the page's numbers still add up to the file)."""
    ordered = sort_rows(rows)
    if len(ordered) <= limit:
        return ordered
    keep, rest = ordered[:limit], ordered[limit:]
    summed: dict[tuple[str, str, bool], list[int]] = {}
    for r in rest:
        acc = summed.setdefault((r.distribution, r.package, r.guess), [0, 0, 0, 0])
        acc[0] += r.stored
        acc[1] += r.raw
        acc[2] += 1
        acc[3] |= r.estimate
    extra = [Row(name=f"[{n} smaller rows in {pkg}]", kind="aggregate", stored=s, raw=w,
                 module=f"[{n} smaller rows]", package=pkg, distribution=dist, guess=guess, estimate=bool(est))
             for (dist, pkg, guess), (s, w, n, est) in summed.items()]
    return sort_rows((*keep, *extra))


def page_data(report: SizeReport) -> dict[str, Any]:
    rows = page_rows(report.rows)
    notes = list(report.notes)
    if len(rows) < len(report.rows):
        notes.append(f"The page lists the {MAX_PAGE_ROWS} largest rows; smaller ones are summed per package "
                     f"(report.json has all {len(report.rows)}).")
    return {
        "artifact": report.artifact,
        "format": report.format,
        "total_stored": report.total_stored,
        "total_raw": report.total_raw,
        "files": report.files,
        "row_count": len(report.rows),
        "notes": notes,
        "links": [{"path": link.path, "target": link.target} for link in report.links],
        "rows": [[r.name, r.kind, r.stored, r.raw, r.module, r.package, r.distribution, int(r.guess),
                  int(r.estimate), [[c.name, c.stored, c.raw, int(c.estimate)] for c in r.children]]
                 for r in rows],
        "manifest": report.manifest,
        "section_labels": LABELS,
        "native": {n.row: _native_data(n) for n in report.native},
    }


# Units and functions listed under an expanded native row (report.json and `bloat --symbols` have more).
PAGE_PARTS = 15


def _native_data(n: NativeFile) -> dict[str, Any]:
    b = n.breakdown
    return {"size": n.size, "source": b.source, "units_from": b.units_from, "code_bytes": b.code_bytes,
            "code_in_units": b.code_in_units,
            "units": [[u.name, u.size, u.code] for u in b.units[:PAGE_PARTS]],
            "symbols": [[p.name, p.unit, p.size, p.code] for p in b.symbols[:PAGE_PARTS]]}


PROFILE_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src {script_source}; img-src data:">
<title>Size report: {title}</title>
<style>{css}</style>
</head>
<body>
<header>
<h1 id="title">Size report: {title}</h1>
<div class="summary" id="summary"></div>
<ul class="notes" id="notes"></ul>
</header>
<main>
<section>
<h2>Treemap: distribution &#8594; package &#8594; module (stored bytes)</h2>
<nav class="crumbs" id="crumbs" aria-label="Treemap level"></nav>
<div id="treemap" role="img" aria-label="treemap of stored bytes"></div>
</section>
{commands}{retained}<section>
<h2>Rows</h2>
<div class="tools"><input id="search" type="search" placeholder="Filter rows (name, module, distribution)" aria-label="Filter rows"><span class="count" id="count"></span></div>
<table id="rows"><thead><tr id="rows-head"></tr></thead><tbody id="rows-body"></tbody></table>
</section>
<section>
<h2>Links</h2>
<ul id="links"></ul>
</section>
<section>
<h2>Profile</h2>
<table class="kv"><tbody id="profile-body"></tbody></table>
</section>
<section>
<details><summary>manifest.json</summary><pre id="manifest"></pre></details>
</section>
</main>
<noscript><p>This page needs JavaScript for its treemap and table; report.json next to it has the same data.</p></noscript>
<script type="application/json" id="report-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""


def profile_page(report: SizeReport) -> str:
    js = _asset("report.js")
    title = f"{report.artifact} ({report.architecture})" if report.architecture else report.artifact
    return PROFILE_TEMPLATE.format(title=html.escape(title), css=_asset("report.css"),
                                   data=embed_json(page_data(report)), js=js, script_source=script_source(js),
                                   retained=retained_section(report), commands=commands_section(report))


def script_source(script: str) -> str:
    """The CSP source that allows exactly this inline script (its sha256), and no other."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


RETAINED_TITLE = "Retained size of each top-level import (what would go if it went)"
RETAINED_TIP_NAMES = 40  # module names in a row's tooltip; report.json lists them all
RETAINED_NOTE = ("For each module the application imports directly, and each top-level package: the bytes of "
                 "the modules that the entry script reaches only through it, itself and its submodules included "
                 "(twiggy's dominators, on the freezer's import graph). Shared libraries that only a removed "
                 "extension module needs are not counted: the Python import graph does not show them. "
                 "Entries overlap: a package retains what its submodules retain. A sum that includes an "
                 "estimated row (~ under Rows) is an estimate too.")
RETAINED_NUITKA_NOTE = (" Nuitka compiles modules into [executable]: only their constants and bytecode are "
                        "counted here.")


COMMANDS_TITLE = "What each command loads"
COMMANDS_NOTE = ("From the traced runs of each command's declared scenarios: the stored bytes of the rows its runs "
                 "loaded (modules imported, shared libraries mapped), and of those the rows no other command loads: "
                 "about what leaving the command out of the profile would save. The rest is shared.")
COMMANDS_ROWS_SHOWN = 4


def commands_section(report: SizeReport) -> str:
    """The per-command table as static, escaped HTML; nothing when the report has no trace."""
    if report.commands is None:
        return ""
    e = html.escape
    body = [_command_row(c, report.total_stored) for c in report.commands] or [
        '<tr><td colspan="4" class="muted">no command was traced</td></tr>']
    return (f'<section id="commands">\n<h2>{e(COMMANDS_TITLE)}</h2>\n<p class="muted">{e(COMMANDS_NOTE)}</p>\n'
            '<table><thead><tr><th>Command</th><th class="num">Loaded</th><th class="num">Only it loads</th>'
            '<th>Largest of those</th></tr></thead>\n<tbody>\n' + "\n".join(body) + "\n</tbody></table>\n</section>\n")


def _command_row(c: CommandCost, total: int) -> str:
    e = html.escape
    share = f" ({100.0 * c.own / total:.1f}%)" if total else ""
    shown = ", ".join(c.own_rows[:COMMANDS_ROWS_SHOWN]) + (", ..." if len(c.own_rows) > COMMANDS_ROWS_SHOWN else "")
    return (f'<tr><td class="name">{e(c.command)}</td><td class="num">{c.loaded:,}</td>'
            f'<td class="num">{c.own:,}{share}</td><td class="name">{e(shown) or "-"}</td></tr>')


def retained_section(report: SizeReport) -> str:
    """The retained-size table as static, escaped HTML; nothing when the report has no retained sizes."""
    if report.retained is None:
        return ""
    e = html.escape
    body = [_retained_row(r, report.total_stored) for r in sorted(report.retained, key=lambda r: (-r.stored, r.name))]
    if not body:
        body = ['<tr><td colspan="5" class="muted">no top-level import retains any bytes</td></tr>']
    note = RETAINED_NOTE + (RETAINED_NUITKA_NOTE if report.format.startswith("nuitka") else "")
    return (f'<section id="retained">\n<h2>{e(RETAINED_TITLE)}</h2>\n<p class="muted">{e(note)}</p>\n'
            '<table><thead><tr><th>Import</th><th class="num">Stored</th><th class="num">File %</th>'
            '<th class="num">Raw</th><th class="num">Modules</th></tr></thead>\n<tbody>\n'
            + "\n".join(body) + "\n</tbody></table>\n</section>\n")


def _retained_row(r: Retained, total: int) -> str:
    e = html.escape
    names = ", ".join(r.modules[:RETAINED_TIP_NAMES]) + (", ..." if len(r.modules) > RETAINED_TIP_NAMES else "")
    share = f"{100.0 * r.stored / total:.1f}%" if total else "-"
    return (f'<tr><td class="name">{e(r.name)}</td><td class="num">{r.stored:,}</td><td class="num">{share}</td>'
            f'<td class="num">{r.raw:,}</td><td class="num" title="{e(names, quote=True)}">{len(r.modules)}</td></tr>')


# --- index page comparing profiles -----------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class IndexEntry:
    profile: str
    report: SizeReport | None
    error: str | None


PALETTE = {"python-runtime": 212, "python-stdlib": 140, "paho-mqtt": 28, "app": 0, "slimfreeze": 275,
           "pyinstaller": 50, "nuitka": 185, "libcrypto": 325, "libssl": 300, "libz": 95, "unknown": 230}


def _hue(name: str) -> int:
    """The same colour per distribution as the profile pages (report.js hue())."""
    if name in PALETTE:
        return PALETTE[name]
    h = 0
    for ch in name:
        h = (h * 31 + ord(ch)) & 0xFFFFFFFF
    return h % 360


def _fill(distribution: str, guess: bool) -> str:
    """The distribution's colour; hatched when the attribution is a guess."""
    hue = _hue(distribution)
    if guess:
        return f"repeating-linear-gradient(45deg,hsl({hue},55%,66%) 0 5px,hsl({hue},55%,82%) 5px 10px)"
    return f"hsl({hue},55%,66%)"


def _fmt(n: int) -> str:

    return fmt_size(n)


INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'{script_policy}">
<title>slimfreeze size reports</title>
<style>{css}
.bars {{ display: grid; grid-template-columns: minmax(90px, max-content) 1fr minmax(80px, max-content); gap: 6px 12px; align-items: center; }}
.bar {{ display: flex; height: 22px; background: #eef0f4; border-radius: 3px; overflow: hidden; }}
.bar span {{ display: block; height: 100%; border-right: 1px solid rgba(255,255,255,.8); }}
.legend {{ display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 10px 0; color: var(--muted); }}
a {{ color: var(--accent); }}
</style>
</head>
<body>
<header><h1>slimfreeze size reports</h1>
<div class="summary"><span>profiles <b>{count}</b></span><span>smallest on the device <b>{smallest}</b></span></div></header>
<main>
{sweep}
<section>
<h2>Bytes on the device per profile (the image where there is one), split by distribution</h2>
<div class="bars">
{bars}
</div>
<div class="legend">{legend}</div>
</section>
<section>
<h2>Profiles</h2>
<table>
<thead><tr><th>Profile</th><th>Format</th><th class="num">Bytes</th><th class="num">On-flash image bytes</th><th>Smoke</th><th>Top distributions</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</section>
</main>
</body>
</html>
"""


def device_bytes(report: SizeReport) -> int:
    """What goes on the device: the image when the build made one, else the artifact (the sweep's
    rule, build.sweep.records.sizes_from_manifest)."""
    image = (report.manifest or {}).get("image")
    size = image.get("size") if isinstance(image, dict) else None
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else report.total_stored


def _smoke(report: SizeReport) -> bool | None:
    smoke = (report.manifest or {}).get("smoke")
    passed = smoke.get("passed") if isinstance(smoke, dict) else None
    return passed if isinstance(passed, bool) else None


def index_page(entries: list[IndexEntry], *, sweep_section: str = "", script_source: str | None = None) -> str:
    """The comparison page; `sweep_section` is the sweep's ranked table (HTML), whose one script is
    allowed by its hash (`script_source`) and nothing else."""
    e = html.escape
    good = [x for x in entries if x.report is not None]
    widest = max((device_bytes(x.report) for x in good), default=1) or 1
    seen: dict[str, None] = {}
    bars, rows = [], []
    for entry in sorted(entries, key=lambda x: (x.report is None, device_bytes(x.report) if x.report else 0, x.profile)):
        link = f'<a href="{e(entry.profile, quote=True)}/index.html">{e(entry.profile)}</a>'
        if entry.report is None:
            bars.append(f'<div>{link}</div><div class="muted">{e(entry.error or "")}</div><div></div>')
            rows.append(f"<tr><td>{link}</td><td colspan=\"5\" class=\"muted\">{e(entry.error or '')}</td></tr>")
            continue
        r = entry.report
        groups = group_rows(r.rows, "distribution")
        segments = []
        on_device = device_bytes(r)
        for g in groups:
            label = display_distribution(g.name, g.guess)
            seen.setdefault(label, None)
            # The bar is the bytes on the device; an image (compressed) scales each part alike.
            share = 100.0 * g.stored / widest * (on_device / r.total_stored if r.total_stored else 0)
            title = f"{label}: {g.stored:,} bytes ({100.0 * g.stored / r.total_stored:.1f}%)" if r.total_stored else label
            segments.append(f'<span style="width:{share:.3f}%;background:{_fill(g.name, g.guess)}" '
                            f'title="{e(title, quote=True)}"></span>')
        bars.append(f'<div>{link}</div><div class="bar">{"".join(segments)}</div>'
                    f'<div class="num">{e(_fmt(on_device))}</div>')
        manifest = r.manifest or {}
        image = manifest.get("image") if isinstance(manifest.get("image"), dict) else None
        image_bytes = f"{image['size']:,}" if image and isinstance(image.get("size"), int) else "-"
        smoke = manifest.get("smoke") if isinstance(manifest.get("smoke"), dict) else None
        if smoke and isinstance(smoke.get("passed"), bool):
            smoke_cell = ('<span class="smoke-pass">passed</span>' if smoke["passed"]
                          else '<span class="smoke-fail">FAILED</span>')
        else:
            smoke_cell = '<span class="muted">-</span>'
        top3 = ", ".join(f"{display_distribution(g.name, g.guess)} {_fmt(g.stored)}" for g in groups[:3])
        rows.append(f"<tr><td>{link}</td><td>{e(r.format)}</td><td class=\"num\">{r.total_stored:,}</td>"
                    f"<td class=\"num\">{e(image_bytes)}</td><td>{smoke_cell}</td><td>{e(top3)}</td></tr>")
    legend = "".join(f'<span><span class="swatch" style="background:{_fill(name.removesuffix("?"), name.endswith("?"))}">'
                     f"</span>{e(name)}</span>" for name in seen)
    # Ranked as the sweep ranks: bytes on the device, among builds whose smoke test did not fail.
    working = [x for x in good if _smoke(x.report) is not False]
    smallest = min(working, key=lambda x: (device_bytes(x.report), x.profile)) if working else None
    return INDEX_TEMPLATE.format(
        script_policy=f"; script-src {script_source}" if script_source else "", sweep=sweep_section,
        css=_asset("report.css"), count=len(entries), bars="\n".join(bars), rows="\n".join(rows), legend=legend,
        smallest=e(f"{smallest.profile} ({device_bytes(smallest.report):,} bytes on the device)") if smallest else "-")
