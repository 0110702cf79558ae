"""`store`: store-and-forward. Every --interval seconds, take a reading of the device (as
`telemetry` does), commit it to a local SQLite file first, then publish it with QoS 1 to
devices/<id>/store; a row is deleted only once the broker acknowledged it.

While the broker is away (or before it was ever reached) readings accumulate in the file, at most
--max-rows of them; when it is back the backlog goes out strictly in sequence order before any newer
reading, and a restarted process resumes from the file. Delivery is at least once: a message whose
acknowledgement was lost is sent again, so receivers drop repeats by (device, seq).
"""

# Imported by the `run` supervisor before it forks (besides its shared PRELOAD), so that store's
# workers share them: only supervisors that run a store worker pay for SQLite.
PRELOAD = ("sqlite3", "app.outbox")

DESCRIPTION = """\
Store-and-forward: every --interval seconds, take a reading of the device (load average,
memory, uptime, free disk), commit it to the SQLite file --db first, then publish it
with QoS 1 (whatever --qos says) to devices/<id>/store as JSON {"device", "seq", "ts",
...the reading}. A row is deleted only when the broker acknowledged it. While the broker
is away, readings wait in the file (at most --max-rows: beyond that the OLDEST are
dropped, with a warning); once it is back they are sent in sequence order before any
newer one. A restart resumes from the file, seq included. Readings are taken from the
start even if the broker cannot be reached (--connect-timeout does not apply). Delivery
is at least once: receivers drop repeats by (device, seq). One process at a time owns
the file; a second one is refused."""

# Messages handed to the MQTT client but not yet acknowledged, at most: paho's own in-flight
# limit (max_inflight_messages, 20); more would only wait in its memory, while the file keeps them.
WINDOW = 20
ACK_POLL = 0.02  # look again this soon for acknowledgements (see Connection.wait)
WARN_EVERY = 100  # after the first drop, warn again at every 100th


def main(args: list[str], prog: str) -> int:
    import argparse
    import os

    from app import settings

    p = settings.parser(prog, DESCRIPTION)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--db", metavar="PATH",
                   help="the SQLite file that keeps readings until the broker has them; created if missing, "
                        "its folder must exist [STORE_DB] (required)")
    p.add_argument("--interval", type=settings.positive_seconds, default=10.0, metavar="SECONDS",
                   help="seconds between readings (default: 10)")
    p.add_argument("--max-rows", type=settings.positive_int, default=100_000, metavar="N",
                   help="readings kept in the file at most; when full, the OLDEST reading is dropped for each "
                        "new one, with a warning (default: 100000)")
    p.add_argument("--count", type=settings.positive_int, metavar="N",
                   help="stop (exit 0) once N readings, the oldest first, were acknowledged by the broker "
                        "(default: run until stopped)")
    p.add_argument("--disk-path", default="/", metavar="PATH",
                   help="report free space of the file system holding PATH (default: /)")
    s, ns = settings.parse(p, args, command="store")

    where, path = ("--db", ns.db) if ns.db is not None else ("STORE_DB", os.environ.get("STORE_DB", ""))
    if not path:
        p.error("--db (STORE_DB) is required: the SQLite file that keeps readings until the broker has them")
    from app.outbox import OutboxError, open_outbox

    try:
        outbox = open_outbox(path, ns.max_rows)
    except OutboxError as exc:
        p.error(f"{where} {path}: {exc}")

    from app import mqtt

    try:
        worker = Forwarder(outbox, s, interval=ns.interval, count=ns.count, disk_path=ns.disk_path)
        return mqtt.run(s, prog, worker.run, wait_online=False)
    finally:
        outbox.close()


# Annotations name app.outbox.Outbox, app.settings.Settings and app.mqtt.Connection as strings:
# importing them (or typing) at module level would load them for `run --help` and the like.
class Forwarder:
    """The work: take readings into the outbox on time, and move the outbox to the broker in order."""

    def __init__(self, outbox: "Outbox", s: "Settings", *, interval: float, count: int | None, disk_path: str) -> None:
        import logging

        self.outbox = outbox
        self.settings = s
        self.topic = s.topic("store")
        self.interval = interval
        self.count = count
        self.disk_path = disk_path
        self.log = logging.getLogger("app.store")
        self.in_flight = []   # (seq, MQTTMessageInfo, connection number), oldest first
        self.handed = 0       # highest seq handed to the MQTT client in this process
        self.acked = 0
        self.dropped = 0

    def run(self, conn: "Connection") -> int:
        """The work given to Connection.run: its exit status; a file that fails is one line, exit 1."""
        from app.mqtt import MqttError
        from app.outbox import OutboxError

        try:
            return self._run(conn)
        except OutboxError as exc:
            raise MqttError(f"{self.outbox.path}: {exc}") from None

    def _run(self, conn: "Connection") -> int:
        import time

        self.log.info("%s: %d reading(s) waiting, next seq %d", self.outbox.path, self.outbox.rows,
                      self.outbox.last_seq + 1)
        next_at = time.monotonic()
        while not conn.stopping:
            now = time.monotonic()
            if now >= next_at:
                self.take_reading()
                next_at += self.interval
                if next_at < now - self.interval:
                    next_at = now  # after a stall, carry on at the interval instead of catching up
            self.collect_acks()
            if self.count is not None and self.acked >= self.count:
                self.log.info("%d reading(s) published to %s and acknowledged", self.acked, self.topic)
                return 0
            self.send(conn)
            timeout = next_at - time.monotonic()
            conn.wait(min(timeout, ACK_POLL) if self.in_flight and conn.connected else timeout)
        if self.in_flight and conn.connected:
            # Stopped: let what the broker is about to acknowledge leave the file, so that the
            # next start does not send it again (bounded by --ack-timeout).
            conn.wait_acked([info for _seq, info, _number in self.in_flight], stop_early=False)
            self.collect_acks()
        if self.outbox.rows:
            self.log.info("%d reading(s) wait in %s for the next start", self.outbox.rows, self.outbox.path)
        return 0

    def take_reading(self) -> None:
        import json
        import time

        from app import sysinfo

        def make_payload(seq: int) -> str:
            reading = {"device": self.settings.device_id, "seq": seq, "ts": round(time.time(), 3)}
            reading.update(sysinfo.reading(self.disk_path))
            return json.dumps(reading, separators=(",", ":"))

        seq, dropped = self.outbox.append(self.topic, make_payload)
        self.log.debug("reading %d stored, %d waiting", seq, self.outbox.rows)
        if dropped:
            before = self.dropped
            self.dropped += len(dropped)
            if before == 0 or before // WARN_EVERY != self.dropped // WARN_EVERY:
                self.log.warning("%s is full (--max-rows %d): dropped the oldest reading(s) %s; %d dropped so far",
                                 self.outbox.path, self.outbox.max_rows, _span(dropped), self.dropped)

    def collect_acks(self) -> None:
        """Delete what the broker acknowledged, in order, from the file."""
        done = 0
        while done < len(self.in_flight) and self.in_flight[done][1].is_published():
            done += 1
        if done:
            self.outbox.delete_through(self.in_flight[done - 1][0])
            del self.in_flight[:done]
            self.acked += done

    def send(self, conn: "Connection") -> None:
        """Hand the next rows to the client while connected, keeping them in sequence order."""
        if not conn.connected:
            return
        # After a reconnect paho first sends again what the previous connection left unacknowledged;
        # anything new before those are acknowledged could overtake them.
        current = conn.connections
        if any(number != current for _seq, _info, number in self.in_flight):
            return
        room = WINDOW - len(self.in_flight)
        if self.count is not None:
            room = min(room, self.count - self.acked - len(self.in_flight))
        if room <= 0:
            return
        for seq, topic, payload in self.outbox.after(self.handed, room):
            info = conn.publish(topic, payload, qos=1)  # always 1: only an acknowledgement deletes a row
            if info is None:
                return  # the client's queue is full (--max-queued); the row waits in the file
            self.in_flight.append((seq, info, current))
            self.handed = seq


def _span(seqs: list[int]) -> str:
    return str(seqs[0]) if len(seqs) == 1 else f"{seqs[0]}..{seqs[-1]}"
