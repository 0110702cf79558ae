"""Test certificates made with the openssl CLI: a CA, a server certificate for 127.0.0.1 / ::1 /
localhost signed by it, a client certificate signed by it, and a second, unrelated CA (a client
trusting only that one must refuse the server)."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from build import proc

# P-256 keys: made in milliseconds, understood by mosquitto, OpenSSL and Python's ssl.
_KEY_OPTS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True, kw_only=True)
class CertSet:
    """Paths of the PEM files in `folder`."""

    folder: Path
    ca_cert: Path          # signed server_cert and client_cert
    server_cert: Path      # SAN: IP 127.0.0.1, IP ::1, DNS localhost
    server_key: Path
    client_cert: Path      # for brokers that require a client certificate
    client_key: Path
    other_ca_cert: Path    # unrelated CA: trusting only this one, the server does not verify


def make_test_certs(folder: Path, *, days: int = 30, log: Path | None = None) -> CertSet:
    """Create (or replace) the test certificates in `folder`; the openssl output goes to `log`.

    Files are made in a scratch folder and moved into place, so `folder` never holds half a set.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    log = log or folder / "openssl.log"
    scratch = Path(tempfile.mkdtemp(prefix=".certs-", dir=folder))
    try:
        _make_ca(scratch, "ca", "slimfreeze test CA", days, log)
        _make_ca(scratch, "other-ca", "slimfreeze unrelated CA", days, log)
        _make_leaf(scratch, "server", "localhost", days, log, [
            "subjectAltName = IP:127.0.0.1, IP:::1, DNS:localhost",
            "extendedKeyUsage = serverAuth",
        ])
        _make_leaf(scratch, "client", "slimfreeze test client", days, log, ["extendedKeyUsage = clientAuth"])
        names = ("ca.pem", "other-ca.pem", "server.pem", "server.key", "client.pem", "client.key", "ca.key")
        for name in names:
            os.replace(scratch / name, folder / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return CertSet(folder=folder, ca_cert=folder / "ca.pem", server_cert=folder / "server.pem",
                   server_key=folder / "server.key", client_cert=folder / "client.pem",
                   client_key=folder / "client.key", other_ca_cert=folder / "other-ca.pem")


def _make_ca(folder: Path, name: str, common_name: str, days: int, log: Path) -> None:
    proc.run(["openssl", "req", "-x509", *_KEY_OPTS, "-keyout", folder / f"{name}.key",
              "-out", folder / f"{name}.pem", "-days", str(days), "-subj", f"/CN={common_name}",
              "-addext", "basicConstraints = critical, CA:TRUE",
              "-addext", "keyUsage = critical, keyCertSign, cRLSign"], log=log, timeout=60)


def _make_leaf(folder: Path, name: str, common_name: str, days: int, log: Path, extensions: list[str]) -> None:
    ext = folder / f"{name}.ext"
    ext.write_text("\n".join([
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature, keyEncipherment",
        "subjectKeyIdentifier = hash",
        "authorityKeyIdentifier = keyid, issuer",
        *extensions,
    ]) + "\n")
    csr = folder / f"{name}.csr"
    proc.run(["openssl", "req", "-new", *_KEY_OPTS, "-keyout", folder / f"{name}.key", "-out", csr,
              "-subj", f"/CN={common_name}"], log=log, timeout=60)
    proc.run(["openssl", "x509", "-req", "-in", csr, "-CA", folder / "ca.pem", "-CAkey", folder / "ca.key",
              "-set_serial", str(secrets.randbits(63)), "-days", str(days), "-extfile", ext,
              "-out", folder / f"{name}.pem"], log=log, timeout=60)
