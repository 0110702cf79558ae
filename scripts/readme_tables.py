"""Write README.md's measured table from the committed sweep (benchmarks/results/sweep.json).

    .venv/bin/python scripts/readme_tables.py [--sweep size_reports/sweep.json]   # write the table
    .venv/bin/python scripts/readme_tables.py --check                             # exit 1 if it drifted

With --sweep, that sweep (checked by sweep.json's reader) is first copied to
benchmarks/results/sweep.json, which is what the README and tests/test_readme.py then follow.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from build.errors import SlimfreezeError  # noqa: E402
from build.report.pages import write_atomic  # noqa: E402
from build.report.readme import MarkerError, with_table  # noqa: E402
from build.sweep.records import check_sweep  # noqa: E402

COMMITTED = Path("benchmarks/results/sweep.json")
README = Path("README.md")


def load(path: Path) -> dict:
    try:
        return check_sweep(json.loads(path.read_text(encoding="utf-8")), path)
    except (OSError, ValueError) as err:
        raise SlimfreezeError(f"{path}: cannot be read ({err})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=Path, help="a new sweep.json to commit first (size_reports/sweep.json)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if README.md differs")
    args = parser.parse_args(argv)
    try:
        if args.sweep:
            load(args.sweep)
            shutil.copyfile(args.sweep, ROOT / COMMITTED)
        text = (ROOT / README).read_text(encoding="utf-8")
        new = with_table(text, load(ROOT / COMMITTED), COMMITTED.as_posix())
    except (SlimfreezeError, MarkerError) as err:
        print(f"readme_tables: error: {err}", file=sys.stderr)
        return 2
    if args.check:
        if new != text:
            print(f"readme_tables: {README}'s measured table is not that of {COMMITTED}; run "
                  f"scripts/readme_tables.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        write_atomic(ROOT / README, new)
    print(f"{README}: measured table from {COMMITTED}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
