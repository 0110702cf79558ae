"""The size runtime with TLS from the trimmed OpenSSL (build/runtime/openssl.py): for `tls = true` profiles.

The size runtime's `_ssl` and `_hashlib` are linked against Debian's general-purpose libssl.so.3 and
libcrypto.so.3. This makes a sibling runtime, work/.cache/runtime/<runtime key>-tls-<hash>/: the same
files (hard links, no copy), but `_ssl` and `_hashlib` compiled again from the runtime's own CPython
source against the trimmed OpenSSL, with the interpreter's own flags, and linked either

- `shared`: against the trimmed libssl.so.3 and libcrypto.so.3, put in the runtime's lib/ (stripped)
  and found through the modules' RUNPATH ($ORIGIN/../..), so the freezer collects them, not the
  system's; or
- `static`: with libssl.a and libcrypto.a inside `_ssl` (and `_hashlib`), `--gc-sections` and no
  symbol of OpenSSL exported, so only what the module reaches is kept.

Which one the profiles use is measured by `benchmarks/openssl.py` (LINKING below). The result is
checked before it is published: the interpreter imports ssl and _hashlib and the OpenSSL it loaded is
the trimmed one. Nothing here falls back to the system's OpenSSL: a TLS profile whose OpenSSL did not
build is refused with that error (OpenSSLBuildFailed), never built without TLS.

hashlib, explicitly: the TLS profiles exclude `_hashlib` (pyproject.toml), so md5, sha1, the sha2
and sha3 families, shake and blake2 come from CPython's built-in modules and `pbkdf2_hmac`/`scrypt`
are absent. A profile that keeps `_hashlib` gets the trimmed OpenSSL's digests (`HASHLIB_ALGORITHMS`),
blake2b/blake2s from the built-in _blake2, and the left-out md4, ripemd160, whirlpool, sm3 and mdc2
are then not in `hashlib.algorithms_available`.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from build import log as terminal
from build import proc
from build.errors import CommandFailed, SlimfreezeError
from build.locks import exclusive
from build.paths import remove_tree
from build.project import Project, freezer_pins
from build.elfid import build_id
from build.runtime.compile import MINOR, Runtime, load
from build.runtime.cross import Cross
from build.runtime.openssl import SIZE_STEPS, OpenSSL, build_openssl, obtain_openssl_source
from build.runtime.sources import Source, obtain_source
from build.runtime.toolchain import facts, make_venv, size_runtime
from build.toolchain import Toolchain, host_architecture

RECIPE = 3  # 2: __FILE__ without the cache's folder; 3: -g, unstripped copies under lib/debug/.build-id
# Measured by benchmarks/openssl.py --linking (stripped bytes, x86_64): _ssl with libcrypto.a and
# libssl.a inside is 2,846,920; _ssl shared (142,560) with the trimmed libssl (536,792, RUNPATH
# added) and libcrypto (3,104,576) is 3,783,928. The TLS profiles leave _hashlib out, so static is
# 25 % smaller; a profile keeping _hashlib would carry a second libcrypto inside it (2,357,928).
LINKING = "static"
LINKINGS = ("shared", "static")
STAMP = "runtime.json"
# (module, source file under Modules/)
MODULES = (("_ssl", "_ssl.c"), ("_hashlib", "_hashopenssl.c"))
# What `hashlib` takes from a kept _hashlib built against the trimmed OpenSSL (checked on build);
# blake2b and blake2s come from CPython's built-in _blake2 (no-blake2); the rest are gone.
HASHLIB_ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha512_224", "sha512_256",
                      "sha3_224", "sha3_256", "sha3_384", "sha3_512", "shake_128", "shake_256")
BUILT_IN_DIGESTS = ("blake2b", "blake2s")
LEFT_OUT_DIGESTS = ("md4", "ripemd160", "whirlpool", "sm3", "mdc2")
# The option that removes each from OpenSSL (a build of fewer steps, for the ladder, keeps some).
DIGEST_OPTIONS = {"md4": "no-md4", "ripemd160": "no-rmd160", "whirlpool": "no-whirlpool", "sm3": "no-sm3",
                  "mdc2": "no-mdc2", "blake2b": "no-blake2", "blake2s": "no-blake2"}


def removed_digests(options: tuple[str, ...]) -> tuple[str, ...]:
    """The digests _hashlib must not find in an OpenSSL built with `options` (pure)."""
    return tuple(name for name, option in DIGEST_OPTIONS.items() if option in options)


class TlsRuntimeFailed(SlimfreezeError):
    """_ssl or _hashlib did not compile or link against the trimmed OpenSSL, or does not load it."""


@dataclass(frozen=True, kw_only=True)
class BuildVars:
    """The runtime's own compiler settings (its sysconfig), so the modules match the interpreter."""

    cc: str
    cflags: str
    ccshared: str
    ldshared: str
    ext_suffix: str


def tls_key(runtime: Runtime, built: OpenSSL, linking: str) -> str:
    """The sibling runtime's folder name (pure)."""
    data = {"recipe": RECIPE, "openssl": built.key, "linking": linking, "modules": list(MODULES)}
    return f"{runtime.key}-tls-{hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]}"


def compile_argv(v: BuildVars, prefix: Path, tree: Path, built: OpenSSL, source: str, obj: Path) -> list[str]:
    """One module's compile (pure): the runtime's flags, its headers, CPython's Modules/ for _ssl.h,
    socketmodule.h and the clinic files, the trimmed OpenSSL's headers first."""
    include = prefix / "include" / f"python{MINOR}"
    # `no-deprecated` removes TLSv1_2_method (deprecated since 1.1.0), which _ssl.c declares itself
    # unless told the method is absent: then SSLContext(PROTOCOL_TLSv1_2) (deprecated since Python
    # 3.6) raises ValueError; PROTOCOL_TLS_CLIENT with maximum_version = TLSv1_2 does the same.
    absent = ["-DOPENSSL_NO_TLS1_2_METHOD"] if "no-deprecated" in built.options else []
    # __FILE__ without the cache's folder: no build-machine path in the shipped module.
    # -g: DWARF in the unstripped copy (keep_debug_copy); the stripped module is the same code.
    return [*v.cc.split(), *v.cflags.split(), *v.ccshared.split(), "-g", f"-fdebug-prefix-map={tree}/=",
            f"-fmacro-prefix-map={tree / 'Modules'}/=",
            "-DPy_BUILD_CORE_MODULE", *absent, f"-I{built.include}",
            f"-I{include}", f"-I{include / 'internal'}", f"-I{tree / 'Modules'}", "-c", str(tree / "Modules" / source),
            "-o", str(obj)]


def link_argv(v: BuildVars, built: OpenSSL, obj: Path, out: Path, linking: str) -> list[str]:
    """One module's link (pure). Shared: RUNPATH lib/ from lib/python3.11/lib-dynload/. Static: the
    archives inside, their symbols kept local, unreferenced sections dropped."""
    if linking == "shared":
        openssl = [f"-L{built.lib}", "-lssl", "-lcrypto", "-Wl,-rpath,$ORIGIN/../..", "-Wl,--enable-new-dtags"]
    elif linking == "static":
        openssl = [str(built.lib / "libssl.a"), str(built.lib / "libcrypto.a"), "-Wl,--exclude-libs,ALL",
                   "-Wl,--gc-sections", "-pthread", "-ldl"]
    else:
        raise ValueError(f"unknown linking {linking!r}")
    return [*v.ldshared.split(), str(obj), *openssl, "-o", str(out)]


def build_vars(runtime: Runtime) -> BuildVars:
    """The runtime's compiler settings, read from its _sysconfigdata module (a literal dict), so no
    interpreter of another architecture has to run to tell them."""
    folder = runtime.prefix / "lib" / f"python{MINOR}"
    found = sorted(folder.glob("_sysconfigdata_*.py"))
    if not found:
        raise TlsRuntimeFailed(f"size runtime with TLS: {folder} has no _sysconfigdata module")
    try:
        data = sysconfig_vars(found[0].read_text())
        return BuildVars(cc=data["CC"], cflags=data["CFLAGS"], ccshared=data["CCSHARED"], ldshared=data["LDSHARED"],
                         ext_suffix=data["EXT_SUFFIX"])
    except (OSError, ValueError, KeyError) as err:
        raise TlsRuntimeFailed(f"size runtime with TLS: reading {found[0]} failed: {err!r}") from None


def sysconfig_vars(text: str) -> dict[str, str]:
    """`build_time_vars` of a _sysconfigdata module's text (pure; nothing in it is executed)."""
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "build_time_vars"
                                                for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, dict):
                return {str(k): str(v) for k, v in value.items()}
    raise ValueError("no build_time_vars")


def tls_runtime(project: Project, runtime: Runtime, python_source: Source, built: OpenSSL, log: Path,
                linking: str = LINKING, *, cross: Cross | None = None) -> Runtime:
    """The sibling of `runtime` whose _ssl and _hashlib use `built` (reused when made before).
    `cross`: the runtime was cross-compiled for another architecture; so are the modules, and their
    first run is emulated."""
    if linking not in LINKINGS:
        raise TlsRuntimeFailed(f"size runtime with TLS: unknown linking {linking!r} (one of {', '.join(LINKINGS)})")
    if linking == "shared" and not built.has_shared:
        raise TlsRuntimeFailed(f"size runtime with TLS: {built.key} has no shared libraries to link against "
                               "(build it with shared=True)")
    key = tls_key(runtime, built, linking)
    final = runtime.prefix.with_name(key)
    existing = load(final)
    if existing is not None:
        return existing
    with exclusive(final):
        return load(final) or _make(project, runtime, python_source, built, linking, key, final, log, cross)


def _run(what: str, argv: list[str | Path], cwd: Path, log: Path) -> None:
    try:
        proc.run(argv, log=log, cwd=cwd, timeout=1800)
    except CommandFailed as err:
        raise TlsRuntimeFailed(f"size runtime with TLS: {what} failed (log {log}): {err}") from None


def _output(what: str, argv: list[str | Path], log: Path) -> str:
    """The last line `argv` prints (its whole output goes to the log too)."""
    try:
        done = proc.capture(argv, timeout=300, separate_stderr=True)
    except OSError as err:
        raise TlsRuntimeFailed(f"size runtime with TLS: {what}: cannot run {argv[0]} ({err.strerror})") from None
    with log.open("a") as stream:
        stream.write(f"$ {' '.join(map(str, argv))}\n{done.output}{done.errors}= exit {done.code}\n")
    lines = done.output.strip().splitlines()
    if done.code != 0 or not lines:
        tail = " | ".join(done.errors.strip().splitlines()[-3:])
        raise TlsRuntimeFailed(f"size runtime with TLS: {what} failed (exit {done.code}, log {log}): {tail}")
    return lines[-1]


def _make(project: Project, runtime: Runtime, python_source: Source, built: OpenSSL, linking: str, key: str,
          final: Path, log: Path, cross: Cross | None) -> Runtime:
    strip = cross.strip if cross else "strip"
    proc.require_tools(cross.compiler if cross else "gcc", strip, "patchelf")
    tmp = final.with_name(f"{key}.tmp")
    remove_tree(tmp, project.output_roots)
    tmp.mkdir(parents=True)
    prefix = tmp / "prefix"
    # Hard links: the runtime's files are never written in place; only the replaced ones differ.
    shutil.copytree(runtime.prefix, prefix, symlinks=True, copy_function=os.link)
    v = build_vars(runtime)
    if cross is not None:  # the target's own headers and libraries, as the runtime was compiled
        v = replace(v, cc=f"{v.cc} --sysroot={cross.sysroot}", ldshared=f"{v.ldshared} --sysroot={cross.sysroot}")
    dynload = prefix / "lib" / f"python{MINOR}" / "lib-dynload"
    for module, source in MODULES:
        obj = tmp / f"{module}.o"
        out = dynload / f"{module}{v.ext_suffix}"
        _run(f"compiling {module}", compile_argv(v, runtime.prefix, python_source.tree, built, source, obj), tmp, log)
        out.unlink(missing_ok=True)  # a hard link to the runtime's own module: never written through
        _run(f"linking {module}", link_argv(v, built, obj, out, linking), tmp, log)
        keep_debug_copy(out, prefix)
        _run(f"stripping {module}", [strip, "--strip-unneeded", out], tmp, log)
    if linking == "shared":
        for library in built.shared:
            copy = prefix / "lib" / library.name
            copy.unlink(missing_ok=True)
            shutil.copyfile(library, copy)
            _run("stripping OpenSSL", [strip, "--strip-unneeded", copy], tmp, log)
        # libssl finds its libcrypto beside it, not the system's.
        _run("setting libssl's RUNPATH", ["patchelf", "--set-rpath", "$ORIGIN", prefix / "lib" / "libssl.so.3"], tmp, log)
    _check(prefix, built, linking, tmp, log, cross.run if cross else ())
    stamp = json.loads((runtime.prefix / STAMP).read_text())
    stamp |= {"key": key, "openssl": {"key": built.key, "source_version": built.source_version,
                                      "steps": list(built.steps), "options": list(built.options), "linking": linking}}
    (prefix / STAMP).unlink()
    (prefix / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    if final.exists():
        remove_tree(final, project.output_roots)
    os.replace(prefix, final)
    remove_tree(tmp, project.output_roots)
    made = load(final)
    if made is None:
        raise TlsRuntimeFailed(f"size runtime with TLS: {final} has no readable {STAMP}")
    return made


# Run by the new interpreter: what it loaded, and which digests hashlib takes from OpenSSL.
_PROBE = """
import json, ssl, _hashlib, hashlib
maps = open('/proc/self/maps').read().split()
libs = sorted({p for p in maps if '/libssl.so' in p or '/libcrypto.so' in p})
print(json.dumps({'version': ssl.OPENSSL_VERSION, 'libs': libs,
                  'openssl_digests': sorted(_hashlib.openssl_md_meth_names)}))
"""


def _check(prefix: Path, built: OpenSSL, linking: str, cwd: Path, log: Path, launch: Sequence[str]) -> None:
    """The interpreter imports ssl and _hashlib, and the only OpenSSL it maps is the trimmed one
    (shared: the copies in its lib/; static: none at all). `launch`: the emulator, for another
    architecture's runtime."""
    out = _output("first run with the trimmed OpenSSL",
                  [*launch, prefix / "bin" / f"python{MINOR}", "-I", "-c", _PROBE], log)
    try:
        seen = json.loads(out)
    except ValueError:
        raise TlsRuntimeFailed(f"size runtime with TLS: the first run printed no result (log {log})") from None
    expected = sorted(str(prefix / "lib" / name) for name in ("libcrypto.so.3", "libssl.so.3")) if linking == "shared" else []
    if sorted(seen["libs"]) != expected:
        raise TlsRuntimeFailed(f"size runtime with TLS: ssl loaded {seen['libs'] or 'no shared OpenSSL'}, expected "
                               f"{expected or 'none (static)'}")
    digests = set(seen["openssl_digests"])
    missing = [d for d in HASHLIB_ALGORITHMS if d not in digests]
    kept = [d for d in removed_digests(built.options) if d in digests]
    if missing or kept:
        raise TlsRuntimeFailed(f"size runtime with TLS: _hashlib offers {sorted(digests)}: missing {missing}, "
                               f"left-out but present {kept}")


def keep_debug_copy(module: Path, prefix: Path) -> None:
    """The unstripped module under the runtime's lib/debug/.build-id/, where `bloat --units` finds
    which OpenSSL source file each byte of the stripped one came from (compiled with -g)."""
    bid = build_id(module)
    if bid:
        copy = prefix / "lib" / "debug" / ".build-id" / bid[:2] / f"{bid[2:]}.debug"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.unlink(missing_ok=True)  # maybe a hard link into the runtime it was copied from
        shutil.copyfile(module, copy)


def cross_tls_runtime(project: Project, runtime: Runtime, cross: Cross, log: Path, *,
                      linking: str = LINKING) -> tuple[Runtime, dict[str, object]]:
    """The cross-compiled size runtime with TLS from OpenSSL cross-compiled for the same target,
    and the manifest's facts about that OpenSSL. Any failure stops the build: never TLS-less."""
    openssl_source = obtain_openssl_source(project, log)
    terminal.info(f"size runtime: TLS from openssl {openssl_source.version} cross-compiled for {runtime.target} "
                  f"({', '.join(SIZE_STEPS)}), linked {linking}")
    built = build_openssl(project, openssl_source, target=runtime.target, cross=cross, shared=linking == "shared")
    with_tls = tls_runtime(project, runtime, obtain_source(project, log), built, log, linking, cross=cross)
    return with_tls, openssl_facts(built, linking)


def tls_runtime_toolchain(project: Project, log: Path, *, linking: str = LINKING) -> Toolchain:
    """The size runtime for this machine with TLS from the trimmed OpenSSL, and its venv. Any failure
    (source checksum, OpenSSL compile, module link, first run) stops the build: never TLS-less."""
    target = host_architecture()
    runtime = size_runtime(project, log, target=target)
    openssl_source = obtain_openssl_source(project, log)
    terminal.info(f"size runtime: TLS from openssl {openssl_source.version} built for a client "
                  f"({', '.join(SIZE_STEPS)}), linked {linking}")
    built = build_openssl(project, openssl_source, target=target, shared=linking == "shared")
    with_tls = tls_runtime(project, runtime, obtain_source(project, log), built, log, linking)
    found = freezer_pins(project)
    venv = make_venv(project, with_tls, [*found.run, *found.build], log)
    return Toolchain(python=venv / "bin" / "python", target=target,
                     facts={**facts(project, with_tls), **openssl_facts(built, linking)})


def openssl_facts(built: OpenSSL, linking: str) -> dict[str, object]:
    """What the manifest records about the OpenSSL a TLS build carries."""
    return {"openssl": {"source": f"openssl {built.source_version}", "steps": list(built.steps),
                        "options": list(built.options), "linking": linking, "key": built.key,
                        "build_log": built.build_log.name}}
