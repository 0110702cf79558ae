"""`store` end to end against a real mosquitto: readings committed to SQLite first, published in
order, kept while the broker is stopped and restarted on the same port, resumed by a new process
after a SIGKILL, bounded by --max-rows; a bad --db is one line and exit 2."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from build.testbed.broker import Broker, Subscriber, free_port
from conftest import DEVICE, AppRunner

pytestmark = pytest.mark.integration

TOPIC = f"devices/{DEVICE}/store"
STATUS = f"devices/{DEVICE}/status"
PROG = "python -m app store"


def seqs_in_file(path: Path) -> list[int]:
    """The rows left in the file, read as another program would once store has ended."""
    with closing(sqlite3.connect(path)) as db:
        return [seq for (seq,) in db.execute("SELECT seq FROM outbox ORDER BY seq")]


def first_seen(seen: Subscriber) -> list[dict]:
    """The readings in the order they arrived, repeats (QoS 1 is at least once) left out."""
    readings, seqs = [], set()
    for message in seen.messages(TOPIC):
        reading = json.loads(message.payload)
        if reading["seq"] not in seqs:
            seqs.add(reading["seq"])
            readings.append(reading)
    return readings


def wait_distinct(seen: Subscriber, n: int, timeout: float = 60) -> list[dict]:
    seen.wait_for(lambda ms: len({json.loads(m.payload)["seq"] for m in ms}) >= n, topic_filter=TOPIC,
                  timeout=timeout, what=f"{n} distinct readings")
    return first_seen(seen)


def test_publishes_readings_in_order_after_committing_them(tmp_path: Path, broker: Broker, app: AppRunner) -> None:
    db = tmp_path / "store.db"
    with Subscriber(broker.host, broker.port, [f"devices/{DEVICE}/#"]) as seen:
        code, out, err = app.run("store", "--db", str(db), "--count", "4", "--interval", "0.01",
                                 *app.mqtt_args(broker))
        assert code == 0, err
        messages = seen.wait_count(4, TOPIC)
        seen.wait_payload(STATUS, "offline")
    readings = [json.loads(m.payload) for m in messages]
    assert [r["seq"] for r in readings] == [1, 2, 3, 4]
    assert all(m.qos == 1 and not m.retain for m in messages)
    for r in readings:
        assert r["device"] == DEVICE
        assert {"ts", "load", "mem_total_kb", "mem_available_kb", "uptime_s", "disk_free_bytes"} <= r.keys()
    assert [r["ts"] for r in readings] == sorted(r["ts"] for r in readings)
    assert seen.payloads(STATUS) == [b"online", b"offline"]
    assert out == ""
    assert "4 reading(s) published to devices/dev/store and acknowledged" in err
    # The file exists and keeps nothing the broker acknowledged.
    assert db.is_file() and [s for s in seqs_in_file(db) if s <= 4] == []


def test_the_broker_stopped_mid_run_loses_nothing_and_keeps_the_order(tmp_path: Path, broker: Broker,
                                                                      app: AppRunner) -> None:
    """Stop mosquitto while store runs and start a new one on the same port: the readings taken
    meanwhile wait in the file and arrive after the earlier ones, before the later ones.

    The observer keeps a persistent session, which mosquitto saves when it stops (SIGTERM) and
    loads again, so whatever store sends after the restart reaches it, whichever reconnects first.
    """
    db = tmp_path / "store.db"
    total = 150
    with Subscriber(broker.host, broker.port, [TOPIC]) as seen:
        worker = app.start("store", "--db", str(db), "--count", str(total), "--interval", "0.02",
                           "--log-level", "debug", *app.mqtt_args(broker))
        wait_distinct(seen, 10)
        port = broker.port
        broker.stop()
        down_since = time.time()
        worker.wait_for_stderr("lost")
        # More readings than store hands to the client at once (20) wait in the file.
        last_seen = max(r["seq"] for r in first_seen(seen))
        assert last_seen + 40 < total
        worker.wait_for_stderr(f"reading {last_seen + 40} stored")
        up_again = time.time()
        broker.start()
        assert broker.port == port
        assert worker.wait(60) == 0, worker.stderr_text()
        readings = wait_distinct(seen, total)
    seqs = [r["seq"] for r in readings]
    assert seqs == list(range(1, total + 1))  # none lost, in order (a repeat may follow its original)
    assert [r for r in readings if down_since < r["ts"] < up_again], "no reading was taken while the broker was down"
    log = worker.stderr_text()
    assert "lost" in log and "reconnected to" in log
    assert [s for s in seqs_in_file(db) if s <= total] == []


def test_a_new_process_resumes_the_backlog_of_a_killed_one(tmp_path: Path, broker: Broker, app: AppRunner) -> None:
    """Readings are taken from the start although the broker is down; SIGKILL loses none of them;
    the next process sends them, oldest first, and numbers its own readings after them."""
    db = tmp_path / "store.db"
    with Subscriber(broker.host, broker.port, [TOPIC]) as seen:
        broker.stop()  # the observer's session stays with the broker
        first = app.start("store", "--db", str(db), "--interval", "0.01", "--log-level", "debug",
                          *app.mqtt_args(broker))
        first.wait_for_stderr("cannot connect to")
        first.wait_for_stderr("reading 15 stored")
        first.send_signal(signal.SIGKILL)
        assert first.wait() == -signal.SIGKILL
        backlog = seqs_in_file(db)
        assert backlog == list(range(1, len(backlog) + 1)) and len(backlog) >= 15

        broker.start()
        code, _out, err = app.run("store", "--db", str(db), "--count", str(len(backlog)), "--interval", "0.05",
                                  *app.mqtt_args(broker))
        assert code == 0, err
        readings = wait_distinct(seen, len(backlog))
    assert [r["seq"] for r in readings] == backlog
    assert f"{len(backlog)} reading(s) waiting, next seq {len(backlog) + 1}" in err
    left = seqs_in_file(db)  # the second process's own readings, not sent (--count was the backlog)
    assert left and left[0] == len(backlog) + 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_it_cleanly_sending_nothing_twice(tmp_path: Path, broker: Broker, app: AppRunner,
                                                            signum: int) -> None:
    """Exit 0 and "offline"; every reading is either with the broker or in the file, never both,
    so the next start neither loses nor repeats one."""
    db = tmp_path / "store.db"
    with Subscriber(broker.host, broker.port, [f"devices/{DEVICE}/#"]) as seen:
        worker = app.start("store", "--db", str(db), "--interval", "0.005", *app.mqtt_args(broker))
        wait_distinct(seen, 20)
        worker.send_signal(signum)
        assert worker.wait() == 0, worker.stderr_text()
        seen.wait_payload(STATUS, "offline")
    received = {r["seq"] for r in first_seen(seen)}
    kept = seqs_in_file(db)
    assert received.isdisjoint(kept)
    assert sorted(received | set(kept)) == list(range(1, max(received | set(kept)) + 1))
    assert f"{signal.Signals(signum).name} received" in worker.stderr_text()


def test_max_rows_drops_the_oldest_with_a_warning(tmp_path: Path, app: AppRunner) -> None:
    db = tmp_path / "store.db"
    worker = app.start("store", "--db", str(db), "--max-rows", "5", "--interval", "0.01", "--log-level", "debug",
                       "--host", "127.0.0.1", "--port", str(free_port()), "--reconnect-min", "0.05")
    worker.wait_for_stderr("reading 20 stored")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.stderr_text()
    log = worker.stderr_text()
    last = max(int(n) for n in re.findall(r"reading (\d+) stored", log))
    assert seqs_in_file(db) == list(range(last - 4, last + 1))  # the 5 newest
    assert f"{db} is full (--max-rows 5): dropped the oldest reading(s) 1; 1 dropped so far" in log
    assert "5 reading(s) wait in" in log
    assert "Traceback" not in log


def test_help_says_what_happens_when_the_file_is_full(app: AppRunner) -> None:
    code, out, _err = app.run("store", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "--max-rows N readings kept in the file at most; when full, the OLDEST reading is dropped" in text
    assert "[STORE_DB]" in text and "devices/<id>/store" in text


@pytest.mark.parametrize("where, target, reason", [
    ("--db", "{tmp}", "is a folder; give the path of a file in it"),
    ("--db", "{tmp}/missing/store.db", "folder {tmp}/missing does not exist"),
    ("--db", "{tmp}/notes.txt", "is not an SQLite database (SQLite: file is not a database)"),
    ("STORE_DB", "{tmp}/notes.txt", "is not an SQLite database (SQLite: file is not a database)"),
    ("STORE_DB", "{tmp}", "is a folder; give the path of a file in it"),
])
def test_a_bad_db_is_one_line_and_exit_2(tmp_path: Path, app: AppRunner, where: str, target: str,
                                         reason: str) -> None:
    (tmp_path / "notes.txt").write_text("not a database\n" * 100)
    path = target.format(tmp=tmp_path)
    port = str(free_port())  # nothing listens: the error must come before any connection
    args, env = (["--db", path], {}) if where == "--db" else ([], {"STORE_DB": path})
    code, out, err = app.run("store", *args, "--port", port, "--count", "1", env=env)
    assert (code, out) == (2, "")
    assert err == f"{PROG}: error: {where} {path}: {reason.format(tmp=tmp_path)}\n"
    assert (tmp_path / "notes.txt").read_text() == "not a database\n" * 100


def test_no_db_is_a_usage_error(app: AppRunner) -> None:
    code, _out, err = app.run("store", "--count", "1", env={"STORE_DB": ""})
    assert code == 2
    assert err == (f"{PROG}: error: --db (STORE_DB) is required: the SQLite file that keeps readings until "
                   "the broker has them\n")


def test_a_second_store_on_the_same_file_is_refused(tmp_path: Path, app: AppRunner) -> None:
    db = str(tmp_path / "store.db")
    port = str(free_port())
    first = app.start("store", "--db", db, "--interval", "0.05", "--port", port, "--log-level", "debug")
    first.wait_for_stderr("reading 1 stored")
    code, _out, err = app.run("store", "--db", db, "--port", port)
    assert code == 2
    assert err == f"{PROG}: error: --db {db}: is in use by another process (SQLite: database is locked)\n"
    first.send_signal(signal.SIGTERM)
    assert first.wait() == 0


def test_a_broker_that_refuses_store_later_ends_it_with_one_line(tmp_path: Path, app: AppRunner) -> None:
    """The work starts before the first connection; a refusal that comes after that still ends it."""
    db = tmp_path / "store.db"
    with Broker(tmp_path / "auth-broker", users={"worker": "s3cret"}) as broker:
        broker.stop()  # its port is known now; store starts while nothing listens there
        worker = app.start("store", "--db", str(db), "--interval", "0.02", "--log-level", "debug",
                           *app.mqtt_args(broker))
        worker.wait_for_stderr("reading 3 stored")
        broker.start()
        assert worker.wait() == 1
    err = worker.stderr_text()
    assert [line for line in err.splitlines() if ": error: " in line] == [
        f"{PROG}: error: the broker at {broker.host}:{broker.port} refused the connection: Not authorized"]
    assert seqs_in_file(db)[:3] == [1, 2, 3]  # what was taken stays for the next start
