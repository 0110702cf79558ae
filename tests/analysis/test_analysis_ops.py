"""Pure operations over the model: sort, filter, group, top-N, diff, accounting."""

from __future__ import annotations

import pytest

from build.analysis.model import Row, SizeReport
from build.analysis.ops import check_accounted, diff_reports, filter_rows, group_rows, portable_name, sort_rows, top
from build.errors import ConfigError, InternalError


def row(name: str, stored: int, dist: str = "python-stdlib", *, raw: int | None = None, module: str | None = None,
        package: str | None = None, guess: bool = False, estimate: bool = False) -> Row:
    module = module or name
    return Row(name=name, kind="module", stored=stored, raw=stored * 2 if raw is None else raw, module=module,
               package=package or module.split(".")[0], distribution=dist, guess=guess, estimate=estimate)


def report(*rows: Row, name: str = "a") -> SizeReport:
    return SizeReport(artifact=name, format="file", total_stored=sum(r.stored for r in rows),
                      total_raw=sum(r.raw for r in rows), rows=tuple(rows))


ROWS = (row("json", 10), row("b", 30, "paho-mqtt", raw=5), row("a", 30, "paho-mqtt", raw=100),
        row("mystery", 7, "app", guess=True), row("app.cli", 5, "app"))


def test_sort_is_size_descending_then_name() -> None:
    assert [r.name for r in sort_rows(ROWS)] == ["a", "b", "json", "mystery", "app.cli"]
    assert [r.name for r in sort_rows(ROWS, "raw")] == ["a", "json", "mystery", "app.cli", "b"]


def test_filter_matches_distribution_name_or_regex() -> None:
    assert {r.name for r in filter_rows(ROWS, "paho-mqtt")} == {"a", "b"}
    assert {r.name for r in filter_rows(ROWS, r"^app\.")} == {"app.cli"}
    assert filter_rows(ROWS, None) == ROWS
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        filter_rows(ROWS, "(")


def test_group_keeps_guesses_apart_and_sums_exactly() -> None:
    groups = group_rows(ROWS, "distribution")
    assert [(g.name, g.guess, g.stored, g.rows) for g in groups] == [
        ("paho-mqtt", False, 60, 2), ("python-stdlib", False, 10, 1), ("app", True, 7, 1), ("app", False, 5, 1)]
    assert sum(g.stored for g in groups) == sum(r.stored for r in ROWS)


def test_top_n() -> None:
    assert top((1, 2, 3), 2) == ((1, 2), (3,))
    assert top((1, 2, 3), 0) == ((1, 2, 3), ())


def test_diff_classifies_and_totals() -> None:
    old = report(row("a", 10), row("b", 10), row("gone", 4), row("same", 1), name="old")
    new = report(row("a", 15), row("b", 2), row("new", 7), row("same", 1), name="new")
    d = diff_reports(old, new)
    assert [(c.name, c.kind, c.delta) for c in d.changes] == [
        ("b", "shrank", -8), ("new", "appeared", 7), ("a", "grew", 5), ("gone", "vanished", -4)]
    assert d.delta == new.total_stored - old.total_stored == sum(c.delta for c in d.changes)
    assert d.unchanged == 1


def test_diff_by_distribution() -> None:
    old = report(row("a", 10, "x"), row("b", 10, "y"))
    new = report(row("a", 12, "x"), row("c", 1, "z"))
    d = diff_reports(old, new, "distribution")
    assert {(c.name, c.kind) for c in d.changes} == {("x", "grew"), ("y", "vanished"), ("z", "appeared")}


def test_check_accounted_catches_a_missing_byte() -> None:
    good = report(*ROWS)
    check_accounted(good.rows, good.total_stored, "x")
    with pytest.raises(InternalError, match="the rows add up to"):
        check_accounted(good.rows, good.total_stored + 1, "x")


@pytest.mark.parametrize("name, portable", [
    ("python3.11/lib-dynload/_struct.cpython-311-x86_64-linux-gnu.so", "python3.11/lib-dynload/_struct.cpython-311.so"),
    ("_struct.cpython-311-aarch64-linux-gnu.so", "_struct.cpython-311.so"),
    ("_struct.cpython-311-arm-linux-gnueabihf.so", "_struct.cpython-311.so"),
    ("yaml/_yaml.cpython-312-x86_64-linux-gnu.so", "yaml/_yaml.cpython-312.so"),
    ("libz.so.1", "libz.so.1"),
    ("x86_64-linux-gnu.txt", "x86_64-linux-gnu.txt"),
])
def test_portable_names_drop_only_the_platform_tag_of_extension_modules(name, portable):
    assert portable_name(name) == portable
