"""Every command end to end against a real mosquitto, watched by an independent Subscriber:
publishing, control requests and garbage, reconnect without loss, signals, last will."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from build.testbed.broker import Broker, Subscriber, free_port
from conftest import DEVICE, ROOT, AppRunner

pytestmark = pytest.mark.integration

STATUS = f"devices/{DEVICE}/status"


def statuses(seen: Subscriber) -> list[bytes]:
    return seen.payloads(STATUS)


def test_telemetry_publishes_count_readings_then_goes_offline(broker: Broker, app: AppRunner) -> None:
    topic = f"devices/{DEVICE}/telemetry"
    with Subscriber(broker.host, broker.port, [f"devices/{DEVICE}/#"]) as seen:
        code, out, err = app.run("telemetry", "--count", "3", "--interval", "0.01", *app.mqtt_args(broker))
        assert code == 0, err
        readings = [json.loads(m.payload) for m in seen.wait_count(3, topic)]
        seen.wait_payload(STATUS, "offline")
    assert [r["seq"] for r in readings] == [1, 2, 3]
    for r in readings:
        assert r["device"] == DEVICE
        assert {"load", "mem_total_kb", "mem_available_kb", "uptime_s", "disk_free_bytes"} <= r.keys()
        assert 0 <= r["disk_free_bytes"] <= r["disk_total_bytes"]
    assert readings[0]["ts"] <= readings[1]["ts"] <= readings[2]["ts"]
    assert statuses(seen) == [b"online", b"offline"]
    assert out == ""


def test_heartbeat_is_sequence_numbered(broker: Broker, app: AppRunner) -> None:
    topic = f"devices/{DEVICE}/heartbeat"
    with Subscriber(broker.host, broker.port, [topic]) as seen:
        code, _out, err = app.run("heartbeat", "--count", "5", "--interval", "0.01", *app.mqtt_args(broker))
        assert code == 0, err
        beats = [json.loads(m.payload) for m in seen.wait_count(5, topic)]
    assert [b["seq"] for b in beats] == [1, 2, 3, 4, 5]
    assert all(m.qos == 1 for m in seen.messages(topic))


def test_control_answers_every_command_and_survives_garbage(broker: Broker, app: AppRunner) -> None:
    cmd, reply = f"devices/{DEVICE}/cmd", f"devices/{DEVICE}/reply"
    requests: list[tuple[bytes, dict[str, object]]] = [
        (b'{"id": "p1", "cmd": "ping"}', {"id": "p1", "ok": True, "result": "pong"}),
        (b'{"id": 2, "cmd": "echo", "data": {"a": [1, "b"]}}', {"id": 2, "ok": True, "result": {"a": [1, "b"]}}),
        (b"\xff\xfe\xfd not utf-8", {"id": None, "ok": False, "error": "not valid UTF-8"}),
        (b"{this is not json", {"id": None, "ok": False, "error": "invalid JSON"}),
        (b"x" * 65536, {"id": None, "ok": False, "error": "payload too large: 65536 bytes"}),
        (b'[{"id": "a", "cmd": "ping"}]', {"id": None, "ok": False, "error": "must be a JSON object"}),
        (b'{"id": "u1", "cmd": "self-destruct"}', {"id": "u1", "ok": False, "error": "unknown command"}),
        (b'{"id": "s1", "cmd": "status"}', {"id": "s1", "ok": True}),
        (b'{"id": "p2", "cmd": "ping"}', {"id": "p2", "ok": True, "result": "pong"}),
    ]
    with Subscriber(broker.host, broker.port, [STATUS, reply]) as seen:
        worker = app.start("control", "--count", str(len(requests)), *app.mqtt_args(broker))
        seen.wait_payload(STATUS, "online")  # "online" is sent once the subscription is in place
        for i, (payload, expected) in enumerate(requests):
            seen.publish(cmd, payload)
            got = json.loads(seen.wait_count(i + 1, reply)[i].payload)
            for key, value in expected.items():
                if key == "error":
                    assert value in got["error"], (payload[:40], got)
                else:
                    assert got[key] == value, (payload[:40], got)
        assert worker.wait() == 0  # --count reached: every request, good or bad, was handled
        seen.wait_payload(STATUS, "offline")
    status = json.loads(seen.payloads(reply)[7])["result"]
    assert (status["device"], status["requests"], status["errors"]) == (DEVICE, 8, 5)
    assert worker.stderr_text().count("bad request") == 5


def test_reconnect_resumes_and_loses_no_qos1_message(broker: Broker, app: AppRunner) -> None:
    """Stop the broker while heartbeat runs, start it again on the same port: the worker reconnects
    by itself and every heartbeat, including those published while the broker was down, arrives."""
    topic = f"devices/{DEVICE}/heartbeat"
    total = 300
    with Subscriber(broker.host, broker.port, [topic]) as seen:
        worker = app.start("heartbeat", "--count", str(total), "--interval", "0.01", "--ack-timeout", "60",
                           *app.mqtt_args(broker))
        seen.wait_count(20, topic)
        port = broker.port
        broker.stop()
        down_since = time.time()
        worker.wait_for_stderr("lost")  # "connection to ... lost (...); reconnecting"
        # Stay down a while longer (a whole second, so that even a starved worker gets to run) while
        # it keeps publishing (every 10 ms) into its queue.
        noticed = time.time()
        while time.time() < noticed + 1.0:
            time.sleep(0.05)
        up_again = time.time()
        broker.start()
        assert broker.port == port
        assert worker.wait(60) == 0, worker.stderr_text()
        beats = seen.wait_for(lambda ms: len({json.loads(m.payload)["seq"] for m in ms}) >= total,
                              topic_filter=topic, timeout=60, what=f"{total} distinct heartbeats")
    seqs = [json.loads(m.payload)["seq"] for m in beats]
    assert set(seqs) == set(range(1, total + 1))  # none lost (QoS 1 may deliver a few twice)
    published_while_down = [b for b in map(json.loads, (m.payload for m in beats)) if down_since < b["ts"] < up_again]
    assert published_while_down, "no heartbeat was published while the broker was down"
    log = worker.stderr_text()
    assert "lost" in log and "reconnected to" in log


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("command", ["heartbeat", "control"])
def test_signal_gives_exit_0_and_retained_offline(broker: Broker, app: AppRunner, command: str, signum: int) -> None:
    with Subscriber(broker.host, broker.port, [STATUS]) as seen:
        extra = ["--interval", "0.05"] if command == "heartbeat" else []
        worker = app.start(command, *extra, *app.mqtt_args(broker))
        seen.wait_payload(STATUS, "online")
        worker.send_signal(signum)
        assert worker.wait() == 0, worker.stderr_text()
        seen.wait_payload(STATUS, "offline")
    assert f"{signal.Signals(signum).name} received" in worker.stderr_text()
    # A client arriving later reads the retained status.
    with Subscriber(broker.host, broker.port, [STATUS], persistent=False) as late:
        retained = late.wait_count(1, STATUS)[0]
    assert (retained.payload, retained.retain) == (b"offline", True)


def test_signal_while_the_broker_is_away_still_exits_0(broker: Broker, app: AppRunner) -> None:
    worker = app.start("heartbeat", "--interval", "0.05", *app.mqtt_args(broker))
    worker.wait_for_stderr("connected to")
    broker.stop()
    worker.wait_for_stderr("lost")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.stderr_text()


def test_count_fails_clearly_when_the_broker_stops_acknowledging(broker: Broker, app: AppRunner) -> None:
    worker = app.start("heartbeat", "--interval", "0.02", "--count", "100", "--ack-timeout", "0.5",
                       *app.mqtt_args(broker))
    worker.wait_for_stderr("connected to")
    broker.stop()  # long before the 100th heartbeat (2 s of them)
    assert worker.wait() == 1
    errors = [line for line in worker.stderr_text().splitlines() if ": error: " in line]
    assert len(errors) == 1
    assert errors[0].startswith("python -m app heartbeat: error: ")
    assert errors[0].endswith(" of 100 message(s) to devices/dev/heartbeat not acknowledged by the broker "
                              "within 0.5 s (see --ack-timeout)")


def test_sigkill_makes_the_broker_publish_the_last_will(broker: Broker, app: AppRunner) -> None:
    with Subscriber(broker.host, broker.port, [STATUS]) as seen:
        worker = app.start("control", *app.mqtt_args(broker))
        seen.wait_payload(STATUS, "online")
        worker.send_signal(signal.SIGKILL)
        assert worker.wait() == -signal.SIGKILL
        seen.wait_for(lambda ms: [m.payload for m in ms] == [b"online", b"offline"], topic_filter=STATUS,
                      what="the last will")
    assert "Sending CONNACK" in broker.log_text()
    with Subscriber(broker.host, broker.port, [STATUS], persistent=False) as late:
        assert late.wait_count(1, STATUS)[0].payload == b"offline"


def test_unreachable_broker_gives_up_with_one_clear_line(app: AppRunner) -> None:
    port = free_port()
    code, _out, err = app.run("telemetry", "--count", "1", "--host", "127.0.0.1", "--port", str(port),
                              "--connect-timeout", "0.5", "--reconnect-min", "0.1", "--log-level", "error")
    assert code == 1
    assert err == (f"python -m app telemetry: error: cannot connect to 127.0.0.1:{port}: Connection refused "
                   f"(gave up after 0.5 s, see --connect-timeout)\n")


def test_username_and_password(tmp_path: Path, app: AppRunner) -> None:
    with Broker(tmp_path / "auth-broker", users={"worker": "s3cret"}) as broker:
        with Subscriber(broker.host, broker.port, [f"devices/{DEVICE}/heartbeat"], username="worker",
                        password="s3cret") as seen:
            code, _out, err = app.run("heartbeat", "--count", "2", "--interval", "0.01", *app.mqtt_args(broker),
                                      env={"MQTT_USERNAME": "worker", "MQTT_PASSWORD": "s3cret"})
            assert code == 0, err
            seen.wait_count(2, f"devices/{DEVICE}/heartbeat")
        code, _out, err = app.run("heartbeat", "--count", "2", *app.mqtt_args(broker), "--username", "worker",
                                  env={"MQTT_PASSWORD": "wrong"})
        assert code == 1
        assert [line for line in err.splitlines() if ": error: " in line] == [
            f"python -m app heartbeat: error: the broker at {broker.host}:{broker.port} "
            "refused the connection: Not authorized"]


def test_mqtt_commands_import_no_idna_or_unicodedata(broker: Broker, app: AppRunner) -> None:
    """Connecting by host name must not drag in the idna codec (stringprep + unicodedata, ~1.3 MB)."""
    probe = ("import sys\nsys.argv = ['telemetry', '--count', '1', '--host', 'localhost', '--port', %r,"
             " '--device-id', 'x']\nfrom app.cli import main\ncode = main()\n"
             "print('@@', code, *sorted(sys.modules))\n" % str(broker.port))
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=app.env, capture_output=True, text=True,
                            timeout=60)
    marker, code, *loaded = result.stdout.splitlines()[-1].split()
    assert (marker, code) == ("@@", "0"), result.stderr
    assert "paho.mqtt.client" in loaded
    assert not {"encodings.idna", "stringprep", "unicodedata"} & set(loaded)
