"""Pure functions over the size model: sort, filter, group, top-N and diff.

Ordering is deterministic everywhere: size descending, then name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from build.analysis.model import Row, SizeReport
from build.errors import ConfigError, InternalError

SortKey = Literal["stored", "raw"]
Level = Literal["name", "module", "package", "distribution", "symbol", "unit"]
LEVELS: tuple[Level, ...] = ("name", "module", "package", "distribution")


@dataclass(frozen=True, kw_only=True)
class Group:
    """Rows summed under one key (a module, a package or a distribution)."""

    name: str
    distribution: str
    stored: int
    raw: int
    rows: int
    guess: bool
    estimate: bool


def sort_rows(rows: Iterable[Row], key: SortKey = "stored") -> tuple[Row, ...]:
    return tuple(sorted(rows, key=lambda r: (-getattr(r, key), r.name)))


def compile_filter(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as err:
        raise ConfigError(f"--filter {pattern!r} is not a valid regular expression: {err}") from None


def filter_rows(rows: Iterable[Row], pattern: str | re.Pattern[str] | None) -> tuple[Row, ...]:
    """Rows whose distribution equals the pattern, or whose name, module or distribution matches it
    (cargo-bloat's --filter CRATE|REGEX)."""
    if pattern is None or pattern == "":
        return tuple(rows)
    regex = compile_filter(pattern) if isinstance(pattern, str) else pattern
    return tuple(r for r in rows if r.distribution == regex.pattern or regex.search(r.name)
                 or regex.search(r.module) or regex.search(r.distribution))


def group_rows(rows: Iterable[Row], level: Level, sort: SortKey = "stored") -> tuple[Group, ...]:
    """Sum rows by `level`. A guessed distribution is its own group ("app?" is not "app"), so that
    certain and guessed bytes are never mixed."""
    sums: dict[tuple[str, str, bool], list[int]] = {}
    estimates: dict[tuple[str, str, bool], bool] = {}
    for r in rows:
        name = getattr(r, level)
        key = (name, r.distribution, r.guess)
        acc = sums.setdefault(key, [0, 0, 0])
        acc[0] += r.stored
        acc[1] += r.raw
        acc[2] += 1
        estimates[key] = estimates.get(key, False) or r.estimate
    groups = [Group(name=name, distribution=dist, stored=s, raw=w, rows=n, guess=guess,
                    estimate=estimates[(name, dist, guess)])
              for (name, dist, guess), (s, w, n) in sums.items()]
    return tuple(sorted(groups, key=lambda g: (-getattr(g, sort), g.name, g.distribution, g.guess)))


def top(items: Sequence, n: int) -> tuple[tuple, tuple]:
    """The first n items and the rest; n == 0 means all."""
    if n <= 0:
        return tuple(items), ()
    return tuple(items[:n]), tuple(items[n:])


def total_stored(rows: Iterable[Row]) -> int:
    return sum(r.stored for r in rows)


def check_accounted(rows: Iterable[Row], on_disk: int, what: str) -> None:
    """Rows must add up to the bytes on disk, and each row's children to the row: else the
    attribution has lost or invented bytes, which is a bug (InternalError), never an estimate."""
    rows = list(rows)
    stored = total_stored(rows)
    if stored != on_disk:
        raise InternalError(f"{what}: the rows add up to {stored:,} bytes but it has {on_disk:,} bytes on disk")
    for row in rows:
        if row.children and (sum(c.stored for c in row.children) != row.stored
                             or sum(c.raw for c in row.children) != row.raw):
            raise InternalError(f"{what}: the parts of row {row.name!r} do not add up to the row")


# --- diff -------------------------------------------------------------------------------------

ChangeKind = Literal["grew", "shrank", "appeared", "vanished"]


@dataclass(frozen=True, kw_only=True)
class Change:
    name: str
    distribution: str
    kind: ChangeKind
    old: int  # stored bytes before (0 if it appeared)
    new: int  # stored bytes after (0 if it vanished)

    @property
    def delta(self) -> int:
        return self.new - self.old


@dataclass(frozen=True, kw_only=True)
class Diff:
    old_name: str
    new_name: str
    old_total: int
    new_total: int
    level: Level
    changes: tuple[Change, ...]  # only what changed; biggest absolute change first
    unchanged: int  # keys present in both with the same size

    @property
    def delta(self) -> int:
        return self.new_total - self.old_total


def _changes(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> tuple[tuple[Change, ...], int]:
    """Keyed sizes (with a label: distribution or unit) compared: what changed, biggest absolute
    change first, and how many keys kept their size."""
    changes: list[Change] = []
    unchanged = 0
    for key in before.keys() | after.keys():
        (o, olabel), (n, nlabel) = before.get(key, (0, "")), after.get(key, (0, ""))
        kind: ChangeKind
        if key not in after:
            kind = "vanished"
        elif key not in before:
            kind = "appeared"
        elif n != o:
            kind = "grew" if n > o else "shrank"
        else:
            unchanged += 1
            continue
        changes.append(Change(name=key, distribution=nlabel or olabel, kind=kind, old=o, new=n))
    changes.sort(key=lambda c: (-abs(c.delta), c.name))
    return tuple(changes), unchanged


# An extension module's file name carries the platform (PEP 3149): `_struct.cpython-311-x86_64-linux-gnu.so`.
_PLATFORM_TAG = re.compile(r"(\.cpython-\d+)-[a-z0-9_]+-linux-gnu[a-z]*(?=\.so)")


def portable_name(name: str) -> str:
    """A row's name without the platform in extension module file names, so that the same module
    built for two architectures is one row in a diff: `_struct.cpython-311.so` (pure)."""
    return _PLATFORM_TAG.sub(r"\1", name)


def diff_reports(old: SizeReport, new: SizeReport, level: Level = "name") -> Diff:
    """What grew, shrank, appeared and vanished between two reports, keyed by `level`."""
    def sizes(report: SizeReport) -> dict[str, tuple[int, str]]:
        out: dict[str, tuple[int, str]] = {}
        for r in report.rows:
            key = r.distribution if level == "distribution" else getattr(r, level)
            key = portable_name(key) if level == "name" else key
            size, _ = out.get(key, (0, ""))
            out[key] = (size + r.stored, r.distribution)
        return out

    changes, unchanged = _changes(sizes(old), sizes(new))
    return Diff(old_name=old.artifact, new_name=new.artifact, old_total=old.total_stored,
                new_total=new.total_stored, level=level, changes=changes, unchanged=unchanged)


def with_rows(report: SizeReport, rows: Iterable[Row]) -> SizeReport:
    return replace(report, rows=tuple(rows))


def diff_native(old: SizeReport, new: SizeReport, level: Level = "symbol") -> Diff:
    """Which functions (or units) of the native files grew: keyed by file name and symbol (or unit),
    so that the same library in two layouts (onefile, onedir's _internal/) is compared."""
    def sizes(report: SizeReport) -> dict[str, tuple[int, str]]:
        out: dict[str, tuple[int, str]] = {}
        for n in report.native:
            base = portable_name(n.row.rsplit("/", 1)[-1] if not n.row.endswith("]") else n.row)
            parts = n.breakdown.units if level == "unit" else n.breakdown.symbols
            for p in parts:
                key = f"{base}: {p.name}"
                size, _ = out.get(key, (0, ""))
                out[key] = (size + p.size, p.unit)
        return out

    changes, unchanged = _changes(sizes(old), sizes(new))
    return Diff(old_name=old.artifact, new_name=new.artifact, old_total=sum(n.size for n in old.native),
                new_total=sum(n.size for n in new.native), level=level, changes=changes, unchanged=unchanged)
