"""OpenSSL built for an MQTT client (build/runtime/openssl.py) and the size runtime's TLS modules
linked against it (build/runtime/tls.py): the recipe as data (fast), a failed compile (fast, a
Configure that fails), and the real build (integration: compiled once into the shared cache)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from build.project import Project
from build.runtime import openssl, tls
from build.runtime.compile import MINOR, Runtime
from build.runtime.cross import Cross
from build.runtime.sources import Source

ROOT = Path(__file__).resolve().parent.parent


def test_every_step_is_known_and_options_come_once_in_order() -> None:
    options = openssl.options_of(openssl.SIZE_STEPS)
    assert len(options) == len(set(options))
    assert options[0] == "-Os"
    assert options.index("no-engine") < options.index("no-dtls") < options.index("no-deprecated")
    with pytest.raises(KeyError):
        openssl.step_named("no-such-step")


def test_nothing_python_or_an_mqtt_client_needs_is_left_out() -> None:
    """_ssl calls DH and 3.0-deprecated API, _hashlib scrypt; a TLS 1.2/1.3 client needs these."""
    options = set(openssl.options_of(openssl.SIZE_STEPS))
    for needed in ("dh", "scrypt", "ec", "ecdh", "ecdsa", "chacha", "poly1305", "tls1_2", "tls1_3", "tls", "sock",
                   "rsa", "sha", "gcm", "err", "threads", "asm", "pic", "shared"):
        assert f"no-{needed}" not in options
    # no-deprecated only with --api=1.1.1: what 3.0 deprecated (HMAC_CTX, DH_free) stays for CPython 3.11.
    assert "--api=1.1.1" in options and options.issuperset({"no-deprecated", "no-tls1", "no-tls1_1", "no-dtls"})


def test_configure_argv_and_key(tmp_path: Path) -> None:
    argv = openssl.configure_argv(tmp_path, tmp_path / "p", "x86_64", openssl.SIZE_STEPS[:2])
    assert argv[:3] == ["perl", str(tmp_path / "Configure"), "linux-x86_64"]
    assert f"--openssldir={openssl.OPENSSLDIR}" in argv and "no-tests" in argv and "no-legacy" in argv
    assert "no-dtls" not in argv and "no-shared" not in argv
    assert openssl.configure_argv(tmp_path, tmp_path / "p", "x86_64", (), shared=False)[-1] == "no-shared"
    assert openssl.openssl_key("3", (), "x86_64", shared=False) != openssl.openssl_key("3", (), "x86_64")
    with pytest.raises(openssl.OpenSSLBuildFailed, match="riscv"):
        openssl.configure_argv(tmp_path, tmp_path, "riscv", ())
    key = openssl.openssl_key("3.0.20-1", openssl.SIZE_STEPS, "x86_64")
    assert key == openssl.openssl_key("3.0.20-1", openssl.SIZE_STEPS, "x86_64")
    assert len({key, openssl.openssl_key("3.0.21-1", openssl.SIZE_STEPS, "x86_64"),
                openssl.openssl_key("3.0.20-1", openssl.SIZE_STEPS[:-1], "x86_64"),
                openssl.openssl_key("3.0.20-1", openssl.SIZE_STEPS, "aarch64")}) == 4


def test_another_architecture_is_configured_with_debians_cross_tools_against_its_root(tmp_path: Path) -> None:
    cross = Cross(triplet="arm-linux-gnueabihf", sysroot=tmp_path / "root", sysroot_key="armv7-1", run=("proot",))
    argv = openssl.configure_argv(tmp_path, tmp_path / "p", "armv7", openssl.SIZE_STEPS, cross=cross)
    assert argv[2:6] == ["linux-armv4", f"CC=arm-linux-gnueabihf-gcc --sysroot={tmp_path / 'root'}",
                         "AR=arm-linux-gnueabihf-ar", "RANLIB=arm-linux-gnueabihf-ranlib"]
    assert openssl.DEBUG_INFO in argv  # units for `bloat --units`; the stripped code is the same
    mapped = openssl.configure_argv(tmp_path / "src" / "tree", tmp_path / "p", "x86_64", (), build=tmp_path / "k" / "build")
    # The flags ship inside the library (OPENSSL_CFLAGS): relative to the build folder, never absolute.
    assert "-fdebug-prefix-map=../../src/tree/=" in mapped and not [a for a in mapped if a.startswith("-f") and str(tmp_path) in a]
    native = openssl.configure_argv(tmp_path, tmp_path / "p", "x86_64", openssl.SIZE_STEPS)
    assert not any(a.startswith(("CC=", "AR=")) for a in native)
    # Another root (other libc headers) is another build; a cross build is never made without one.
    assert openssl.openssl_key("3", openssl.SIZE_STEPS, "armv7", "a") != openssl.openssl_key("3", openssl.SIZE_STEPS, "armv7", "b")
    with pytest.raises(openssl.OpenSSLBuildFailed, match="needs a cross compiler"):
        openssl.build_openssl(Project.at(ROOT, work=tmp_path / "w", cache=tmp_path / "c"),
                              Source(version="3", tree=tmp_path, dsc=tmp_path / "x.dsc"), target="armv7")


def test_the_runtimes_compiler_settings_are_read_without_running_it() -> None:
    """A cross-compiled runtime's interpreter runs only under emulation: its _sysconfigdata is read."""
    text = ("# system configuration generated and used by the sysconfig module\n"
            "build_time_vars = {'CC': 'aarch64-linux-gnu-gcc ',\n 'LDSHARED': 'aarch64-linux-gnu-gcc '\n '-shared -Os',\n"
            " 'SIZEOF_LONG': 8}\n")
    found = tls.sysconfig_vars(text)
    assert found["LDSHARED"] == "aarch64-linux-gnu-gcc -shared -Os" and found["SIZEOF_LONG"] == "8"
    with pytest.raises(ValueError):
        tls.sysconfig_vars("import os\nbuild_time_vars = os.environ\n")
    with pytest.raises(ValueError):
        tls.sysconfig_vars("x = 1\n")


def test_the_digests_a_build_must_not_offer_follow_its_options() -> None:
    final = tls.removed_digests(openssl.options_of(openssl.SIZE_STEPS))
    assert set(final) == set(tls.LEFT_OUT_DIGESTS) | set(tls.BUILT_IN_DIGESTS)
    assert tls.removed_digests(openssl.options_of(openssl.SIZE_STEPS[:1])) == ()
    assert not set(final) & set(tls.HASHLIB_ALGORITHMS)


def test_module_link_lines(tmp_path: Path) -> None:
    v = tls.BuildVars(cc="gcc", cflags="-Os -DNDEBUG", ccshared="-fPIC", ldshared="gcc -shared -Os",
                      ext_suffix=".so")
    built = openssl.OpenSSL(prefix=tmp_path, key="k", source_version="3", steps=(), target="x86_64")
    shared = tls.link_argv(v, built, tmp_path / "m.o", tmp_path / "m.so", "shared")
    static = tls.link_argv(v, built, tmp_path / "m.o", tmp_path / "m.so", "static")
    assert "-lssl" in shared and "-Wl,-rpath,$ORIGIN/../.." in shared
    assert str(tmp_path / "lib" / "libcrypto.a") in static and "-Wl,--exclude-libs,ALL" in static
    assert "-lssl" not in static
    compile_ = tls.compile_argv(v, tmp_path / "rt", tmp_path / "src", built, "_ssl.c", tmp_path / "m.o")
    # The trimmed OpenSSL's headers come before any other include folder (never the system's).
    assert [a for a in compile_ if a.startswith("-I")][0] == f"-I{tmp_path / 'include'}"
    with pytest.raises(ValueError):
        tls.link_argv(v, built, tmp_path / "m.o", tmp_path / "m.so", "both")


def test_a_failed_compile_names_the_step_and_its_log_and_leaves_the_previous_build(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    project = Project.at(tmp_path / "project", cache=tmp_path / "cache")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "Configure").write_text('print STDERR "no such target\\n"; exit 1;\n')
    source = Source(version="3.0.20-1", tree=tree, dsc=tmp_path / "x.dsc")
    previous = project.cache_root / "runtime" / openssl.openssl_key("3.0.19-1", openssl.SIZE_STEPS, "x86_64")
    previous.mkdir(parents=True)
    (previous / "marker").write_text("old")
    with pytest.raises(openssl.OpenSSLBuildFailed, match=r"^openssl: Configure failed \(build log .*build\.log\)"):
        openssl.build_openssl(project, source, target="x86_64")
    final = project.cache_root / "runtime" / openssl.openssl_key(source.version, openssl.SIZE_STEPS, "x86_64")
    assert not final.exists() and openssl.load(final) is None
    assert (previous / "marker").read_text() == "old"


# --- the real build: Debian's source, compiled once into the shared cache --------------------

@pytest.fixture(scope="module")
def trimmed(tmp_path_factory: pytest.TempPathFactory) -> tuple[openssl.OpenSSL, Runtime, Runtime]:
    from build.runtime.sources import obtain_source
    from build.runtime.toolchain import size_runtime
    from build.toolchain import host_architecture

    project = Project.at(ROOT, work=tmp_path_factory.mktemp("work"), cache=ROOT / "work" / ".cache")
    log = tmp_path_factory.mktemp("log") / "build.log"
    built = openssl.build_openssl(project, openssl.obtain_openssl_source(project, log), target=host_architecture())
    runtime = size_runtime(project, log, target=host_architecture())
    return built, runtime, tls.tls_runtime(project, runtime, obtain_source(project, log), built, log)


def _run(python: Path, code: str) -> dict:
    out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


PROBE = """
import hashlib, json, ssl
def pinned():
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLSv1_2)
        return True
    except ValueError:
        return False
maps = open('/proc/self/maps').read()
print(json.dumps({'version': ssl.OPENSSL_VERSION, 'tls1': ssl.HAS_TLSv1, 'tls1_3': ssl.HAS_TLSv1_3,
                  'tls1_2': ssl.HAS_TLSv1_2, 'protocol_tls1_2': pinned(), 'npn': ssl.HAS_NPN, 'alpn': ssl.HAS_ALPN,
                  'libs': sorted({w for w in maps.split() if '/libssl.so' in w or '/libcrypto.so' in w}),
                  'available': sorted(hashlib.algorithms_available),
                  'sha256': hashlib.sha256(b'x').hexdigest(), 'blake2b': hashlib.blake2b(b'x').hexdigest(),
                  'openssl': sorted(__import__('_hashlib').openssl_md_meth_names)}))
"""


@pytest.mark.integration
def test_the_trimmed_openssl_is_smaller_than_debians_and_is_what_ssl_loads(
        trimmed: tuple[openssl.OpenSSL, Runtime, Runtime]) -> None:
    built, runtime, with_tls = trimmed
    assert built.steps == openssl.SIZE_STEPS
    # The profiles link statically: only the archives are built (each file compiled once, not twice).
    assert not built.has_shared and not any(p.exists() for p in built.shared)
    assert all(p.is_file() for p in built.static)
    debian = [Path("/usr/lib/x86_64-linux-gnu") / n for n in openssl.SONAMES]
    if all(p.exists() for p in debian):
        ssl_module = next((with_tls.prefix / "lib" / f"python{MINOR}" / "lib-dynload").glob("_ssl.*.so"))
        assert ssl_module.stat().st_size < sum(p.stat().st_size for p in debian)
    plain, trim = _run(runtime.python, PROBE), _run(with_tls.python, PROBE)
    # Static: no libssl/libcrypto mapped at all; shared: only the trimmed copies beside libpython.
    expected = [str(with_tls.prefix / "lib" / n) for n in ("libcrypto.so.3", "libssl.so.3")]
    assert trim["libs"] == (expected if tls.LINKING == "shared" else [])
    assert plain["libs"] and plain["libs"] != trim["libs"]
    assert all(not lib.startswith(str(with_tls.prefix)) for lib in plain["libs"])
    # What was cut shows; what a client needs stays.
    assert trim["tls1_3"] and trim["tls1_2"] and trim["alpn"] and not trim["protocol_tls1_2"]
    assert plain["tls1"] and plain["protocol_tls1_2"] and not trim["tls1"] and not trim["npn"]
    assert trim["sha256"] == plain["sha256"]
    for name in tls.LEFT_OUT_DIGESTS:
        assert name not in trim["available"]
    assert set(tls.HASHLIB_ALGORITHMS) | set(tls.BUILT_IN_DIGESTS) <= set(trim["available"])
    assert set(tls.BUILT_IN_DIGESTS) <= set(plain["openssl"]) and not set(tls.BUILT_IN_DIGESTS) & set(trim["openssl"])
    assert trim["blake2b"] == plain["blake2b"]
    # No folder of the build machine in what ships (__FILE__, ENGINESDIR, MODULESDIR).
    module = next((with_tls.prefix / "lib" / f"python{MINOR}" / "lib-dynload").glob("_ssl.*.so")).read_bytes()
    assert str((ROOT / "work" / ".cache").resolve()).encode() not in module and b"/usr/lib/ssl" in module
    # The runtime's own files are shared, not copied: its libpython is the same inode.
    assert (with_tls.prefix / "lib" / f"libpython{MINOR}.so.1.0").stat().st_ino == runtime.libpython.stat().st_ino


@pytest.mark.integration
def test_the_tls_runtime_cannot_offer_a_left_out_cipher(trimmed: tuple[openssl.OpenSSL, Runtime, Runtime]) -> None:
    """The trimmed client cannot even offer ARIA or Camellia; with Debian's OpenSSL it can (TLS 1.2)."""
    code = """
import json, ssl
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
try:
    ctx.set_ciphers('ECDHE-RSA-ARIA128-GCM-SHA256:ECDHE-ECDSA-ARIA128-GCM-SHA256:CAMELLIA')
    print(json.dumps({'set': True}))
except ssl.SSLError as e:
    print(json.dumps({'set': False, 'error': str(e)}))
"""
    _built, runtime, with_tls = trimmed
    plain = subprocess.run([runtime.python, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    trim = subprocess.run([with_tls.python, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert json.loads(plain.stdout)["set"] is True
    assert json.loads(trim.stdout) == {"set": False, "error": "('No cipher can be selected.',)"}
