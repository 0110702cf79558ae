"""`run`: one supervisor forking a worker per command, restarting failed ones, passing on stop
signals; against a real mosquitto, watched by an independent Subscriber."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from app.commands.run import RESTART_DELAY_MAX, child_prog, describe_status, parse_worker, restart_delay
from build.testbed.broker import Broker, Subscriber, free_port
from conftest import DEVICE, ROOT, AppProcess, AppRunner

STATUS = f"devices/{DEVICE}/status"
STARTED = re.compile(r"started (\w+) as pid (\d+)")

Start = Callable[..., AppProcess]


def started_pids(p: AppProcess) -> list[tuple[str, int]]:
    """(command, pid) of every worker the supervisor logged as started, in order."""
    return [(name, int(pid)) for name, pid in STARTED.findall(p.stderr_text())]


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def sqlite_mapped(pid: int) -> list[str]:
    """The SQLite files (the _sqlite3 extension, libsqlite3) mapped into process `pid`."""
    return sorted({m.path for m in psutil.Process(pid).memory_maps() if "sqlite3" in Path(m.path).name})


def onlines(seen: Subscriber, n: int, topic: str = STATUS) -> None:
    seen.wait_for(lambda ms: sum(m.payload == b"online" for m in ms) >= n, topic_filter=topic,
                  what=f"{n} x online")


def python_app(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env=env)


@pytest.fixture
def supervise(app: AppRunner) -> Iterator[Start]:
    """Starts `python -m app run ...`; a supervisor left running has its workers killed first (the
    app fixture kills only the process it started, which would orphan them)."""
    started: list[AppProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> AppProcess:
        p = app.start("run", *args, env=env)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.proc.poll() is None:
            for child in psutil.Process(p.proc.pid).children(recursive=True):
                try:
                    child.kill()  # psutil checks it is still the same process
                except psutil.NoSuchProcess:
                    pass


# ---- pure parts ----

@pytest.mark.parametrize("text, expected", [
    ("telemetry", ("telemetry", [])),
    ("heartbeat:--interval=5", ("heartbeat", ["--interval=5"])),
    ("telemetry:--interval 30  --disk-path /data", ("telemetry", ["--interval", "30", "--disk-path", "/data"])),
    ("control:", ("control", [])),
])
def test_parse_worker(text: str, expected: tuple[str, list[str]]) -> None:
    assert parse_worker(text) == expected


def test_restart_delay_doubles_per_failure_in_a_row_up_to_the_cap() -> None:
    assert [restart_delay(1.0, n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, RESTART_DELAY_MAX, RESTART_DELAY_MAX]
    assert restart_delay(0.05, 2) == 0.1
    assert restart_delay(90.0, 3) == 90.0  # a delay above the cap is taken as given
    assert restart_delay(1.0, 10_000) == RESTART_DELAY_MAX


def test_describe_status_and_child_prog() -> None:
    assert describe_status(0) == "exited with status 0"
    assert describe_status(-signal.SIGKILL) == "was killed by SIGKILL"
    assert child_prog("python -m app run", "telemetry") == "python -m app telemetry"
    assert child_prog("slimfreeze run", "control") == "slimfreeze control"
    assert child_prog("run", "heartbeat") == "heartbeat"  # through a link named `run`


# ---- the command line ----

def test_help_documents_the_worker_syntax_and_the_entry_lists_run() -> None:
    result = python_app("run", "--help")
    assert result.returncode == 0, result.stderr
    for fragment in ("COMMAND[:ARGS]", "--restart-delay", "--max-restarts", "'telemetry:--interval 30",
                     "heartbeat:--interval=5", "--host HOST", "gc.freeze"):
        assert fragment in result.stdout
    listed = python_app("--help").stdout.split("commands:\n")[1].split("\n\n")[0]
    assert "\n  run " in listed


@pytest.mark.parametrize("args, env, line", [
    (["telemetry", "reboot"], {},
     "unknown command 'reboot'; choose from: control, heartbeat, hello, store, telemetry"),
    ([], {}, "the following arguments are required: COMMAND[:ARGS]"),
    (["heartbeat", "heartbeat:--interval=1"], {}, "command 'heartbeat' is listed twice"),
    (["run"], {}, "'run' cannot run itself"),
    (["control", "--client-id", "same"], {}, "a shared --client-id (MQTT_CLIENT_ID) would give every worker"),
    (["control"], {"MQTT_CLIENT_ID": "same"}, "a shared --client-id (MQTT_CLIENT_ID) would give every worker"),
    (["control", "--restart-delay", "0"], {}, "argument --restart-delay: must be at least"),
    (["control", "--max-restarts", "-1"], {}, "argument --max-restarts: must be 0 or more"),
    (["control", "--port", "0"], {}, "argument --port: must be between 1 and 65535"),
    (["control"], {"MQTT_QOS": "7"}, "environment variable MQTT_QOS: must be between 0 and 2"),
])
def test_usage_errors_are_one_line_exit_2_and_start_nothing(args: list[str], env: dict[str, str], line: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MQTT_", "DEVICE_ID", "LOG_LEVEL"))}
    result = python_app("run", *args, env={**clean, **env})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("python -m app run: error: ")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert line in result.stderr


def test_a_worker_failing_again_and_again_is_given_up_after_max_restarts(supervise: Start) -> None:
    """No broker: heartbeat gives up connecting (exit 1) every time; restarts back off, then stop."""
    port = free_port()
    p = supervise("heartbeat", "--max-restarts", "2", "--restart-delay", "0.05", "--host", "127.0.0.1",
                  "--port", str(port), "--connect-timeout", "0.1", "--reconnect-min", "0.05")
    assert p.wait() == 1
    log = p.stderr_text()
    assert [name for name, _ in started_pids(p)] == ["heartbeat"] * 3
    assert log.count("python -m app heartbeat: error: cannot connect to 127.0.0.1") == 3
    assert "exited with status 1; restarting it in 0.05 s (failure 1 in a row)" in log
    assert "exited with status 1; restarting it in 0.1 s (failure 2 in a row)" in log
    assert "it failed 3 time(s) in a row (--max-restarts 2): giving up" in log


# ---- against the broker ----

@pytest.mark.integration
def test_all_three_workers_publish_and_answer_as_children_of_one_process(broker: Broker, app: AppRunner,
                                                                           supervise: Start) -> None:
    with Subscriber(broker.host, broker.port, [f"devices/{DEVICE}/#"]) as seen:
        p = supervise("telemetry:--interval 0.05", "heartbeat:--interval=0.05", "control",
                      *app.mqtt_args(broker), "--log-level", "debug")
        onlines(seen, 3)  # one per worker, so control's subscription is in place
        telemetry = [json.loads(m.payload) for m in seen.wait_count(2, f"devices/{DEVICE}/telemetry")]
        beats = [json.loads(m.payload) for m in seen.wait_count(2, f"devices/{DEVICE}/heartbeat")]
        seen.publish(f"devices/{DEVICE}/cmd", '{"id": "s1", "cmd": "status"}')
        reply = json.loads(seen.wait_count(1, f"devices/{DEVICE}/reply")[0].payload)
        workers = dict(started_pids(p))
        assert reply["ok"] and reply["id"] == "s1" and reply["result"]["pid"] == workers["control"]
        # A command's own PRELOAD (store's sqlite3) is loaded only when it is one of the workers.
        assert sqlite_mapped(p.proc.pid) == []
        assert sorted(workers) == ["control", "heartbeat", "telemetry"]
        assert {parent_of(pid) for pid in workers.values()} == {p.proc.pid}
        p.send_signal(signal.SIGTERM)
        assert p.wait() == 0, p.stderr_text()
    assert [t["seq"] for t in telemetry[:2]] == [1, 2] and telemetry[0]["device"] == DEVICE
    assert [b["seq"] for b in beats[:2]] == [1, 2]
    log = broker.log_text()
    for name in workers:  # distinct client ids: <device id>-<command>
        assert f" as {DEVICE}-{name} " in log
    # The shared --log-level reached every worker, and each found everything it runs already
    # imported by the supervisor: nothing of its own, all shared.
    for name in workers:
        assert f"{name}: modules imported after the fork: none" in p.stderr_text()


@pytest.mark.integration
def test_a_command_with_its_own_preload_gets_it_shared(tmp_path: Path, broker: Broker, app: AppRunner,
                                                      supervise: Start) -> None:
    """store needs sqlite3 (its module's PRELOAD): the supervisor imports it before the fork when,
    and only when, store is a worker (the test above checks the other half)."""
    with Subscriber(broker.host, broker.port, [f"devices/{DEVICE}/store"]) as seen:
        p = supervise(f"store:--db={tmp_path / 'store.db'} --interval=0.02", "heartbeat:--interval=0.05",
                      *app.mqtt_args(broker), "--log-level", "debug")
        readings = [json.loads(m.payload) for m in seen.wait_count(3, f"devices/{DEVICE}/store")]
        assert [Path(f).name for f in sqlite_mapped(p.proc.pid)] != []
        p.send_signal(signal.SIGTERM)
        assert p.wait() == 0, p.stderr_text()
    assert [r["seq"] for r in readings[:3]] == [1, 2, 3]
    for name in ("store", "heartbeat"):
        assert f"{name}: modules imported after the fork: none" in p.stderr_text()


@pytest.mark.integration
def test_a_killed_worker_is_restarted_and_resumes(broker: Broker, app: AppRunner, supervise: Start) -> None:
    topic = f"devices/{DEVICE}/heartbeat"
    with Subscriber(broker.host, broker.port, [STATUS, topic]) as seen:
        p = supervise("heartbeat:--interval=0.05", "control", "--restart-delay", "0.05", *app.mqtt_args(broker))
        onlines(seen, 2)
        seen.wait_count(3, topic)
        (_, first), = [w for w in started_pids(p) if w[0] == "heartbeat"]
        os.kill(first, signal.SIGKILL)
        # The restarted heartbeat is a new process: its sequence starts again at 1 and goes on.
        beats = seen.wait_for(lambda ms: _after_restart(ms) >= 3, topic_filter=topic,
                              what="3 heartbeats from the restarted worker")
        workers = started_pids(p)
        p.send_signal(signal.SIGTERM)
        assert p.wait() == 0, p.stderr_text()
    assert [name for name, _ in workers] == ["heartbeat", "control", "heartbeat"]
    second = workers[2][1]
    assert second != first
    assert f"heartbeat (pid {first}) was killed by SIGKILL; restarting it in 0.05 s (failure 1 in a row)" \
        in p.stderr_text()
    seqs = [json.loads(m.payload)["seq"] for m in beats]
    assert seqs[:3] == [1, 2, 3] and seqs.count(1) == 2
    # The broker published the killed worker's last will; the new one announced itself again.
    assert seen.payloads(STATUS)[:2] == [b"online", b"online"] and b"offline" in seen.payloads(STATUS)[2:]


def _after_restart(messages: list) -> int:
    """How many heartbeats arrived from the second run (after the second seq 1)."""
    seqs = [json.loads(m.payload)["seq"] for m in messages]
    ones = [i for i, s in enumerate(seqs) if s == 1]
    return len(seqs) - ones[1] if len(ones) > 1 else 0


@pytest.mark.integration
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_exits_0_and_every_worker_goes_offline(broker: Broker, app: AppRunner, supervise: Start,
                                                           signum: int) -> None:
    """Per-command options win over the shared ones: each worker gets its own device id here, so each
    has its own retained status to check."""
    devices = {"telemetry": "t1", "heartbeat": "h1", "control": "c1"}
    with Subscriber(broker.host, broker.port, ["devices/+/status"]) as seen:
        p = supervise("telemetry:--device-id=t1 --interval 0.05", "heartbeat:--interval=0.05 --device-id=h1",
                      "control:--device-id=c1", *app.mqtt_args(broker))
        for device in devices.values():
            seen.wait_payload(f"devices/{device}/status", "online")
        workers = dict(started_pids(p))
        p.send_signal(signum)
        assert p.wait() == 0, p.stderr_text()
        for device in devices.values():
            seen.wait_payload(f"devices/{device}/status", "offline")
    assert seen.payloads(STATUS) == []  # the shared --device-id was overridden by every worker
    name = signal.Signals(signum).name
    log = p.stderr_text()
    assert f"{name} received, stopping 3 worker(s)" in log
    assert log.count(f"{name} received, shutting down") == 3  # each worker closed its connection itself
    assert "all workers stopped" in log and ": error: " not in log
    for pid in workers.values():  # reaped by the supervisor before it exited
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with Subscriber(broker.host, broker.port, ["devices/+/status"], persistent=False) as late:
        retained = late.wait_count(3, "devices/+/status")
    assert sorted((m.topic, m.payload, m.retain) for m in retained) == sorted(
        (f"devices/{device}/status", b"offline", True) for device in devices.values())


@pytest.mark.integration
def test_a_worker_with_a_usage_error_stops_everything_with_exit_2(broker: Broker, app: AppRunner,
                                                                  supervise: Start) -> None:
    p = supervise("heartbeat", "telemetry:--interval=abc", *app.mqtt_args(broker))
    assert p.wait() == 2
    errors = [line for line in p.stderr_text().splitlines() if ": error: " in line or " ERROR " in line]
    assert errors[0] == "python -m app telemetry: error: argument --interval: expected a number of seconds, got 'abc'"
    assert "exited with status 2 (a usage or configuration error): stopping the other workers" in errors[1]
    assert len(errors) == 2, errors
    assert [name for name, _ in started_pids(p)] == ["heartbeat", "telemetry"]  # nothing restarted


@pytest.mark.integration
def test_workers_that_finish_are_not_restarted(broker: Broker, app: AppRunner, supervise: Start) -> None:
    with Subscriber(broker.host, broker.port, [f"devices/{DEVICE}/#"]) as seen:
        p = supervise("heartbeat:--count=3 --interval=0.01", "telemetry:--count=2 --interval=0.01",
                      *app.mqtt_args(broker))
        assert p.wait() == 0, p.stderr_text()
        beats = seen.wait_count(3, f"devices/{DEVICE}/heartbeat")
        readings = seen.wait_count(2, f"devices/{DEVICE}/telemetry")
    assert [json.loads(m.payload)["seq"] for m in beats] == [1, 2, 3]
    assert [json.loads(m.payload)["seq"] for m in readings] == [1, 2]
    assert sorted(name for name, _ in started_pids(p)) == ["heartbeat", "telemetry"]
    assert "all workers done" in p.stderr_text()
