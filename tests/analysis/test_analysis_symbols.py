"""Inside native files on small real inputs: a C file compiled with gcc -g in a temporary folder
(a real ELF with DWARF), stripped with the real `strip`; Nuitka's C names; bundled metadata."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from build import elfid
from build.analysis import dwarf, elf_sections, symbols
from build.analysis.debug_copies import native_breakdown
from build.analysis.dist_metadata import dist_info_folders, parse_dist_info, with_bundled
from build.analysis.distributions import classify_file, classify_module, load_index
from build.analysis.nuitka_symbols import decode_code_name, module_of_file, module_of_symbol
from build.report.table import visible

SOURCE = """
static int table[4096] = {1};
const char banner[] = "tiny library";
int big_function(int x) { int s = 0; for (int i = 0; i < x; i++) s += table[i % 4096] * i * x; return s; }
__attribute__((noinline)) static int helper(int x) { return x * 3 + table[x & 7]; }
int small_function(int x) { return helper(x) + 1; }
""" + "".join(f"int f{i}(int x) {{ int s = {i}; for (int j = 0; j < x; j++) s = s * 31 + table[(j * {i}) & 4095]; "
              f"return s ^ big_function(x + {i}); }}\n" for i in range(60))  # so that tiny.c is most of the code


def _run(*argv: str, cwd: Path) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, timeout=60, start_new_session=True)


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not (shutil.which("gcc") and shutil.which("strip")):
        pytest.fail("gcc and binutils are needed (apt-get install gcc binutils)")
    root = tmp_path_factory.mktemp("tiny")
    (root / "tiny.c").write_text(SOURCE)
    _run("gcc", "-g", "-O1", "-shared", "-fPIC", "-Wl,--build-id", "-o", "libtiny.so.1", "tiny.c", cwd=root)
    (root / "shipped").mkdir()
    _run("strip", "-o", "shipped/libtiny.so.1", "libtiny.so.1", cwd=root)
    (root / "debug").mkdir()
    shutil.copy(root / "libtiny.so.1", root / "debug" / "libtiny.so.1")
    return {"unstripped": root / "libtiny.so.1", "stripped": root / "shipped" / "libtiny.so.1",
            "debug": root / "debug"}


def test_groups_cover_the_file_and_strip_savings_match_the_real_strip(lib: dict[str, Path]) -> None:
    data = lib["unstripped"].read_bytes()
    ranges = elf_sections.file_ranges(data)
    assert ranges is not None and ranges[0][1] == 0 and ranges[-1][2] == len(data)
    sizes = elf_sections.group_sizes(ranges)
    assert sum(sizes.values()) == len(data)
    assert sizes["code"] and sizes["rodata"] and sizes["data"] and sizes["dynamic"] and sizes["unwind"]
    assert sizes["symbols"] and sizes["debug"]
    saved = len(data) - lib["stripped"].stat().st_size
    estimate = elf_sections.strip_savings(ranges)
    assert 0 < estimate <= saved < estimate + 1024  # plus the removed sections' headers
    stripped = elf_sections.group_sizes(elf_sections.file_ranges(lib["stripped"].read_bytes()))
    assert stripped["symbols"] == stripped["debug"] == 0 and stripped["code"] == sizes["code"]


def test_classify_sections() -> None:
    assert elf_sections.classify(".eh_frame_hdr", "SHT_PROGBITS", 2) == "unwind"
    assert elf_sections.classify(".rela.dyn", "SHT_RELA", 2) == "dynamic"
    assert elf_sections.classify(".dynsym", "SHT_DYNSYM", 2) == "dynamic"
    assert elf_sections.classify(".symtab", "SHT_SYMTAB", 0) == "symbols"
    assert elf_sections.classify(".debug_info", "SHT_PROGBITS", 0) == "debug"
    assert elf_sections.classify(".text", "SHT_PROGBITS", 6) == "code"
    assert elf_sections.classify(".data.rel.ro", "SHT_PROGBITS", 3) == "data"


def test_functions_and_units_of_an_unstripped_file(lib: dict[str, Path]) -> None:
    data = lib["unstripped"].read_bytes()
    table = symbols.read_symbols(data)
    assert table is not None and table.table == ".symtab"
    by_name = {s.name: s for s in table.symbols}
    assert by_name["big_function"].kind == "function" and by_name["big_function"].size > by_name["small_function"].size
    assert by_name["table"].kind == "object" and by_name["table"].size == 4 * 4096
    assert by_name["helper"].file == by_name["table"].file == "tiny.c"  # locals, after their STT_FILE
    assert by_name["big_function"].file is None  # globals come after every file's locals
    assert [u for _, _, u in dwarf.dwarf_units(data)] == ["tiny.c"]
    b = native_breakdown(data, "libtiny.so.1")
    assert b.source == "the file's own .symtab" and b.units_from == "DWARF"
    assert b.code_in_units >= 0.9 * b.code_bytes  # like the target on libpython: named code
    tops = {p.name: p for p in b.symbols}
    assert tops["table"].unit == "tiny.c" and tops["table"].code == 0 and tops["big_function"].code > 0
    units = {p.name: p.size for p in b.units}
    assert "tiny.c" in units and "[unwind tables]" in units and "[relocations and dynamic linking]" in units
    loaded = sum(s.size for s in elf_sections.read_sections(data) if s.flags & 2 and s.type != "SHT_NOBITS")
    assert sum(units.values()) == loaded  # every loaded byte is in one unit or one "[...]" part


def test_a_stripped_file_finds_its_unstripped_copy_by_build_id(lib: dict[str, Path], tmp_path: Path) -> None:
    data = lib["stripped"].read_bytes()
    own = symbols.read_symbols(data)
    assert own is not None and own.table == ".dynsym"  # only the exported symbols are left
    bid = elfid.build_id(data)
    assert bid and bid == elfid.build_id(lib["unstripped"].read_bytes()) == elfid.build_id(lib["stripped"])
    assert elfid.build_id(data[:64]) is None and elfid.build_id(lib["stripped"].parent) is None  # cut short, a folder
    found = native_breakdown(data, "libtiny.so.1", search=(lib["debug"],))
    assert f"same build-id {bid}" in found.source and str(lib["debug"]) in found.source
    assert "helper" in {p.name for p in found.symbols} and found.units_from == "DWARF"
    unstripped = native_breakdown(lib["unstripped"].read_bytes(), "libtiny.so.1")
    assert [(p.name, p.size) for p in found.symbols] == [(p.name, p.size) for p in unstripped.symbols]
    # A copy with another build-id is not evidence, even with the right name.
    other = tmp_path / "other"
    other.mkdir()
    (other / "tiny.c").write_text(SOURCE.replace("4096", "2048"))
    _run("gcc", "-g", "-O1", "-shared", "-fPIC", "-Wl,--build-id", "-o", "libtiny.so.1", "tiny.c", cwd=other)
    lost = native_breakdown(data, "libtiny.so.1", search=(other,))
    assert lost.source.startswith("exported symbols only") and bid in lost.source
    assert lost.units_from == "none" and lost.code_in_units == 0


def test_nuitka_names_say_their_module() -> None:
    assert module_of_symbol("impl_requests$api$$$function__1_request") == "requests.api"
    assert module_of_symbol("MAKE_FUNCTION_yaml$loader$$$function__3___init__") == "yaml.loader"
    assert module_of_symbol("module_var_accessor_urllib3$util$retry$Retry.constprop.0") == "urllib3.util.retry"
    assert module_of_symbol("modulecode_certifi$core") == "certifi.core"
    assert module_of_symbol("cache_frame_frame_idna$core$$$function__5_check") == "idna.core"
    assert module_of_symbol("UPDATE_STRING_DICT1") is None and module_of_symbol("module_filename_obj") is None
    assert decode_code_name("a$$45$b$c") == "a-b.c"  # '-' is encoded as $$45$
    assert module_of_file("module.charset_normalizer.md.c") == "charset_normalizer.md"
    assert module_of_file("CompiledFunctionType.c") is None


def test_bundled_metadata_names_distributions_first() -> None:
    folders = dist_info_folders(["_internal/PyYAML-6.0.4.dist-info/RECORD", "_internal/yaml/__init__.py"])
    assert folders == {"_internal/PyYAML-6.0.4.dist-info": "_internal"}
    info = parse_dist_info("PyYAML-6.0.4.dist-info", {
        "METADATA": "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.4\n",
        "RECORD": "yaml/__init__.py,sha256=x,1\nyaml/_yaml.cpython-311-x86_64-linux-gnu.so,sha256=y,2\n"
                  "_yaml/__init__.py,sha256=z,3\nPyYAML-6.0.4.dist-info/RECORD,,\n"})
    assert info.name == "pyyaml" and info.top_level == ("_yaml", "yaml")
    index = with_bundled(load_index(("/nonexistent-site",)), [info])
    assert (classify_module("yaml.loader", index).distribution, classify_module("yaml.loader", index).guess) \
        == ("pyyaml", False)
    ext = classify_file("yaml/_yaml.cpython-311-x86_64-linux-gnu.so", index)
    assert (ext.distribution, ext.guess) == ("pyyaml", False)
    # Without any metadata: a guess named after the package, never the application.
    bare = load_index(("/nonexistent-site",))
    a = classify_module("charset_normalizer.md", bare)
    assert (a.distribution, a.guess) == ("charset-normalizer", True)
    assert (classify_module("fetchcfg", bare, app=frozenset({"fetchcfg"})).distribution) == "app"
    data = classify_file("certifi/cacert.pem", bare)
    assert (data.distribution, data.guess) == ("certifi", True)


def test_control_characters_are_shown_not_sent() -> None:
    assert visible("data/esc\x1b[2Jclear.txt") == "data/esc\\x1b[2Jclear.txt"
    assert visible("data/nl\nline.txt") == "data/nl\\nline.txt"
    assert visible("rtl\u202eevil") == "rtl\\u202eevil"
    assert visible("plain/ünïcode.txt") == "plain/ünïcode.txt"


def test_diff_says_which_function_grew(lib: dict[str, Path], tmp_path: Path) -> None:
    from build.analysis.model import NativeFile, SizeReport
    from build.analysis.ops import diff_native

    bigger = tmp_path / "bigger"
    bigger.mkdir()
    (bigger / "tiny.c").write_text(SOURCE.replace("s += table[i % 4096] * i * x;",
                                                  "{ s += table[i % 4096] * i * x; s ^= s >> (i & 7); s += x / (i + 1); }"))
    _run("gcc", "-g", "-O1", "-shared", "-fPIC", "-o", "libtiny.so.1", "tiny.c", cwd=bigger)

    def report(path: Path, name: str) -> SizeReport:
        data = path.read_bytes()
        native = NativeFile(row=f"_internal/{path.name}", size=len(data),
                            breakdown=native_breakdown(data, path.name))
        return SizeReport(artifact=name, format="folder", total_stored=0, total_raw=0, rows=(), native=(native,))

    diff = diff_native(report(lib["unstripped"], "old"), report(bigger / "libtiny.so.1", "new"))
    grew = {c.name: c for c in diff.changes if c.kind == "grew"}
    assert "libtiny.so.1: big_function" in grew and grew["libtiny.so.1: big_function"].distribution == "tiny.c"
    assert "libtiny.so.1: table" not in {c.name for c in diff.changes}  # the same object, unchanged
    units = diff_native(report(lib["unstripped"], "old"), report(bigger / "libtiny.so.1", "new"), "unit")
    assert any(c.name == "libtiny.so.1: tiny.c" and c.kind == "grew" for c in units.changes)


def test_symbols_and_units_together_is_a_usage_error(lib: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from build.report import command as bloat

    assert bloat.main([str(lib["unstripped"]), "--symbols", "--units"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("slimfreeze: error: ") and "--symbols or --units" in err and err.count("\n") == 1


def test_a_stripped_nuitka_program_from_its_build_folder(tmp_path: Path) -> None:
    """Nuitka strips its program; its build folder keeps module.<name>.o per module, whose functions
    carry the sizes they have in the program (no LTO): units are the modules."""
    build = tmp_path / "prog.build"
    build.mkdir()
    (build / "module.pkg.mod.c").write_text(
        "int impl_pkg$mod$$$function__1_f(int x) { int s = 0; for (int i = 0; i < x; i++) s += i * x; return s; }\n"
        "const int mod_table[512] = {1};\n")
    (build / "CompiledFunctionType.c").write_text("int runtime_helper(int x) { return x + 1; }\n")
    for c in ("module.pkg.mod.c", "CompiledFunctionType.c"):
        _run("gcc", "-O1", "-fPIC", "-fdollars-in-identifiers", "-c", c, "-o", c[:-2] + ".o", cwd=build)
    _run("gcc", "-shared", "-o", "../prog.bin", "module.pkg.mod.o", "CompiledFunctionType.o", cwd=build)
    _run("strip", "-o", "../prog.stripped", "../prog.bin", cwd=build)
    unstripped = {s.name: s.size for s in symbols.read_symbols((tmp_path / "prog.bin").read_bytes()).symbols}
    b = native_breakdown((tmp_path / "prog.stripped").read_bytes(), "prog.bin/[executable]", search=(build,),
                         nuitka=True)
    assert "object files in" in b.source and "not matched by build-id" in b.source
    assert b.units_from == "Nuitka names"
    by_name = {p.name: p for p in b.symbols}
    f = by_name["impl_pkg$mod$$$function__1_f"]
    assert (f.unit, f.size) == ("pkg.mod", unstripped["impl_pkg$mod$$$function__1_f"]) and f.code == f.size
    assert by_name["mod_table"].unit == "pkg.mod" and by_name["mod_table"].code == 0
    assert by_name["runtime_helper"].unit == "CompiledFunctionType.c"
    units = {p.name: p.size for p in b.units}
    assert units["pkg.mod"] == f.size + 4 * 512


NATIVE_GOLDEN = """\
 File  .text    Size  Unit            Name
25.0%  40.0%   1000B  Objects/a.c     big
10.0%   8.0%    400B  [unknown unit]  esc\\x1b[2Jname
 5.0%   8.0%    200B                  And 1 more symbols. Use -n N to show more.
40.0%  56.0%  1.6KiB                  2.4KiB in code sections, 3.9KiB file (lib/libx.so)
Symbols: the file's own .symtab.
Units from DWARF: 40.0% of the code is in a named unit.
"""


def test_native_table_golden() -> None:
    """cargo bloat's columns; control characters in a symbol's name are shown, not sent."""
    from build.analysis.model import NativeFile
    from build.analysis.symbols import Breakdown, Part
    from build.report.table import native_table, render

    parts = (Part(name="big", kind="function", unit="Objects/a.c", size=1000, code=1000),
             Part(name="esc\x1b[2Jname", kind="object", unit="[unknown unit]", size=400, code=200),
             Part(name="small", kind="function", unit="Objects/a.c", size=200, code=200))
    native = NativeFile(row="lib/libx.so", size=4000, breakdown=Breakdown(
        source="the file's own .symtab", units_from="DWARF", code_bytes=2500, code_in_units=1000, symbols=parts,
        units=()))
    assert render(native_table(native, units=False, n=2), width=100) == NATIVE_GOLDEN
    filtered = render(native_table(native, units=False, n=5, pattern="^sm"), width=100)
    assert "small" in filtered and "big" not in filtered and "1 matching --filter ^sm" in filtered


def test_the_runtime_that_built_an_artifact_is_searched_only_where_its_manifest_safely_points(tmp_path):
    from build.analysis.debug_copies import builder_dirs

    prefix = tmp_path / "work" / ".cache" / "runtime" / "python3.11-x86_64-k"
    (prefix / "lib" / "debug" / ".build-id").mkdir(parents=True)
    manifest = {"toolchain": {"build_log": "work/.cache/runtime/python3.11-x86_64-k/build.log"}}
    assert builder_dirs(manifest, tmp_path) == (prefix / "lib" / "debug", prefix / "lib")
    # Data from an artifact: nothing absolute, nothing that climbs out, nothing of the wrong type.
    for log in ("/etc/build.log", "../../etc/build.log", "work/../../x/build.log", 3, "", None):
        assert builder_dirs({"toolchain": {"build_log": log}}, tmp_path) == ()
    assert builder_dirs({"toolchain": "x"}, tmp_path) == builder_dirs(None, tmp_path) == ()


def _real_libpythons() -> list[Path]:
    """Unstripped libpythons with DWARF on this machine: the Python running the tests (one unit per
    source file) and the size runtime's kept copy (an LTO build: one artificial unit)."""
    import sysconfig

    found = [Path(sysconfig.get_config_var("LIBDIR") or "/") / (sysconfig.get_config_var("INSTSONAME") or "-")]
    found += sorted((Path(__file__).resolve().parents[2] / "work" / ".cache" / "runtime").glob("python3.11-*/lib/debug/.build-id/*/*.debug"))
    return [p for p in found if p.is_file() and p.stat().st_size > 1 << 20 and dwarf.dwarf_units(p.read_bytes())]


def test_the_direct_unit_reader_agrees_with_pyelftools_on_a_real_libpython() -> None:
    # dwarf._CuNames reads each unit's top DIE itself (pyelftools parses every unit's whole
    # abbreviation table first: benchmarks/dwarf_units.py prints both times); on every unit of a
    # real libpython it must give pyelftools' name and folder, and never fall back.
    import io

    from elftools.elf.elffile import ELFFile

    libraries = _real_libpythons()
    if not libraries:
        pytest.skip("no unstripped libpython with DWARF on this machine")
    units = 0
    for path in libraries:
        elf = ELFFile(io.BytesIO(path.read_bytes()))
        info = elf.get_dwarf_info(relocate_dwarf_sections=False)
        direct = dwarf._CuNames(elf)
        for offset in sorted({e.info_offset for e in info.get_aranges().entries}):
            top = info.get_CU_at(offset).get_top_DIE().attributes
            folder = top["DW_AT_comp_dir"].value.decode("utf-8", "backslashreplace")
            assert (direct.name(offset), direct.name(offset, dwarf.DW_AT_COMP_DIR)) == \
                (dwarf._slow_cu_name(info, offset), folder), (path, offset)
            units += 1
    assert units > 1
