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

PACKAGE = Package(name="openssl", folder="openssl-src", marker="Configure")
STAMP = "openssl.json"
LOG_NAME = "build.log"
RECIPE = 2  # 2: configured for /usr, installed through DESTDIR: no cache path inside the library
# What Configure is told the prefix is: ENGINESDIR and MODULESDIR are compiled in from it (unused:
# no-module, no-dso), and a build-machine folder must not end up in a shipped binary.
CONFIGURED_PREFIX = Path("/usr")
JOBS = "2"
COMPILE_TIMEOUT = 3 * 3600
# Configure's own target names for the architectures slimfreeze builds for.
CONFIGURE_TARGETS = {"x86_64": "linux-x86_64", "aarch64": "linux-aarch64", "armv7": "linux-armv4"}
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


def configure_argv(tree: Path, prefix: Path, target: str, steps: Iterable[str]) -> list[str]:
    """Configure's command line, run from the (separate) build folder (pure). `prefix`: what the
    library is configured for (CONFIGURED_PREFIX); it is installed elsewhere through DESTDIR."""
    if target not in CONFIGURE_TARGETS:
        raise OpenSSLBuildFailed(f"openssl: no Configure target for architecture {target!r}")
    return ["perl", str(tree / "Configure"), CONFIGURE_TARGETS[target], f"--prefix={prefix}", "--libdir=lib",
            f"--openssldir={OPENSSLDIR}", "no-tests", *options_of(steps)]


def openssl_key(source_version: str, steps: Iterable[str], target: str) -> str:
    """The folder name of the build for these inputs (pure)."""
    steps = tuple(steps)
    data = {"recipe": RECIPE, "source": source_version, "target": target, "steps": list(steps),
            "options": list(options_of(steps)), "openssldir": OPENSSLDIR, "prefix": str(CONFIGURED_PREFIX)}
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    return f"openssl-{target}-{digest}"


@dataclass(frozen=True, kw_only=True)
class OpenSSL:
    prefix: Path
    key: str
    source_version: str
    steps: tuple[str, ...]
    target: str

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
                        steps=tuple(data["steps"]), target=data["target"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return built if all(p.is_file() for p in (*built.shared, *built.static)) else None


def obtain_openssl_source(project: Project, log: Path) -> Source:
    """Debian's openssl source package, verified against its .dsc and unpacked (reused when there)."""
    return obtain_source(project, log, PACKAGE)


def build_openssl(project: Project, source: Source, steps: Iterable[str] = SIZE_STEPS, *,
                  target: str) -> OpenSSL:
    """The trimmed OpenSSL for these inputs: reused from work/.cache/runtime/<key>/ when built before."""
    steps = tuple(steps)
    key = openssl_key(source.version, steps, target)
    final = project.cache_root / "runtime" / key
    existing = load(final)
    if existing is not None:
        return existing
    with exclusive(final):
        return load(final) or _build(project, source, steps, target, key, final)


def _step(what: str, log: Path, argv: list[str | Path], cwd: Path, env: dict[str, str]) -> None:
    try:
        proc.run(argv, log=log, cwd=cwd, env=env, timeout=COMPILE_TIMEOUT)
    except CommandFailed as err:
        raise OpenSSLBuildFailed(f"openssl: {what} failed (build log {log}): {err}") from None


def _build(project: Project, source: Source, steps: tuple[str, ...], target: str, key: str, final: Path) -> OpenSSL:
    tmp = final.with_name(f"{key}.tmp")
    remove_tree(tmp, project.output_roots)
    build = tmp / "build"
    build.mkdir(parents=True)
    log = tmp / LOG_NAME
    proc.require_tools("perl", "make", "gcc")
    env = {**os.environ, "LC_ALL": "C"}
    _step("Configure", log, configure_argv(source.tree, CONFIGURED_PREFIX, target, steps), build, env)
    _step("make build_libs", log, ["make", f"-j{JOBS}", "build_libs"], build, env)
    root = tmp / "root"
    _step("make install_dev", log, ["make", "install_dev", f"DESTDIR={root}"], build, env)
    prefix = tmp / "prefix"
    os.replace(root / CONFIGURED_PREFIX.relative_to(CONFIGURED_PREFIX.anchor), prefix)
    built = OpenSSL(prefix=final, key=key, source_version=source.version, steps=steps, target=target)
    (prefix / STAMP).write_text(json.dumps({"key": key, "package": PACKAGE.name, "source_version": source.version,
                                            "target": target, "steps": list(steps),
                                            "options": list(options_of(steps))}, indent=2) + "\n")
    os.replace(log, prefix / LOG_NAME)
    if final.exists():  # a leftover without its stamp: never a complete build
        remove_tree(final, project.output_roots)
    os.replace(prefix, final)
    remove_tree(tmp, project.output_roots)
    return built
