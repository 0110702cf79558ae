"""Test certificates made with `cryptography`: a CA, a server certificate for 127.0.0.1 / ::1 /
localhost signed by it, a client certificate signed by it, and a second, unrelated CA (a client
trusting only that one must refuse the server)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from build.paths import remove_tree


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


@dataclass(frozen=True)
class _Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def make_test_certs(folder: Path, *, days: int = 30) -> CertSet:
    """Create (or replace) the test certificates in `folder`.

    Files are made in a scratch folder and moved into place, so `folder` never holds half a set.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".certs-", dir=folder))
    try:
        ca = _issue("slimfreeze test CA", days, ca=True)
        other = _issue("slimfreeze unrelated CA", days, ca=True)
        server = _issue("localhost", days, issuer=ca, usage=ExtendedKeyUsageOID.SERVER_AUTH,
                        names=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                               x509.IPAddress(ipaddress.ip_address("::1")), x509.DNSName("localhost")])
        client = _issue("slimfreeze test client", days, issuer=ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
        for name, issued in (("ca", ca), ("other-ca", other), ("server", server), ("client", client)):
            _write(scratch / f"{name}.pem", issued.cert.public_bytes(serialization.Encoding.PEM))
            _write(scratch / f"{name}.key", issued.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        for name in ("ca.pem", "other-ca.pem", "server.pem", "server.key", "client.pem", "client.key", "ca.key"):
            os.replace(scratch / name, folder / name)
    finally:
        remove_tree(scratch, (folder,))
    return CertSet(folder=folder, ca_cert=folder / "ca.pem", server_cert=folder / "server.pem",
                   server_key=folder / "server.key", client_cert=folder / "client.pem",
                   client_key=folder / "client.key", other_ca_cert=folder / "other-ca.pem")


def _issue(common_name: str, days: int, *, ca: bool = False, issuer: _Issued | None = None,
           usage: x509.ObjectIdentifier | None = None, names: list[x509.GeneralName] | None = None) -> _Issued:
    """A P-256 key (made in milliseconds, understood by mosquitto, OpenSSL and Python's ssl) and its
    certificate: self-signed when there is no `issuer`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=not ca, key_encipherment=not ca, key_cert_sign=ca,
                                            crl_sign=ca, content_commitment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False, decipher_only=False),
                              critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return _Issued(cert=builder.sign(issuer.key if issuer else key, hashes.SHA256()), key=key)


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    if path.suffix == ".key":
        path.chmod(0o600)
