"""What each command of the app costs: the rows of an artifact that its traced scenario runs
loaded, and of those the rows no other command loads (what leaving the command out would save).

Pure: rows in, per-command sums out. The trace (build.freeze.trace) records, per command, the
modules each run imported and the shared libraries it mapped; a row is a command's when its
module is one of those modules, or its file is one of those libraries.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from build.analysis.model import CommandCost, Row

OWN_ROWS_SHOWN = 8


def library_key(name: str) -> str:
    """A shared library's name without folder and version: libsqlite3.so.0.8.6 -> libsqlite3 (pure)."""
    return re.split(r"\.so(\.|$)", os.path.basename(name), maxsplit=1)[0]


def loaders(row: Row, modules: Mapping[str, frozenset[str]], libraries: Mapping[str, frozenset[str]]) -> set[str]:
    """The commands whose traced runs loaded `row` (pure)."""
    found = {c for c, names in modules.items() if row.module in names}
    if row.kind in ("library", "extension") or ".so" in row.module:
        key = library_key(row.module if ".so" in row.module else row.name)
        found |= {c for c, paths in libraries.items() if key in {library_key(p) for p in paths}}
    return found


def command_costs(rows: Iterable[Row], modules: Mapping[str, Iterable[str]], libraries: Mapping[str, Iterable[str]],
                  *, bystanders: Iterable[str] = ()) -> tuple[CommandCost, ...]:
    """Per command (largest first): stored bytes of the rows its runs loaded, and of the rows only it
    loaded, with the largest of those. A bystander's loads (a supervisor runs the other commands
    as its workers; the multi-call program dispatches to them) make no row shared."""
    modules_of = {c: frozenset(m) for c, m in modules.items()}
    libraries_of = {c: frozenset(p) for c, p in libraries.items()}
    loaded: dict[str, list[Row]] = {c: [] for c in sorted(set(modules_of) | set(libraries_of))}
    own: dict[str, list[Row]] = {c: [] for c in loaded}
    for row in rows:
        by = loaders(row, modules_of, libraries_of)
        for command in by:
            loaded[command].append(row)
        owners = by - set(bystanders) or by
        if len(owners) == 1:
            own[next(iter(owners))].append(row)
    costs = []
    for command in loaded:
        mine = sorted(own[command], key=lambda r: (-r.stored, r.name))
        costs.append(CommandCost(command=command, loaded=sum(r.stored for r in loaded[command]),
                                 own=sum(r.stored for r in mine),
                                 own_rows=tuple(r.name for r in mine[:OWN_ROWS_SHOWN])))
    return tuple(sorted(costs, key=lambda c: (-c.own, c.command)))
