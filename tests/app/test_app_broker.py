"""The test broker itself: restart on the same port keeps retained messages; failures show the log."""

from __future__ import annotations

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
    broken = CertSet(folder=tls_certs.folder, ca_cert=tmp_path / "missing-ca.pem", server_cert=tls_certs.server_cert,
                     server_key=tls_certs.server_key, client_cert=tls_certs.client_cert,
                     client_key=tls_certs.client_key, other_ca_cert=tls_certs.other_ca_cert)
    b = Broker(tmp_path / "broken", certs=broken)
    with pytest.raises(BrokerError) as info:
        b.start()
    assert "mosquitto exited at start" in str(info.value)
    assert "missing-ca.pem" in str(info.value)  # the log tail names the culprit
    assert not b.running
