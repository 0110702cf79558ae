"""Bad input never gives a traceback or a hang: mutated real artifacts and mutated report.json,
sweep.json and manifest.json fed to `bloat`, `bloat --diff`, `sweep --collect` and `flash --verify`.

The artifacts are real: a small program frozen once per session by PyInstaller (onefile and onedir),
its manifest written by build.manifest, flashed onto a device folder by `flash`, its reports and
sweep written by slimfreeze's own writers. Each case mutates one copy (truncated, bytes flipped,
ranges or whole ELF sections zeroed, JSON values replaced or removed) and runs the command through
build.cli.main in this process with its output captured. Allowed outcomes: exit 0 with a result on
stdout, or a non-zero exit with a `slimfreeze: error:` line (exactly one when nothing else was
printed). A traceback or a case that runs past CASE_TIMEOUT fails the test, and Hypothesis shrinks
it to the smallest mutation that does it.

Bounded for CI (a fixed number of derandomized examples, no example database); set
SLIMFREEZE_FUZZ_SCALE=10 for a longer local run. Run with -s to see how many cases ran.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from build import proc
from build.analysis import analyse
from build.analysis.pyinstaller_archive import read_carchive
from build.cli import main
from build.manifest import MANIFEST_NAME, build_manifest, write_manifest
from build.report import jsonio
from build.sweep.records import REPORT_NAME, SWEEP_NAME, empty_record, make_sweep

ROOT = Path(__file__).resolve().parents[1]
SCALE = float(os.environ.get("SLIMFREEZE_FUZZ_SCALE", "1"))
CASE_TIMEOUT = 60.0  # seconds; the slowest honest case (analysing a 40 MB folder) takes about 1 s
PROGRAM = "import json, sys\nprint(json.dumps({'hello': sys.argv[1:]}))\n"
PROFILE = "tiny"

STATS: dict[str, int] = {}


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


# ---- real artifacts, made once ----

@dataclass(frozen=True)
class Real:
    onefile: Path           # a PyInstaller onefile executable
    dist_root: Path         # holds dist_root/tiny: a onedir build with its manifest.json
    report: Path            # report.json of the onefile, written by slimfreeze
    report_other: Path      # report.json of the onedir folder
    runners: Path           # two runners' size_reports/ (sweep.json + tiny/report.json each)
    device: Path            # a device root with dist/tiny flashed onto it

    @property
    def dist(self) -> Path:
        return self.dist_root / PROFILE


def _freeze(folder: Path, layout: str) -> Path:
    script = folder / "tiny.py"
    script.write_text(PROGRAM)
    proc.run([sys.executable, "-m", "PyInstaller", f"--{layout}", "--noconfirm", "--log-level", "WARN",
              "--name", PROFILE, "--distpath", folder / f"dist-{layout}", "--workpath", folder / f"work-{layout}",
              "--specpath", folder / f"spec-{layout}", script], log=folder / "pyinstaller.log", cwd=folder, timeout=900)
    return folder / f"dist-{layout}" / PROFILE


def _runner(folder: Path, report: Path, run_id: str, created: str, size: int) -> None:
    (folder / PROFILE).mkdir(parents=True)
    shutil.copy(report, folder / PROFILE / REPORT_NAME)
    record = empty_record(PROFILE, ok=True, device_bytes=size, artifact_bytes=size, run_id=run_id,
                          build_seconds=12.5, startup_ms=40.0, first_ack_ms=120.0, pss_kb_total=9000,
                          rss_kb_total=30000, unpack_bytes=0, worker_processes=3, backend="pyinstaller",
                          layout="onefile", tls=False, multicall=True)
    source = {"profile": "source", "ok": True, "error": None, "startup_ms": 20.0, "first_ack_ms": 100.0,
              "pss_kb_total": 30000, "rss_kb_total": 60000, "unpack_bytes": 0, "worker_processes": 3}
    sweep = make_sweep([record], source=source, settings={"runs": 3, "workers": 2, "worker_command": "control"},
                       run_id=run_id, created=created)
    (folder / SWEEP_NAME).write_text(json.dumps(sweep, indent=2))


@pytest.fixture(scope="session")
def real(tmp_path_factory: pytest.TempPathFactory) -> Real:
    folder = tmp_path_factory.mktemp("fuzz-artifacts")
    onefile = _freeze(folder, "onefile")
    onedir = _freeze(folder, "onedir")
    dist_root = folder / "dist"
    dist = dist_root / PROFILE
    shutil.copytree(onedir, dist, symlinks=True)
    profile = {"name": PROFILE, "backend": "pyinstaller", "layout": "onedir", "multicall": False}
    write_manifest(dist, build_manifest(folder=dist, profile=profile, tools={"pyinstaller": "test"},
                                        commands={"hello": PROFILE}, executables=[PROFILE],
                                        smoke={"passed": True, "checks": []}, build_seconds=1.0, commit=None))
    report = folder / "report.json"
    report.write_text(jsonio.dumps(analyse(onefile)))
    report_other = folder / "report-onedir.json"
    report_other.write_text(jsonio.dumps(analyse(dist)))
    runners = folder / "runners"
    _runner(runners / "a" / "size_reports", report, "run-a", "2026-01-01T00:00:00Z", onefile.stat().st_size)
    _runner(runners / "b" / "size_reports", report_other, "run-b", "2026-01-02T00:00:00Z", 1000)
    device = folder / "device"
    device.mkdir()
    outcome = run_cli(["flash", "--profile", PROFILE, "--dist", str(dist_root), "--target", str(device), "--no-run"])
    assert outcome.code == 0, outcome.describe()
    for path, argv in ((onefile, ["bloat", str(onefile)]), (dist, ["bloat", str(dist)]),
                       (device, ["flash", "--verify", "--no-run", "--target", str(device)]),
                       (runners, ["sweep", "--collect", str(runners), "--project", str(ROOT),
                                  "--reports", str(folder / "reports")])):
        outcome = run_cli(argv)  # unmutated, each works: the mutations below are what breaks it
        assert outcome.code == 0 and outcome.out, f"{path}: {outcome.describe()}"
    return Real(onefile=onefile, dist_root=dist_root, report=report, report_other=report_other, runners=runners,
                device=device)


@pytest.fixture(scope="module", autouse=True)
def print_stats() -> Iterator[None]:
    yield
    total = sum(v for k, v in STATS.items() if k not in ("tracebacks", "internal errors"))
    print(f"\nfuzz: {total} cases run, {STATS.get('tracebacks', 0)} tracebacks; {dict(sorted(STATS.items()))}")


# ---- running a command ----

class Hang(BaseException):
    """A case ran past CASE_TIMEOUT (BaseException: nothing in slimfreeze catches it)."""


@dataclass(frozen=True)
class Outcome:
    argv: list[str]
    code: int | None
    out: str
    err: str
    crash: str | None  # the traceback, if main() raised

    def describe(self) -> str:
        return (f"{self.argv}: exit {self.code}\n--- stdout ---\n{self.out[-2000:]}\n--- stderr ---\n"
                f"{self.err[-3000:]}" + (f"\n--- traceback ---\n{self.crash}" if self.crash else ""))


def run_cli(argv: list[str]) -> Outcome:
    def timeout(signum: int, frame: object) -> None:
        raise Hang(f"{argv} ran longer than {CASE_TIMEOUT} s")

    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, timeout)
    signal.setitimer(signal.ITIMER_REAL, CASE_TIMEOUT)
    crash, code = None, None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exit_:  # argparse's usage errors
                code = exit_.code if isinstance(exit_.code, int) else 1
    except Hang:
        crash = f"hang: {argv} ran longer than {CASE_TIMEOUT} s"
    except Exception:  # noqa: BLE001 -- exactly what this test looks for
        crash = traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return Outcome(argv=argv, code=code, out=out.getvalue(), err=err.getvalue(), crash=crash)


def check(outcome: Outcome, kind: str) -> None:
    """A result (exit 0, something on stdout) or a clear error; never a traceback or a hang."""
    STATS[kind] = STATS.get(kind, 0) + 1
    if outcome.crash or "Traceback (most recent call last)" in outcome.err:
        STATS["tracebacks"] = STATS.get("tracebacks", 0) + 1
        pytest.fail(f"traceback or hang: {outcome.describe()}", pytrace=False)
    errors = [line for line in outcome.err.splitlines() if line.startswith("slimfreeze: error:")]
    if any("internal error" in line for line in errors):  # the analyser's own checks caught a bug
        STATS["internal errors"] = STATS.get("internal errors", 0) + 1
        pytest.fail(f"internal error: {outcome.describe()}", pytrace=False)
    if outcome.code == 0:
        assert outcome.out.strip(), f"exit 0 without a result: {outcome.describe()}"
        return
    assert outcome.code not in (None, 0)
    if outcome.code == 2 and "usage:" in outcome.err:
        return  # argparse's own one-line usage error
    assert errors, f"non-zero exit without a 'slimfreeze: error:' line: {outcome.describe()}"
    if not outcome.out.strip():
        assert len(errors) == 1, f"more than one error line: {outcome.describe()}"


# ---- mutations ----

def elf_ranges(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each ELF section with file contents, the headers and the PyInstaller
    archive's parts: the places whose damage readers must survive."""
    ranges = [(0, 64)]
    with contextlib.suppress(Exception):
        elf = ELFFile(io.BytesIO(data))
        ranges.append((elf["e_phoff"], elf["e_phentsize"] * elf["e_phnum"]))
        ranges.append((elf["e_shoff"], elf["e_shentsize"] * elf["e_shnum"]))
        ranges += [(s["sh_offset"], s["sh_size"]) for s in elf.iter_sections() if s["sh_type"] != "SHT_NOBITS"]
    return [(start, size) for start, size in ranges if 0 <= start < len(data) and size > 0]


def archive_points(path: Path, size: int) -> list[int]:
    archive = read_carchive(path, size)
    if archive is None:
        return []
    toc = archive.start + archive.toc_offset
    points = [archive.start, toc, toc + 1, archive.end - 1, archive.end - 24, archive.end - 88]
    points += [archive.start + e.offset for e in archive.entries[:40]]
    return [p for p in points if 0 <= p < size]


@st.composite
def byte_mutation(draw: st.DrawFn, data: bytes, ranges: list[tuple[int, int]],
                  points: list[int]) -> Callable[[bytearray], bytearray]:
    size = len(data)
    near = st.one_of(st.integers(0, size - 1),
                     st.builds(lambda p, d: min(size - 1, max(0, p + d)), st.sampled_from(points or [0]),
                               st.integers(-16, 16)),
                     st.integers(max(0, size - 4096), size - 1))
    kind = draw(st.sampled_from(["truncate", "flip", "zero", "section"]))
    if kind == "truncate":
        at = draw(near)
        return lambda b: b[:at]
    if kind == "flip":
        flips = draw(st.lists(st.tuples(near, st.integers(1, 255)), min_size=1, max_size=8))

        def flip(b: bytearray) -> bytearray:
            for at, mask in flips:
                b[at] ^= mask
            return b
        return flip
    if kind == "zero":
        at, length = draw(near), draw(st.integers(1, 4096))
    else:
        at, length = draw(st.sampled_from(ranges))

    def zero(b: bytearray) -> bytearray:
        end = min(len(b), at + length)
        b[at:end] = bytes(end - at)
        return b
    return zero


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.sampled_from([0, -1, 2**63]),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                        st.sampled_from(["..", "/etc/passwd", "a/b", "../x", "", "-x", PROFILE, "min"]))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                        max_leaves=6)


def json_paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += json_paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc[:12]):
            found += json_paths(value, (*prefix, index))
    return found


@st.composite
def json_mutation(draw: st.DrawFn, text: str) -> str:
    """A JSON text with one to three changes: a value replaced or removed, or the text itself cut
    or damaged."""
    doc = json.loads(text)
    if draw(st.integers(0, 9)) == 0:  # damage the text itself
        encoded = bytearray(text.encode())
        if draw(st.booleans()):
            return encoded[:draw(st.integers(0, len(encoded) - 1))].decode(errors="replace")
        at = draw(st.integers(0, len(encoded) - 1))
        encoded[at] ^= draw(st.integers(1, 127))
        return encoded.decode(errors="replace")
    for _ in range(draw(st.integers(1, 3))):
        paths = json_paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            doc = draw(json_values())
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, (dict, list)):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values())
    return json.dumps(doc)


def write_mutated(path: Path, mutate: Callable[[bytearray], bytearray]) -> None:
    """Replace `path` (possibly a hard link shared with the original) by a mutated copy."""
    data = mutate(bytearray(path.read_bytes()))
    mode = path.stat().st_mode
    path.unlink()
    path.write_bytes(bytes(data))
    os.chmod(path, mode)


@contextlib.contextmanager
def linked_copy(source: Path) -> Iterator[Path]:
    """A copy of a folder tree made of hard links (cheap); write_mutated unlinks before writing."""
    with tempfile.TemporaryDirectory(prefix="slimfreeze-fuzz-") as tmp:
        copy = Path(tmp) / source.name
        shutil.copytree(source, copy, symlinks=True, copy_function=os.link)
        yield copy


# ---- the properties ----

@pytest.fixture(scope="module")
def onefile_shape(real: Real) -> tuple[bytes, list[tuple[int, int]], list[int]]:
    data = real.onefile.read_bytes()
    return data, elf_ranges(data), archive_points(real.onefile, len(data))


@given(data=st.data())
@fuzz_settings(40)
def test_bloat_survives_a_damaged_executable(real: Real, onefile_shape, data: st.DataObject) -> None:
    original, ranges, points = onefile_shape
    mutate = data.draw(byte_mutation(original, ranges, points))
    with tempfile.TemporaryDirectory(prefix="slimfreeze-fuzz-") as tmp:
        damaged = Path(tmp) / "tiny"
        damaged.write_bytes(bytes(mutate(bytearray(original))))
        check(run_cli(["bloat", str(damaged), "-n", "5"]), "bloat executable")


@given(data=st.data())
@fuzz_settings(25)
def test_bloat_survives_a_damaged_dist_folder(real: Real, data: st.DataObject) -> None:
    files = sorted(p.relative_to(real.dist).as_posix() for p in real.dist.rglob("*")
                   if p.is_file() and not p.is_symlink() and p.name != MANIFEST_NAME)
    # The executable, the runtime library, base_library.zip and others, or the manifest.
    rel = data.draw(st.one_of(st.sampled_from([f for f in files if "/" not in f or "libpython" in f
                                                or f.endswith(".zip")]), st.sampled_from(files),
                              st.just(MANIFEST_NAME)))
    with linked_copy(real.dist) as dist:
        target = dist / rel
        if rel == MANIFEST_NAME:
            text = data.draw(json_mutation(target.read_text()))
            write_mutated(target, lambda _: bytearray(text.encode()))
        else:
            original = target.read_bytes()
            write_mutated(target, data.draw(byte_mutation(original, elf_ranges(original), [])))
        if data.draw(st.booleans()):
            (dist / MANIFEST_NAME).unlink()  # a plain folder: every file is read as found
        check(run_cli(["bloat", str(dist), "-n", "5"]), "bloat folder")


@given(data=st.data())
@fuzz_settings(60)
def test_bloat_and_diff_survive_a_damaged_report_json(real: Real, data: st.DataObject) -> None:
    text = data.draw(json_mutation(real.report.read_text()))
    with tempfile.TemporaryDirectory(prefix="slimfreeze-fuzz-") as tmp:
        damaged = Path(tmp) / "report.json"
        damaged.write_text(text)
        if data.draw(st.booleans()):
            check(run_cli(["bloat", str(damaged), "-n", "5", *data.draw(st.sampled_from([[], ["--crates"], ["--json"]]))]),
                  "bloat report.json")
        else:
            old, new = data.draw(st.sampled_from([(damaged, real.report_other), (real.report_other, damaged)]))
            check(run_cli(["bloat", "--diff", str(old), str(new), "-n", "5"]), "bloat --diff")


@given(data=st.data())
@fuzz_settings(10)
def test_diff_survives_a_damaged_executable(real: Real, onefile_shape, data: st.DataObject) -> None:
    original, ranges, points = onefile_shape
    mutate = data.draw(byte_mutation(original, ranges, points))
    with tempfile.TemporaryDirectory(prefix="slimfreeze-fuzz-") as tmp:
        damaged = Path(tmp) / "tiny"
        damaged.write_bytes(bytes(mutate(bytearray(original))))
        check(run_cli(["bloat", "--diff", str(real.report), str(damaged), "-n", "5"]), "bloat --diff executable")


@given(data=st.data())
@fuzz_settings(60)
def test_sweep_collect_survives_damaged_runner_files(real: Real, data: st.DataObject) -> None:
    with linked_copy(real.runners) as runners, tempfile.TemporaryDirectory(prefix="slimfreeze-fuzz-") as reports:
        candidates = sorted(runners.rglob(SWEEP_NAME)) + sorted(runners.rglob(REPORT_NAME))
        for target in data.draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=2, unique=True)):
            text = data.draw(json_mutation(target.read_text()))
            write_mutated(target, lambda _, text=text: bytearray(text.encode()))
        check(run_cli(["sweep", "--collect", str(runners), "--project", str(ROOT), "--reports", reports]),
              "sweep --collect")


@given(data=st.data())
@fuzz_settings(40)
def test_flash_verify_survives_a_damaged_device(real: Real, data: st.DataObject) -> None:
    with linked_copy(real.device) as device:
        root = device / "slimfreeze"
        slot = next(p for p in (root / "slots").iterdir())
        kind = data.draw(st.sampled_from(["manifest", "file", "link", "current"]))
        if kind == "manifest":
            text = data.draw(json_mutation((slot / MANIFEST_NAME).read_text()))
            write_mutated(slot / MANIFEST_NAME, lambda _: bytearray(text.encode()))
        elif kind == "file":
            files = sorted(p for p in slot.rglob("*") if p.is_file() and not p.is_symlink())
            target = data.draw(st.sampled_from(files))
            original = target.read_bytes()
            write_mutated(target, data.draw(byte_mutation(original, elf_ranges(original), [])))
        elif kind == "link":
            links = sorted(p for p in slot.rglob("*") if p.is_symlink()) or [slot / PROFILE]
            link = data.draw(st.sampled_from(links))
            link.unlink()
            link.symlink_to(data.draw(st.sampled_from(["/etc/passwd", "../../..", "missing", "."])))
        else:
            (root / "current").unlink()
            (root / "current").symlink_to(data.draw(st.sampled_from(
                ["slots/../..", "/", "slots/.incoming-x", "slots/nothing", "slots", "", "x" * 300])) or "x")
        check(run_cli(["flash", "--verify", "--no-run", "--target", str(device)]), "flash --verify")
