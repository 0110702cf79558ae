"""The size runtime's flags, cache key, export list and source edit (fast: pure functions, and one
tiny shared object compiled with gcc for the export list)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from build.paths import plain_name
from build.runtime import exports
from build.runtime.compile import RuntimeBuildFailed, configure_argv, frozen_import_only
from build.runtime.flags import STEPS, SIZE_STEPS, TRIED, cache_key, merge, size_flags, step_named
from build.runtime.toolchain import pinned_requirements


def test_size_flags_are_the_kept_steps_in_order() -> None:
    flags = size_flags("x86_64")
    assert flags.steps == SIZE_STEPS
    assert flags.cflags[0] == "-Os"
    assert "--without-doc-strings" in flags.configure and "--with-lto" in flags.configure
    assert "-Wl,-z,pack-relative-relocs" in flags.ldflags
    # Every step is either used or recorded as tried with a reason; none is both.
    names = {step.name for step in STEPS}
    assert set(SIZE_STEPS) | set(TRIED) == names and not set(SIZE_STEPS) & set(TRIED)


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
    with pytest.raises(RuntimeBuildFailed, match="frozen-import-only"):
        frozen_import_only("FROZEN = []\n")


def test_venv_pins_are_run_time_and_build() -> None:
    text = ('[project]\ndependencies = ["paho-mqtt==2.2.0"]\n[project.optional-dependencies]\n'
            'build = ["pyinstaller==6.22.3"]\ntest = ["pytest==9.2.0"]\n')
    assert pinned_requirements(text) == ["paho-mqtt==2.2.0", "pyinstaller==6.22.3"]


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
    # No runtime appeared under the key, and the one built before is as it was.
    assert sorted(p.name for p in (project.cache_root / "runtime").iterdir() if not p.name.endswith((".tmp", ".lock"))) \
        == ["python3.11-x86_64-previous"]
    assert (previous / "runtime.json").read_text() == "{}"


def test_pyexpat_edit_declares_a_core_module_once() -> None:
    from build.runtime.compile import pyexpat_core_module

    edited = pyexpat_core_module('#include "Python.h"\n#include "pycore_ceval.h"\n')
    assert edited.index("define Py_BUILD_CORE_MODULE") < edited.index('#include "Python.h"')
    assert pyexpat_core_module(edited) == edited


def test_source_edits_replace_each_snippet_once() -> None:
    from build.runtime.compile import source_edited
    from build.runtime.flags import SOURCE_EDITS

    for edit, replacements in SOURCE_EDITS.items():
        for relative, old, new in replacements:
            text = f"/* {relative} */\nbefore();\n{old}after();\n"
            edited = source_edited(edit, relative, text)
            assert old not in edited and new in edited
            assert edited.startswith(f"/* {relative} */\nbefore();\n") and edited.endswith("after();\n")
            # Another file of the tree is left as it is.
            assert source_edited(edit, "Other/file.c", text) == text


def test_frames_borrow_code_drops_every_reference_it_no_longer_takes() -> None:
    from build.runtime.flags import SOURCE_EDITS

    edits = SOURCE_EDITS["frames-borrow-code"]

    def dropped(*snippets: str) -> int:
        return sum(old.count(snippet) - new.count(snippet) for _file, old, new in edits for snippet in snippets)

    # Every reference a frame took on its code (at set-up; for the entry frame of a generator made
    # from C) is gone, and so is every release of it (_PyFrame_Clear; a frame object's dealloc).
    assert dropped("Py_NewRef(func->func_code)", "Py_INCREF(frame->f_code)") == 2
    assert dropped("DECREF(frame->f_code)", "DECREF(co)") == 2
    assert any("Py_XSETREF(op->func_code" in old and "Py_XSETREF" not in new for _f, old, new in edits)


@pytest.mark.parametrize("copies", [0, 2])
def test_source_edit_refuses_a_file_it_was_not_written_for(copies: int) -> None:
    from build.runtime.compile import source_edited
    from build.runtime.flags import SOURCE_EDITS

    relative, old, _new = SOURCE_EDITS["no-quickening"][0]
    with pytest.raises(RuntimeBuildFailed, match=r"no-quickening.*pycore_code\.h"):
        source_edited("no-quickening", relative, "x\n" + old * copies)


def test_cache_key_changes_when_an_edit_is_corrected(monkeypatch: pytest.MonkeyPatch) -> None:
    from build.runtime import flags as flags_module

    flags = size_flags("x86_64")
    key = cache_key(source_version="v", flags=flags, target="x86_64")
    file, old, new = flags_module.SOURCE_EDITS["no-quickening"][0]
    monkeypatch.setitem(flags_module.SOURCE_EDITS, "no-quickening", ((file, old, new + "/* corrected */"),))
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
