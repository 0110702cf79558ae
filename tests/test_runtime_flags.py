"""The size runtime's flags, cache key, export list and source edits (fast: pure functions, one tiny
shared object compiled with gcc for the export list, and the edits made to the files of CPython's
real source tree, the one the runtime compiles from, in memory)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from build.paths import plain_name
from build.runtime import edits, exports, guards
from build.runtime.compile import RuntimeBuildFailed, configure_argv
from build.runtime.edits import EditError, frozen_import_only
from build.runtime.flags import BALANCED_STEPS, STEPS, SIZE_STEPS, TRIED, cache_key, compiled_part, merge, size_flags, step_named

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian's python3.11 source as the size runtime gets it (downloaded once into the shared cache)."""
    from build.project import Project
    from build.runtime.sources import obtain_source

    project = Project.at(ROOT)
    return obtain_source(project, tmp_path_factory.mktemp("source") / "source.log").tree


@pytest.fixture(scope="module")
def c_files(tree: Path) -> dict[str, str]:
    return dict(guards.c_files(tree))


def edited(files: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """`files` with the textual edits `names` made, as compile.py makes them."""
    out = dict(files)
    for name in names:
        for relative in dict.fromkeys(f for f, _old, _new in edits.SOURCE_EDITS[name]):
            out[relative] = edits.source_edited(name, relative, out[relative])
    return out


TEXT_EDITS = ("frames-borrow-code", "no-quickening", "small-type-cache")


def test_size_flags_are_the_kept_steps_in_order() -> None:
    flags = size_flags("x86_64")
    assert flags.steps == SIZE_STEPS
    assert flags.cflags[0] == "-Os"
    # text-signatures takes --without-doc-strings back: its edit cuts each docstring to its signature.
    assert "--without-doc-strings" not in flags.configure and "--with-lto" in flags.configure
    assert "--without-doc-strings" in merge(map(step_named, SIZE_STEPS[:-2])).configure
    assert "-Wl,-z,pack-relative-relocs" in flags.ldflags
    # Every step is either used by a recipe or recorded as tried with a reason; none is both.
    names = {step.name for step in STEPS}
    used = set(SIZE_STEPS) | set(BALANCED_STEPS)
    assert used | set(TRIED) == names and not used & set(TRIED)


def test_the_balanced_recipe_is_the_size_one_at_o2_with_quickening() -> None:
    size, balanced = size_flags("x86_64"), size_flags("x86_64", "balanced")
    assert balanced.cflags[0] == "-O2" and "-Os" not in balanced.cflags + balanced.ldflags
    assert set(size.steps) - set(balanced.steps) == {"Os", "no-quickening"}
    assert set(balanced.steps) - set(size.steps) == {"O2"}
    assert balanced.configure == size.configure and "no-quickening" not in balanced.edits
    assert cache_key(source_version="v", flags=size, target="x86_64") != \
        cache_key(source_version="v", flags=balanced, target="x86_64")


def test_a_step_an_architecture_cannot_use_is_left_out_there() -> None:
    # bookworm's ARM linkers ignore -z pack-relative-relocs: the flag is not passed, nor named in the manifest.
    for target in ("aarch64", "armv7"):
        flags = size_flags(target)
        assert "relr" not in flags.steps and "-Wl,-z,pack-relative-relocs" not in flags.ldflags
        assert flags.steps == tuple(s for s in SIZE_STEPS if s != "relr")
    assert cache_key(source_version="v", flags=size_flags("aarch64"), target="aarch64") != \
        cache_key(source_version="v", flags=size_flags("x86_64"), target="aarch64")


def test_merge_keeps_each_flag_once_in_order() -> None:
    flags = merge([step_named("Os"), step_named("no-unwind-tables"), step_named("Os")])
    assert flags.cflags == ("-Os", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables")


def test_cache_key_changes_with_every_input() -> None:
    flags = size_flags("x86_64")
    key = cache_key(source_version="3.11.2-6+deb12u8", flags=flags, target="x86_64")
    assert key == cache_key(source_version="3.11.2-6+deb12u8", flags=flags, target="x86_64")
    others = {
        cache_key(source_version="3.11.2-6+deb12u9", flags=flags, target="x86_64"),
        cache_key(source_version="3.11.2-6+deb12u8", flags=merge([step_named("Os")]), target="x86_64"),
        cache_key(source_version="3.11.2-6+deb12u8", flags=flags, target="aarch64"),
        cache_key(source_version="3.11.2-6+deb12u8", flags=flags, target="x86_64", extra={"exports": "x"}),
    }
    assert key not in others and len(others) == 4
    # A plain folder name: no '+' or '~' from Debian's version.
    assert plain_name(key, "key") == key and "+" not in key


def test_configure_line() -> None:
    argv = configure_argv(Path("/src"), Path("/p"), merge([step_named("Os"), step_named("relr")]))
    assert argv[:2] == ["/src/configure", "--prefix=/p"]
    assert "CFLAGS=-Os" in argv and "LDFLAGS=-Os -Wl,-z,pack-relative-relocs" in argv
    assert "OPT=-DNDEBUG -fwrapv" in argv


def test_version_script_exports_only_what_users_import(tmp_path: Path) -> None:
    source = tmp_path / "ext.c"
    source.write_text("extern int PyLong_FromLong(long);\nextern void *_Py_NoneStruct;\nint puts(const char *);\n"
                      "int PyInit_ext(void) { puts(\"PyErr_Print\"); return PyLong_FromLong(1) + (_Py_NoneStruct != 0); }\n")
    ext = tmp_path / "ext.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", ext, source], check=True, timeout=60)
    loader = tmp_path / "loader"
    loader.write_bytes(b"\x00garbage\x00Py_Initialize\x00PyConfig_Read\x00notPy_x\x00")
    names = exports.wanted([ext], [loader])
    # Imported by the module, or looked up by name by the loader; never the module's own
    # definitions or libc's.
    assert {"PyLong_FromLong", "_Py_NoneStruct", "Py_Initialize", "PyConfig_Read"} <= names
    assert "PyInit_ext" not in names and "puts" not in names and "notPy_x" not in names
    script = exports.version_script(names)
    assert script.startswith("{\n  global:\n") and script.endswith("  local: *;\n};\n")
    assert "    PyLong_FromLong;\n" in script


FREEZE_MODULES = """\
FROZEN = [
    ('import system', [
        'importlib._bootstrap : _frozen_importlib',
        'zipimport',
        ]),
    ('stdlib - startup, without site (python -S)', [
        'abc',
        'io',
        ]),
    ('runpy - run module with -m', [
        "runpy",
    ]),
    (TESTS_SECTION, [
        '__hello__',
        ]),
]
def regen_frozen():
    for lines in (a, b):
        if not lines[0]:
            del lines[0]
"""


def test_frozen_import_only_keeps_the_import_system() -> None:
    edited = frozen_import_only(FREEZE_MODULES)
    assert "'zipimport'" in edited and "_frozen_importlib" in edited and "__hello__" in edited
    assert "'abc'" not in edited and "runpy" not in edited
    assert "if lines and not lines[0]:" in edited


def test_frozen_edit_refuses_an_unknown_script() -> None:
    with pytest.raises(EditError, match="freeze_modules.py is not the one"):
        frozen_import_only("FROZEN = []\n")


def test_venv_pins_are_the_apps_run_time_and_slimfreezes_build(tmp_path: Path) -> None:
    from build.project import TOOL_PYPROJECT, Project, freezer_pins, pins

    (tmp_path / "pyproject.toml").write_text(
        '[project]\ndependencies = ["orjson==3.13.0"]\n[project.optional-dependencies]\n'
        'build = ["pyinstaller==1.0"]\ntest = ["pytest==9.2.0"]\n')
    found = freezer_pins(Project.at(tmp_path))
    assert found.run == ("orjson==3.13.0",)
    assert found.build == pins(TOOL_PYPROJECT.read_text()).build and "pyinstaller==1.0" not in found.build


def test_size_runtime_is_for_pyinstaller_or_static_nuitka_and_cross_built_for_pyinstaller() -> None:
    from declared_app import with_app

    from build.config import resolve_profiles
    from build.errors import ConfigError
    from build.toolchain import host_architecture

    assert resolve_profiles(with_app({"profiles": {"a": {"runtime": "size"}}}))["a"].runtime == "size"
    with pytest.raises(ConfigError, match="a: runtime = 'size' works with the pyinstaller backend, or with nuitka"):
        resolve_profiles(with_app({"profiles": {"a": {"runtime": "size", "backend": "nuitka"}}}))
    static = {"runtime": "size", "backend": "nuitka", "nuitka_args": ["--static-libpython=yes"]}
    assert resolve_profiles(with_app({"profiles": {"a": static}}))["a"].runtime == "size"
    foreign = "armv7" if host_architecture() != "armv7" else "aarch64"
    assert resolve_profiles(with_app({"profiles": {"a": {"runtime": "size", "target": foreign}}}))["a"].target == foreign
    with pytest.raises(ConfigError, match=f"a: runtime = 'size' for target = '{foreign}' works with the pyinstaller"):
        resolve_profiles(with_app({"profiles": {"a": {**static, "target": foreign}}}))


@pytest.mark.parametrize(("script", "step"), [
    ("echo 'configure: error: no C compiler' >&2; exit 1", "configure"),
    ("printf 'all:\\n\\t@echo compiling; false\\n' > Makefile", "make"),
])
def test_failed_compile_names_its_step_and_log_and_touches_nothing_else(tmp_path: Path, script: str, step: str) -> None:
    from build.project import Project
    from build.runtime.compile import build_runtime
    from build.runtime.sources import Source

    root = Path(__file__).resolve().parent.parent
    project = Project.at(root, work=tmp_path / "work", dist=tmp_path / "dist", reports=tmp_path / "reports",
                         cache=tmp_path / "cache")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "configure").write_text(f"#!/bin/sh\n{script}\n")
    (tree / "configure").chmod(0o755)
    (tree / "Modules").mkdir()
    (tree / "Modules" / "pyexpat.c").write_text('#include "Python.h"\n')
    previous = project.cache_root / "runtime" / "python3.11-x86_64-previous"
    previous.mkdir(parents=True)
    (previous / "runtime.json").write_text("{}")
    with pytest.raises(RuntimeBuildFailed) as failed:
        build_runtime(project, Source(version="3.11.2-1", tree=tree, dsc=tmp_path / "x.dsc"),
                      merge([step_named("Os")]), target="x86_64")
    message = str(failed.value)
    assert message.startswith(f"size runtime: {step} failed (build log ")
    log = Path(message.split("(build log ", 1)[1].split(")", 1)[0])
    assert log.is_file() and ("no C compiler" in log.read_text() or "compiling" in log.read_text())
    # No runtime appeared under the key, nor a compiled tree (its folder keeps the log, without a
    # stamp, and is made again by the next build), and the one built before is as it was.
    folders = [p for p in (project.cache_root / "runtime").iterdir() if not p.name.endswith((".tmp", ".lock"))]
    assert [p.name for p in folders if (p / "runtime.json").exists() or (p / "compiled.json").exists()] \
        == ["python3.11-x86_64-previous"]
    assert (previous / "runtime.json").read_text() == "{}"
    assert log.parent.name.endswith("-compiled") and not (log.parent / "compiled.json").exists()


def test_pyexpat_edit_declares_a_core_module_once() -> None:
    from build.runtime.edits import pyexpat_core_module

    edited = pyexpat_core_module('#include "Python.h"\n#include "pycore_ceval.h"\n')
    assert edited.index("define Py_BUILD_CORE_MODULE") < edited.index('#include "Python.h"')
    assert pyexpat_core_module(edited) == edited


@pytest.mark.parametrize("copies", [0, 2])
def test_source_edit_refuses_a_file_it_was_not_written_for(copies: int) -> None:
    relative, old, _new = edits.SOURCE_EDITS["no-quickening"][0]
    with pytest.raises(EditError, match=r"pycore_code\.h is not the one"):
        edits.source_edited("no-quickening", relative, "x\n" + old * copies)




# --- the edits on CPython's real tree, and what guards them ----------------------------------

def test_guards_pass_on_the_edited_tree_and_name_every_place_the_unedited_one_differs(c_files) -> None:
    assert guards.check_files(edited(c_files, TEXT_EDITS).items(), TEXT_EDITS) == []
    # The stock tree: each place the edits change is found, in its file and function.
    found = {(p.edit, *p.site, p.what) for p in guards.check_files(c_files.items(), TEXT_EDITS)}
    assert found == {
        ("frames-borrow-code", "Python/ceval.c", "_PyEval_EvalFrameDefault", "takes or releases a frame's code reference"),
        ("frames-borrow-code", "Python/frame.c", "_PyFrame_Clear", "takes or releases a frame's code reference"),
        ("frames-borrow-code", "Objects/frameobject.c", "frame_dealloc", "releases a local copy of a frame's code"),
        ("frames-borrow-code", "Objects/funcobject.c", "func_set_code", "releases a function's code"),
        ("frames-borrow-code", "Objects/funcobject.c", "func_set_code", "sets a function's code"),
        ("no-quickening", "Include/internal/pycore_code.h", "_PyCode_Warmup", "has the warm-up that quickens never run"),
        ("small-type-cache", "Include/internal/pycore_typeobject.h", "(file scope)",
         "defines a method cache of 2**9 entries"),
    }


def _without(edit: str, file: str) -> tuple[tuple[str, str, str], ...]:
    return tuple(r for r in edits.SOURCE_EDITS[edit] if r[0] != file)


# Wrong edits, each one a mistake that compiles: the guards name the place.
WRONG_EDITS = {
    # d762c5a's bug: the entry frame of a generator made from C still takes a code reference.
    "ceval forgotten": ("frames-borrow-code", _without("frames-borrow-code", "Python/ceval.c"),
                        "Python/ceval.c (_PyEval_EvalFrameDefault) takes or releases a frame's code reference 1"),
    "frame object still releases": ("frames-borrow-code", _without("frames-borrow-code", "Objects/frameobject.c"),
                                    "Objects/frameobject.c (frame_dealloc) releases a local copy of a frame's code 1"),
    "__code__ assignment frees the old code": (
        "frames-borrow-code",
        (*_without("frames-borrow-code", "Objects/funcobject.c"),
         ("Objects/funcobject.c", "    Py_INCREF(value);\n    Py_XSETREF(op->func_code, value);\n",
          "    Py_INCREF(value);\n    Py_SETREF(op->func_code, value);\n")),
        "Objects/funcobject.c (func_set_code) releases a function's code 1"),
    "the inner test made dead instead": (
        "no-quickening",
        (("Include/internal/pycore_code.h", "        if (code->co_warmup == 0) {\n", "        if (0) {\n"),),
        "Include/internal/pycore_code.h (_PyCode_Warmup) has the warm-up that quickens never run 0"),
    "a cache of 2**10": (
        "small-type-cache",
        (("Include/internal/pycore_typeobject.h", "#define MCACHE_SIZE_EXP 12\n", "#define MCACHE_SIZE_EXP 10\n"),),
        "Include/internal/pycore_typeobject.h ((file scope)) defines a method cache of 2**9 entries 0"),
}


@pytest.mark.parametrize("wrong", sorted(WRONG_EDITS))
def test_a_wrong_edit_stops_the_build_naming_the_place(c_files, monkeypatch: pytest.MonkeyPatch, wrong: str) -> None:
    edit, replacements, message = WRONG_EDITS[wrong]
    monkeypatch.setitem(edits.SOURCE_EDITS, edit, replacements)
    lines = [p.line() for p in guards.check_files(edited(c_files, TEXT_EDITS).items(), TEXT_EDITS)]
    assert any(message in line for line in lines), lines


def test_a_new_place_releasing_a_frames_code_stops_the_build(c_files) -> None:
    # What a point release could bring: another function dropping a frame's code.
    files = edited(c_files, TEXT_EDITS)
    marker = "\n_PyFrame_Copy(_PyInterpreterFrame *src, _PyInterpreterFrame *dest)\n{\n"
    assert files["Python/frame.c"].count(marker) == 1
    files["Python/frame.c"] = files["Python/frame.c"].replace(marker, marker + "    Py_XDECREF(src->f_code);\n")
    problems = guards.check_files(files.items(), TEXT_EDITS)
    assert [p.line() for p in problems] == [
        "the source breaks what frames-borrow-code relies on: Python/frame.c (_PyFrame_Copy) takes or releases a "
        "frame's code reference 1 time(s), audited 0 (build/runtime/guards.py)"]


def test_every_edit_a_step_names_is_made_by_the_edits_module(tree: Path, tmp_path: Path) -> None:
    named = {e for step in STEPS for e in step.edits}
    files = {f for e in named if e in edits.SOURCE_EDITS for f, _o, _n in edits.SOURCE_EDITS[e]}
    files |= {f for f, _fn in edits.FILE_EDITS.values()}
    for relative in files:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes((tree / relative).read_bytes())
    for name in sorted(named - {"text-signatures"}) + ["cross-sysconfigdata"]:
        edits.apply(tmp_path, name)
    changed = {f for f in files if (tmp_path / f).read_bytes() != (tree / f).read_bytes()}
    assert changed == files
    with pytest.raises(EditError, match="unknown source edit 'renamed'"):
        edits.apply(tmp_path, "renamed")


def test_the_cache_key_carries_the_text_of_the_edits_module(monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    assert edits.DIGEST == hashlib.sha256(Path(edits.__file__).read_bytes()).hexdigest()
    flags = size_flags("x86_64")
    key = cache_key(source_version="v", flags=flags, target="x86_64")
    monkeypatch.setattr(edits, "DIGEST", "another text")
    assert cache_key(source_version="v", flags=flags, target="x86_64") != key


@pytest.mark.parametrize("linked", [False, True])
def test_the_manifest_names_the_build_log_so_bloat_finds_the_unstripped_copies(tmp_path: Path, linked: bool) -> None:
    # work/.cache a link to another disk (or a CI cache) or a plain folder: either way the manifest
    # names the log under work/.cache, and bloat's search finds the runtime's lib/debug beside it.
    from build.analysis.debug_copies import builder_dirs
    from build.project import Project
    from build.runtime.toolchain import _relative

    root = tmp_path / "project"
    (root / "work").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = \"p\"\n")
    cache = tmp_path / "bigger-disk" / "cache" if linked else root / "work" / ".cache"
    prefix = cache / "runtime" / "python3.11-x86_64-k"
    (prefix / "lib" / "debug").mkdir(parents=True)
    if linked:
        (root / "work" / ".cache").symlink_to(cache)
    project = Project.at(root)
    named = _relative(project.cache_root / "runtime" / "python3.11-x86_64-k" / "build.log", project)
    assert named == "work/.cache/runtime/python3.11-x86_64-k/build.log"
    found = builder_dirs({"toolchain": {"build_log": named}}, root)
    assert [p.resolve() for p in found] == [(prefix / "lib" / "debug").resolve(), (prefix / "lib").resolve()]
    # A cache given elsewhere than work/.cache is not named: nothing about the machine's folders.
    assert _relative(tmp_path / "elsewhere" / "build.log", project) == "build.log"


def test_the_compiled_tree_does_not_depend_on_the_export_steps() -> None:
    flags = size_flags("x86_64")
    part = compiled_part(flags)
    assert "exports" not in part.steps and "public-api" not in part.steps and "text-signatures" in part.steps
    assert (part.cflags, part.ldflags, part.configure, part.edits) == (flags.cflags, flags.ldflags, flags.configure,
                                                                       flags.edits)
    without = merge(step_named(s) for s in SIZE_STEPS if s not in ("exports", "public-api"))
    assert compiled_part(without) == part


def test_frozen_import_only_on_the_real_script_freezes_the_import_system_alone(tree: Path) -> None:
    import ast

    def frozen(script: str) -> set[str]:
        node = next(n for n in ast.parse(script).body if isinstance(n, ast.Assign)
                    and getattr(n.targets[0], "id", None) == "FROZEN")
        specs = [spec.value for section in node.value.elts for spec in section.elts[1].elts
                 if isinstance(spec, ast.Constant)]  # f-strings: the test modules' aliases
        return {spec.split(":")[0].strip().strip("<>") for spec in specs}

    stock = (tree / "Tools" / "scripts" / "freeze_modules.py").read_text()
    kept = frozen(frozen_import_only(stock))
    assert {"importlib._bootstrap", "importlib._bootstrap_external", "zipimport"} <= kept
    assert not kept & {"os", "site", "codecs", "io", "abc", "runpy"} and {"os", "site", "codecs"} <= frozen(stock)
    assert all(name in {"importlib._bootstrap", "importlib._bootstrap_external", "zipimport"}
               or name.startswith("__") for name in kept), kept


def test_pyexpat_edit_on_the_real_file_comes_before_its_first_include(tree: Path) -> None:
    text = edits.pyexpat_core_module((tree / "Modules" / "pyexpat.c").read_text())
    assert text.index("#  define Py_BUILD_CORE_MODULE 1") < text.index("#include")
    assert '#include "pycore_' in text  # Debian's backport includes an internal header: why the edit exists


def test_text_signatures_keep_exactly_the_signature_of_real_docstrings(tree: Path) -> None:
    def literal(text: str, name: str) -> str:
        start = text.index(f"PyDoc_STRVAR({name},")
        return text[start:text.index(";", start)].split(",", 1)[1].strip().rstrip(")")

    cases = {"Python/clinic/bltinmodule.c.h": {"builtin_len__doc__": '"len($module, obj, /)\\n--\\n\\n"'},
             "Python/bltinmodule.c": {"builtin_sorted__doc__":
                                      '"sorted($module, iterable, /, *, key=None, reverse=False)\\n--\\n\\n"'},
             "Objects/typeobject.c": {"object_doc": '"object()\\n--\\n\\n"'},
             "Objects/clinic/dictobject.c.h": {"dict_get__doc__": '"get($self, key, default=None, /)\\n--\\n\\n"'},
             "Objects/dictobject.c": {"dictionary_doc": '""'}}  # no signature: nothing left, as before
    for relative, docs in cases.items():
        stock = (tree / relative).read_text()
        text, _kept = edits.text_signatures_only(stock)
        for name, expected in docs.items():
            assert literal(text, name) == expected, (relative, name)
        assert len(text) < len(stock)
    # A slot wrapper's docstring reaches PyDoc_STR through a macro: cut where it is written.
    slots, _ = edits.text_signatures_only((tree / "Objects" / "typeobject.c").read_text())
    assert '"__init__($self, /, *args, **kwargs)\\n--\\n\\n",' in slots and "Initialize self." not in slots


def test_text_signatures_find_the_signature_as_cpython_does() -> None:
    assert edits.signature_part("f(a)\n--\n\nProse.") == "f(a)\n--\n\n"
    assert edits.signature_part("f(a)\n\nProse.\n)\n--\n\n") == ""  # a blank line first: no signature
    assert edits.signature_part("Prose f(a)\n--\n\n") == ""
    text = 'PyDoc_STRVAR(d, "g($module, s=\'\\\\n\', /)\\n" /* c */ "--\\n" "\\n" "Prose \\"q\\".\\n");\n'
    assert edits.text_signatures_only(text) == ('PyDoc_STRVAR(d, "g($module, s=\'\\\\n\', /)\\n--\\n\\n");\n', 1)


def test_public_api_holds_what_ctypes_users_reach(tree: Path) -> None:
    names = exports.public_api(tree)
    assert {"PyThreadState_SetAsyncExc", "Py_IncRef", "PyEval_SetTrace", "PyEval_SetProfile", "PyErr_SetInterrupt",
            "PyRun_SimpleString", "Py_AddPendingCall", "PyExc_TypeError", "PyLong_Type"} <= names
    # Private names only where the stable ABI has them (called by its macros, such as _Py_Dealloc).
    stable = exports.stable_abi((tree / "Misc" / "stable_abi.toml").read_text())
    assert {n for n in names if n.startswith("_")} <= stable and "_Py_Dealloc" in names
    assert "PyErr_SetFromWindowsErr" not in exports.stable_abi((tree / "Misc" / "stable_abi.toml").read_text())
