"""TLS against mosquitto's TLS listener, with certificates made by build.testbed.certs (cryptography) in the test run."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from build.testbed.broker import Broker, Subscriber
from build.testbed.certs import CertSet
from conftest import DEVICE, AppRunner

TOPIC = f"devices/{DEVICE}/telemetry"


def test_certificates_relate_as_intended(tls_certs: CertSet) -> None:
    """The server certificate verifies against the test CA, for 127.0.0.1 and localhost, and not
    against the unrelated CA (checked with openssl itself, independently of the app)."""
    def verify(ca: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["openssl", "verify", "-CAfile", str(ca), "-verify_ip", "127.0.0.1",
                               str(tls_certs.server_cert)], capture_output=True, text=True, timeout=30)

    assert verify(tls_certs.ca_cert).returncode == 0
    assert verify(tls_certs.other_ca_cert).returncode != 0
    text = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(tls_certs.server_cert)],
                          capture_output=True, text=True, timeout=30, check=True).stdout
    assert "IP Address:127.0.0.1" in text and "DNS:localhost" in text


@pytest.mark.integration
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_connects_with_verification(tls_broker: Broker, tls_certs: CertSet, app: AppRunner, host: str) -> None:
    assert tls_broker.tls_port is not None
    with Subscriber(tls_broker.host, tls_broker.port, [TOPIC]) as seen:  # watches the plain listener
        code, _out, err = app.run("telemetry", "--count", "2", "--interval", "0.01",
                                  *app.mqtt_args(tls_broker, tls=True), "--host", host,
                                  env={"MQTT_TLS_CA": str(tls_certs.ca_cert)})
        assert code == 0, err
        assert len(seen.wait_count(2, TOPIC)) == 2
    assert f"connected to {host}:{tls_broker.tls_port}" in err


@pytest.mark.integration
def test_refuses_a_server_certificate_that_does_not_verify(tls_broker: Broker, tls_certs: CertSet,
                                                           app: AppRunner) -> None:
    with Subscriber(tls_broker.host, tls_broker.port, [f"devices/{DEVICE}/#"]) as seen:
        code, _out, err = app.run("telemetry", "--count", "1", *app.mqtt_args(tls_broker, tls=True),
                                  "--tls-ca", str(tls_certs.other_ca_cert))
        assert seen.messages() == []  # nothing got through, not even "online"
    assert code == 1
    # The reason is OpenSSL's ("self-signed certificate in certificate chain" or "unable to get
    # local issuer certificate", depending on the chain the server sends).
    assert err.startswith("python -m app telemetry: error: TLS: server certificate did not verify: ")
    assert err.endswith(f" ({tls_broker.host}:{tls_broker.tls_port})\n")
    assert len(err.splitlines()) == 1


@pytest.mark.integration
def test_system_cas_do_not_trust_the_test_server(tls_broker: Broker, app: AppRunner) -> None:
    """--tls without a CA file uses the system's CAs, which never signed our test certificate."""
    code, _out, err = app.run("heartbeat", "--count", "1", "--tls", *app.mqtt_args(tls_broker, tls=True))
    assert code == 1
    assert "TLS: server certificate did not verify" in err and len(err.splitlines()) == 1


@pytest.mark.integration
def test_insecure_mode_skips_verification(tls_broker: Broker, tls_certs: CertSet, app: AppRunner) -> None:
    code, _out, err = app.run("heartbeat", "--count", "1", *app.mqtt_args(tls_broker, tls=True),
                              "--tls-ca", str(tls_certs.other_ca_cert), "--tls-insecure")
    assert code == 0, err


@pytest.mark.integration
def test_client_certificate(tmp_path: Path, tls_certs: CertSet, app: AppRunner) -> None:
    with Broker(tmp_path / "mtls-broker", certs=tls_certs, require_client_cert=True) as broker:
        with Subscriber(broker.host, broker.port, [TOPIC]) as seen:
            code, _out, err = app.run("telemetry", "--count", "1", *app.mqtt_args(broker, tls=True),
                                      env={"MQTT_TLS_CA": str(tls_certs.ca_cert),
                                           "MQTT_TLS_CERT": str(tls_certs.client_cert),
                                           "MQTT_TLS_KEY": str(tls_certs.client_key)})
            assert code == 0, err
            seen.wait_count(1, TOPIC)


@pytest.mark.integration
def test_unusable_certificate_file_is_a_clear_error(tls_broker: Broker, tmp_path: Path, app: AppRunner) -> None:
    bogus = tmp_path / "not-a-cert.pem"
    bogus.write_text("hello\n")
    code, _out, err = app.run("telemetry", "--count", "1", *app.mqtt_args(tls_broker, tls=True), "--tls-ca", str(bogus))
    assert code == 2
    assert err.startswith(f"python -m app telemetry: error: TLS: cannot load the CA certificate {bogus}: ")
    assert len(err.splitlines()) == 1


@pytest.mark.integration
def test_python_trusts_the_same_chain(tls_broker: Broker, tls_certs: CertSet) -> None:
    """A plain ssl handshake with the test CA succeeds: the listener is really TLS with our certificate."""
    import socket

    assert tls_broker.tls_port is not None
    context = ssl.create_default_context(cafile=str(tls_certs.ca_cert))
    with socket.create_connection((tls_broker.host, tls_broker.tls_port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() is not None


STAND_IN = """\
# What a TLS-free build might carry instead of the ssl module.
class SSLError(OSError): pass
class SSLWantReadError(SSLError): pass
class SSLWantWriteError(SSLError): pass
class SSLCertVerificationError(SSLError, ValueError): pass
def create_default_context(*args, **kwargs):
    raise RuntimeError("TLS support was left out of this build (slimfreeze profile 'min')")
"""


@pytest.mark.parametrize("stand_in, message", [
    ("raise ImportError('this build has no TLS support')\n", "this build has no TLS support"),
    (STAND_IN, "TLS support was left out of this build (slimfreeze profile 'min')"),
])
def test_a_build_without_tls_says_so_in_one_line(tmp_path: Path, tls_certs: CertSet, app: AppRunner,
                                                  stand_in: str, message: str) -> None:
    (tmp_path / "ssl.py").write_text(stand_in)
    code, _out, err = app.run("heartbeat", "--count", "1", "--port", "8883", "--tls-ca", str(tls_certs.ca_cert),
                              env={"PYTHONPATH": str(tmp_path)})
    assert code == 2
    assert err == f"python -m app heartbeat: error: TLS is not available in this build: {message}\n"
