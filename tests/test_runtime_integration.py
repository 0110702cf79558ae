"""runtime = "size" for real: Debian's source compiled once per CI run (cached under the project's
cache folder, shared with the test builds), reused by a second call, and a smaller libpython in the
shipped profile than in min-system, whose artifact still passes the smoke test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from build.analysis.analyse import analyse
from build.project import Project
from build.runtime.compile import STAMP, load
from build.elfid import build_id
from build.runtime.toolchain import size_runtime_toolchain

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.integration


def _libpython(dist: Path):
    return next(r for r in analyse(dist).rows if r.name.endswith("libpython3.11.so.1.0"))


def test_size_runtime_is_built_once_and_runs_the_freezer(built, tmp_path: Path) -> None:
    # The test builds' project: the same cache folder, so this is the runtime the profiles use.
    project: Project = built.project
    log = tmp_path / "runtime.log"
    first = size_runtime_toolchain(project, log)
    prefix = project.cache_root / "runtime" / first.facts["runtime_key"]
    runtime = load(prefix)
    assert runtime is not None and runtime.libpython.is_file() and runtime.build_log.is_file()
    # The stripped library's unstripped copy, where `bloat --symbols --python` finds it by build-id.
    bid = build_id(runtime.libpython)
    assert bid and build_id(prefix / "lib" / "debug" / ".build-id" / bid[:2] / f"{bid[2:]}.debug") == bid
    before = {p: os.stat(p).st_mtime_ns for p in (prefix, prefix / STAMP, runtime.libpython, runtime.build_log)}

    second = size_runtime_toolchain(project, log)
    assert second == first
    assert {p: os.stat(p).st_mtime_ns for p in before} == before  # nothing rebuilt, nothing rewritten

    facts = first.facts
    assert facts["runtime"] == "size" and facts["source"].startswith("python3.11 3.11.")
    assert "-Os" in " ".join(facts["flags"]) and facts["python"].startswith("3.11.")
    # The freezer's venv runs on it, with the pinned PyInstaller.
    ran = json.loads(subprocess.run(
        first.python_argv("-c", "import sys, json, PyInstaller; print(json.dumps([sys.base_prefix, PyInstaller.__version__]))"),
        capture_output=True, text=True, timeout=120, check=True).stdout)
    assert Path(ran[0]) == prefix and ran[1] == "6.22.3"


# What the two memory steps change, seen from Python: the reference a frame takes on its code object
# (sys.getrefcount inside the call) and quickening (dis shows specialised instructions once a
# function ran often). No reference to a code object may be left behind (1,000 generators made from
# C), and assigning __code__ while the old code runs must stay safe.
_SHARED_CODE_PROBE = """
import dis, gc, json, sys

def f():
    return sys.getrefcount(f.__code__)

before = sys.getrefcount(f.__code__)
frame_ref = f() - before

def work(n):
    total = 0
    for i in range(n):
        total += i
    return total

for _ in range(50):
    work(20)
quickened = [i.opname for i in dis.get_instructions(work, adaptive=True)] != \\
    [i.opname for i in dis.get_instructions(work)]

def old():
    old.__code__ = new.__code__
    gc.collect()
    return sum(range(10))

def new():
    return "new"

def gen():
    yield 1

def call(function, *args, **kwargs):  # a call from C: the generator's frame is an entry frame
    return function(*args, **kwargs)

start = sys.getrefcount(gen.__code__)
for _ in range(1000):
    next(call(gen))
gen_refs = sys.getrefcount(gen.__code__) - start

print(json.dumps({"frame_ref": frame_ref, "quickened": quickened, "gen_refs": gen_refs, "old": old(),
                  "again": old()}))
"""


def _shared_code_facts(argv: list[str]) -> dict:
    done = subprocess.run([*argv, "-c", _SHARED_CODE_PROBE], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


def test_size_runtime_leaves_code_objects_unwritten_by_calls(built, tmp_path: Path) -> None:
    runtime = size_runtime_toolchain(built.project, tmp_path / "runtime.log")
    assert {"frames-borrow-code", "no-quickening"} <= set(runtime.facts["flag_steps"])
    size = _shared_code_facts(list(runtime.python_argv()))
    system = _shared_code_facts([sys.executable])  # the stock interpreter: the probe can tell them apart
    assert system == {"frame_ref": 1, "quickened": True, "gen_refs": 0, "old": 45, "again": "new"}
    assert size == {"frame_ref": 0, "quickened": False, "gen_refs": 0, "old": 45, "again": "new"}


def test_min_carries_a_smaller_libpython_than_min_system(built) -> None:
    size, system = built("min"), built("min-system")
    manifest = json.loads((size.dist_dir / "manifest.json").read_text())
    assert manifest["resolved_profile"]["runtime"] == "size" and manifest["smoke"]["passed"]
    assert manifest["toolchain"]["runtime"] == "size" and manifest["toolchain"]["build_log"].startswith("work/")
    assert json.loads((system.dist_dir / "manifest.json").read_text())["resolved_profile"]["runtime"] == "system"
    small, big = _libpython(size.dist_dir), _libpython(system.dist_dir)
    assert small.raw < big.raw and small.stored < big.stored
    assert size.total_bytes < system.total_bytes


# Issue 18's two programs that failed on the size runtime, and what they stand for: every builtin's
# text signature (inspect.signature), and the public C API through ctypes.pythonapi.
_STOCK_PROBE = """
import ctypes, dataclasses, inspect, json, sys, types

@dataclasses.dataclass(init=False)
class C:
    x: int = 1

def signature(obj):
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError) as err:
        return type(err).__name__

signatures = {name: signature(eval(name)) for name in ("len", "object", "dict.get", "sorted", "object.__init__")}
# Every builtin function and type of builtins, and every method of those types.
text = {}
for name, obj in vars(__builtins__).items():
    text[name] = getattr(obj, "__text_signature__", None)
    if isinstance(obj, type):
        for attr, member in vars(obj).items():
            text[f"{name}.{attr}"] = getattr(member, "__text_signature__", None)
names = json.load(sys.stdin)
print(json.dumps({"dataclass": C.__doc__, "signatures": signatures, "text": text,
                  "pythonapi": sorted(n for n in names if hasattr(ctypes.pythonapi, n))}))
"""
DEBIAN_PYTHON = Path("/usr/bin/python3.11")


def _stock_facts(argv: list[str], names: list[str]) -> dict:
    done = subprocess.run([*argv, "-I", "-c", _STOCK_PROBE], input=json.dumps(names), capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(done.stdout)


def test_size_runtime_behaves_as_debians_python_for_signatures_and_pythonapi(built, tmp_path: Path) -> None:
    from build.runtime.exports import public_api
    from build.runtime.sources import obtain_source

    assert DEBIAN_PYTHON.is_file(), "Debian's python3.11 (the same source) is the reference"
    runtime = size_runtime_toolchain(built.project, tmp_path / "runtime.log")
    assert {"text-signatures", "public-api"} <= set(runtime.facts["flag_steps"])
    names = sorted(public_api(obtain_source(built.project, tmp_path / "source.log").tree))
    prefix = built.project.cache_root / "runtime" / runtime.facts["runtime_key"]
    size = _stock_facts([str(prefix / "bin" / "python3.11")], names)
    debian = _stock_facts([str(DEBIAN_PYTHON)], names)
    _assert_behaves_alike(size, debian)


def _assert_behaves_alike(size: dict, debian: dict) -> None:
    assert size["dataclass"] == debian["dataclass"] == "C()"
    assert size["signatures"] == debian["signatures"] == {
        "len": "(obj, /)", "object": "()", "dict.get": "(self, key, default=None, /)",
        "sorted": "(iterable, /, *, key=None, reverse=False)", "object.__init__": "(self, /, *args, **kwargs)"}
    differ = {k: (size["text"].get(k), v) for k, v in debian["text"].items() if size["text"].get(k) != v}
    assert not differ and len(debian["text"]) > 1000
    # Every public name Debian's interpreter finds through ctypes, this one finds too.
    assert {"PyThreadState_SetAsyncExc", "PyEval_SetTrace", "PyRun_SimpleString"} <= set(debian["pythonapi"])
    assert sorted(set(debian["pythonapi"]) - set(size["pythonapi"])) == []


def test_aarch64_size_runtime_behaves_as_the_roots_python_for_signatures_and_pythonapi(built, tmp_path: Path) -> None:
    """The same two programs on min-aarch64's runtime (cross-compiled: its own configure answers,
    its own export list) against the root's Debian python3.11, both run in the same emulator. The
    runtime is the one the session's min-aarch64 build made: a few seconds of emulation, no compile."""
    from build.runtime.exports import public_api
    from build.runtime.sources import obtain_source
    from build.targets.toolchain import target_root

    toolchain = json.loads((built("min-aarch64").dist_dir / "manifest.json").read_text())["toolchain"]
    assert toolchain["runtime"] == "size" and {"text-signatures", "public-api"} <= set(toolchain["flag_steps"])
    runtime = load(built.project.cache_root / "runtime" / toolchain["runtime_key"])
    assert runtime is not None and runtime.target == "aarch64"
    launch = list(target_root("aarch64", built.project, tmp_path / "root.log").launcher())
    names = sorted(public_api(obtain_source(built.project, tmp_path / "source.log").tree))
    size = _stock_facts([*launch, str(runtime.python)], names)
    debian = _stock_facts([*launch, str(DEBIAN_PYTHON)], names)  # the root's, not this machine's
    _assert_behaves_alike(size, debian)


def test_an_export_list_change_relinks_the_compiled_tree_instead_of_compiling(built, tmp_path: Path) -> None:
    """A new dependency's extension module importing a name nothing else imports: another runtime,
    linked from the same compiled tree (issue 17: a full compile took 375.9 s)."""
    from elftools.elf.elffile import ELFFile

    from build.runtime.compile import COMPILED_STAMP, ExportInputs, build_runtime
    from build.runtime.sources import obtain_source
    from build.runtime.toolchain import export_inputs

    def exported(library: Path) -> set[str]:
        with library.open("rb") as stream:
            table = ELFFile(stream).get_section_by_name(".dynsym")
            return {s.name for s in table.iter_symbols() if s["st_shndx"] != "SHN_UNDEF"}

    project: Project = built.project
    key = size_runtime_toolchain(project, tmp_path / "runtime.log").facts["runtime_key"]
    first = load(project.cache_root / "runtime" / key)
    assert first is not None and first.compiled
    name = "_PyObject_GetMethod"
    assert name not in exported(first.libpython)
    source = tmp_path / "ext.c"
    source.write_text(f"extern int {name}(void *, void *, void **);\n"
                      f"int PyInit_ext(void) {{ return {name}(0, 0, 0); }}\n")
    ext = tmp_path / "ext.cpython-311-x86_64-linux-gnu.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", ext, source], check=True, timeout=60)
    stamp = project.cache_root / "runtime" / first.compiled / COMPILED_STAMP
    before = stamp.stat().st_mtime_ns
    inputs = export_inputs(first.flags)
    second = build_runtime(project, obtain_source(project, tmp_path / "source.log"), first.flags, target=first.target,
                           export_inputs=ExportInputs(users=(*inputs.users, ext), by_name=inputs.by_name))
    assert second.key != first.key and second.compiled == first.compiled
    assert second.seconds["compile"] == 0 and second.seconds["relink"] > 0
    assert stamp.stat().st_mtime_ns == before  # the compiled tree is as it was
    assert name in exported(second.libpython) and exported(first.libpython) < exported(second.libpython)
    ran = subprocess.run([second.python, "-I", "-c", "import ssl, json, ctypes; print(ctypes.pythonapi._PyObject_GetMethod"
                          " is not None)"], capture_output=True, text=True, timeout=120, check=True)
    assert ran.stdout.strip() == "True"
    print(f"relink {second.seconds['relink']} s (compile of the tree: see {first.compiled}/compiled.json)")
