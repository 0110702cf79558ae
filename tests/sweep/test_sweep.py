"""The strategy sweep: ranking, merging runners' results, the CI matrix, the HTML section, process
memory, and (integration) measuring a real built artifact against a real mosquitto."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import psutil
import pytest

from build.sweep import measure
from build.cli import main
from build.errors import ArtifactError, ConfigError
from build.report.pages import write_index
from build.report.sweep_section import SCRIPT, render_sweep_section
from build.sweep.command import table_rows
from build.application import load_application
from build.sweep.records import (FIGURES, SWEEP_NAME, check_sweep, empty_record, make_sweep, matrix, merge,
                                 rank, sizes_from_manifest, source_figures, strategy)
from build.sweep.run import MeasureSettings, collect, measure_dist

ROOT = Path(__file__).resolve().parents[2]
APP = load_application(ROOT / "pyproject.toml")


def record(profile: str, device: int | None, *, ok: bool = True, run_id: str = "run-a", **extra) -> dict:
    return empty_record(profile, ok=ok, device_bytes=device, artifact_bytes=device, run_id=run_id,
                        error=None if ok else extra.pop("error", "it broke"), **extra)


def sweep_of(records: list[dict], *, run_id: str = "run-a", created: str = "2026-01-01T00:00:00Z",
             source_pss: int = 30000) -> dict:
    source = {"profile": "source", "ok": True, "error": None, "startup_ms": 20.0, "first_ack_ms": 100.0,
              "pss_kb_total": source_pss, "rss_kb_total": 60000, "unpack_bytes": 0, "worker_processes": 3}
    return make_sweep(records, source=source, settings=MeasureSettings().to_dict(), run_id=run_id, created=created)


# ---- ranking, merging, matrix (pure) ----

def test_rank_orders_working_variants_by_device_bytes_and_lists_failed_ones_last():
    ranked = rank([record("big", 900), record("broken", None, ok=False), record("small", 100),
                   record("also-broken", None, ok=False), record("mid", 500)])
    assert [r["profile"] for r in ranked] == ["small", "mid", "big", "also-broken", "broken"]
    assert [r["rank"] for r in ranked] == [1, 2, 3, None, None]


def test_rank_breaks_ties_by_name():
    assert [r["profile"] for r in rank([record("b", 5), record("a", 5)])] == ["a", "b"]


def test_device_bytes_are_the_image_when_there_is_one():
    image = {"path": "x.squashfs", "size": 4000, "format": "squashfs", "compressor": "xz"}
    assert sizes_from_manifest({"total_bytes": 9000, "image": image}) == {
        "artifact_bytes": 9000, "image_bytes": 4000, "image_format": "squashfs xz", "device_bytes": 4000}
    assert sizes_from_manifest({"total_bytes": 9000, "image": None}) == {
        "artifact_bytes": 9000, "image_bytes": None, "image_format": None, "device_bytes": 9000}


def read_back(sweep: dict, tmp_path: Path) -> tuple[dict, str]:
    """A sweep as the writer leaves it on disk, read back by sweep.json's reader and by the index page."""
    (tmp_path / SWEEP_NAME).write_text(json.dumps(sweep, indent=2))
    page = (write_index(tmp_path)).read_text()
    return check_sweep(json.loads((tmp_path / SWEEP_NAME).read_text()), tmp_path / SWEEP_NAME), page


def test_a_sweep_as_the_writers_make_it_is_read_back_by_the_reader_and_the_page(tmp_path):
    # Records as the sweep makes them: measured beside the source (its figures in `source`),
    # failed before measuring, and measured with no source beside them (the run's figures).
    measured = record("min", 1_739_818, startup_ms=60.0, pss_kb_total=19_000.0,
                      source=source_figures(sweep_of([])["source"]))
    failed = record("nuitka-min", None, ok=False, source=source_figures(None))
    sweep = sweep_of([measured, failed, record("flash-min", 1_310_720)])
    data, page = read_back(sweep, tmp_path)
    assert data == sweep and data["schema"] == "slimfreeze.sweep/1"  # the published name, kept by later versions
    assert "cannot be read" not in page and 'class="sf-sweep"' in page
    assert "1,739,818" in page and "1,310,720" in page and "nuitka-min" in page
    keys = {"profile", "ok", "error", "artifact_bytes", "image_bytes", "device_bytes", "build_seconds",
            "startup_ms", "first_ack_ms", "pss_kb_total", "rss_kb_total", "backend", "layout", "tls", "multicall"}
    assert keys <= set(data["profiles"][0])


def test_the_page_shows_an_unreadable_sweep_as_its_error_not_its_figures(tmp_path):
    sweep = sweep_of([record("min", 1_739_818)])
    sweep["profiles"][0]["source"] = {"startup_ms": "fast"}
    (tmp_path / SWEEP_NAME).write_text(json.dumps(sweep))
    page = write_index(tmp_path).read_text()
    assert "cannot be read" in page and "profiles[0] (min).source: &#x27;startup_ms&#x27; must be" in page
    assert "1,739,818" not in page


def test_merge_rewrites_ranks_across_runners_and_keeps_each_runs_baseline():
    a = sweep_of([record("min", 300, run_id="a")], run_id="a", created="2026-01-01T00:00:00Z")
    b = sweep_of([record("onedir-min", 200, run_id="b"), record("nuitka-min", None, ok=False, run_id="b")],
                 run_id="b", created="2026-01-01T00:05:00Z", source_pss=31000)
    merged = merge([a, b], created="2026-01-02T00:00:00Z")
    assert check_sweep(json.loads(json.dumps(merged)), Path("merged")) == merged  # what its readers read
    assert [(r["profile"], r["rank"]) for r in merged["profiles"]] == [
        ("onedir-min", 1), ("min", 2), ("nuitka-min", None)]
    assert [run["run_id"] for run in merged["runs"]] == ["a", "b"]
    assert merged["source"]["pss_kb_total"] == 30000  # the first run's


def test_merge_prefers_a_working_record_then_the_newer_run():
    old_ok = sweep_of([record("min", 300, run_id="old")], run_id="old", created="2026-01-01T00:00:00Z")
    new_failed = sweep_of([record("min", None, ok=False, run_id="new")], run_id="new", created="2026-01-03T00:00:00Z")
    newer_ok = sweep_of([record("min", 290, run_id="newer")], run_id="newer", created="2026-01-04T00:00:00Z")
    assert merge([old_ok, new_failed], created="x")["profiles"][0]["run_id"] == "old"
    assert merge([newer_ok, old_ok, new_failed], created="x")["profiles"][0]["run_id"] == "newer"
    assert len(merge([old_ok, new_failed, newer_ok], created="x")["profiles"]) == 1


def test_matrix_is_a_github_actions_include_list():
    assert matrix(["min", "onedir-min"]) == {"include": [{"profile": "min"}, {"profile": "onedir-min"}]}


def test_matrix_command_prints_every_shipped_profile_as_json(capsys):
    assert main(["matrix"]) == 0
    printed = json.loads(capsys.readouterr().out)
    # Every [tool.slimfreeze.profiles.*] table of pyproject.toml, read here without the config reader.
    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["slimfreeze"]["profiles"]
    assert sorted(job["profile"] for job in printed["include"]) == sorted(shipped) and len(shipped) >= 16


def test_matrix_command_rejects_an_unknown_profile(capsys):
    assert main(["matrix", "--profile", "mni"]) == 2
    assert "unknown profile 'mni'" in capsys.readouterr().err


def test_table_rows_show_the_ratio_to_the_same_runs_source_and_the_failure_reason():
    ok = record("min", 3_000_000, startup_ms=60.0, pss_kb_total=45000, source={"startup_ms": 20.0, "pss_kb_total": 30000})
    failed = record("nuitka-min", None, ok=False, error="smoke test failed\n- hello: exit 1")
    rows = table_rows(sweep_of([ok, failed]))
    assert rows[0][1] == "source"
    assert rows[1][1] == "min" and rows[1][3] == "3,000,000" and "(×3.00)" in rows[1][7] and "(×1.50)" in rows[1][9]
    assert rows[2][1:3] == ["nuitka-min", "FAILED"] and rows[2][-1] == "smoke test failed"


# ---- --collect on runner folders ----

def runner_folder(folder: Path, sweep: dict, profiles: dict[str, str]) -> None:
    folder.mkdir(parents=True)
    (folder / SWEEP_NAME).write_text(json.dumps(sweep))
    for name, marker in profiles.items():
        (folder / name).mkdir()
        (folder / name / "report.json").write_text(json.dumps({"marker": marker}))
        (folder / name / "index.html").write_text(f"<p>{marker}</p>")


def test_collect_merges_two_runner_folders_into_one_size_reports(tmp_path):
    downloads = tmp_path / "runners"
    runner_folder(downloads / "size-reports-min", sweep_of([record("min", 300, run_id="a")], run_id="a"),
                  {"min": "from-a"})
    runner_folder(downloads / "size-reports-onedir-min",
                  sweep_of([record("onedir-min", 200, run_id="b"), record("nuitka-min", None, ok=False, run_id="b")],
                           run_id="b", created="2026-01-01T00:09:00Z"),
                  {"onedir-min": "from-b"})
    reports = tmp_path / "size_reports"
    (reports / "min").mkdir(parents=True)
    (reports / "min" / "report.json").write_text('{"marker": "stale"}')

    merged = collect(downloads, reports)

    on_disk = json.loads((reports / SWEEP_NAME).read_text())
    assert on_disk == merged
    assert [(r["profile"], r["rank"]) for r in on_disk["profiles"]] == [
        ("onedir-min", 1), ("min", 2), ("nuitka-min", None)]
    assert json.loads((reports / "min" / "report.json").read_text()) == {"marker": "from-a"}
    assert json.loads((reports / "onedir-min" / "report.json").read_text()) == {"marker": "from-b"}
    assert (reports / "index.html").is_file()  # the comparison page was rewritten
    assert not [p for p in reports.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_collect_command_exits_non_zero_when_a_variant_failed(tmp_path, capsys):
    downloads = tmp_path / "runners"
    runner_folder(downloads / "one", sweep_of([record("min", 300), record("default", None, ok=False,
                                                                          error="budget exceeded")]), {"min": "m"})
    code = main(["sweep", "--collect", str(downloads), "--reports", str(tmp_path / "out"), "--project", str(ROOT)])
    assert code == 1
    assert "profile 'default' failed: budget exceeded" in capsys.readouterr().err
    assert (tmp_path / "out" / SWEEP_NAME).is_file()


def test_collect_without_any_sweep_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="no sweep.json found"):
        collect(tmp_path / "empty", tmp_path / "size_reports")


def test_collect_rejects_an_unknown_schema_and_writes_nothing(tmp_path):
    runner_folder(tmp_path / "runners" / "r", {"schema": "other/9", "profiles": []}, {})
    with pytest.raises(ArtifactError, match="unknown sweep schema 'other/9'"):
        collect(tmp_path / "runners", tmp_path / "size_reports")
    assert not (tmp_path / "size_reports" / SWEEP_NAME).exists()


@pytest.mark.parametrize("field, value", [
    ("rank", "first"), ("device_bytes", -5), ("startup_ms", [1]), ("ok", "yes"), ("tls", 1),
    ("source", "fast"), ("error", 3), ("build_seconds", float("nan")),
])
def test_collect_names_a_record_field_of_the_wrong_type_and_writes_nothing(tmp_path, capsys, field, value):
    sweep = sweep_of([record("min", 300)])
    sweep["profiles"][0][field] = value  # after make_sweep, which ranks
    runner_folder(tmp_path / "runners" / "r", sweep, {"min": "m"})
    code = main(["sweep", "--collect", str(tmp_path / "runners"), "--reports", str(tmp_path / "out"),
                 "--project", str(ROOT)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("slimfreeze: error:") == 1 and "Traceback" not in err
    assert f"profiles[0] (min): '{field}' must be" in err or (field == "ok" and "'ok' must be" in err)
    assert not (tmp_path / "out" / SWEEP_NAME).exists()


def test_collect_names_a_run_baseline_of_the_wrong_type(tmp_path):
    sweep = sweep_of([record("min", 300)])
    sweep["runs"][0]["source"] = {**sweep["runs"][0]["source"], "pss_kb_total": "a lot"}
    runner_folder(tmp_path / "runners" / "r", sweep, {"min": "m"})
    with pytest.raises(ArtifactError, match=r"runs\[0\]\.source: 'pss_kb_total' must be a number"):
        collect(tmp_path / "runners", tmp_path / "size_reports")


# ---- the HTML section (pure) ----

def test_sweep_section_is_ranked_escaped_and_marks_failed_rows_with_their_reason():
    ok = record("min", 3_000_000, backend="pyinstaller", layout="onefile", tls=False, multicall=True,
                image_format="squashfs xz", runtime="size")
    tricky = record("<b>x</b>", 100, backend="pyinstaller", layout="onedir")
    failed = record("nuitka-min", None, ok=False, error="smoke test failed:\n- hello: <script>alert(1)</script>")
    page = render_sweep_section(sweep_of([ok, failed, tricky]))
    assert page.startswith('<section class="sf-sweep"') and page.rstrip().endswith("</section>")
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    order = [page.index(f'data-profile="{name}"') for name in ("&lt;b&gt;x&lt;/b&gt;", "min", "nuitka-min")]
    assert order == sorted(order)
    failed_row = page[page.index('data-profile="nuitka-min"'):]
    failed_row = failed_row[:failed_row.index("</tr>")]
    assert 'class="sf-failed"' in page and "FAILED" in failed_row and "smoke test failed:" in failed_row
    assert "pyinstaller onefile multicall no-tls size runtime, squashfs xz image" in page
    assert page.count("<script>") == 1 and SCRIPT in page  # only the sorting script, nothing from the data


def test_the_index_pages_csp_allows_exactly_the_inline_script_it_holds(tmp_path):
    # What a browser checks: the sha256 of the text between <script> and </script> as the written
    # page holds it, against the hashes that page's own Content-Security-Policy lists.
    (tmp_path / SWEEP_NAME).write_text(json.dumps(sweep_of([record("min", 300)])))
    page = write_index(tmp_path).read_text()
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    allowed = re.search(r"script-src ([^;]*)", policy).group(1).split()
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode("utf-8")).digest()).decode()
    assert allowed == [f"'sha256-{digest}'"]


# ---- process memory (real /proc, through psutil) ----

def test_memory_of_this_process_matches_its_smaps_rollup():
    mine = measure.process_memory(os.getpid())
    assert mine.pid == os.getpid() and mine.ppid == os.getppid()
    assert 0 < mine.pss_kb <= mine.rss_kb
    # The kernel's own figure, read independently (it moves a little while we look).
    rollup = Path(f"/proc/{os.getpid()}/smaps_rollup").read_text()
    rss = next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Rss:"))
    assert abs(mine.rss_kb - rss) < max(1024, rss // 10)


def test_os_files_share_is_part_of_the_pss_and_named_by_path():
    mine = measure.process_memory(os.getpid())
    # This Python maps libc from /lib or /usr/lib: a share of its PSS, never all of it (its heap is not a file).
    assert 0 < mine.os_files_pss_kb < mine.pss_kb
    mapped = [("/usr/lib/x86_64-linux-gnu/libc.so.6", 300 * 1024), ("/lib/ld-linux.so.2", 4096), ("[heap]", 10**6),
              ("/work/main/dist/min/_internal/libpython3.11.so.1.0", 10**6), ("", 4096)]
    assert measure.os_files_pss(mapped) == 300 * 1024 + 4096


def test_tree_memory_counts_the_started_process_and_its_child():
    shell = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        # until the forked child has exec'd sleep (between fork and exec it is still named sh)
        while [c.name() for c in psutil.Process(shell.pid).children()] != ["sleep"]:
            assert time.monotonic() < deadline, "sh did not start its sleep"
            time.sleep(0.01)
        tree = measure.tree_memory(shell.pid)
        assert [p.pid for p in tree][0] == shell.pid and len(tree) == 2
        child = tree[1]
        assert child.ppid == shell.pid and child.name == "sleep"
        assert all(0 < p.pss_kb <= p.rss_kb for p in tree)
    finally:
        os.killpg(shell.pid, signal.SIGKILL)  # the sh and the sleep we started: their own group
        shell.wait()


def test_tree_memory_of_an_ended_process_is_a_measure_error():
    gone = subprocess.Popen(["true"])
    gone.wait()
    with pytest.raises(measure.MeasureError, match="ended"):
        measure.tree_memory(gone.pid)


def test_folder_bytes_counts_regular_files_not_symlinks(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 100)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"y" * 23)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert measure.folder_bytes(tmp_path) == 123
    assert measure.folder_bytes(tmp_path / "missing") == 0


def test_commands_in_help_reads_the_apps_command_list():
    text = "usage: x\n\ncommands:\n  control    answer\n  run        supervise\n\noptions:\n  -h  help\n"
    assert measure.commands_in_help(text) == {"control", "run"}


# ---- integration: a real built artifact, a real broker ----

@pytest.mark.integration
def test_an_artifact_for_another_architecture_is_sized_and_marked_emulated_not_timed(built, tmp_path):
    # The real min artifact, its manifest saying another architecture: were it measured, it would
    # run here (it is x86_64 really) and give figures; a foreign target gives sizes only.
    foreign = "armv7" if platform.machine() != "armv7l" else "aarch64"
    dist_dir = tmp_path / "min"
    shutil.copytree(built("min").dist_dir, dist_dir, symlinks=True)
    manifest = json.loads((dist_dir / "manifest.json").read_text())
    manifest["target"] = manifest["resolved_profile"]["target"] = foreign
    (dist_dir / "manifest.json").write_text(json.dumps(manifest))
    rec = measure_dist(dist_dir, APP, settings=MeasureSettings(runs=1, workers=1))
    assert rec["ok"] is True and rec["emulated"] is True and rec["target"] == foreign
    assert rec["device_bytes"] == manifest["total_bytes"]
    assert all(rec[figure] is None for figure in FIGURES)
    assert foreign in rec["note"] and foreign in strategy(rec)


@pytest.mark.integration
def test_measure_dist_of_min_reads_real_startup_memory_and_unpacking(built):
    result = built("min")
    manifest = json.loads((result.dist_dir / "manifest.json").read_text())
    rec = measure_dist(result.dist_dir, APP, settings=MeasureSettings(runs=3, workers=3), build_seconds=result.seconds,
                       baseline_root=ROOT)
    assert rec["ok"] is True and rec["profile"] == "min"
    on_disk = sum(p.stat().st_size for p in result.dist_dir.rglob("*")
                  if p.is_file() and not p.is_symlink() and p.name != "manifest.json")
    assert rec["device_bytes"] == rec["artifact_bytes"] == manifest["total_bytes"] == on_disk
    assert rec["startup_ms"] > 0 and rec["first_ack_ms"] > 0
    assert 0 < rec["pss_kb_total"] <= rec["rss_kb_total"]
    # a onefile: every worker is a starter plus the child it forks, and each start unpacks files
    assert rec["worker_processes"] == 2 * 3
    assert rec["unpack_bytes"] > 0
    assert (rec["backend"], rec["layout"], rec["tls"], rec["multicall"]) == ("pyinstaller", "onefile", False, True)
    # the source measured beside it: one python per worker, nothing unpacked
    baseline = rec["source"]
    assert baseline["startup_ms"] > 0 and baseline["first_ack_ms"] > 0 and baseline["pss_kb_total"] > 0
    assert baseline["worker_processes"] == 3 and baseline["unpack_bytes"] == 0


@pytest.mark.integration
def test_sweep_without_building_ranks_min_and_lists_a_missing_profile_as_failed(built, tmp_path, capsys):
    result = built("min")
    dist = tmp_path / "dist"
    shutil.copytree(result.dist_dir, dist / "min", symlinks=True)
    reports = tmp_path / "size_reports"
    code = main(["sweep", "--no-build", "--profile", "min", "--profile", "onedir-min", "--runs", "1",
                 "--project", str(ROOT), "--dist", str(dist), "--reports", str(reports), "--work", str(tmp_path / "w")])
    assert code == 1  # onedir-min is not in this dist folder
    sweep = json.loads((reports / SWEEP_NAME).read_text())
    # What the sweep wrote, its own index page reads: the ranking is there, not an error.
    page = (reports / "index.html").read_text()
    assert "cannot be read" not in page and 'class="sf-sweep"' in page
    assert f"{result.total_bytes:,}" in page
    first, second = sweep["profiles"]
    assert (first["profile"], first["ok"], first["rank"]) == ("min", True, 1)
    assert first["device_bytes"] == result.total_bytes
    assert (second["profile"], second["ok"], second["rank"]) == ("onedir-min", False, None)
    assert "not built" in second["error"]
    source = sweep["source"]
    assert source["ok"] is True and source["startup_ms"] > 0 and source["pss_kb_total"] > 0
    assert source["worker_processes"] == 3  # from source: one python per worker
    assert first["source"]["worker_processes"] == 3  # the source measured beside min
    assert second["source"] == {k: source[k] for k in second["source"]}  # not measured: the run's baseline
    assert "onedir-min" in capsys.readouterr().err


@pytest.mark.parametrize("folder", [".hidden", "-x", "a b"])
def test_collect_refuses_a_report_folder_whose_name_is_not_a_plain_name(tmp_path, folder):
    runner_folder(tmp_path / "runners" / "r", sweep_of([record("min", 300)]), {"min": "m", folder: "x"})
    with pytest.raises(ConfigError, match="not a plain name"):
        collect(tmp_path / "runners", tmp_path / "size_reports")
    assert not (tmp_path / "size_reports").exists()  # checked before anything was copied


def test_collect_refuses_a_report_folder_that_is_a_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "report.json").write_text('{"marker": "not the runner\'s"}')
    runner_folder(tmp_path / "runners" / "r", sweep_of([record("min", 300)]), {})
    (tmp_path / "runners" / "r" / "min").symlink_to(outside)
    with pytest.raises(ArtifactError, match="is a link"):
        collect(tmp_path / "runners", tmp_path / "size_reports")
    assert not (tmp_path / "size_reports" / "min").exists()


def test_collect_of_unreadable_runner_files_is_one_line(tmp_path):
    from processes import without_dac_override

    runner_folder(tmp_path / "runners" / "r", sweep_of([record("min", 300)]), {"min": "m"})
    for unreadable in (tmp_path / "runners" / "r" / "min" / "report.json", tmp_path / "runners" / "r" / SWEEP_NAME):
        unreadable.chmod(0)
        ran = subprocess.run([*without_dac_override(), sys.executable, "build.py", "sweep", "--collect",
                              str(tmp_path / "runners"), "--reports", str(tmp_path / "out")],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        unreadable.chmod(0o644)
        assert ran.returncode == 1 and "Traceback" not in ran.stderr, ran.stderr
        assert ran.stderr.count("slimfreeze: error:") == 1 and "Permission denied" in ran.stderr
