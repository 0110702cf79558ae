"""The size runtime's cross build: its configure line, environment, source edit, and the sysroot's links."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from build.runtime.compile import runtime_key, ExportInputs
from build.runtime.cross import CONFIG_SITE, Cross, build_triplet, configure_args, environment, sysconfigdata_edit
from build.runtime.flags import size_flags
from build.runtime.sources import Source
from build.targets.root import relative_library_links

CROSS = Cross(triplet="aarch64-linux-gnu", sysroot=Path("/cache/targets/aarch64-k"), sysroot_key="k", run=("qemu",))


def test_configure_is_told_the_host_the_build_python_and_the_sysroot() -> None:
    args = configure_args(CROSS, "/usr/bin/python3.11", build_triplet("x86_64"))
    assert args == ["--build=x86_64-linux-gnu", "--host=aarch64-linux-gnu", "--with-build-python=/usr/bin/python3.11",
                    "CC=aarch64-linux-gnu-gcc --sysroot=/cache/targets/aarch64-k"]
    assert CROSS.strip == "aarch64-linux-gnu-strip"


def test_pkg_config_reads_the_roots_files_without_a_sysroot_prefix(tmp_path: Path) -> None:
    env = environment(CROSS, tmp_path / "config.site")
    assert env["PKG_CONFIG_LIBDIR"].split(":") == ["/cache/targets/aarch64-k/usr/lib/aarch64-linux-gnu/pkgconfig",
                                                   "/cache/targets/aarch64-k/usr/share/pkgconfig"]
    assert "PKG_CONFIG_SYSROOT_DIR" not in env and env["CONFIG_SITE"] == str(tmp_path / "config.site")


CONFIGURE = Path(__file__).resolve().parents[1] / "work" / ".cache" / "runtime" / "src" / "tree" / "configure"
# What configure's own fragments need around them to run alone in sh.
PRELUDE = """as_fn_error () { echo "configure failed: $2"; exit 1; }
as_echo='printf %s\\n'; as_echo_n='printf %s'; as_me=configure
ac_fn_c_try_run () { return 1; }
"""


def run_fragment(fragment: str, *, cross: bool, site: Path | None, names: list[str], cwd: Path) -> dict[str, str]:
    script = (PRELUDE + (f". {site}\n" if site else "") + f"cross_compiling={'yes' if cross else 'no'}\n"
              + fragment + "\n" + "".join(f'echo "{n}=${{{n}-unset}}"\n' for n in names))
    ran = subprocess.run(["sh", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return dict(line.split("=", 1) for line in ran.stdout.splitlines() if line.startswith(tuple(names)))


@pytest.mark.skipif(not CONFIGURE.is_file(), reason="the size runtime's source is not unpacked (build --profile min)")
def test_config_site_answers_what_pythons_configure_cannot_check_when_cross_compiling(tmp_path: Path) -> None:
    # configure's own checks, cut from Debian's python3.11 configure and run in sh: cross-compiling,
    # each refuses to run unless config.site answers it; the answers must be what the check finds
    # natively on this Linux machine, and configure's getaddrinfo check must then not stop it.
    text = CONFIGURE.read_text(encoding="utf-8", errors="replace")
    site = tmp_path / "config.site"
    site.write_text(CONFIG_SITE)
    files = re.findall(r"(if \$\{(ac_cv_file__\w+)\+:\} false; then :\n.*?\nfi\nfi\n)", text, flags=re.S)
    files = [(block, name) for block, name in files if "cannot check for file existence when cross" in block]
    start = text.index('if test "x$ac_cv_func_getaddrinfo" = xyes; then :')
    getaddrinfo = text[start:text.index('\nelse\n\n$as_echo "#define HAVE_GETADDRINFO 1"', start)] + "\nfi\n"
    needed = [name for _, name in files] + ["ac_cv_buggy_getaddrinfo"]
    assert {"ac_cv_file__dev_ptmx", "ac_cv_buggy_getaddrinfo"} <= set(needed)
    for block, name in files:
        native = run_fragment(block, cross=False, site=None, names=[name], cwd=tmp_path)
        assert run_fragment(block, cross=True, site=site, names=[name], cwd=tmp_path) == native
    for ipv6 in ("yes", "no"):
        run_fragment(f"ac_cv_func_getaddrinfo=yes; ipv6={ipv6}\n" + getaddrinfo, cross=True, site=site,
                     names=needed, cwd=tmp_path)
    # Nothing else: every answer is one of those checks.
    set_by_site = run_fragment("", cross=True, site=site, names=needed, cwd=tmp_path)
    assert sorted(n for n, v in set_by_site.items() if v != "unset") == sorted(needed)
    assert len(CONFIG_SITE.splitlines()) == len(needed)


def test_the_sysconfigdata_name_follows_debians_patch() -> None:
    line = ("PYTHON_FOR_BUILD='_PYTHON_PROJECT_BASE=$(abs_builddir) "
            "_PYTHON_SYSCONFIGDATA_NAME=_sysconfigdata_$(ABIFLAGS)_$(MACHDEP)_$(MULTIARCH) '$with_build_python\n")
    edited = sysconfigdata_edit(line)
    assert "_PYTHON_SYSCONFIGDATA_NAME=_sysconfigdata_$(ABIFLAGS)_$(MULTIARCH) '" in edited
    assert sysconfigdata_edit(edited) == edited  # idempotent
    with pytest.raises(ValueError, match="no _PYTHON_SYSCONFIGDATA_NAME line"):
        sysconfigdata_edit("#!/bin/sh\n")


def test_a_runtime_for_another_root_is_another_runtime() -> None:
    source = Source(version="3.11.2-6+deb12u8", tree=Path("/t"), dsc=Path("/t.dsc"))
    flags = size_flags("aarch64")
    one = runtime_key(source, flags, "aarch64", ExportInputs(), CROSS)
    other = runtime_key(source, flags, "aarch64", ExportInputs(),
                        Cross(triplet=CROSS.triplet, sysroot=CROSS.sysroot, sysroot_key="k2", run=()))
    assert one != other and one.startswith("python3.11-aarch64-")
    # Where the root lies and how it is run are not inputs of the compile.
    moved = Cross(triplet=CROSS.triplet, sysroot=Path("/elsewhere"), sysroot_key="k", run=("x",))
    assert runtime_key(source, flags, "aarch64", ExportInputs(), moved) == one


def test_absolute_library_links_become_relative_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    lib = root / "lib" / "aarch64-linux-gnu"
    usr_lib = root / "usr" / "lib" / "aarch64-linux-gnu"
    lib.mkdir(parents=True)
    usr_lib.mkdir(parents=True)
    (lib / "libm.so.6").write_bytes(b"\x7fELF")
    (usr_lib / "libffi.so.8").write_bytes(b"\x7fELF")
    (usr_lib / "libm.so").symlink_to("/lib/aarch64-linux-gnu/libm.so.6")
    (usr_lib / "libffi.so").symlink_to("libffi.so.8")
    assert relative_library_links(root, "aarch64-linux-gnu") == 1
    assert os.readlink(usr_lib / "libm.so") == "../../../lib/aarch64-linux-gnu/libm.so.6"
    assert (usr_lib / "libm.so").resolve() == (lib / "libm.so.6").resolve()
    assert os.readlink(usr_lib / "libffi.so") == "libffi.so.8"
    assert relative_library_links(root, "aarch64-linux-gnu") == 0
    assert relative_library_links(root, "arm-linux-gnueabihf") == 0  # no such folder: nothing to do


def test_a_missing_cross_compiler_names_its_debian_package_and_makes_nothing(tmp_path: Path, monkeypatch) -> None:
    from build.errors import ToolMissing
    from build.project import Project
    from build.runtime.compile import build_runtime
    from build.runtime.flags import merge, step_named

    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("make", "patchelf", "python3.11"):  # everything but the cross compiler
        found = shutil.which(tool)
        if found:
            (tools / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(tools))
    root = Path(__file__).resolve().parent.parent
    project = Project.at(root, work=tmp_path / "work", dist=tmp_path / "dist", reports=tmp_path / "reports",
                         cache=tmp_path / "cache")
    source = Source(version="3.11.2-1", tree=tmp_path / "tree", dsc=tmp_path / "x.dsc")
    with pytest.raises(ToolMissing) as missing:
        build_runtime(project, source, merge([step_named("Os")]), target="aarch64", cross=CROSS)
    assert str(missing.value).startswith("'aarch64-linux-gnu-gcc' was not found on PATH; install the Debian "
                                         "package 'gcc-aarch64-linux-gnu'")
    assert not [p for p in (project.cache_root / "runtime").iterdir() if not p.name.endswith((".tmp", ".lock"))]


def test_a_cross_build_compiles_once_per_root_and_relinks_per_export_list(tmp_path: Path) -> None:
    from build.runtime.compile import compile_key

    source = Source(version="3.11.2-6+deb12u8", tree=Path("/t"), dsc=Path("/t.dsc"))
    flags = size_flags("aarch64")
    compiled = compile_key(source, flags, "aarch64", CROSS)
    assert compiled.endswith("-compiled") and compiled != compile_key(source, flags, "aarch64") \
        and compiled != compile_key(source, flags, "aarch64", Cross(triplet=CROSS.triplet, sysroot=CROSS.sysroot,
                                                                     sysroot_key="k2", run=()))
    # Another export list is another runtime from the same compiled tree.
    loader = tmp_path / "loader"
    loader.write_bytes(b"\x00PyRun_SimpleString\x00")
    other = ExportInputs(by_name=(loader,))
    assert runtime_key(source, flags, "aarch64", ExportInputs(), CROSS) != runtime_key(source, flags, "aarch64", other, CROSS)


def test_the_cross_edit_and_the_flag_edits_compose_on_one_tree(tmp_path: Path) -> None:
    from build.runtime.compile import _edited_tree
    from build.runtime.flags import merge, step_named

    tree = tmp_path / "tree"
    (tree / "Modules").mkdir(parents=True)
    (tree / "configure").write_text("PYTHON_FOR_BUILD='_PYTHON_SYSCONFIGDATA_NAME=_sysconfigdata_$(ABIFLAGS)_$(MACHDEP)_"
                                    "$(MULTIARCH) '$with_build_python\n")
    (tree / "Modules" / "pyexpat.c").write_text('#include "Python.h"\n')
    source = Source(version="3.11.2-1", tree=tree, dsc=tmp_path / "x.dsc")
    folder = tmp_path / "compiled"
    folder.mkdir()
    edited = _edited_tree(source, merge([step_named("Os")]), folder, tmp_path / "log", CROSS)
    assert edited == folder / "src"
    assert "_sysconfigdata_$(ABIFLAGS)_$(MULTIARCH) '" in (edited / "configure").read_text()
    assert (edited / "Modules" / "pyexpat.c").read_text().startswith("#ifndef Py_BUILD_CORE_BUILTIN")
    assert "$(MACHDEP)" in (tree / "configure").read_text()  # the cached tree is never edited
