"""Benchmark: naming a native file's compilation units, read directly (build/analysis/dwarf.py's
_CuNames) against pyelftools (each unit's top DIE), on real unstripped libpythons. Why the direct
reader is kept: tests/analysis/test_analysis_symbols.py checks that both give the same names.

    .venv/bin/python benchmarks/dwarf_units.py [FILE ...]   # default: this Python's libpython

Prints one row a file: units, seconds each way (median of 5) and the ratio. Asserts nothing.
"""

from __future__ import annotations

import io
import statistics
import sys
import sysconfig
import time
from pathlib import Path

from elftools.elf.elffile import ELFFile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from build.analysis import dwarf  # noqa: E402


def timed(action, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    default = Path(sysconfig.get_config_var("LIBDIR") or "/") / (sysconfig.get_config_var("INSTSONAME") or "-")
    print("| file | units | direct s | pyelftools s | pyelftools / direct |\n|---|---:|---:|---:|---:|")
    for path in [Path(a) for a in argv] or [default]:
        data = path.read_bytes()

        def fresh():
            elf = ELFFile(io.BytesIO(data))
            info = elf.get_dwarf_info(relocate_dwarf_sections=False)
            return elf, info, sorted({e.info_offset for e in info.get_aranges().entries})

        _, _, offsets = fresh()

        def direct() -> None:
            elf, _, _ = fresh()
            reader = dwarf._CuNames(elf)
            [reader.name(o) for o in offsets]

        def library() -> None:
            _, info, _ = fresh()
            [dwarf._slow_cu_name(info, o) for o in offsets]

        base = timed(lambda: fresh())  # opening the file and reading .debug_aranges: both pay it
        a, b = timed(direct) - base, timed(library) - base
        print(f"| {path} | {len(offsets)} | {a:.3f} | {b:.3f} | ×{b / a:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
