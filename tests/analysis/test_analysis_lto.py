"""Units of a link-time optimised file: a tiny shared library built with gcc -flto -g from two C
files in a temporary folder, where every DWARF unit is `<artificial>`; each function's file comes
from the line table (addr2line). Plus the pure parts on small inputs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from build.analysis import dwarf, line_files, symbols
from build.analysis.debug_copies import native_breakdown

ALPHA = "".join(f"__attribute__((noinline)) int alpha{i}(int x) {{ int s = {i}; for (int j = 0; j < x; j++) "
                f"s = s * 31 + (j ^ {i}); return s; }}\n" for i in range(30))
BETA = "".join(f"__attribute__((noinline)) int beta{i}(int x) {{ int s = {i}; for (int j = 0; j < x; j++) "
               f"s = s * 17 + (j | {i}) * x; return s - {i}; }}\n" for i in range(20))


def _run(*argv: str, cwd: Path) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, timeout=120, start_new_session=True)


@pytest.fixture(scope="module")
def lto_lib(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not (shutil.which("gcc") and shutil.which("strip") and shutil.which("addr2line")):
        pytest.fail("gcc and binutils are needed (apt-get install gcc binutils)")
    root = tmp_path_factory.mktemp("lto")
    (root / "src").mkdir()
    (root / "src" / "alpha.c").write_text(ALPHA)
    (root / "src" / "beta.c").write_text(BETA)
    (root / "build").mkdir()  # out of tree, like the size runtime: sources beside the build folder
    _run("gcc", "-flto", "-g", "-O1", "-shared", "-fPIC", "-Wl,--build-id", "-o", "libtwo.so",
         "../src/alpha.c", "../src/beta.c", cwd=root / "build")
    (root / "shipped").mkdir()
    _run("strip", "-o", "../shipped/libtwo.so", "libtwo.so", cwd=root / "build")
    return {"unstripped": root / "build" / "libtwo.so", "stripped": root / "shipped" / "libtwo.so",
            "debug": root / "build"}


def _check(b: symbols.Breakdown | None) -> None:
    assert b is not None and b.units_from.startswith("DWARF line tables")
    units = {p.name: p.code for p in b.units}
    assert units.get("alpha.c", 0) > units.get("beta.c", 0) > 0, units
    assert units.get("<artificial>", 0) <= 64, units  # alignment between functions at most
    assert b.code_in_units >= 0.9 * b.code_bytes, (b.code_in_units, b.code_bytes)
    by_name = {p.name: p.unit for p in b.symbols}
    assert by_name["alpha3"] == "alpha.c" and by_name["beta7"] == "beta.c"


def test_every_unit_of_an_lto_build_is_artificial_and_functions_get_their_files(lto_lib: dict[str, Path]) -> None:
    data = lto_lib["unstripped"].read_bytes()
    assert {name for _, _, name in dwarf.dwarf_units(data)} == {"<artificial>"}  # what LTO leaves
    _check(native_breakdown(data, "libtwo.so"))  # own DWARF: addr2line runs on a temporary copy


def test_a_stripped_lto_build_gets_its_files_from_the_unstripped_copy(lto_lib: dict[str, Path]) -> None:
    data = lto_lib["stripped"].read_bytes()
    b = native_breakdown(data, "libtwo.so", search=(lto_lib["debug"],))
    assert b is not None and "same build-id" in b.source
    _check(b)


def test_parse_keeps_the_outermost_frame_and_drops_unknown() -> None:
    out = ("0x0000000000001000\n/s/Include/object.h:5\n/s/Objects/a.c:10\n"
           "0x0000000000001010\n??:0\n"
           "0x0000000000001020\n/s/build/<artificial>:?\n"
           "0x0000000000001030\n/s/Objects/b.c:3\n")
    files = line_files.parse(out)
    assert files == {0x1000: "/s/Objects/a.c", 0x1020: "/s/build/<artificial>", 0x1030: "/s/Objects/b.c"}
    # binutils names DWARF 5's file 1 by entry 0, the unit's <artificial>: the unit's file 1 instead.
    assert line_files.correct(files, [(0x1000, 0x1028, "/s/build/../src/Parser/pegen.c")]) == {
        0x1000: "/s/Objects/a.c", 0x1020: "/s/src/Parser/pegen.c", 0x1030: "/s/Objects/b.c"}
    assert line_files.correct(files, []) == {0x1000: "/s/Objects/a.c", 0x1030: "/s/Objects/b.c"}


def test_files_are_named_from_the_build_folder_or_the_sources_common_folder() -> None:
    files = {1: "/t/build/Python/deepfreeze.c", 2: "/t/src/Objects/a.c", 3: "/t/src/Python/b.c",
             4: "/usr/include/x86_64-linux-gnu/bits/stat.h"}
    assert line_files.relative(files, ("/t/build",)) == {
        1: "Python/deepfreeze.c", 2: "Objects/a.c", 3: "Python/b.c", 4: "/usr/include/x86_64-linux-gnu/bits/stat.h"}


def test_split_units_cuts_only_placeholder_units() -> None:
    units = [(0x100, 0x200, "<artificial>"), (0x200, 0x300, "c.c")]
    functions = [(0x100, 0x140), (0x150, 0x1a0), (0x1a0, 0x1c0), (0x200, 0x280)]
    files = {0x100: "a.c", 0x150: "b.c", 0x200: "x.c"}  # 0x1a0 has no file
    assert line_files.split_units(units, functions, files) == (
        (0x100, 0x140, "a.c"), (0x140, 0x150, "<artificial>"), (0x150, 0x1a0, "b.c"),
        (0x1a0, 0x200, "<artificial>"), (0x200, 0x300, "c.c"))
