"""`python build.py why MODULE [--profile P] [-n N | --all]`: the import chains that pull a module
into a profile's artifact, from the freezer's own import graph (twiggy's `paths`), shortest first.

    slimfreeze_entry -> app.commands.telemetry -> app.mqtt -> paho.mqtt.client -> urllib.parse -> ipaddress

The graph is the one the build used: PyInstaller's module graph of the profile's entry script with
the profile's exclusions (and, with `exclude_unused`, the modules a traced run never loads). The
artifact's own report says whether the module is really in it, and with how many bytes.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from build.analysis.model import SizeReport
from build.analysis.retained import (
    CHAIN_LIMIT,
    NOT_BUNDLED,
    exclude_from_graph,
    module_of_row,
    predecessors,
    reachable,
    shortest_chains,
    successors,
)
from build.config import Profile
from build.errors import SlimfreezeError
from build.freeze.excludes import plan_excludes
from build.freeze.standins import NATIVE_COMPANIONS, module_name
from build.freeze.trace import import_graph, unused_modules
from build.project import Project

DEFAULT_CHAINS = 3
MAX_IMPORTERS = 12


class NotInGraph(SlimfreezeError):
    """The module is nowhere in the profile's import graph."""






def profile_graph(project: Project, profile: Profile) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The import graph as the profile's build sees it, and the traced-unused modules it leaves out
    (computed afresh: a trace of the commands from source, a few seconds; the graph is cached)."""

    unused = unused_modules(project, profile) if profile.exclude_unused else ()
    return exclude_from_graph(import_graph(project, profile, plan_excludes(profile)), unused), unused


def exclusion_reasons(profile: Profile, unused: tuple[str, ...]) -> dict[str, str]:
    """Why each name the profile leaves out is left out, for messages."""

    reasons = {name: "exclude_unused: a traced run of the commands never loads it" for name in unused}
    reasons.update({name: f"the profile's exclude = [..., {name!r}, ...]" for name in profile.exclude})
    for name in profile.effective_stand_ins:
        for gone in (name, *NATIVE_COMPANIONS.get(name, ())):
            reasons[gone] = f"replaced by the stand-in {module_name(name)}"
    return reasons


# ---- pure ----

@dataclass(frozen=True, kw_only=True)
class Presence:
    stored: int
    raw: int
    rows: tuple[str, ...]


def presence(report: SizeReport, module: str) -> Presence | None:
    rows = [r for r in report.rows if module_of_row(r) == module]
    if not rows:
        return None
    return Presence(stored=sum(r.stored for r in rows), raw=sum(r.raw for r in rows),
                    rows=tuple(sorted(r.name for r in rows)))


def _reason(module: str, reasons: dict[str, str]) -> str | None:
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in reasons:
            return reasons[".".join(parts[:i])]
    return None


def display_chain(chain: tuple[str, ...]) -> str:
    """The entry script by its name, not the build machine's path."""
    return " -> ".join((Path(chain[0]).stem, *chain[1:]))


def explain(module: str, *, graph: dict[str, Any], profile: str, report: SizeReport | None,
            limit: int | None, reasons: dict[str, str] | None = None, dist: Path | None = None,
            loaded_by: list[str] | None = None) -> str:
    """The text `why` prints; NotInGraph when the module is not in the graph at all."""
    reasons = reasons or {}
    root = graph["root"]
    live = reachable(successors(graph), root)
    node = graph["nodes"].get(module) if module in live and module != root else None
    if node is None:
        why_not = _reason(module, reasons)
        if why_not:
            raise NotInGraph(f"{module} is not in {profile}'s import graph nor its artifact: the profile leaves it "
                             f"out ({why_not})")
        close = difflib.get_close_matches(module, sorted(n for n in live if n != root), n=3, cutoff=0.6)
        raise NotInGraph(f"{module} is not in {profile}'s import graph; "
                         + (f"closest: {', '.join(close)}" if close else "no module with a similar name is in it"))
    lines = [_status(module, node["kind"], profile, report, _reason(module, reasons), dist)]
    chains, total = shortest_chains(graph, module, limit=limit)
    length = len(chains[0]) - 1
    shown = ("the only" if total == 1 else f"all {total}") if len(chains) == total else f"{len(chains)} of {total}"
    more = "" if len(chains) == total else (" (-n N or --all shows more)" if limit is not None
                                            else f" (--all stops at {CHAIN_LIMIT})")
    lines.append(f"{shown} shortest import chain{'s' if total != 1 else ''} ({length} "
                 f"import{'s' if length != 1 else ''} from the entry script){more}:")
    lines += [f"  {display_chain(chain)}" for chain in chains]
    importers = [p for p in predecessors(graph).get(module, ()) if p in live]
    named = [Path(p).stem if p == root else p for p in importers]
    rest = f", and {len(named) - MAX_IMPORTERS} more" if len(named) > MAX_IMPORTERS else ""
    lines.append(f"imported directly by {len(named)}: {', '.join(named[:MAX_IMPORTERS])}{rest}")
    if loaded_by is not None:  # from the traced runs of the declared scenarios
        lines.append(f"loaded when run by the scenario{'s' if len(loaded_by) != 1 else ''} "
                     f"{', '.join(loaded_by)}" if loaded_by else "loaded by none of the traced scenarios")
    if report is not None and node["kind"] in ("Package", "NamespacePackage", "ExtensionPackage"):
        subs = {m for r in report.rows if (m := module_of_row(r)) and m.startswith(module + ".")}
        if subs:
            stored = sum(r.stored for r in report.rows if module_of_row(r) in subs)
            lines.append(f"its {len(subs)} submodules in the artifact hold {stored:,} B stored more")
    return "\n".join(lines)


def _status(module: str, kind: str, profile: str, report: SizeReport | None, reason: str | None,
            dist: Path | None) -> str:
    if kind == "ExcludedModule":
        return (f"{module} is NOT in {profile}'s artifact: the profile leaves it out ({reason or 'excluded'}); "
                f"without that it would come in through these")
    if kind == "MissingModule":
        return f"{module} is NOT in {profile}'s artifact: imported, but the freezer did not find it"
    if kind == "BuiltinModule":
        return f"{module} is built into the Python interpreter: no bytes of its own in {profile}'s artifact"
    if kind in NOT_BUNDLED:
        return f"{module} is NOT in {profile}'s artifact: the freezer does not bundle it ({kind})"
    if report is None:
        where = f" ({dist} does not exist)" if dist is not None else ""
        return (f"{module} is in {profile}'s import graph; {profile} has not been built{where}, so its bytes are "
                f"unknown: run `python build.py --profile {profile}`")
    found = presence(report, module)
    if found is None:
        return (f"{module} is in {profile}'s import graph but NOT in its built artifact ({report.artifact}); "
                f"the build may be older than the sources: rebuild it")
    rows = found.rows[0] if len(found.rows) == 1 else f"{len(found.rows)} rows: {', '.join(found.rows)}"
    percent = 100.0 * found.stored / report.total_stored if report.total_stored else 0.0
    share = ("<0.01% of " if 0 < percent < 0.01 else f"{percent:.2f}% of ") if report.total_stored else ""
    return (f"{module} is in {profile}'s artifact: {found.stored:,} B stored, {found.raw:,} B raw "
            f"({share}{report.total_stored:,} B; {rows})")

