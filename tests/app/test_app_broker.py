"""The test broker itself: restart on the same port keeps retained messages; failures show the log."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from build.testbed.broker import Broker, BrokerError, Subscriber
from build.testbed.certs import CertSet

pytestmark = pytest.mark.integration


def test_restart_keeps_port_and_retained_messages(broker: Broker) -> None:
    port = broker.port
    with Subscriber(broker.host, broker.port, ["x/y"], persistent=False) as pub:
        pub.publish("x/y", b"kept", retain=True)
    broker.stop()
    assert not broker.running
    broker.start()
    assert broker.port == port and broker.running
    with Subscriber(broker.host, broker.port, ["x/y"], persistent=False) as late:
        got = late.wait_count(1, "x/y")[0]
    assert (got.payload, got.retain) == (b"kept", True)
    assert broker.log_text().count("mosquitto version") >= 2  # both runs are in the log


def test_persistent_subscriber_gets_what_was_published_while_it_was_away(broker: Broker) -> None:
    with Subscriber(broker.host, broker.port, ["q/#"]) as seen:
        broker.stop()
        broker.start()
        with Subscriber(broker.host, broker.port, ["nothing"], persistent=False) as other:
            other.publish("q/1", b"while restarting")
        assert seen.wait_count(1, "q/#")[0].payload == b"while restarting"


def test_a_broker_that_cannot_start_says_why(tmp_path: Path, tls_certs: CertSet) -> None:
    broken = dataclasses.replace(tls_certs, ca_cert=tmp_path / "missing-ca.pem")
    b = Broker(tmp_path / "broken", certs=broken)
    with pytest.raises(BrokerError) as info:
        b.start()
    assert "mosquitto exited at start" in str(info.value)
    assert "missing-ca.pem" in str(info.value)  # the log tail names the culprit
    assert not b.running


def test_the_tls_listeners_offer_what_their_names_say(tmp_path: Path, tls_certs: CertSet) -> None:
    """What the TLS scenarios stand on (issue 20), seen by this Python's ssl."""
    import socket
    import ssl

    def handshake(port: int, *, client_cert: bool = False) -> tuple[str, str] | str:
        context = ssl.create_default_context(cafile=str(tls_certs.ca_cert))
        if client_cert:
            context.load_cert_chain(str(tls_certs.client_cert), str(tls_certs.client_key))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                    context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02id")  # CONNECT, clean session
                assert tls.recv(4)[:1] == b"\x20"  # CONNACK: the listener speaks MQTT after the handshake
                return tls.version() or "", tls.getpeercert()["subject"][0][0][1]
        except ssl.SSLError as err:
            return err.reason or str(err)

    with Broker(tmp_path / "b", certs=tls_certs) as b:
        ports = b.tls_ports
        assert handshake(ports["tls13"]) == ("TLSv1.3", "localhost")
        assert handshake(ports["tls12"]) == ("TLSv1.2", "localhost")
        assert handshake(ports["rsa"])[0] == "TLSv1.3"
        assert handshake(ports["mtls"], client_cert=True)[0] == "TLSv1.3"
        assert handshake(ports["expired"]) == "CERTIFICATE_VERIFY_FAILED"
        assert handshake(ports["wrong_host"]) == "CERTIFICATE_VERIFY_FAILED"
        assert handshake(ports["cipher"]) == "SSLV3_ALERT_HANDSHAKE_FAILURE"
    # The RSA listener shows an RSA key, the others ECDSA.
    assert b"BEGIN PRIVATE KEY" in tls_certs.rsa_server_key.read_bytes()
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    assert isinstance(x509.load_pem_x509_certificate(tls_certs.rsa_server_cert.read_bytes()).public_key(), rsa.RSAPublicKey)
    assert isinstance(x509.load_pem_x509_certificate(tls_certs.server_cert.read_bytes()).public_key(),
                      ec.EllipticCurvePublicKey)
