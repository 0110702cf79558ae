"""The analyser checks its rows against the bytes on disk in production, not only in the tests:
rows that lose or invent bytes are an internal error, reported as one (exit 70), never a report."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from build.analysis.model import Row, Section
from build.analysis.ops import check_accounted
from build.errors import InternalError
from build.report import command as bloat
from synthetic_archives import Synthetic, make_archive

analyse_module = importlib.import_module("build.analysis.analyse")  # the package exports a function by that name


@pytest.fixture(scope="module")
def onefile(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    return make_archive(tmp_path_factory.mktemp("accounting"))


def test_a_correct_analysis_passes_the_check_and_its_total_is_the_file_size(onefile: Synthetic) -> None:
    report = analyse_module.analyse(onefile.path)
    assert report.total_stored == onefile.path.stat().st_size
    check_accounted(report.rows, report.total_stored, report.artifact)


@pytest.mark.parametrize("wrong", ["drop the last row", "count a row twice"])
def test_rows_that_do_not_add_up_to_the_file_are_an_internal_error(
        onefile: Synthetic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], wrong: str) -> None:
    real_flatten = analyse_module.flatten

    def broken(*args, **kwargs) -> tuple[Row, ...]:  # a reader bug, injected
        rows = real_flatten(*args, **kwargs)
        return rows[:-1] if wrong == "drop the last row" else (*rows, rows[0])

    monkeypatch.setattr(analyse_module, "flatten", broken)
    assert bloat.main([str(onefile.path)]) == InternalError.return_code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("slimfreeze: error: internal error (a bug in slimfreeze")
    assert f"it has {onefile.path.stat().st_size:,} bytes on disk" in err


def test_a_folder_names_the_file_whose_rows_do_not_add_up(onefile: Synthetic, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "dist"
    folder.mkdir()
    (folder / "app").write_bytes(onefile.path.read_bytes())
    (folder / "data.bin").write_bytes(b"x" * 1000)
    real_flatten = analyse_module.flatten

    def broken(region, ctx, *, prefix: str = "", **kwargs) -> tuple[Row, ...]:
        rows = real_flatten(region, ctx, prefix=prefix, **kwargs)
        return rows[:-1] if prefix == "data.bin" else rows

    monkeypatch.setattr(analyse_module, "flatten", broken)
    with pytest.raises(InternalError, match=r"dist/data\.bin: the rows add up to 0 bytes but it has 1,000 bytes"):
        analyse_module.analyse(folder)


def test_parts_that_do_not_add_up_to_their_row_are_an_internal_error() -> None:
    part = Section(name=".text", stored=10, raw=10)
    row = Row(name="a", kind="library", stored=30, raw=30, module="a", package="a", distribution="x",
              children=(part,))
    with pytest.raises(InternalError, match="row 'a'"):
        check_accounted([row], 30, "x")
