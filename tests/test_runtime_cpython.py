"""CPython's own regression tests, a chosen set, run on the size runtime from the source tree it was
compiled from (the runtime installs no tests: --disable-test-modules).

Every test that fails on it is listed below with the reason; a failure not listed fails this test,
and so does a listed one that passes (the list stays true). The set covers what the size steps
touch: frames and code (frames-borrow-code, no-quickening), generators and coroutines made from C,
tracing, the method cache (test_descr), docstrings cut to their signatures (test_inspect,
test_dataclasses), the export list (test_ctypes), and the modules the app leans on.
"""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import pytest

from build import proc
from build.project import Project
from build.runtime.compile import load
from build.runtime.sources import obtain_source
from build.runtime.toolchain import size_runtime_toolchain

pytestmark = pytest.mark.integration

TESTS = ("test_frame", "test_generators", "test_coroutines", "test_asyncgen", "test_sys_settrace", "test_dataclasses",
         "test_inspect", "test_descr", "test_gc", "test_weakref", "test_threading", "test_ctypes", "test_json",
         "test_re", "test_ssl", "test_funcattrs", "test_scope", "test_exceptions")
# Whole run; the slowest module takes about a minute on 2 busy cores.
TIMEOUT = 900
PER_TEST_TIMEOUT = 600

_NO_DOC = "the prose of C docstrings is dropped (text-signatures keeps only the signature)"
_NO_TESTCAPI = "no _testcapi (--disable-test-modules; a test module, and it calls private API the export list drops)"
_NO_TESTCAPI_CHILD = "runs `python -c 'import _testcapi ...'` in a child: no _testcapi (--disable-test-modules)"
# test id (module.Class.method) -> why it fails on the size runtime.
EXPECTED_FAILURES: dict[str, str] = {
    "test_generators.__test__.email": _NO_DOC + ": a doctest prints i.__next__.__doc__",
    "test_coroutines.CoroutineTest.test_corotype_1": _NO_DOC + ": asserts on coroutine.send.__doc__",
    "test_coroutines.CAPITest.test_tp_await_1": _NO_TESTCAPI,
    "test_coroutines.CAPITest.test_tp_await_2": _NO_TESTCAPI,
    "test_coroutines.CAPITest.test_tp_await_3": _NO_TESTCAPI,
    "test_inspect.TestClassesAndFunctions.test_getfullargspec_builtin_func": _NO_TESTCAPI,
    "test_inspect.TestClassesAndFunctions.test_getfullargspec_builtin_func_no_signature": _NO_TESTCAPI,
    "test_inspect.TestSignatureObject.test_signature_on_builtins": _NO_TESTCAPI,
    "test_inspect.TestSignatureObject.test_signature_on_builtins_no_signature": _NO_TESTCAPI,
    "test_inspect.TestSignatureObject.test_signature_on_decorated_builtins": _NO_TESTCAPI,
    "test_gc.GCCallbackTests.test_collect_garbage": _NO_TESTCAPI + " (with_tp_del)",
    "test_gc.GCTests.test_legacy_finalizer": _NO_TESTCAPI + " (with_tp_del)",
    "test_gc.GCTests.test_legacy_finalizer_newclass": _NO_TESTCAPI + " (with_tp_del)",
    "test_gc.GCTests.test_garbage_at_shutdown": _NO_TESTCAPI_CHILD,
    "test_weakref.ReferencesTestCase.test_cfunction": _NO_TESTCAPI,
    "test_threading.SubinterpThreadingTests.test_threads_join": _NO_TESTCAPI,
    "test_threading.SubinterpThreadingTests.test_threads_join_2": _NO_TESTCAPI,
    "test_threading.SubinterpThreadingTests.test_daemon_threads_fatal_error": _NO_TESTCAPI_CHILD,
    "test_threading.ThreadTests.test_frame_tstate_tracing": _NO_TESTCAPI,
    "test_exceptions.ExceptionTests.testSettingException": _NO_TESTCAPI,
    "test_exceptions.ExceptionTests.test_MemoryError": _NO_TESTCAPI,
    "test_exceptions.ExceptionTests.test_exception_with_doc": _NO_TESTCAPI,
    "test_exceptions.ExceptionTests.test_memory_error_cleanup": _NO_TESTCAPI,
    "test_exceptions.ExceptionTests.test_memory_error_in_PyErr_PrintEx": _NO_TESTCAPI_CHILD,
    "test_exceptions.ExceptionTests.test_recursion_normalizing_exception": _NO_TESTCAPI_CHILD + " (_testinternalcapi)",
    "test_exceptions.ExceptionTests.test_recursion_normalizing_infinite_exception": _NO_TESTCAPI_CHILD,
    "test_exceptions.ExceptionTests.test_recursion_normalizing_with_no_memory": _NO_TESTCAPI_CHILD,
    "ctypes.test.test_structures.StructureTestCase.test_packed_c_limits": _NO_TESTCAPI,
    "ctypes.test.test_values.PythonValuesTestCase.test_frozentable":
        "reads the private _PyImport_FrozenBootstrap through ctypes: private data is not exported (public-api exports "
        "the public C API only)",
}

# test_ssl again on the TLS runtime (`tls = true` profiles: OpenSSL built for a client, inside _ssl).
_NO_TLS12_METHOD = ("PROTOCOL_TLSv1_2 is gone with TLSv1_2_method (no-deprecated; deprecated since Python 3.6): "
                    "ValueError, as the README says; PROTOCOL_TLS_CLIENT with maximum_version does the same")
TLS_EXPECTED_FAILURES: dict[str, str] = {
    "test_ssl.ContextTests.test__create_stdlib_context": _NO_TLS12_METHOD,
    "test_ssl.ContextTests.test_constructor": _NO_TLS12_METHOD,
    "test_ssl.ThreadedTests.test_protocol_tlsv1_2": _NO_TLS12_METHOD,
    "test_ssl.ContextTests.test_min_max_version":
        "no TLS 1.0/1.1 (no-tls1, no-tls1_1): the lowest version is TLS 1.2, not one of the older ones it expects",
}

# The tests run in a venv of the runtime whose site-packages holds the source tree's `test` package,
# so the tests' own subprocesses find it (several run `python -I`, which ignores PYTHONPATH but
# keeps a venv's site-packages). ctypes' tests are not installed either (--disable-test-modules):
# the ctypes package then loads from the source tree, linked there too (the same files `make
# install` copied; test.support discovers a package's tests only under site-packages, where it lives).
# Both are found there first, before the standard library: Debian's own python3.11 (a target root's,
# benchmarks/emulated_runtime.py) has a partial `test` package and a ctypes without tests. A .pth
# line installs the finder, since Debian's sitecustomize.py in the standard library would hide ours.
_TREE_FIRST = """\
import importlib.machinery, os, sys

class _FromTheTree:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in ("ctypes", "test"):
            return importlib.machinery.PathFinder.find_spec(name, [os.path.dirname(__file__)])
        return None

sys.meta_path.insert(0, _FromTheTree)
"""
# regrtest, with SIGINT handled as Python does by default whatever started pytest (a shell's
# background job ignores it, and so would every worker: test_threading's interrupt_main tests).
_REGRTEST = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "runpy.run_module('test', run_name='__main__', alter_sys=True)")


def venv_with_tests(prefix: Path, tree: Path, folder: Path, log: Path, *, launch: Sequence[str] = (),
                    cc: Sequence[str] = ("gcc",), headers: Path | None = None) -> Path:
    """A venv of the runtime in `prefix` that sees the `test` package and ctypes' tests of the source
    tree `tree`, and the C module ctypes' tests call (compiled here against the runtime's headers: an
    extension module like any other, so it also tries the export list). For a target's runtime,
    `launch` runs it under emulation (the paths are the same inside the root) and `cc` is the cross
    compiler with the root as its sysroot and `headers` the runtime's Python.h folder as seen from
    here (benchmarks/emulated_runtime.py)."""
    venv = folder / "venv"
    proc.run([*launch, prefix / "bin" / "python3.11", "-m", "venv", "--without-pip", venv], log=log, timeout=600)
    site = next(venv.glob("lib/python3.*/site-packages"))
    (site / "test").symlink_to(tree / "Lib" / "test")
    (site / "ctypes").symlink_to(tree / "Lib" / "ctypes")
    (site / "_tree_first.py").write_text(_TREE_FIRST)
    (site / "_tree_first.pth").write_text("import _tree_first\n")
    proc.run([*cc, "-shared", "-fPIC", "-Os", f"-I{headers or prefix / 'include' / 'python3.11'}", "-o",
              site / "_ctypes_test.so", tree / "Modules" / "_ctypes" / "_ctypes_test.c"], log=log, timeout=300)
    return venv / "bin" / "python"


def _results(xml: Path) -> tuple[dict[str, str], int]:
    """(failed test id -> first line of its message, number of tests run) from regrtest's JUnit XML."""
    failed, run = {}, 0
    for case in ET.parse(xml).getroot().iter("testcase"):
        run += 1
        test_id = (case.get("name") or "").removeprefix("test.")
        for kind in ("failure", "error"):
            node = case.find(kind)
            if node is not None:
                failed[test_id] = (node.get("message") or node.text or kind).strip().splitlines()[0][:200]
    return failed, run


@pytest.fixture(scope="module")
def cpython_run(built, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], int, float, str]:
    project: Project = built.project
    folder = tmp_path_factory.mktemp("cpython-tests")
    runtime = load(project.cache_root / "runtime" / size_runtime_toolchain(project, folder / "runtime.log")
                   .facts["runtime_key"])
    assert runtime is not None
    tree = obtain_source(project, folder / "source.log").tree
    log = folder / "regrtest.log"
    python = venv_with_tests(runtime.prefix, tree, folder, log)
    failed, run, seconds = run_regrtest(python, TESTS, folder, log)
    return failed, run, seconds, log.read_text()


def run_regrtest(python: Path, tests: Sequence[str], folder: Path, log: Path, *, launch: Sequence[str] = (),
                 timeout: float = TIMEOUT) -> tuple[dict[str, str], int, float]:
    """regrtest of `tests` on `python` (behind `launch` for a target's): failed ids, cases run, seconds."""
    xml = folder / "junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    started = time.monotonic()
    proc.run([*launch, python, "-X", "faulthandler", "-c", _REGRTEST, "-j2", f"--timeout={PER_TEST_TIMEOUT}",
              "--junit-xml", xml, *tests], log=log, env=env, cwd=folder, timeout=timeout, check=False)
    seconds = time.monotonic() - started
    assert xml.is_file(), log.read_text()[-3000:]
    failed, run = _results(xml)
    return failed, run, seconds


def _unexplained(failed: dict[str, str], expected: dict[str, str], output: str) -> None:
    new = {k: v for k, v in failed.items() if k not in expected}
    assert not new, "failures not listed:\n" + "\n".join(f"{k}: {v}" for k, v in sorted(new.items())) \
        + "\n" + output[-2000:]
    passing = sorted(set(expected) - set(failed))
    assert not passing, f"listed as failing but passed (remove them from the list): {passing}"


def test_cpython_tests_fail_only_where_listed(cpython_run) -> None:
    failed, run, seconds, output = cpython_run
    print(f"{run} tests of {len(TESTS)} modules in {seconds:.0f} s; {len(failed)} failed, all listed")
    _unexplained(failed, EXPECTED_FAILURES, output)
    assert run > 2500  # every module ran (about 2,700 cases): an import error is one case, not hundreds


def test_test_ssl_on_the_tls_runtime_fails_only_where_listed(built, tmp_path: Path) -> None:
    """test_ssl on the runtime the TLS profiles ship (_ssl with the trimmed OpenSSL inside), which
    the session's min-tls build has made: what the cut options change is listed, nothing else."""
    from build.runtime.tls import tls_runtime_toolchain

    project: Project = built.project
    venv_python = tls_runtime_toolchain(project, tmp_path / "runtime.log").python
    home = next(line.split("=", 1)[1].strip() for line in (venv_python.parent.parent / "pyvenv.cfg").read_text()
                .splitlines() if line.startswith("home"))
    prefix = Path(home).parent  # the TLS runtime itself, not the venv the freezer runs in
    log = tmp_path / "regrtest.log"
    python = venv_with_tests(prefix, obtain_source(project, tmp_path / "source.log").tree, tmp_path, log)
    failed, run, seconds = run_regrtest(python, ["test_ssl"], tmp_path, log)
    print(f"test_ssl on the TLS runtime: {run} tests in {seconds:.0f} s; {len(failed)} failed, all listed")
    _unexplained(failed, TLS_EXPECTED_FAILURES, log.read_text())
    assert run > 150  # the module ran (an import error is one case)
