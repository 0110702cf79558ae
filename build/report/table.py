"""Terminal tables in cargo-bloat's spirit (rich): rows, distributions (--crates), and diffs.

Renderers are pure: they build rich renderables from the model; `render()` turns one into text at
a given width, which is what the golden tests compare.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from build.analysis.elf_sections import LABELS
from build.analysis.model import NativeFile, Row, SizeReport, display_distribution
from build.analysis.ops import (
    Diff,
    SortKey,
    compile_filter,
    filter_rows,
    group_rows,
    sort_rows,
    top,
)
from build.sizes import fmt_size


def fmt_share(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"})
_CONTROL.update({c: f"\\u{c:04x}" for c in (0x2028, 0x2029, 0x200E, 0x200F, *range(0x202A, 0x202F),
                                               *range(0x2066, 0x206A))})


def visible(name: str) -> str:
    """Names from an artifact are data: control characters (ESC, newline, bidi overrides) are
    shown as escapes (\\x1b, \\n), never sent to the terminal."""
    return name.translate(_CONTROL)


class _Table(Table):
    """A rich Table whose string cells are plain text: names come from archives, and rich markup
    in them ("[bold]...") must be shown, not interpreted, nor their control characters."""

    def add_row(self, *cells: object, **kwargs) -> None:  # type: ignore[override]
        super().add_row(*(_plain(c) for c in cells), **kwargs)


def _plain(cell: object) -> object:
    return plain_text(cell) if isinstance(cell, str) else cell


def plain_text(text: str, style: str = "") -> Text:
    """The one way text becomes a rich Text here: escaped first, as rich's Text drops some control
    characters (BEL, backspace, CR...) and keeps the others (ESC), so a name is shown as it is."""
    return Text(visible(text), style=style)


def _table() -> Table:
    table = _Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1), header_style="bold")
    table.add_column("File", justify="right", no_wrap=True)
    table.add_column("Stored", justify="right", no_wrap=True)
    table.add_column("Raw", justify="right", no_wrap=True)
    table.add_column("Distribution", no_wrap=True)
    table.add_column("Name", overflow="fold")
    return table


def _stored(n: int, estimate: bool) -> str:
    return ("~" if estimate else "") + fmt_size(n)


def rows_table(report: SizeReport, *, n: int = 20, sort: SortKey = "stored", pattern: str | None = None,
               sections: bool = False) -> RenderableType:
    """The top `n` rows (0 = all), an "And N more" line, rows outside the filter, and the total."""
    total = report.total_stored
    selected = sort_rows(filter_rows(report.rows, pattern), sort)
    shown, rest = top(selected, n)
    table = _table()
    for row in shown:
        table.add_row(fmt_share(row.stored, total), _stored(row.stored, row.estimate), fmt_size(row.raw),
                      display_distribution(row.distribution, row.guess), plain_text(row.name))
        if sections:
            for child in row.children:
                table.add_row("", _stored(child.stored, child.estimate), fmt_size(child.raw), "",
                              plain_text(f"  {LABELS.get(child.name, child.name)}", style="dim"))
            if row.strip_savings:
                table.add_row("", "", fmt_size(row.strip_savings), "",
                              plain_text(f"  strip would save {fmt_size(row.strip_savings)} uncompressed", style="dim"))
    _rest_lines(table, rest, total, noun="rows")
    if pattern:
        chosen = {r.name for r in selected}
        outside = [r for r in report.rows if r.name not in chosen]
        if outside:
            s, w = sum(r.stored for r in outside), sum(r.raw for r in outside)
            table.add_row(fmt_share(s, total), fmt_size(s), fmt_size(w), "",
                          plain_text(f"{len(outside)} rows not matching --filter {pattern}"))
    _total_line(table, report)
    return Group(table, *_footer(report))


def crates_table(report: SizeReport, *, n: int = 20, sort: SortKey = "stored",
                 pattern: str | None = None) -> RenderableType:
    """--crates: one line per distribution (a guessed one separately, marked '?')."""
    total = report.total_stored
    groups = group_rows(filter_rows(report.rows, pattern), "distribution", sort)
    shown, rest = top(groups, n)
    table = _table()
    table.columns[-1].header = "Rows"
    table.columns[-1].justify = "right"
    for g in shown:
        table.add_row(fmt_share(g.stored, total), _stored(g.stored, g.estimate), fmt_size(g.raw),
                      display_distribution(g.name, g.guess), str(g.rows))
    if rest:
        s, w = sum(g.stored for g in rest), sum(g.raw for g in rest)
        table.add_row(fmt_share(s, total), fmt_size(s), fmt_size(w),
                      plain_text(f"And {len(rest)} more distributions. Use -n N to show more."), "")
    if pattern:
        matched = sum(g.stored for g in groups)
        if matched != total:
            table.add_row(fmt_share(total - matched, total), fmt_size(total - matched), "", "not matching --filter", "")
    _total_line(table, report, name_column=str(len(report.rows)))
    return Group(table, *_footer(report))


def _rest_lines(table: Table, rest: Sequence[Row], total: int, *, noun: str) -> None:
    if rest:
        s, w = sum(r.stored for r in rest), sum(r.raw for r in rest)
        table.add_row(fmt_share(s, total), fmt_size(s), fmt_size(w), "",
                      plain_text(f"And {len(rest)} more {noun}. Use -n N to show more."))


def _total_line(table: Table, report: SizeReport, name_column: str | None = None) -> None:
    label = name_column if name_column is not None else (
        f"Total: {report.total_stored:,} bytes ({report.artifact}, {report.format}"
        + (f", {report.architecture})" if report.architecture else ")"))
    table.add_row(fmt_share(report.total_stored, report.total_stored), fmt_size(report.total_stored),
                  fmt_size(report.total_raw), "Total" if name_column is not None else "", plain_text(label),
                  style="bold")


def _footer(report: SizeReport) -> list[RenderableType]:
    lines: list[RenderableType] = []
    savings = [(r.strip_savings, r.name) for r in report.rows if r.strip_savings]
    if savings:
        total = sum(s for s, _ in savings)
        biggest = ", ".join(f"{visible(name)} {fmt_size(s)}" for s, name in sorted(savings, key=lambda x: (-x[0], x[1]))[:3])
        lines.append(plain_text(f"strip would save {fmt_size(total)} uncompressed in {len(savings)} native files "
                          f"(symbol tables and debug info; {biggest}). --sections shows each file's groups."))
    if report.links:
        links = ", ".join(f"{visible(link.path)} -> {visible(link.target)}" for link in report.links)
        lines.append(plain_text(f"Links (0 bytes each): {links}"))
    for note in report.notes:
        lines.append(plain_text(f"Note: {note}", style="dim"))
    return lines


def diff_table(diff: Diff, *, n: int = 20) -> RenderableType:
    """What grew, shrank, appeared and vanished; then the total delta."""
    table = _Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1), header_style="bold")
    table.add_column("Change", no_wrap=True)
    table.add_column("Delta", justify="right", no_wrap=True)
    table.add_column("Old", justify="right", no_wrap=True)
    table.add_column("New", justify="right", no_wrap=True)
    by_name = diff.level != "distribution"  # at distribution level the name is the distribution
    if by_name:
        table.add_column("Unit" if diff.level in ("symbol", "unit") else "Distribution", no_wrap=True)
    table.add_column("Name" if by_name else "Distribution", overflow="fold")
    shown, rest = top(diff.changes, n)

    def line(*cells: object, dist: str = "", **kw: object) -> None:
        head, name = cells[:-1], cells[-1]
        table.add_row(*head, *((dist,) if by_name else ()), name, **kw)

    for c in shown:
        line(c.kind, fmt_size(c.delta, signed=True), fmt_size(c.old), fmt_size(c.new), plain_text(c.name),
             dist=c.distribution)
    if rest:
        delta = sum(c.delta for c in rest)
        line("", fmt_size(delta, signed=True), "", "", plain_text(f"And {len(rest)} more changes. Use -n N to show more."))
    line("total", fmt_size(diff.delta, signed=True), fmt_size(diff.old_total), fmt_size(diff.new_total),
         plain_text(f"{diff.delta:+,} bytes ({diff.old_name} -> {diff.new_name})"), style="bold")
    counts = {kind: sum(1 for c in diff.changes if c.kind == kind) for kind in ("grew", "shrank", "appeared", "vanished")}
    summary = ", ".join(f"{v} {k}" for k, v in counts.items()) + f", {diff.unchanged} unchanged"
    return Group(table, plain_text(summary))


def render(renderable: RenderableType, *, width: int = 100) -> str:
    """Plain text (no colours) at a fixed width: what the golden tests compare."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False, legacy_windows=False,
                      soft_wrap=False, emoji=False, highlight=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


# --- inside native files (cargo bloat's functions and crates) ---------------------------------

def native_table(native: NativeFile, *, units: bool, n: int = 20, pattern: str | None = None) -> RenderableType:
    """cargo bloat's `File  .text  Size  Crate  Name` for one native file: its largest functions and
    objects (or, with `units`, its compilation units), top `n`, "And N more", the file's total.
    `pattern` (--filter): only the parts whose name or unit matches it (cargo bloat's --filter)."""
    b = native.breakdown
    parts = b.units if units else b.symbols
    if pattern:
        regex = compile_filter(pattern)
        parts = tuple(p for p in parts if regex.search(p.name) or regex.search(p.unit))
    shown, rest = top(parts, n)
    table = _Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1), header_style="bold")
    for title in ("File", ".text", "Size"):
        table.add_column(title, justify="right", no_wrap=True)
    if not units:
        table.add_column("Unit", no_wrap=True, overflow="ellipsis", max_width=40)
    table.add_column("Unit" if units else "Name", overflow="fold")
    text = b.code_bytes

    def line(share_of: int, code: int, size: int, *names: object, **kw: object) -> None:
        table.add_row(fmt_share(share_of, native.size), fmt_share(code, text), fmt_size(size), *names, **kw)

    for p in shown:
        line(p.size, p.code, p.size, *(() if units else (p.unit,)), p.name)
    if rest:
        s, c = sum(p.size for p in rest), sum(p.code for p in rest)
        noun = "units" if units else "symbols"
        line(s, c, s, *(() if units else ("",)), plain_text(f"And {len(rest)} more {noun}. Use -n N to show more."))
    listed = sum(p.size for p in parts)
    matching = f"{len(parts)} matching --filter {pattern}; " if pattern else ""
    line(listed, min(text, sum(p.code for p in parts)), listed, *(() if units else ("",)),
         plain_text(f"{matching}{fmt_size(text)} in code sections, {fmt_size(native.size)} file ({native.row})"),
         style="bold")
    share = fmt_share(b.code_in_units, b.code_bytes)
    units_note = (f"Units from {b.units_from}: {share} of the code is in a named unit." if b.units_from != "none"
                  else "Units: none (no DWARF, no file symbols, no Nuitka names in it).")
    notes = [plain_text(f"Symbols: {b.source}.", style="dim"), plain_text(units_note, style="dim")]
    return Group(table, *notes)
