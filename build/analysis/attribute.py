"""Pure attribution: a region tree in, rows out.

Stored sizes come from composing the maps down the tree (raw offset -> file offset), so the rows
of any container telescope to the container's stored size and the report adds up to the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from build.analysis.distributions import (
    UNKNOWN,
    Attribution,
    DistIndex,
    classify_file,
    classify_module,
)
from build.analysis.model import BUCKET_KINDS, SECTION_GROUPS, Row, Section
from build.analysis.regions import Region

Mapper = Callable[[int], int]


@dataclass(frozen=True, kw_only=True)
class Context:
    index: DistIndex
    slimfreeze_build: bool = False
    contents_prefix: str = ""  # "_internal/" in a PyInstaller onedir: stripped to get run-time paths
    app: frozenset[str] = frozenset()  # the entry scripts' names: their own package is the application


def flatten(root: Region, ctx: Context, *, prefix: str = "", mapper: Mapper | None = None) -> tuple[Row, ...]:
    """Leaf rows of `root` (whose spans are file offsets unless `mapper` says otherwise)."""
    rows: list[Row] = []
    _walk(root, prefix, mapper or (lambda x: x), False, ctx, rows)
    return _unique(rows)


def _join(prefix: str, name: str) -> str:
    if not name:
        return prefix
    return f"{prefix}/{name}" if prefix else name


def _walk(region: Region, prefix: str, mapper: Mapper, estimated: bool, ctx: Context, out: list[Row]) -> None:
    name = _join(prefix, region.name)
    stored = sum(mapper(e) - mapper(s) for s, e in region.spans)
    inner_mapper, inner_estimated = mapper, estimated
    if region.content is not None:
        (start, _), = region.spans  # a region with its own content is one contiguous span
        smap = region.content.smap

        def inner_mapper(x: int, _start=start, _smap=smap, _outer=mapper) -> int:
            return _outer(_start + _smap(x))

        inner_estimated = estimated or region.content.compressed
    if region.children:
        for child in region.children:
            _walk(child, name, inner_mapper, inner_estimated, ctx, out)
        return
    children: tuple[Section, ...] = ()
    if region.sections:
        children = _sections(region, inner_mapper, inner_estimated)
    a = attribute(region, name, ctx)
    # A leaf that is a whole compressed stream has an exact stored size; one that is part of a
    # stream shared with others (or of such a leaf's content) has an estimate.
    out.append(Row(name=name or "[file]", kind=region.kind, stored=stored, raw=region.raw, module=a.module,
                   package=a.package, distribution=a.distribution, guess=a.guess, estimate=estimated,
                   children=children))


def _sections(region: Region, mapper: Mapper, estimated: bool) -> tuple[Section, ...]:
    stored = dict.fromkeys(SECTION_GROUPS, 0)
    raw = dict.fromkeys(SECTION_GROUPS, 0)
    for group, s, e in region.sections or ():
        stored[group] += mapper(e) - mapper(s)
        raw[group] += e - s
    return tuple(Section(name=g, stored=stored[g], raw=raw[g], estimate=estimated)
                 for g in SECTION_GROUPS if raw[g])


def attribute(region: Region, name: str, ctx: Context) -> Attribution:
    """Module, package and distribution of one leaf."""
    if region.kind in BUCKET_KINDS:
        label = BUCKET_KINDS[region.kind]
        return Attribution(module=label, package=label, distribution=region.distribution or UNKNOWN,
                           guess=region.distribution is None)
    if region.module is not None:
        if region.distribution is not None:
            return Attribution(module=region.module, package=region.module.split(".")[0],
                               distribution=region.distribution, guess=region.guess)
        return classify_module(region.module, ctx.index, slimfreeze_build=ctx.slimfreeze_build,
                               script=region.kind == "script", app=ctx.app)
    if region.distribution is not None:
        return Attribution(module=region.name, package=region.name, distribution=region.distribution,
                           guess=region.guess)
    path = region.file or name
    path = path.removeprefix(ctx.contents_prefix) if ctx.contents_prefix else path
    return classify_file(path, ctx.index, soname=region.soname, slimfreeze_build=ctx.slimfreeze_build, app=ctx.app)


def _unique(rows: list[Row]) -> tuple[Row, ...]:
    """Row names are keys (diffs, tables): a duplicated archive entry gets a " #2" suffix."""
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        count = seen.get(row.name, 0) + 1
        seen[row.name] = count
        if count > 1:
            row = replace(row, name=f"{row.name} #{count}")
        out.append(row)
    return tuple(out)
