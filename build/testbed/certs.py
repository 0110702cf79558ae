"""Test certificates made with `cryptography`: a CA, a server certificate for 127.0.0.1 / ::1 /
localhost signed by it, a client certificate signed by it, and a second, unrelated CA (a client
trusting only that one must refuse the server). Beside them, for the TLS listeners of
build/testbed/broker.py: the same server as RSA (the first one is ECDSA P-256), one that expired
yesterday and one made for another host name, all signed by the same CA."""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
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
    rsa_server_cert: Path  # server_cert's names, an RSA 2048 key
    rsa_server_key: Path
    expired_server_cert: Path  # server_cert's names, expired yesterday
    expired_server_key: Path
    wrong_host_server_cert: Path  # valid, but for the name wrong-host.invalid only
    wrong_host_server_key: Path


@dataclass(frozen=True)
class _Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


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
        local = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1")),
                 x509.DNSName("localhost")]
        rsa_server = _issue("localhost", days, issuer=ca, usage=ExtendedKeyUsageOID.SERVER_AUTH, names=local,
                            rsa_key=True)
        expired = _issue("localhost", -1, issuer=ca, usage=ExtendedKeyUsageOID.SERVER_AUTH, names=local)
        wrong = _issue("wrong-host.invalid", days, issuer=ca, usage=ExtendedKeyUsageOID.SERVER_AUTH,
                       names=[x509.DNSName("wrong-host.invalid")])
        issued_all = (("ca", ca), ("other-ca", other), ("server", server), ("client", client),
                      ("rsa-server", rsa_server), ("expired-server", expired), ("wrong-host-server", wrong))
        for name, issued in issued_all:
            _write(scratch / f"{name}.pem", issued.cert.public_bytes(serialization.Encoding.PEM))
            _write(scratch / f"{name}.key", issued.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        for name, _issued in issued_all:
            for suffix in (".pem", ".key"):
                if name != "other-ca" or suffix == ".pem":
                    os.replace(scratch / f"{name}{suffix}", folder / f"{name}{suffix}")
    finally:
        remove_tree(scratch, (folder,))
    return CertSet(folder=folder, ca_cert=folder / "ca.pem", server_cert=folder / "server.pem",
                   server_key=folder / "server.key", client_cert=folder / "client.pem",
                   client_key=folder / "client.key", other_ca_cert=folder / "other-ca.pem",
                   rsa_server_cert=folder / "rsa-server.pem", rsa_server_key=folder / "rsa-server.key",
                   expired_server_cert=folder / "expired-server.pem", expired_server_key=folder / "expired-server.key",
                   wrong_host_server_cert=folder / "wrong-host-server.pem",
                   wrong_host_server_key=folder / "wrong-host-server.key")


def _issue(common_name: str, days: int, *, ca: bool = False, issuer: _Issued | None = None,
           usage: x509.ObjectIdentifier | None = None, names: list[x509.GeneralName] | None = None,
           rsa_key: bool = False) -> _Issued:
    """A P-256 key (made in milliseconds, understood by mosquitto, OpenSSL and Python's ssl), or an
    RSA 2048 one, and its certificate: self-signed when there is no `issuer`. Negative `days`: it
    expired that many days ago (valid for the day before)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5) - datetime.timedelta(days=max(0, -2 * days)))
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
