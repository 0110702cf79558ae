"""Benchmark (issue 18, item 6): a target's size runtime beside the target root's own python3.11,
both run in the same emulator (proot + qemu), since speed ratios only count there.

    .venv/bin/python benchmarks/emulated_runtime.py [--target aarch64] [--tests test_frame ...]
        [--no-tests] [--benchmarks richards ...] [--no-speed] [--processes 3] [--values 3] [--markdown]

Prints
- CPython's regression tests (a chosen subset of tests/test_runtime_cpython.py's TESTS, from the
  source tree the runtime was compiled from) on each interpreter: cases run, failures, and for the
  size runtime which failures are not in the x86_64 list (EXPECTED_FAILURES) and which listed ones
  passed;
- pyperformance's subset (benchmarks/runtime.py's PYPERFORMANCE, run by pyperf inside the root with
  fewer processes and values than --fast: emulation is slow) on each, benchmark by benchmark in
  turns, with each one's ratio to the root's python3.11 and the geometric mean.
The runtime is the one min-<target> ships (cached; compiled first when missing). A benchmark, not a
test: it prints figures and asserts nothing about them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `build` is the source tree's package, never an installed one

from build import proc  # noqa: E402
from build.errors import SlimfreezeError  # noqa: E402
from build.project import Project  # noqa: E402
from build.runtime.cross import Cross  # noqa: E402
from build.runtime.sources import obtain_source  # noqa: E402
from build.runtime.toolchain import size_runtime  # noqa: E402
from build.targets.toolchain import target_root  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))  # the expected failures and the regrtest venv live with the CI test
from memory_startup import emit  # noqa: E402
from runtime import PYPERFORMANCE, speed_rows  # noqa: E402
from test_runtime_cpython import EXPECTED_FAILURES, TESTS, run_regrtest, venv_with_tests  # noqa: E402

ROOT_PYTHON = Path("/usr/bin/python3.11")  # inside the root: Debian's, the same source as the runtime
# TESTS but test_ssl (TLS-free min-<target>; natively it alone takes as long as the rest together).
DEFAULT_TESTS = tuple(t for t in TESTS if t != "test_ssl")
REFERENCE = "root's python3.11"
SLUG = {"size runtime": "size", REFERENCE: "root"}  # file names


def module_of(test_id: str) -> str:
    """The regrtest module a test id belongs to (ctypes' tests run as test_ctypes) (pure)."""
    first = test_id.split(".")[0]
    return "test_ctypes" if first == "ctypes" else first


def test_rows(results: dict[str, tuple[dict[str, str], int, float]], modules: tuple[str, ...]) -> list[list[str]]:
    """Per interpreter: cases, failures, and against the x86_64 list (pure)."""
    listed = {k for k in EXPECTED_FAILURES if module_of(k) in modules}
    reference_failed = set(results[REFERENCE][0]) if REFERENCE in results else set()
    rows = []
    for label, (failed, run, seconds) in results.items():
        new = sorted(set(failed) - listed)
        emulation = [k for k in new if k in reference_failed]  # fails on Debian's too, in the same emulator
        rows.append([label, f"{run:,}", f"{len(failed):,}", f"{seconds:,.0f}",
                     f"{len(new)} ({len(emulation)} also on {REFERENCE})" if label != REFERENCE else "-",
                     ", ".join(sorted(listed - set(failed))) or "none" if label != REFERENCE else "-"])
    return rows


def guest_venv(python: Path, folder: Path, launch: tuple[str, ...], log: Path) -> Path:
    """A venv of the guest's `python` with pyperf (pure Python, copied: the host's venv is not in
    the root) in its site-packages."""
    import pyperf

    proc.run([*launch, python, "-m", "venv", "--without-pip", folder], log=log, timeout=600)
    site = next(folder.glob("lib/python3.*/site-packages"))
    shutil.copytree(Path(pyperf.__file__).parent, site / "pyperf")
    return folder / "bin" / "python"


def pyperformance_means(pythons: dict[str, Path], names: tuple[str, ...], folder: Path, launch: tuple[str, ...],
                        pyperf_opts: list[str], log: Path) -> dict[str, dict[str, float]]:
    """Mean seconds of each benchmark's results on each interpreter, benchmark by benchmark in turns
    (the load of shared cores changes over minutes). pyperformance's own scripts and options, run
    by pyperf in the guest (pyperformance itself would make venvs with pip there)."""
    import pyperf
    from pyperformance._manifest import load_manifest

    known = {b.name: b for b in load_manifest(None).benchmarks}
    scripts = folder / "benchmarks"
    means: dict[str, dict[str, float]] = {label: {} for label in pythons}
    for name in names:
        bench = known[name]
        here = scripts / Path(bench.runscript).parent.name
        if not here.exists():  # the root sees the project's folder, not the host venv's
            shutil.copytree(Path(bench.runscript).parent, here, ignore=shutil.ignore_patterns("__pycache__"))
        for label, python in pythons.items():
            out = folder / f"{name}-{SLUG[label]}.json"
            out.unlink(missing_ok=True)
            print(f"pyperf {name} on {label} ...", file=sys.stderr)
            proc.run([*launch, python, "-u", here / Path(bench.runscript).name, *bench.extra_opts, *pyperf_opts,
                      "--output", out], log=log, cwd=folder, timeout=3600)
            means[label].update({b.get_name(): b.mean() for b in pyperf.BenchmarkSuite.load(str(out)).get_benchmarks()})
    return means


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="aarch64", choices=("aarch64", "armv7"))
    parser.add_argument("--tests", nargs="+", default=list(DEFAULT_TESTS), choices=TESTS, metavar="MODULE",
                        help=f"CPython test modules (default: {' '.join(DEFAULT_TESTS)})")
    parser.add_argument("--no-tests", action="store_true")
    parser.add_argument("--benchmarks", nargs="+", default=list(PYPERFORMANCE), choices=PYPERFORMANCE, metavar="NAME")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--processes", type=int, default=3, help="pyperf worker processes (default 3)")
    parser.add_argument("--values", type=int, default=3, help="values per process (default 3)")
    parser.add_argument("--warmups", type=int, default=1, help="warm-up values per process (default 1)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    project = Project.at(ROOT)
    folder = project.work_root / f"emulated-{args.target}"
    try:
        if folder.exists():
            from build.paths import remove_tree

            remove_tree(folder, project.output_roots)
        folder.mkdir(parents=True)
        log = folder / "emulated.log"
        made = target_root(args.target, project, log)
        cross = Cross(triplet=made.arch.triplet, sysroot=made.made.path, sysroot_key=made.made.spec.key,
                      run=made.launcher())
        runtime = size_runtime(project, log, target=args.target, cross=cross)
        launch = made.launcher()
        started = time.monotonic()
        if not args.no_tests:
            tree = obtain_source(project, log).tree
            cc = (cross.compiler, f"--sysroot={made.made.path}")
            interpreters = {"size runtime": (runtime.prefix, None),
                            REFERENCE: (ROOT_PYTHON.parent.parent, made.made.path / "usr" / "include" / "python3.11")}
            results = {}
            for label, (prefix, headers) in interpreters.items():
                where = folder / f"tests-{SLUG[label]}"
                where.mkdir()
                print(f"CPython tests {' '.join(args.tests)} on {label} ...", file=sys.stderr)
                python = venv_with_tests(prefix, tree, where, where / "regrtest.log", launch=launch, cc=cc,
                                         headers=headers)
                results[label] = run_regrtest(python, args.tests, where, where / "regrtest.log", launch=launch,
                                              timeout=3600)
            emit(f"CPython's tests on {args.target} under emulation ({len(args.tests)} modules: "
                 f"{' '.join(args.tests)})",
                 ["interpreter", "cases", "failed", "seconds", "failed, not in the x86_64 list",
                  "listed, passed"], test_rows(results, tuple(args.tests)), as_markdown=args.markdown,
                 numeric=("cases", "failed", "seconds"))
            for label, (failed, _, _) in results.items():
                for test_id, message in sorted(failed.items()):
                    if label == REFERENCE or test_id not in EXPECTED_FAILURES:
                        print(f"  {label}: {test_id}: {message}")
        if not args.no_speed:
            pythons = {label: guest_venv(python, folder / f"venv-{SLUG[label]}", launch, log)
                       for label, python in (("size runtime", runtime.python), (REFERENCE, ROOT_PYTHON))}
            opts = ["--processes", str(args.processes), "--values", str(args.values), "--warmups", str(args.warmups)]
            means = pyperformance_means(pythons, tuple(args.benchmarks), folder, launch, opts, log)
            emit(f"pyperformance on {args.target} under emulation ({' '.join(opts)}; mean per benchmark; x: against "
                 f"the {REFERENCE} in the same emulator)", ["benchmark", *means], speed_rows(means, REFERENCE),
                 as_markdown=args.markdown, numeric=tuple(means))
        print(f"{runtime.key} ({', '.join(runtime.flags.steps)}); {made.made.spec.name}; "
              f"{time.monotonic() - started:,.0f} s emulated")
    except (SlimfreezeError, AssertionError) as err:
        print(f"emulated_runtime: error: {str(err).splitlines()[0] if str(err) else type(err).__name__}",
              file=sys.stderr)
        return getattr(err, "return_code", 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
