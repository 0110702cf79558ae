"""OpenSSL built for an MQTT client (issue 20): Debian's `openssl` source, `-Os`, and `no-*` options
for what a TLS 1.2/1.3 client with ECDHE, AES-GCM/ChaCha20-Poly1305, RSA/ECDSA, X.509 verification
and client certificates never uses.

Each step is one named choice, measured by `benchmarks/openssl.py --ladder` (each on top of those
before). Options CPython 3.11's `_ssl` and `_hashlib` need are kept, whatever they cost:
- `dh`: `SSLContext.load_dh_params` calls PEM_read_DHparams and SSL_CTX_set_tmp_dh;
- `scrypt`: `_hashopenssl.c` defines PY_OPENSSL_HAS_SCRYPT unconditionally (EVP_PBE_scrypt);
- the API deprecated in 3.0 (HMAC_CTX, DH_free, ...): both modules ask for OPENSSL_API_COMPAT
  1.1.1, so `no-deprecated` goes with `--api=1.1.1`, which removes only what 1.1.1 deprecated;
- `ocsp` may go: `_ssl.c` reads a certificate's OCSP URI (an OID) but never staples.

Built once per key (source version, options, target) into work/.cache/runtime/openssl-<target>-<hash>/,
from `<key>.tmp` renamed into place with its stamp written last, as the runtime is: a failed compile
never leaves an OpenSSL that looks usable, nor touches the previous one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from build import proc
from build.errors import CommandFailed, SlimfreezeError
from build.locks import exclusive
from build.paths import remove_tree
from build.project import Project
from build.runtime.sources import Package, Source, obtain_source
from build.runtime.cross import Cross
from build.toolchain import host_architecture

PACKAGE = Package(name="openssl", folder="openssl-src", marker="Configure")
STAMP = "openssl.json"
LOG_NAME = "build.log"
# 2: configured for /usr, installed through DESTDIR: no cache path inside the library
# 3: compiled with -g and source paths relative to the tree (DWARF for `bloat --units`; the shipped,
#    stripped code is the same); cross builds
RECIPE = 4  # 4: the debug prefix map only relative (OPENSSL_CFLAGS ships inside the library)
# What Configure is told the prefix is: ENGINESDIR and MODULESDIR are compiled in from it (unused:
# no-module, no-dso), and a build-machine folder must not end up in a shipped binary.
CONFIGURED_PREFIX = Path("/usr")
JOBS = "2"
COMPILE_TIMEOUT = 3 * 3600
# Configure's own target names for the architectures slimfreeze builds for.
CONFIGURE_TARGETS = {"x86_64": "linux-x86_64", "aarch64": "linux-aarch64", "armv7": "linux-armv4"}
# Not a size step: debug information, so the unstripped _ssl the TLS runtime keeps names each byte's
# source file (`bloat --units`). gcc emits the same code with or without it.
DEBUG_INFO = "-g"
# Where the device's Debian keeps openssl.cnf and the CA store: the trimmed library reads the same
# configuration and finds the same default verify paths as Debian's (not /usr/local/ssl).
OPENSSLDIR = "/usr/lib/ssl"
SONAMES = ("libcrypto.so.3", "libssl.so.3")


class OpenSSLBuildFailed(SlimfreezeError):
    """The trimmed OpenSSL did not configure or compile."""


@dataclass(frozen=True, kw_only=True)
class Step:
    name: str
    why: str
    options: tuple[str, ...]


STEPS: tuple[Step, ...] = (
    Step(name="Os", why="optimise for size; only the libraries are built (make build_libs: no apps, tests or docs)",
         options=("-Os",)),
    Step(name="no-engines-modules",
         why="no ENGINE API, no loadable modules or DSO loading, so no legacy provider: the default "
             "provider, built into libcrypto, is all a client uses",
         options=("no-engine", "no-dso", "no-module", "no-legacy")),
    Step(name="no-protocols",
         why="a TLS 1.2/1.3 client over TCP: no DTLS, SSL 3, TLS 1.0/1.1, SRP, PSK, SRTP, NPN, "
             "compression, certificate transparency, the protocol tracer",
         options=("no-dtls", "no-ssl3", "no-tls1", "no-tls1_1", "no-srp", "no-psk", "no-srtp", "no-nextprotoneg",
                  "no-comp", "no-ct", "no-ssl-trace")),
    Step(name="no-algorithms",
         why="ciphers, digests and curves no TLS 1.2/1.3 suite an MQTT broker offers uses: ARIA, Blowfish, "
             "Camellia, CAST, DES, IDEA, RC2, RC4, SEED, SM2/3/4, MD4, MDC2, RIPEMD-160, Whirlpool, "
             "SipHash, OCB, SIV, CMAC, GOST, binary curves, DSA",
         options=("no-aria", "no-bf", "no-camellia", "no-cast", "no-des", "no-idea", "no-rc2", "no-rc4", "no-seed",
                  "no-sm2", "no-sm3", "no-sm4", "no-md4", "no-mdc2", "no-rmd160", "no-whirlpool", "no-siphash",
                  "no-ocb", "no-siv", "no-cmac", "no-gost", "no-ec2m", "no-dsa")),
    Step(name="no-services",
         why="formats and services a client never calls: CMS, CMP, time stamps, OCSP, RFC 3779, async jobs, "
             "the console password prompt",
         options=("no-cms", "no-cmp", "no-ts", "no-ocsp", "no-rfc3779", "no-async", "no-ui-console")),
    Step(name="no-deprecated",
         why="drop the API that 1.1.1 and before deprecated (--api=1.1.1 keeps what 3.0 deprecated, which "
             "_ssl and _hashlib still call)",
         options=("--api=1.1.1", "no-deprecated")),
    Step(name="no-extras",
         why="what a client on a small device does without: BLAKE2 (hashlib has its own), the multi-block "
             "AES-CBC-HMAC ciphers (servers' bulk TLS 1.2 CBC), source file names in error records, the "
             "secure heap, the RDRAND seed source (getrandom seeds it)",
         options=("no-blake2", "no-multiblock", "no-filenames", "no-secure-memory", "no-rdrand")),
    Step(name="p256-without-table",
         why="P-256 through OpenSSL's generic prime-curve code (constant-time ladder, Montgomery "
             "arithmetic in assembler) instead of the assembler's own P-256 and its 150 KB precomputed "
             "table, which xz cannot compress. TLS 1.3 agrees keys over X25519 first; P-256 is left to "
             "ECDSA certificates and servers that insist on it. (enable-ec_nistp_64_gcc_128 would bring "
             "C P-224/256/521 back at 50 KB)",
         options=("-UECP_NISTZ256_ASM",)),
    Step(name="no-unwind-tables",
         why="no .eh_frame for OpenSSL's C code, as for the runtime's: nothing unwinds through it (no C++ "
             "exceptions, no thread cancellation); 305 KiB of the static _ssl before",
         options=("-fno-asynchronous-unwind-tables", "-fno-unwind-tables")),
    Step(name="function-sections",
         why="one section per function and datum, so the static link into _ssl (--gc-sections) drops "
             "what it never calls inside the objects it keeps",
         options=("-ffunction-sections", "-fdata-sections")),
)
# The steps the TLS profiles use, in the order measured.
SIZE_STEPS: tuple[str, ...] = tuple(step.name for step in STEPS)


def step_named(name: str) -> Step:
    for step in STEPS:
        if step.name == name:
            return step
    raise KeyError(name)


def options_of(steps: Iterable[str]) -> tuple[str, ...]:
    """Configure's options for these steps, in order, each once (pure)."""
    return tuple(dict.fromkeys(option for name in steps for option in step_named(name).options))


def configure_argv(tree: Path, prefix: Path, target: str, steps: Iterable[str], *,
                   cross: Cross | None = None, build: Path | None = None, shared: bool = True) -> list[str]:
    """Configure's command line, run from the (separate) build folder (pure). `prefix`: what the
    library is configured for (CONFIGURED_PREFIX); it is installed elsewhere through DESTDIR.
    `cross`: another architecture, compiled with Debian's cross gcc against the target's root as
    sysroot (its libc headers: the cross gcc has none of its own here), as the runtime is.
    `build`: the build folder, from which Configure names the sources relatively: the debug info
    then names `crypto/ec/ecx_meth.c`, as `bloat --units` shows it, not a path of this machine.
    `shared`: also libcrypto.so and libssl.so. Without them (`no-shared`, still -fPIC) OpenSSL
    compiles each file once instead of twice: the static link the profiles use needs no more."""
    if target not in CONFIGURE_TARGETS:
        raise OpenSSLBuildFailed(f"openssl: no Configure target for architecture {target!r}")
    tools = [f"CC={cross.compiler} --sysroot={cross.sysroot}", f"AR={cross.triplet}-ar",
             f"RANLIB={cross.triplet}-ranlib"] if cross else []
    # Only the relative form, which is what the compile lines name: OpenSSL keeps its compiler flags
    # in the library (OpenSSL_version(OPENSSL_CFLAGS)), so an absolute one would ship this machine's path.
    maps = [os.path.relpath(tree, build)] if build else []
    return ["perl", str(tree / "Configure"), CONFIGURE_TARGETS[target], *tools, f"--prefix={prefix}",
            "--libdir=lib", f"--openssldir={OPENSSLDIR}", "no-tests", DEBUG_INFO,
            *(f"-fdebug-prefix-map={m}/=" for m in maps), *options_of(steps), *([] if shared else ["no-shared"])]


def openssl_key(source_version: str, steps: Iterable[str], target: str, sysroot_key: str | None = None,
                shared: bool = True) -> str:
    """The folder name of the build for these inputs (pure). `sysroot_key`: the target root a cross
    build compiled against (its libc headers); `shared`: with the shared libraries too."""
    steps = tuple(steps)
    data = {"recipe": RECIPE, "source": source_version, "target": target, "steps": list(steps),
            "options": list(options_of(steps)), "openssldir": OPENSSLDIR, "prefix": str(CONFIGURED_PREFIX),
            "debug_info": DEBUG_INFO, **({"sysroot": sysroot_key} if sysroot_key else {}),
            **({} if shared else {"shared": False})}
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    return f"openssl-{target}-{digest}"


@dataclass(frozen=True, kw_only=True)
class OpenSSL:
    prefix: Path
    key: str
    source_version: str
    steps: tuple[str, ...]
    target: str
    has_shared: bool = True  # libcrypto.so.3 and libssl.so.3 built too (else the archives only)

    @property
    def options(self) -> tuple[str, ...]:
        return options_of(self.steps)

    @property
    def include(self) -> Path:
        return self.prefix / "include"

    @property
    def lib(self) -> Path:
        return self.prefix / "lib"

    @property
    def shared(self) -> tuple[Path, ...]:
        """libcrypto.so.3 and libssl.so.3, unstripped (the runtime strips its copies)."""
        return tuple(self.lib / name for name in SONAMES)

    @property
    def static(self) -> tuple[Path, ...]:
        return (self.lib / "libssl.a", self.lib / "libcrypto.a")

    @property
    def build_log(self) -> Path:
        return self.prefix / LOG_NAME


def load(prefix: Path) -> OpenSSL | None:
    """The build in `prefix` if it is complete."""
    try:
        data = json.loads((prefix / STAMP).read_text())
        built = OpenSSL(prefix=prefix, key=data["key"], source_version=data["source_version"],
                        steps=tuple(data["steps"]), target=data["target"], has_shared=data.get("shared", True) is True)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    wanted = (*built.shared, *built.static) if built.has_shared else built.static
    return built if all(p.is_file() for p in wanted) else None


def obtain_openssl_source(project: Project, log: Path) -> Source:
    """Debian's openssl source package, verified against its .dsc and unpacked (reused when there)."""
    return obtain_source(project, log, PACKAGE)


def build_openssl(project: Project, source: Source, steps: Iterable[str] = SIZE_STEPS, *,
                  target: str, cross: Cross | None = None, shared: bool = False) -> OpenSSL:
    """The trimmed OpenSSL for these inputs: reused from work/.cache/runtime/<key>/ when built before.
    Another architecture's is cross-compiled (`cross`), as the runtime is (build/runtime/cross.py):
    under emulation every compile would take ten times as long. `shared`: the shared libraries too
    (the benchmarks and `LINKING = "shared"`); the profiles link statically and need only the archives."""
    steps = tuple(steps)
    if (cross is None) != (target == host_architecture()):
        raise OpenSSLBuildFailed(f"openssl: a build for {target} on this {host_architecture()} machine "
                                 f"{'needs a' if cross is None else 'takes no'} cross compiler")
    key = openssl_key(source.version, steps, target, cross.sysroot_key if cross else None, shared)
    final = project.cache_root / "runtime" / key
    existing = load(final)
    if existing is not None:
        return existing
    with exclusive(final):
        return load(final) or _build(project, source, steps, target, key, final, cross, shared)


def _step(what: str, log: Path, argv: list[str | Path], cwd: Path, env: dict[str, str]) -> None:
    try:
        proc.run(argv, log=log, cwd=cwd, env=env, timeout=COMPILE_TIMEOUT)
    except CommandFailed as err:
        raise OpenSSLBuildFailed(f"openssl: {what} failed (build log {log}): {err}") from None


def _build(project: Project, source: Source, steps: tuple[str, ...], target: str, key: str, final: Path,
           cross: Cross | None, shared: bool) -> OpenSSL:
    tmp = final.with_name(f"{key}.tmp")
    remove_tree(tmp, project.output_roots)
    build = tmp / "build"
    build.mkdir(parents=True)
    log = tmp / LOG_NAME
    proc.require_tools("perl", "make", cross.compiler if cross else "gcc")
    env = {**os.environ, "LC_ALL": "C"}
    _step("Configure", log, configure_argv(source.tree, CONFIGURED_PREFIX, target, steps, cross=cross, build=build,
                                           shared=shared), build, env)
    _step("make build_libs", log, ["make", f"-j{JOBS}", "build_libs"], build, env)
    root = tmp / "root"
    _step("make install_dev", log, ["make", "install_dev", f"DESTDIR={root}"], build, env)
    prefix = tmp / "prefix"
    os.replace(root / CONFIGURED_PREFIX.relative_to(CONFIGURED_PREFIX.anchor), prefix)
    built = OpenSSL(prefix=final, key=key, source_version=source.version, steps=steps, target=target,
                    has_shared=shared)
    (prefix / STAMP).write_text(json.dumps({"key": key, "package": PACKAGE.name, "source_version": source.version,
                                            "target": target, "steps": list(steps), "shared": shared,
                                            "options": list(options_of(steps))}, indent=2) + "\n")
    os.replace(log, prefix / LOG_NAME)
    if final.exists():  # a leftover without its stamp: never a complete build
        remove_tree(final, project.output_roots)
    os.replace(prefix, final)
    remove_tree(tmp, project.output_roots)
    return built
