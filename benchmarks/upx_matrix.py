"""Benchmark: what UPX can pack on this machine without breaking a frozen artifact, and with
which options. Every row is packed, then actually loaded/run; nothing is assumed.

    .venv/bin/python benchmarks/upx_matrix.py [--python BIN] [--libpython SO] [--ext SO ...]
        [--bootloader RUN] [--skip-pyinstaller] [--skip-nuitka] [--strace] [--keep]

Experiments (all in a temporary directory; nothing outside it is written):
 1. libpython (stripped copy) packed with each UPX option, loaded by the real interpreter through
    LD_LIBRARY_PATH (the row checks /proc/self/maps that the packed copy is the one mapped).
 2. extension modules (stripped copies of _json, unicodedata, _socket from lib-dynload), imported
    from a directory put ahead of lib-dynload on sys.path, then exercised.
 3. libcrypto/libssl copies (the ones _ssl/_hashlib load), via LD_LIBRARY_PATH.
 4. the PyInstaller bootloader: packed alone and spliced with the exact PKG bytes of a built
    onefile and onedir executable (archive start = cookie end - cookie.pkg_length); and `upx` run
    on the whole built executable.
 5. PyInstaller builds with PYINSTALLER_FORCE_UPX=1: stock (PyInstaller passes --lzma) against a
    `upx` wrapper (given with --upx-dir) that drops --lzma, beside a --strip-only baseline.
 6. Nuitka: a standalone dist (main .bin, extension modules, patchelf'd system libs) packed by
    hand, and a onefile built with --plugin-enable=upx.
Output: one table -- target, option, bytes before, bytes after, runs? (yes / NO: <signal or error>
/ n/a: <why upx refused>) and a note. A benchmark, not a test: it asserts nothing.
Needs: upx and strip on PATH; PyInstaller (for 4, 5) and Nuitka + a C compiler (for 6) importable
by the interpreter running this script. Takes about 5 minutes with everything enabled.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import struct
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

RUN_TIMEOUT = 120  # seconds for one run of a packed artifact
HELLO_SOURCE = """\
import hashlib, json, socket, sys, unicodedata
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.close()
print("hello", json.dumps({"n": unicodedata.name("a")}), hashlib.sha256(b"x").hexdigest()[:8], sys.version.split()[0])
"""
HELLO_EXPECT = "hello "

# UPX options tried on ELF shared objects. Hidden/format options included on purpose: they are
# accepted by upx 4.2.x even though `upx --help` does not list them.
SHLIB_OPTIONS: list[tuple[str, list[str]]] = [
    ("default (NRV2B/E auto)", []),
    ("-1", ["-1"]),
    ("--best", ["--best"]),
    ("--nrv2b", ["--nrv2b"]),
    ("--nrv2d", ["--nrv2d"]),
    ("--nrv2e", ["--nrv2e"]),
    ("--exact", ["--exact"]),
    ("--android-shlib", ["--android-shlib"]),
    ("--force-pie", ["--force-pie"]),
    ("--lzma", ["--lzma"]),
    ("--best --lzma", ["--best", "--lzma"]),
    ("--android-shlib --lzma", ["--android-shlib", "--lzma"]),
]
EXT_OPTIONS = [o for o in SHLIB_OPTIONS if o[0] in ("default (NRV2B/E auto)", "--best", "--nrv2b", "--lzma")]
SSL_OPTIONS = [o for o in SHLIB_OPTIONS if o[0] in ("default (NRV2B/E auto)", "--best", "--lzma")]
EXE_OPTIONS: list[tuple[str, list[str]]] = [("default", []), ("--best", ["--best"]), ("--lzma", ["--lzma"])]


@dataclass
class Row:
    target: str
    option: str
    before: int | None
    after: int | None
    runs: str
    note: str = ""


ROWS: list[Row] = []


def log(msg: str) -> None:
    print(f"[upx_matrix] {msg}", file=sys.stderr, flush=True)


def add(row: Row) -> None:
    ROWS.append(row)
    log(f"{row.target} | {row.option} | {row.before} -> {row.after} | {row.runs}")


# ---- helpers ----

def tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        sys.exit(f"upx_matrix: `{name}` not found on PATH")
    return path


def size_of(path: Path) -> int:
    """Bytes of a file, or of all regular files under a directory (symlinks not followed)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            p = Path(root, f)
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    line = lines[-1]
    if "error while loading shared libraries: " in line:  # drop the program path in front
        line = "ld.so: " + line.split("error while loading shared libraries: ", 1)[1]
    return line[:90]


def upx(src: Path, dst: Path, opts: list[str]) -> str | None:
    """Pack src into dst; returns None on success, else upx's error line."""
    if dst.exists():
        dst.unlink()
    p = subprocess.run([tool("upx"), "-q", "-q", "--no-progress", *opts, "-o", str(dst), str(src)],
                       capture_output=True, text=True)
    if p.returncode != 0 or not dst.exists():
        err = p.stderr + p.stdout
        for ln in err.splitlines():
            if "Exception" in ln or "upx:" in ln:
                return ln.split(": ", 2)[-1].strip()[:100]
        return last_line(err) or f"upx exit {p.returncode}"
    return None


def strip_copy(src: Path, dst: Path) -> Path:
    subprocess.run([tool("strip"), "-o", str(dst), str(src)], check=True)
    dst.chmod(0o755)
    return dst


def verdict(argv: list[str], env: dict | None = None, expect: str | None = None,
            cwd: Path | None = None) -> str:
    """Run argv; 'yes' if it exited 0 (and printed `expect`), else 'NO: <signal or error>'."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "NO: timeout"
    if p.returncode < 0:
        try:
            name = signal.Signals(-p.returncode).name
        except ValueError:
            name = f"signal {-p.returncode}"
        return f"NO: {name}"
    if p.returncode != 0:
        return f"NO: exit {p.returncode}: {last_line(p.stderr) or last_line(p.stdout)}"
    if expect is not None and expect not in p.stdout:
        return f"NO: unexpected output: {last_line(p.stdout)}"
    return "yes"


def env_with(**extra: str) -> dict:
    env = dict(os.environ)
    env.update(extra)
    return env


# ---- 1. libpython ----

def exp_libpython(python_bin: Path, libpython: Path, work: Path, strace: bool) -> None:
    d = work / "libpython"
    d.mkdir()
    soname = libpython.name
    stripped = strip_copy(libpython, d / "stripped.so")
    def check(libdir: Path) -> str:
        return (f"import json, unicodedata, hashlib\n"
                f"maps = open('/proc/self/maps').read()\n"
                f"assert {str(libdir / soname)!r} in maps, 'packed libpython is not the one mapped'\n"
                f"print(json.dumps(unicodedata.name('a')), hashlib.sha256(b'x').hexdigest()[:8])\n")

    plain = d / "plain"
    plain.mkdir()
    shutil.copy2(stripped, plain / soname)
    add(Row("libpython (LD_LIBRARY_PATH)", "strip only", size_of(libpython), size_of(stripped),
            verdict([str(python_bin), "-c", check(plain)], env_with(LD_LIBRARY_PATH=str(plain)))))
    first_fail: Path | None = None
    for i, (label, opts) in enumerate(SHLIB_OPTIONS):
        sub = d / f"opt{i}"
        sub.mkdir()
        err = upx(stripped, sub / soname, opts)
        if err:
            add(Row("libpython (LD_LIBRARY_PATH)", label, size_of(stripped), None, f"n/a: upx: {err}"))
            continue
        runs = verdict([str(python_bin), "-c", check(sub)], env_with(LD_LIBRARY_PATH=str(sub)))
        add(Row("libpython (LD_LIBRARY_PATH)", label, size_of(stripped), size_of(sub / soname), runs,
                "stripped input"))
        if "SIGTRAP" in runs and first_fail is None:
            first_fail = sub
    if strace and first_fail is not None and shutil.which("strace"):
        p = subprocess.run(["strace", "-f", "-e", "trace=memfd_create,mmap,write,ftruncate,openat",
                            str(python_bin), "-c", "pass"], capture_output=True, text=True,
                           env=env_with(LD_LIBRARY_PATH=str(first_fail)))
        tail = [ln for ln in p.stderr.splitlines() if "ENOENT" not in ln][-8:]
        log(f"strace tail of the first SIGTRAP libpython ({first_fail.name}):\n  " + "\n  ".join(tail))


# ---- 2. extension modules ----

EXT_CHECKS = {
    "_json": "import json; assert json.scanner.c_make_scanner is not None; json.loads('{\"a\": [1, 2]}')",
    "unicodedata": "unicodedata.normalize('NFD', '\\u00e9'); unicodedata.name('a')",
    "_socket": "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.close()",
}


def exp_ext_modules(python_bin: Path, modules: list[Path], work: Path) -> None:
    d = work / "ext"
    d.mkdir()
    for mod in modules:
        name = mod.name.split(".")[0]
        stripped = strip_copy(mod, d / f"stripped-{mod.name}")
        target = f"ext module {name} (sys.path)"
        plain = d / f"{name}-plain"
        plain.mkdir()
        shutil.copy2(stripped, plain / mod.name)
        add(Row(target, "strip only", size_of(mod), size_of(stripped), verdict([str(python_bin), "-c", (
            f"import sys; sys.path.insert(0, {str(plain)!r}); import {name}; " + EXT_CHECKS.get(name, "pass"))])))
        for i, (label, opts) in enumerate(EXT_OPTIONS):
            sub = d / f"{name}-{i}"
            sub.mkdir()
            err = upx(stripped, sub / mod.name, opts)
            if err:
                add(Row(target, label, size_of(stripped), None, f"n/a: upx: {err}"))
                continue
            code = (f"import sys; sys.path.insert(0, {str(sub)!r}); import {name}; "
                    f"assert {name}.__file__.startswith({str(sub)!r}), {name}.__file__; "
                    + EXT_CHECKS.get(name, "pass"))
            add(Row(target, label, size_of(stripped), size_of(sub / mod.name),
                    verdict([str(python_bin), "-c", code]), "stripped input"))


# ---- 3. libcrypto / libssl ----

def openssl_libs(python_bin: Path) -> list[Path]:
    code = ("import _ssl, _hashlib\n"
            "seen = []\n"
            "for ln in open('/proc/self/maps'):\n"
            "    p = ln.split()[-1]\n"
            "    if ('/libcrypto.so' in p or '/libssl.so' in p) and p not in seen: seen.append(p)\n"
            "print('\\n'.join(seen))")
    p = subprocess.run([str(python_bin), "-c", code], capture_output=True, text=True)
    return [Path(x) for x in p.stdout.split()] if p.returncode == 0 else []


def exp_openssl(python_bin: Path, work: Path) -> None:
    libs = openssl_libs(python_bin)
    if not libs:
        add(Row("libcrypto/libssl", "-", None, None, "n/a: interpreter has no _ssl/_hashlib"))
        return
    d = work / "openssl"
    d.mkdir()
    stripped = [strip_copy(lib, d / f"stripped-{lib.name}") for lib in libs]
    def check(libdir: Path) -> str:
        wanted = [str(libdir / lib.name) for lib in libs]
        return ("import ssl, hashlib; ssl.create_default_context(); hashlib.sha256(b'x').hexdigest(); "
                "maps = open('/proc/self/maps').read(); "
                f"assert all(w in maps for w in {wanted!r}), 'packed copies not mapped'")

    for i, (label, opts) in enumerate(SSL_OPTIONS):
        sub = d / f"opt{i}"
        sub.mkdir()
        errs = [upx(s, sub / lib.name, opts) for s, lib in zip(stripped, libs)]
        target = " + ".join(lib.name for lib in libs)
        before = sum(size_of(s) for s in stripped)
        if any(errs):
            add(Row(target, label, before, None, f"n/a: upx: {next(e for e in errs if e)}"))
            continue
        add(Row(target, label, before, size_of(sub), verdict(
            [str(python_bin), "-c", check(sub)], env_with(LD_LIBRARY_PATH=str(sub))),
            "stripped input, loaded by _ssl/_hashlib"))


# ---- 4. PyInstaller bootloader + archive ----

def pkg_bounds(exe: Path) -> tuple[int, int]:
    """(start, end) of the CArchive (PKG) in a PyInstaller executable, as the bootloader finds it:
    scan back from the file end for the cookie; end = cookie offset + cookie length;
    start = end - cookie.pkg_length. Cross-checked with PyInstaller's own CArchiveReader."""
    from PyInstaller.archive.readers import CArchiveReader

    data = exe.read_bytes()
    magic = CArchiveReader._COOKIE_MAGIC_PATTERN
    cookie = data.rfind(magic)
    if cookie < 0:
        raise ValueError(f"{exe}: no PyInstaller cookie")
    _magic, pkg_length, _toc_off, _toc_len, _pyver, _lib = struct.unpack(
        CArchiveReader._COOKIE_FORMAT, data[cookie:cookie + CArchiveReader._COOKIE_LENGTH])
    end = cookie + CArchiveReader._COOKIE_LENGTH
    start = end - pkg_length
    reader = CArchiveReader(str(exe))
    assert (reader._start_offset, reader._end_offset) == (start, end), "cookie arithmetic disagrees"
    return start, end


def splice(packed_bootloader: Path, frozen_exe: Path, out: Path) -> None:
    """Packed bootloader ELF + the exact PKG bytes of frozen_exe. The PKG is position independent
    (TOC offsets are relative to its start, which the bootloader recomputes from the cookie), so
    plain appending works; the ELF section headers objcopy left after the PKG are dropped."""
    start, end = pkg_bounds(frozen_exe)
    with frozen_exe.open("rb") as f:
        f.seek(start)
        pkg = f.read(end - start)
    out.write_bytes(packed_bootloader.read_bytes() + pkg)
    out.chmod(0o755)


def pyinstaller_build(work: Path, hello: Path, mode: str, name: str, extra: list[str],
                      env: dict | None = None) -> Path | None:
    cfg = work / f"pyicfg-{name}"
    e = env_with(PYINSTALLER_CONFIG_DIR=str(cfg))
    if env:
        e.update(env)
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
           f"--{mode}", "--name", name, "--distpath", str(work / "dist"), "--workpath",
           str(work / "pyiwork"), "--specpath", str(work), *extra, str(hello)]
    t = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=e)
    log(f"PyInstaller {mode} {name}: exit {p.returncode} in {time.monotonic() - t:.0f} s")
    if p.returncode != 0:
        log(last_line(p.stderr))
        return None
    return work / "dist" / name if mode == "onefile" else work / "dist" / name / name


def exp_bootloader(bootloader: Path, work: Path, builds: dict[str, Path]) -> None:
    d = work / "boot"
    d.mkdir()
    packed: dict[str, Path] = {}
    for label, opts in EXE_OPTIONS:
        out = d / f"run-{label.strip('-')}"
        err = upx(bootloader, out, opts)
        if err:
            add(Row("bootloader alone", label, size_of(bootloader), None, f"n/a: upx: {err}"))
            continue
        packed[label] = out
        # Alone it must start and then complain about the missing archive: proves the stub works.
        p = subprocess.run([str(out)], capture_output=True, text=True, timeout=RUN_TIMEOUT)
        ok = "PKG archive" in p.stderr
        add(Row("bootloader alone", label, size_of(bootloader), size_of(out),
                "yes (starts; no archive, as expected)" if ok else f"NO: exit {p.returncode}"))
    for mode in ("onefile", "onedir"):
        exe = builds.get(mode)
        if exe is None:
            continue
        start, end = pkg_bounds(exe)
        for label, out in packed.items():
            spliced = exe.with_name(f"{exe.name}-spliced-{label.strip('-')}")
            splice(out, exe, spliced)
            add(Row(f"PyI {mode} exe: upx(bootloader)+PKG", label, size_of(exe), size_of(spliced),
                    verdict([str(spliced)], expect=HELLO_EXPECT), f"PKG bytes [{start}:{end}]"))
            spliced.unlink()
        # upx on the whole built executable (the PKG sits in the non-loaded `pydata` section).
        for label, opts in EXE_OPTIONS[:1] + (EXE_OPTIONS[2:] if mode == "onedir" else []):
            whole = exe.with_name(f"{exe.name}-whole-{label.strip('-')}")
            err = upx(exe, whole, opts)
            if err:
                add(Row(f"PyI {mode} exe: upx(whole file)", label, size_of(exe), None, f"n/a: upx: {err}"))
                continue
            ws, we = pkg_bounds(whole)
            verbatim = whole.read_bytes()[ws:we] == exe.read_bytes()[start:end]
            add(Row(f"PyI {mode} exe: upx(whole file)", label, size_of(exe), size_of(whole),
                    verdict([str(whole)], expect=HELLO_EXPECT),
                    "PKG copied verbatim" if verbatim else "PKG bytes changed"))
            whole.unlink()


# ---- 5. PyInstaller forced UPX ----

def upx_wrapper(work: Path) -> Path:
    d = work / "upx-wrapper"
    d.mkdir()
    w = d / "upx"
    w.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        # PyInstaller always passes --lzma; drop it so upx uses NRV (LZMA-packed shared objects trap).
        n=$#
        while [ $n -gt 0 ]; do a=$1; shift; n=$((n-1)); [ "$a" = "--lzma" ] || set -- "$@" "$a"; done
        exec {tool("upx")} "$@"
    """))
    w.chmod(0o755)
    return d


def exp_pyinstaller_forced(work: Path, hello: Path, baseline_sizes: dict[str, int]) -> None:
    wrapper = upx_wrapper(work)
    for mode in ("onefile", "onedir"):
        base_size = baseline_sizes.get(mode)
        for label, extra in (("stock (upx --lzma)", []), ("--upx-dir wrapper (NRV)", ["--upx-dir", str(wrapper)])):
            name = f"h_{mode}_{'nrv' if extra else 'lzma'}"
            exe = pyinstaller_build(work, hello, mode, name, ["--strip", *extra],
                                    env={"PYINSTALLER_FORCE_UPX": "1"})
            if exe is None:
                add(Row(f"PyI {mode} --strip, FORCE_UPX", label, base_size, None, "NO: build failed"))
                continue
            add(Row(f"PyI {mode} --strip, FORCE_UPX", label, base_size,
                    size_of(exe if mode == "onefile" else exe.parent),
                    verdict([str(exe)], expect=HELLO_EXPECT), "before = --strip build, no UPX"))


# ---- 6. Nuitka ----

def nuitka_build(work: Path, hello: Path, out: str, extra: list[str]) -> Path | None:
    cmd = [sys.executable, "-m", "nuitka", "--assume-yes-for-downloads", f"--output-dir={work / out}",
           *extra, str(hello)]
    t = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
    log(f"Nuitka {' '.join(extra)}: exit {p.returncode} in {time.monotonic() - t:.0f} s")
    if p.returncode != 0:
        log(last_line(p.stderr) or last_line(p.stdout))
        return None
    return work / out


def packed_sizes(path: Path) -> tuple[int, int] | None:
    """(uncompressed, packed) sizes as `upx -l` reports them, or None if not packed."""
    p = subprocess.run([tool("upx"), "-q", "-l", str(path)], capture_output=True, text=True)
    for ln in p.stdout.splitlines():
        parts = ln.split()
        if len(parts) >= 3 and parts[1] == "->" and parts[0].isdigit():
            return int(parts[0]), int(parts[2])
    return None


def exp_nuitka(work: Path, hello: Path) -> None:
    try:
        import nuitka  # noqa: F401
    except ImportError:
        add(Row("Nuitka", "-", None, None, "n/a: nuitka not importable"))
        return
    out = nuitka_build(work, hello, "nk-sa", ["--standalone"])
    dist = out / "hello.dist" if out else None
    if dist and dist.is_dir():
        main_bin = dist / "hello.bin"
        sos = sorted(p for p in dist.iterdir() if ".so" in p.name and p.is_file())
        exts = [p for p in sos if not p.name.startswith("lib")]
        syslibs = [p for p in sos if p.name.startswith("lib")]
        add(Row("Nuitka standalone dist", "as built", None, size_of(dist),
                verdict([str(main_bin)], expect=HELLO_EXPECT), f"{len(exts)} ext modules, {len(syslibs)} libs"))
        # main binary (an executable: any method)
        for label, opts in EXE_OPTIONS:
            trial = work / f"nk-bin-{label.strip('-')}"
            shutil.copytree(dist, trial, symlinks=True)
            err = upx(main_bin, trial / "hello.bin", opts)
            add(Row("Nuitka main hello.bin", label, size_of(main_bin),
                    None if err else size_of(trial / "hello.bin"),
                    f"n/a: upx: {err}" if err else verdict([str(trial / "hello.bin")], expect=HELLO_EXPECT)))
            shutil.rmtree(trial)
        # extension modules: Nuitka copies them 0644 and unstripped
        for label, opts, do_upx in (("strip only", [], False), ("strip + default", [], True),
                                    ("strip + --lzma", ["--lzma"], True)):
            trial = work / f"nk-ext-{len(ROWS)}"
            shutil.copytree(dist, trial, symlinks=True)
            errs = []
            for so in exts:
                t = trial / so.name
                subprocess.run([tool("strip"), str(t)], check=True)
                t.chmod(0o755)  # upx refuses non-executable files ("file not executable")
                if do_upx:
                    tmp = t.with_suffix(".upx")
                    err = upx(t, tmp, opts)
                    if err:
                        errs.append(f"{so.name}: {err.split(':')[0]}")
                    else:
                        tmp.replace(t)
            add(Row(f"Nuitka {len(exts)} ext modules", label, sum(size_of(s) for s in exts),
                    sum(size_of(trial / s.name) for s in exts),
                    verdict([str(trial / "hello.bin")], expect=HELLO_EXPECT),
                    ("upx refused " + "; ".join(errs))[:110] if errs else ""))
            shutil.rmtree(trial)
        # the system libraries Nuitka copied and patchelf'd (RPATH=$ORIGIN, new PT_LOAD for .dynamic)
        for lib in syslibs:
            tmpd = work / "nk-lib"
            tmpd.mkdir(exist_ok=True)
            src = tmpd / f"x-{lib.name}"
            shutil.copy2(lib, src)
            src.chmod(0o755)
            err = upx(src, tmpd / lib.name, [])
            add(Row(f"Nuitka dist {lib.name} (patchelf'd)", "default", size_of(lib),
                    None if err else size_of(tmpd / lib.name), f"n/a: upx: {err}" if err else "(packed)"))
        sys_dirs = [Path(sysconfig.get_config_var("LIBDIR") or "/nonexistent"),
                    Path("/lib/x86_64-linux-gnu"), Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/lib64")]
        pristine = {lib.name: next((d / lib.name for d in sys_dirs if (d / lib.name).is_file()), None)
                    for lib in syslibs}
        if syslibs and all(pristine.values()):
            trial = work / "nk-syslibs"
            shutil.copytree(dist, trial, symlinks=True)
            errs = []
            for name, src in pristine.items():
                err = upx(strip_copy(src, work / f"pristine-{name}"), trial / f"{name}.upx", [])
                if err:
                    errs.append(f"{name}: {err}")
                else:
                    (trial / f"{name}.upx").replace(trial / name)
            add(Row(f"Nuitka dist {len(syslibs)} libs -> pristine copies", "strip + default",
                    sum(size_of(lib) for lib in syslibs), sum(size_of(trial / lib.name) for lib in syslibs),
                    verdict([str(trial / "hello.bin")], expect=HELLO_EXPECT),
                    ("upx refused " + "; ".join(errs))[:110] if errs else "no $ORIGIN RPATH needed"))
            shutil.rmtree(trial)
    else:
        add(Row("Nuitka standalone", "-", None, None, "NO: build failed"))
    out = nuitka_build(work, hello, "nk-of", ["--onefile", "--plugin-enable=upx",
                                              "--output-filename=hello_nk_upx"])
    exe = out / "hello_nk_upx" if out else None
    if exe and exe.is_file():
        sizes = packed_sizes(exe)
        add(Row("Nuitka onefile --plugin-enable=upx", "plugin: --best --lzma on starter",
                sizes[0] if sizes else None, size_of(exe), verdict([str(exe)], expect=HELLO_EXPECT),
                "before = upx -l unpacked size" if sizes else "not UPX-packed"))
    else:
        add(Row("Nuitka onefile --plugin-enable=upx", "-", None, None, "NO: build failed"))


# ---- output ----

def fmt(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def print_table() -> None:
    head = ("target", "option", "bytes before", "bytes after", "runs?", "note")
    cells = [head] + [(r.target, r.option, fmt(r.before), fmt(r.after), r.runs, r.note) for r in ROWS]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    for j, c in enumerate(cells):
        line = "  ".join(
            (x.rjust(widths[i]) if i in (2, 3) else x.ljust(widths[i])) for i, x in enumerate(c))
        print(line.rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def main() -> int:
    libdir = Path(sysconfig.get_config_var("LIBDIR") or "")
    dynload = Path(sysconfig.get_config_var("DESTSHARED") or "")
    soname = sysconfig.get_config_var("INSTSONAME") or ""
    base_python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    try:
        import PyInstaller
        default_boot = Path(PyInstaller.__file__).parent / "bootloader" / "Linux-64bit-intel" / "run"
    except ImportError:
        default_boot = None
    ext_suffix = sysconfig.get_config_var("EXT_SUFFIX")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", type=Path, default=base_python,
                    help="real (non-venv) interpreter binary linked against libpython [%(default)s]")
    ap.add_argument("--libpython", type=Path, default=libdir / soname, help="[%(default)s]")
    ap.add_argument("--ext", type=Path, nargs="*",
                    default=[dynload / f"{m}{ext_suffix}" for m in ("_json", "unicodedata", "_socket")],
                    help="extension modules to pack [_json, unicodedata, _socket from lib-dynload]")
    ap.add_argument("--bootloader", type=Path, default=default_boot, help="[%(default)s]")
    ap.add_argument("--skip-pyinstaller", action="store_true", help="skip experiments 4 and 5")
    ap.add_argument("--skip-nuitka", action="store_true", help="skip experiment 6")
    ap.add_argument("--strace", action="store_true", help="print the strace tail of a failing libpython")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    upx_version = subprocess.run([tool("upx"), "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    noexec = Path("/proc/sys/vm/memfd_noexec")
    print(f"# {upx_version}; Python {platform.python_version()} ({args.python}); kernel {platform.release()}; "
          f"vm.memfd_noexec={noexec.read_text().strip() if noexec.exists() else 'n/a'}")
    work = Path(tempfile.mkdtemp(prefix="upx-matrix-"))
    log(f"working in {work}")
    t0 = time.monotonic()
    try:
        hello = work / "hello.py"
        hello.write_text(HELLO_SOURCE)
        if args.libpython.is_file():
            exp_libpython(args.python, args.libpython, work, args.strace)
        else:
            add(Row("libpython", "-", None, None, f"n/a: {args.libpython} not found (static interpreter?)"))
        exp_ext_modules(args.python, [m for m in args.ext if m.is_file()], work)
        exp_openssl(args.python, work)
        if not args.skip_pyinstaller and args.bootloader is not None:
            builds: dict[str, Path] = {}
            baseline_sizes: dict[str, int] = {}
            for mode in ("onefile", "onedir"):
                exe = pyinstaller_build(work, hello, mode, f"h_{mode}_strip", ["--strip"])
                if exe is not None:
                    builds[mode] = exe
                    baseline_sizes[mode] = size_of(exe if mode == "onefile" else exe.parent)
                    add(Row(f"PyI {mode} --strip (baseline)", "no UPX", None, baseline_sizes[mode],
                            verdict([str(exe)], expect=HELLO_EXPECT), "whole folder" if mode == "onedir" else ""))
            exp_bootloader(args.bootloader, work, builds)
            exp_pyinstaller_forced(work, hello, baseline_sizes)
        if not args.skip_nuitka:
            exp_nuitka(work, hello)
    finally:
        print_table()
        log(f"done in {time.monotonic() - t0:.0f} s")
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
