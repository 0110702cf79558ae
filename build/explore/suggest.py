"""`python build.py suggest --profile P`: what P's artifact bundles that a traced run never loads,
with the bytes each would save, largest first, and how to leave it out.

The candidates are the modules of the freezer's import graph that appear in the rows of P's last
build and that the trace of every command never imported (`build.freeze.trace.unused_from`, which names a
package once for all its submodules and never names what the frozen runtime needs).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from build.analysis.model import Row
from build.analysis.retained import module_sizes
from build.config import Profile
from build.errors import SlimfreezeError
from build.freeze.standins import module_name
from build.freeze.trace import Trace, unused_from
from build.project import Project
from build.report import current_report
from build.report.table import fmt_size


class NotBuilt(SlimfreezeError):
    """The profile has no artifact to look into."""


@dataclass(frozen=True, kw_only=True)
class Suggestion:
    name: str  # what to exclude: a module, or a package with all its submodules
    stored: int  # bytes the artifact would lose (its rows and its submodules' rows)
    raw: int
    modules: tuple[str, ...]  # the bundled modules it covers


@dataclass(frozen=True, kw_only=True)
class Suggestions:
    profile: str
    artifact: str
    artifact_stored: int
    exclude_unused: bool  # the profile already leaves out what its build's trace never loaded
    exclude: tuple[str, ...]  # the profile's own exclude list
    items: tuple[Suggestion, ...]

    @property
    def total_stored(self) -> int:
        return sum(s.stored for s in self.items)

    @property
    def total_raw(self) -> int:
        return sum(s.raw for s in self.items)


def unused_bundled(rows: Iterable[Row], graph: Mapping[str, Any], traced: frozenset[str],
                   keep: Iterable[str] = ()) -> tuple[Suggestion, ...]:
    """The bundled modules of the graph that the trace never loaded, with their bytes (pure)."""
    sizes = module_sizes(rows)
    kinds = {name: node["kind"] for name, node in graph["nodes"].items() if name in sizes}
    out = []
    for name in unused_from(kinds, traced, keep=keep):
        prefix = name + "."
        modules = tuple(sorted(m for m in sizes if m == name or m.startswith(prefix)))
        out.append(Suggestion(name=name, stored=sum(sizes[m][0] for m in modules),
                              raw=sum(sizes[m][1] for m in modules), modules=modules))
    return tuple(sorted(out, key=lambda s: (-s.stored, s.name)))


def require_built(project: Project, profile: Profile) -> None:
    """NotBuilt unless dist/<profile> exists (cheap: call it before tracing)."""
    dist = project.dist_root / profile.name
    if not dist.is_dir():
        raise NotBuilt(f"{profile.name} has not been built ({dist} does not exist); "
                       f"build it first: python build.py --profile {profile.name}")


def suggestions(project: Project, profile: Profile, trace: Trace, graph: Mapping[str, Any]) -> Suggestions:
    """Suggestions for `profile` from its last build (dist/<profile>), a trace and the import graph."""

    require_built(project, profile)
    report = current_report(project.dist_root / profile.name, project.reports_root / profile.name)
    assert report is not None  # the folder exists
    keep = {module_name(s) for s in profile.effective_stand_ins} | set(profile.app.own_packages if profile.app else ())
    return Suggestions(profile=profile.name, artifact=report.artifact, artifact_stored=report.total_stored,
                       exclude_unused=profile.exclude_unused, exclude=tuple(profile.exclude),
                       items=unused_bundled(report.rows, graph, trace.modules, keep))


def render(s: Suggestions) -> str:
    """The table, the total and how to apply it (pure)."""
    section = f"[tool.slimfreeze.profiles.{s.profile}]"
    if not s.items:
        if s.exclude_unused:
            return (f"{s.profile} bundles nothing that a traced run of its commands never loads: its "
                    f"exclude_unused = true already leaves all of that out. Nothing to suggest.")
        return f"{s.profile} bundles nothing that a traced run of its commands never loads. Nothing to suggest."
    count = len(s.items)
    lines = [f"{s.profile} bundles {count} module{'s' if count != 1 else ''} or package{'s' if count != 1 else ''} "
             f"that no traced run of its commands loads ({s.artifact}, {s.artifact_stored:,} B):"]
    width = max(len(f"{s.total_stored:,}"), len("Stored B"))
    raw_width = max(len(f"{s.total_raw:,}"), len("Raw B"))
    lines.append(f"  {'Stored B':>{width}}  {'Raw B':>{raw_width}}  Exclude")
    for item in s.items:
        subs = len([m for m in item.modules if m != item.name])
        extra = f"  (and {subs} submodule{'s' if subs != 1 else ''})" if subs else ""
        lines.append(f"  {item.stored:>{width},}  {item.raw:>{raw_width},}  {item.name}{extra}")
    share = f"{100.0 * s.total_stored / s.artifact_stored:.1f}%" if s.artifact_stored else "-"
    lines.append(f"  {s.total_stored:>{width},}  {s.total_raw:>{raw_width},}  total: {fmt_size(s.total_stored)}, "
                 f"{share} of the artifact")
    names = toml_list(sorted(set(s.exclude) | {item.name for item in s.items}))
    if s.exclude_unused:
        lines.append(f"{s.profile} already has exclude_unused = true: its build's trace loaded these (a traced run "
                     f"can differ from one run to the next). To leave them out anyway, set in {section}:")
        lines.append(f"  exclude = {names}")
    else:
        lines.append(f"To leave them out, set in {section} (the build's smoke test then decides):")
        lines.append("  exclude_unused = true      # recomputed from a fresh trace at every build")
        lines.append(f"or list them (a profile's list replaces the one it inherits):\n  exclude = {names}")
    return "\n".join(lines)


def toml_list(names: list[str], width: int = 100) -> str:
    """A TOML array on one line, or wrapped over several when long."""
    one = json.dumps(names)
    if len(one) <= width:
        return one
    lines, line = [], ""
    for item in (json.dumps(n) + "," for n in names):
        if line and len(line) + 1 + len(item) > width - 4:
            lines.append(line)
            line = item
        else:
            line = f"{line} {item}" if line else item
    lines.append(line)
    return "[\n" + "\n".join(f"    {x}" for x in lines) + "\n  ]"
