"""Benchmark (issue 20): OpenSSL built for an MQTT client, step by step, against Debian's.

    .venv/bin/python benchmarks/openssl.py [--ladder] [--static] [--linking] [--handshake] [--runs 11] [--markdown]

Prints:
- libcrypto.so.3 and libssl.so.3 bytes (stripped --strip-unneeded, and xz -9e) of Debian's (the ones
  the system runtime's `_ssl` loads) and of each trimmed build in the cache; `--ladder` first builds
  the missing ones, one per step of build/runtime/openssl.SIZE_STEPS, each on top of those before
  (a compile each, cached under work/.cache/runtime/openssl-*);
- `--static`: beside each build, `_ssl` linked with it statically (what the TLS profiles ship);
- `--linking`: what a TLS runtime ships for `_ssl` (and `_hashlib`), linked shared against the trimmed
  libraries or with them static inside, beside the size runtime's own (Debian's libraries);
- `--handshake`: ms from a TCP connect to the first acknowledged QoS 1 publish over TLS 1.3 to a local
  mosquitto, the size runtime's interpreter with Debian's OpenSSL against the same interpreter with
  the trimmed one (only `_ssl` and its libraries differ), in turns, medians of --runs.
A benchmark, not a test: it prints figures and asserts nothing about them.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `build` is the source tree's package, never an installed one

from build.errors import SlimfreezeError  # noqa: E402
from build.project import Project  # noqa: E402
from build.runtime import openssl, tls  # noqa: E402
from build.runtime.compile import MINOR, Runtime  # noqa: E402
from build.runtime.sources import obtain_source  # noqa: E402
from build.runtime.toolchain import size_runtime  # noqa: E402
from build.sweep.measure import alternate  # noqa: E402
from build.toolchain import host_architecture  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from memory_startup import emit, num  # noqa: E402
from runtime import library_bytes  # noqa: E402

DEBIAN_LIBS = Path("/usr/lib") / f"{host_architecture()}-linux-gnu"


def stripped_and_xz(path: Path) -> tuple[int, int]:
    _raw, stripped, xz = library_bytes(path)
    return stripped, xz


def cached_builds(project: Project) -> list[openssl.OpenSSL]:
    folder = project.cache_root / "runtime"
    found = [openssl.load(p) for p in sorted(folder.glob("openssl-*"))]
    return sorted((b for b in found if b is not None and b.target == host_architecture() and b.has_shared),
                  key=lambda b: (len(b.steps), b.key))


def ladder_rows(project: Project, static_in: Runtime | None, log: Path) -> list[list[str]]:
    """One row per build; with `static_in`, also _ssl linked statically against it (stripped, xz)."""
    def row(label: str, crypto: Path, ssl: Path, base: tuple[int, int] | None) -> list[str]:
        (cs, cx), (ss, sx) = stripped_and_xz(crypto), stripped_and_xz(ssl)
        change = f"{(cs + ss) / base[0] - 1:+.1%}" if base else ""
        change_xz = f"{(cx + sx) / base[1] - 1:+.1%}" if base else ""
        return [label, num(cs), num(cx), num(ss), num(sx), num(cs + ss), num(cx + sx), change, change_xz]

    debian = row("Debian's (libssl3)", DEBIAN_LIBS / "libcrypto.so.3", DEBIAN_LIBS / "libssl.so.3", None)
    base = (int(debian[5].replace(",", "")), int(debian[6].replace(",", "")))
    rows = [debian + (["", ""] if static_in else [])]
    python_source = obtain_source(project, log) if static_in else None
    for built in cached_builds(project):
        label = " + ".join(built.steps)
        if built.key != openssl.openssl_key(built.source_version, built.steps, built.target, None, True):
            label += " (an earlier recipe)"  # left in the cache by an earlier build recipe
        extra: list[str] = []
        if static_in is not None and python_source is not None:
            made = tls.tls_runtime(project, static_in, python_source, built, log, "static")
            module = next((made.prefix / "lib" / f"python{MINOR}" / "lib-dynload").glob("_ssl.*.so"))
            extra = list(map(num, stripped_and_xz(module)))
        rows.append(row(label, *built.shared, base) + extra)
    return rows


def build_ladder(project: Project, log: Path) -> None:
    source = openssl.obtain_openssl_source(project, log)
    for i in range(1, len(openssl.SIZE_STEPS) + 1):
        steps = openssl.SIZE_STEPS[:i]
        print(f"openssl: building {', '.join(steps)} (cached when built before) ...", file=sys.stderr)
        openssl.build_openssl(project, source, steps, target=host_architecture(), shared=True)


def linking_rows(project: Project, runtime: Runtime, log: Path) -> list[list[str]]:
    built = openssl.build_openssl(project, openssl.obtain_openssl_source(project, log), target=host_architecture(),
                                  shared=True)
    python_source = obtain_source(project, log)

    def shipped(prefix: Path, libs: list[Path]) -> list[int]:
        dynload = prefix / "lib" / f"python{MINOR}" / "lib-dynload"
        ssl_mod = next(dynload.glob("_ssl.*.so"))
        hash_mod = next(dynload.glob("_hashlib.*.so"))
        return [stripped_and_xz(p)[0] for p in (ssl_mod, hash_mod, *libs)]

    rows = []
    for label, prefix, libs in [("size runtime (Debian's libssl3)", runtime.prefix,
                                 [DEBIAN_LIBS / "libssl.so.3", DEBIAN_LIBS / "libcrypto.so.3"])]:
        rows.append([label, *map(num, shipped(prefix, libs))])
    for linking in tls.LINKINGS:
        made = tls.tls_runtime(project, runtime, python_source, built, log, linking)
        libs = [made.prefix / "lib" / "libssl.so.3", made.prefix / "lib" / "libcrypto.so.3"] if linking == "shared" else []
        sizes = shipped(made.prefix, libs)
        rows.append([f"trimmed, {linking}", *map(num, sizes + [0] * (4 - len(sizes)))])
    for row in rows:
        values = [int(v.replace(",", "")) for v in row[1:]]
        row += [num(values[0] + values[2] + values[3]), num(sum(values))]
    return rows


HANDSHAKE = r"""
import socket, ssl, sys, time
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
t = time.perf_counter()
raw = socket.create_connection((host, port))
s = ctx.wrap_socket(raw, server_hostname="localhost")
cid = b"hs"
s.sendall(bytes([0x10, 12 + len(cid)]) + b"\x00\x04MQTT\x04\x02\x00\x3c\x00" + bytes([len(cid)]) + cid)
assert s.recv(4)[:1] == b"\x20"
topic = b"hs/t"
s.sendall(bytes([0x32, 2 + len(topic) + 2 + 1]) + b"\x00" + bytes([len(topic)]) + topic + b"\x00\x01x")
assert s.recv(4)[:1] == b"\x40"
print((time.perf_counter() - t) * 1000)
"""


def handshake_rows(project: Project, runtime: Runtime, runs: int, log: Path) -> list[list[str]]:
    from build.testbed.broker import Broker
    from build.testbed.certs import make_test_certs

    built = openssl.build_openssl(project, openssl.obtain_openssl_source(project, log), target=host_architecture())
    trimmed = tls.tls_runtime(project, runtime, obtain_source(project, log), built, log)
    pythons = {"Debian's OpenSSL": runtime.python, "trimmed OpenSSL": trimmed.python}
    with tempfile.TemporaryDirectory() as tmp:
        certs = make_test_certs(Path(tmp) / "certs")
        with Broker(Path(tmp) / "broker", certs=certs) as broker:
            def once(python: Path) -> float:
                out = subprocess.run([python, "-I", "-c", HANDSHAKE, broker.host, str(broker.tls_port),
                                      str(certs.ca_cert)], capture_output=True, text=True, check=True, timeout=60)
                return float(out.stdout.strip())
            samples = alternate([lambda p=p: once(p) for p in pythons.values()], runs)
    medians = [statistics.median(s) for s in samples]
    return [[label, num(m, ",.2f"), f"×{m / medians[0]:.2f}"] for label, m in zip(pythons, medians)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ladder", action="store_true", help="build one OpenSSL per step first (slow once)")
    parser.add_argument("--linking", action="store_true", help="compare _ssl linked shared and static")
    parser.add_argument("--handshake", action="store_true", help="time TLS handshake to first ack, both OpenSSLs")
    parser.add_argument("--static", action="store_true", help="also link _ssl statically against each build")
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    project = Project.at(ROOT)
    md = args.markdown
    try:
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "openssl.log"
            if args.ladder:
                build_ladder(project, log)
            runtime = None
            if args.linking or args.handshake or args.static:
                runtime = size_runtime(project, log, target=host_architecture())
            static_columns = ["static _ssl stripped", "static _ssl xz"] if args.static else []
            emit("libcrypto.so.3 / libssl.so.3 per option step (bytes; total change against Debian's)",
                 ["OpenSSL", "libcrypto stripped", "libcrypto xz", "libssl stripped", "libssl xz", "both stripped",
                  "both xz", "stripped vs Debian", "xz vs Debian", *static_columns],
                 ladder_rows(project, runtime if args.static else None, log), as_markdown=md,
                 numeric=("libcrypto stripped", "libcrypto xz", "libssl stripped", "libssl xz", "both stripped",
                          "both xz", "stripped vs Debian", "xz vs Debian", *static_columns))
            if args.linking and runtime is not None:
                emit("what TLS ships (stripped bytes): _ssl, _hashlib and the libraries they load",
                     ["runtime", "_ssl", "_hashlib", "libssl", "libcrypto", "_ssl with its libraries", "all"],
                     linking_rows(project, runtime, log), as_markdown=md,
                     numeric=("_ssl", "_hashlib", "libssl", "libcrypto", "_ssl with its libraries", "all"))
            if args.handshake and runtime is not None:
                emit(f"TCP connect to first acknowledged publish over TLS 1.3, ms (in turns; medians of {args.runs})",
                     ["size runtime's _ssl with", "ms", "vs Debian's"], handshake_rows(project, runtime, args.runs, log),
                     as_markdown=md, numeric=("ms", "vs Debian's"))
    except SlimfreezeError as err:
        print(f"openssl: error: {err}", file=sys.stderr)
        return err.return_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
