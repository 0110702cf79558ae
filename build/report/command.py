"""`python build.py bloat`: where the bytes of a frozen artifact go, in cargo-bloat's spirit.

    bloat ARTIFACT [-n N] [--crates] [--filter REGEX] [--sort stored|raw] [--json] [--sections]
                   [--symbols [ROW] | --units [ROW]] [--html FILE]
                   [--site-packages DIR] [--python PATH] [--debug-file PATH]
    bloat --diff OLD NEW [-n N] [--crates | --symbols | --units] [--json]

ARTIFACT, OLD and NEW are each a frozen executable, a dist folder, or a report.json.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from build.analysis import analyse
from build.analysis.debug_copies import builder_dirs, python_search
from build.analysis.model import SizeReport
from build.analysis.native import pick_native, with_native
from build.analysis.ops import compile_filter, diff_native, diff_reports
from build.errors import ArtifactError, ConfigError, SlimfreezeError
from build.report import html, jsonio, table
from build.report.pages import write_atomic

# Native files broken down into functions for --json/--html and diffs (the largest ones).
NATIVE_FILES = 5


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bloat", help="show where the bytes of a frozen artifact go (cargo-bloat style)",
        description="Account for every byte of a frozen executable or dist folder: share of the file, stored "
                    "(on-disk) and raw (uncompressed) size, distribution, name. Rows add up to the size on disk.")
    parser.add_argument("artifact", nargs="?", type=Path,
                        help="a frozen executable, a dist folder (dist/<profile>, or just the profile's name) "
                             "or a report.json")
    parser.add_argument("-n", type=int, default=20, metavar="N", help="rows to show (0 = all; default 20)")
    parser.add_argument("--crates", action="store_true", help="one line per distribution")
    parser.add_argument("--filter", metavar="REGEX", help="only rows whose distribution is REGEX or whose name, "
                                                           "module or distribution matches it")
    parser.add_argument("--sort", choices=("stored", "raw"), default="stored", help="order by (default: stored)")
    parser.add_argument("--json", action="store_true", help="print the whole report (or diff) as JSON")
    parser.add_argument("--sections", action="store_true", help="show the ELF sections of libraries under them")
    parser.add_argument("--diff", nargs=2, type=Path, metavar=("OLD", "NEW"),
                        help="compare two artifacts, dist folders or reports")
    parser.add_argument("--symbols", nargs="?", const="", metavar="ROW",
                        help="the largest functions and objects of a native file (ROW, default the largest), "
                             "like cargo bloat")
    parser.add_argument("--units", nargs="?", const="", metavar="ROW",
                        help="the same grouped by compilation unit (source file from DWARF, object file, or "
                             "Python module for Nuitka's code)")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write the self-contained HTML page")
    parser.add_argument("--site-packages", type=Path, action="append", default=[], metavar="DIR",
                        help="name distributions from the metadata installed in DIR (repeatable)")
    parser.add_argument("--python", metavar="PATH",
                        help="name distributions from this interpreter's environment, and find unstripped "
                             "copies of its libpython and extension modules")
    parser.add_argument("--debug-file", type=Path, action="append", default=[], metavar="PATH",
                        help="an unstripped copy (or a folder of them, or a .build-id tree) matched by GNU "
                             "build-id; or Nuitka's NAME.build folder, whose objects name a stripped Nuitka "
                             "program's functions (found by itself next to NAME.dist / NAME.bin) (repeatable)")
    parser.set_defaults(handler=run)
    return parser


def load_any(path: Path, args: argparse.Namespace | None = None, *, native: str | None = None) -> SizeReport:
    """A report.json as it is, anything else analysed (with the breakdown of native rows when
    `native` is given: "" for the largest ones, else a row)."""

    if path.is_file():
        try:
            with path.open("rb") as stream:
                head = stream.read(64).lstrip()
        except OSError as err:
            raise ArtifactError(f"{path}: cannot read it ({err.strerror or err})") from None
        if head.startswith(b"{"):
            return jsonio.load(path)
    site = tuple(getattr(args, "site_packages", None) or ())
    python = getattr(args, "python", None)
    report = analyse(path, site_packages=site, python=python)
    if native is not None:
        project_root = Path(getattr(args, "project", None) or Path.cwd())
        search = (*python_search(getattr(args, "debug_file", None) or (), python),
                  *builder_dirs(report.manifest, project_root))
        # One file to show (the largest), several to keep (JSON, HTML) or to compare (--diff).
        showing = getattr(args, "symbols", None) is not None or getattr(args, "units", None) is not None
        limit = 1 if showing and not getattr(args, "diff", None) else NATIVE_FILES
        report = with_native(report, path, wanted=native or None, limit=limit, search=search)
    return report


def resolve(path: Path, args: argparse.Namespace) -> Path:
    """A bare profile name means that profile's dist folder (`bloat min` = `bloat dist/min`)."""
    if path.exists() or len(path.parts) != 1:
        return path
    dist_root = getattr(args, "dist", None) or (getattr(args, "project", None) or Path.cwd()) / "dist"
    candidate = Path(dist_root) / path
    return candidate if candidate.is_dir() else path


def check_paths(args: argparse.Namespace) -> None:
    """The paths given on the command line, checked where they enter: a clear line, not a
    traceback deep in the analysis or after it (--html into a folder, a missing --debug-file)."""
    for path in args.debug_file:
        try:
            path.stat()
        except OSError as err:
            raise ConfigError(f"--debug-file {path}: {err.strerror or err}") from None
    if args.html is not None and (args.html.is_dir() or not args.html.name):
        raise ConfigError(f"--html {args.html}: is a folder; give the page's file name, e.g. {args.html / 'bloat.html'}")


def run(args: argparse.Namespace) -> int:
    if args.n < 0:
        raise ConfigError("-n must be 0 (all) or a positive number of rows")
    check_paths(args)
    console = Console(highlight=False, soft_wrap=False, emoji=False,
                      width=None if sys.stdout.isatty() else 120)
    if args.symbols is not None and args.units is not None:
        raise ConfigError("bloat takes --symbols or --units, not both")
    wanted = args.symbols if args.symbols is not None else args.units
    if args.diff:
        if args.artifact is not None:
            raise ConfigError("bloat --diff takes exactly two paths: OLD NEW")
        if args.filter or args.html:
            raise ConfigError("bloat --diff does not take --filter or --html (they apply to one artifact)")
        old, new = (load_any(resolve(p, args), args, native=wanted) for p in args.diff)
        if wanted:  # a report.json carries several breakdowns: compare the one asked for on both sides
            old, new = (replace(r, native=pick_native(r, wanted)) for r in (old, new))
        if wanted is not None:
            diff = diff_native(old, new, "unit" if args.units is not None else "symbol")
        else:
            diff = diff_reports(old, new, "distribution" if args.crates else "name")
        if args.json:
            sys.stdout.write(jsonio.diff_dumps(diff))
        else:
            console.print(table.diff_table(diff, n=args.n))
        return 0
    if args.artifact is None:
        option = "--symbols" if args.symbols else "--units" if args.units else None
        hint = (f"; {option} took {wanted!r} as its ROW: name the artifact first (bloat {wanted} {option})"
                if option else "")
        raise ConfigError(f"bloat needs an artifact, a dist folder or a report.json (or --diff OLD NEW){hint}")
    if args.filter:
        compile_filter(args.filter)
    native = wanted if wanted is not None else ("" if args.json or args.html else None)
    report = load_any(resolve(args.artifact, args), args, native=native)
    if args.html:
        try:
            write_atomic(args.html, html.profile_page(report))
        except OSError as err:
            raise ArtifactError(f"--html {args.html}: cannot write it ({err.strerror or err})") from None
    if wanted is not None and not args.json:
        # A report.json carries the breakdowns it was written with: the row asked for, or the largest.
        natives = pick_native(report, wanted)[:1] if wanted else report.native[:1]
        if not natives:
            raise ArtifactError(f"{report.artifact}: no native file to break down")
        for n in natives:
            console.print(table.native_table(n, units=args.units is not None, n=args.n, pattern=args.filter))
        return 0
    if args.json:
        sys.stdout.write(jsonio.dumps(report))
    elif args.crates:
        console.print(table.crates_table(report, n=args.n, sort=args.sort, pattern=args.filter))
    else:
        console.print(table.rows_table(report, n=args.n, sort=args.sort, pattern=args.filter,
                                       sections=args.sections))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (`python -m build.report.command ...`), with the same error handling as build.py."""
    parser = argparse.ArgumentParser(prog="bloat")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["bloat", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.handler(args)
    except SlimfreezeError as err:
        print(f"slimfreeze: error: {err}", file=sys.stderr)
        return err.return_code
    except BrokenPipeError:
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
