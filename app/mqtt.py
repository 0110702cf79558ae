"""The one MQTT interface every command uses, over paho-mqtt 2.x (callback API version 2).

A command builds a `Connection` from its settings, registers handlers with `subscribe()`, and
hands its work to `run()`, which sets up TLS and signals, connects, runs the work and always closes.
What the connection guarantees:

- a retained last will "offline" on devices/<id>/status, and a retained "online" once connected
  *and* subscribed, so "online" means "ready for commands";
- automatic reconnect with capped exponential backoff (paho's network thread, `reconnect_delay_set`);
  QoS 1/2 messages published while the broker is away stay queued (up to --max-queued) and are sent
  after the reconnect; subscriptions are made again on every connect (clean sessions);
- `publish()` with QoS, `wait_acked()` with a bound;
- `run(work, wait_online=False)` starts the work before the first connection (a worker that keeps
  its own durable backlog, like `store`): the broker is then reached in the background, and
  `connected` / `connections` tell the work when it may send;
- SIGTERM/SIGINT end the work; `close()` publishes "offline" (retained), waits for what is still
  unacknowledged (bounded), disconnects, and `run()` returns 0.

Errors the user can act on are `MqttError`: `run()` prints `<prog>: error: <message>` as one line
and returns its exit status (1 at run time, 2 for TLS set-up problems).
"""

import logging
import select
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from app.settings import Settings

log = logging.getLogger("app.mqtt")

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class MqttError(Exception):
    """A failure with a one-line message for the user; `exit_code` is the process status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Connection:
    """One MQTT client of one command: connect, publish, subscribe, stop, close."""

    def __init__(self, settings: Settings, prog: str) -> None:
        self.settings = settings
        self.prog = prog
        self.status_topic = settings.topic("status")
        self.where = f"{settings.host}:{settings.port}"
        self.exit_code = 0
        self._stop = False
        self._signal = None
        self._fatal = None            # MqttError found by the network thread before the first "online"
        self._ready = threading.Event()  # connected, subscribed, "online" sent
        self._ever_ready = False
        self._connections = 0         # successful CONNACKs so far (paho's network thread counts)
        self._closed = False
        self._closing = False
        self._started = False
        self._ssl = None
        self._handlers = {}           # topic filter -> qos
        self._sub_filters = []
        self._sub_mid = None
        self._pending = deque()       # MQTTMessageInfo of QoS>0 messages, oldest first
        self._pending_lock = threading.Lock()
        self._dropped = 0
        self._old_signals = {}
        self._old_wakeup_fd = None
        # Every wake-up (signal, acknowledgement, connect, stop) is a byte on this pair, so the main
        # thread can sleep in one select() and still react at once; signal.set_wakeup_fd writes the
        # signal's byte from C, before any Python handler runs, so no signal is missed.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._client = self._make_client()

    # ---- set-up ----

    def _make_client(self) -> paho.Client:
        s = self.settings
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, clean_session=True,
                             protocol=paho.MQTTv311)
        paho_log = logging.getLogger("paho")
        # paho 2.2 logs this at ERROR level when its loop runs once more after a disconnect while
        # the socket is already gone (e.g. stopping while the broker is away): noise, not a fault.
        paho_log.addFilter(lambda record: not str(record.msg).startswith("Client is not connected."))
        client.enable_logger(paho_log)
        client.suppress_exceptions = True  # a failing callback must not kill the network thread
        client.reconnect_delay_set(s.reconnect_min, s.reconnect_max)
        client.max_queued_messages_set(s.max_queued)
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        return client

    def _setup_tls(self) -> None:
        s = self.settings
        try:
            import ssl  # a build without TLS may carry a stand-in that raises here or below

            try:
                context = ssl.create_default_context(cafile=s.tls_ca)
            except OSError as exc:  # ssl.SSLError too
                raise MqttError(f"TLS: cannot load the CA certificate {s.tls_ca}: {_describe(exc)}", 2) from None
            if s.tls_cert:
                try:
                    context.load_cert_chain(s.tls_cert, s.tls_key)
                except OSError as exc:
                    raise MqttError(f"TLS: cannot load the client certificate {s.tls_cert}"
                                    f"{' and key ' + s.tls_key if s.tls_key else ''}: {_describe(exc)}", 2) from None
            if s.tls_insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._client.tls_set_context(context)
            if s.tls_insecure:
                self._client.tls_insecure_set(True)
        except MqttError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the TLS-free stand-in raises, say it in one line
            raise MqttError(f"TLS is not available in this build: {exc or type(exc).__name__}", 2) from None
        self._ssl = ssl

    def _install_signals(self) -> None:
        self._old_wakeup_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for signum in _SIGNALS:
            self._old_signals[signum] = signal.signal(signum, self._on_signal)

    def _restore_signals(self) -> None:
        for signum, handler in self._old_signals.items():
            signal.signal(signum, handler)
        self._old_signals.clear()
        if self._old_wakeup_fd is not None:
            signal.set_wakeup_fd(self._old_wakeup_fd)
            self._old_wakeup_fd = None

    def _on_signal(self, signum: int, frame: object) -> None:
        # Only flags here: logging from a signal handler can re-enter a half-written stream.
        if self._signal is None:
            self._signal = signum
        self._stop = True

    # ---- the life cycle ----

    def run(self, work: Callable[["Connection"], int], *, wait_online: bool = True) -> int:
        """Set up, connect, return `work(self)`'s exit status; always close. Never raises MqttError.

        With wait_online=False the work starts at once, whether or not the broker answers (see connect()).
        """
        from app.settings import configure_logging

        configure_logging(self.settings.log_level)
        old_hook = threading.excepthook
        threading.excepthook = self._thread_crashed
        try:
            try:
                if self.settings.tls:
                    self._setup_tls()
                self._install_signals()
                status = work(self) if self.connect(wait=wait_online) else 0
                if self._fatal is not None:
                    raise self._fatal  # refused by the broker while the work was already running
                if self._signal is not None:
                    log.info("%s received, shutting down", signal.Signals(self._signal).name)
                return status or self.exit_code
            except MqttError as exc:
                print(f"{self.prog}: error: {exc}", file=sys.stderr, flush=True)
                return exc.exit_code
            finally:
                self.close()
        finally:
            threading.excepthook = old_hook

    def connect(self, wait: bool = True) -> bool:
        """Make the first connection; return True once "online", False if stopped before that.

        The first attempts run in the caller's thread so that their errors are known: a server
        certificate that does not verify, or a broker that refuses us, ends the program with a clear
        message; an unreachable broker is retried with backoff until --connect-timeout. After that,
        paho's network thread keeps the connection up by itself.

        With wait=False only the first attempt is made here (a certificate that does not verify is
        still an error); whatever its outcome, paho's network thread takes over at once, retrying
        with backoff for as long as it takes (--connect-timeout does not apply), and this returns
        True without waiting for "online". A broker that refuses us later stops the work with
        that error.
        """
        s = self.settings
        deadline = time.monotonic() + s.connect_timeout if s.connect_timeout else None
        delay = s.reconnect_min
        while True:
            if self._stop:
                return False
            try:
                # bytes: socket.getaddrinfo() runs a str host through the "idna" codec, which
                # imports stringprep and unicodedata (1.2 MB); settings only allows ASCII hosts.
                self._client.connect(s.host.encode("ascii"), s.port, s.keepalive)
                break
            except OSError as exc:
                if self._ssl is not None and isinstance(exc, self._ssl.SSLCertVerificationError):
                    raise MqttError(f"TLS: server certificate did not verify: {exc.verify_message} "
                                    f"({self.where})") from None
                reason = _describe(exc)
            if not wait:
                # paho keeps the address from connect() and its network thread reconnects by itself.
                log.warning("cannot connect to %s: %s; retrying in the background", self.where, reason)
                break
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise MqttError(f"cannot connect to {self.where}: {reason} "
                                f"(gave up after {s.connect_timeout:g} s, see --connect-timeout)")
            wait = delay if deadline is None else min(delay, deadline - now)
            log.warning("cannot connect to %s: %s; retrying in %.3g s", self.where, reason, wait)
            if not self.sleep(wait):
                return False
            delay = min(delay * 2, s.reconnect_max)

        self._client.loop_start()
        self._started = True
        if not wait:
            return True
        while not self._ready.is_set():
            if self._fatal is not None:
                raise self._fatal
            if self._stop:
                return False
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                hint = "" if s.tls else "; is it a TLS port (then use --tls)?"
                raise MqttError(f"no answer from the broker at {self.where} within {s.connect_timeout:g} s{hint}")
            self._wait(remaining)
        return True

    def close(self) -> None:
        """Publish "offline" (retained), wait for unacknowledged messages (bounded), disconnect."""
        if self._closed:
            return
        self._closed = True
        self._closing = True
        if self._started:
            if self._client.is_connected():
                self.publish(self.status_topic, "offline", qos=1, retain=True)
                missing = self.wait_acked(stop_early=False)
                if missing:
                    log.warning("%d message(s) not acknowledged by the broker before shutdown", missing)
            else:
                missing = self._unacknowledged()
                if missing:
                    log.warning("broker unreachable: %d unacknowledged message(s) dropped at shutdown", missing)
            self._client.disconnect()
            self._client.loop_stop()
        self._restore_signals()
        self._wake_r.close()
        self._wake_w.close()

    # ---- stopping and waiting (main thread) ----

    @property
    def stopping(self) -> bool:
        return self._stop

    @property
    def connected(self) -> bool:
        """Connected, subscribed and "online" sent: what is published now goes out at once."""
        return self._ready.is_set()

    @property
    def connections(self) -> int:
        """How many times the broker accepted the connection so far. After each new connection paho
        first sends again what the last one left unacknowledged, from its own thread: a caller that
        needs strict order publishes nothing new until those older messages are acknowledged."""
        return self._connections

    def stop(self, exit_code: int = 0) -> None:
        """Ask the work to end (any thread); a non-zero exit_code becomes the process status."""
        if exit_code:
            self.exit_code = exit_code
        self._stop = True
        self._wake()

    def sleep(self, seconds: float) -> bool:
        """Sleep; return False at once when a stop is requested, else True."""
        return self.sleep_until(time.monotonic() + seconds)

    def sleep_until(self, deadline: float) -> bool:
        """Sleep until time.monotonic() reaches `deadline`; False when a stop came first."""
        while not self._stop:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            self._wait(remaining)
        return False

    def wait(self, timeout: float | None) -> None:
        """Block until something happens (an acknowledgement, a connect or disconnect, a stop) or
        `timeout` passes. An acknowledgement may become visible shortly after its wake-up (see
        wait_acked), so a caller waiting for one looks again after a short timeout."""
        self._wait(timeout)

    def wait_for_stop(self) -> int:
        """Block until a signal or stop(); return 0 (the work of a command that only reacts)."""
        while not self._stop:
            self._wait(None)
        return 0

    def _wait(self, timeout: float | None) -> None:
        """Block until any wake-up byte arrives or `timeout` passes, then drain the wake-ups."""
        select.select([self._wake_r], [], [], None if timeout is None else max(timeout, 0))
        try:
            while self._wake_r.recv(512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # buffer full (a wake-up is pending anyway) or already closed
            pass

    # ---- publishing ----

    def publish(self, topic: str, payload: bytes | str, *, qos: int | None = None,
                retain: bool = False) -> paho.MQTTMessageInfo | None:
        """Queue a message; return its paho MQTTMessageInfo, or None when it was dropped.

        Dropped means: the queue of unacknowledged messages is full (--max-queued), or QoS 0 while
        disconnected. Never blocks; safe from handlers (paho's network thread).
        """
        qos = self.settings.qos if qos is None else qos
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and qos > 0:
            # paho keeps the message and sends it after the reconnect, but leaves this rc behind,
            # which would make is_published() raise; the message is queued, so say so.
            info.rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        if info.rc in (MQTTErrorCode.MQTT_ERR_QUEUE_SIZE, MQTTErrorCode.MQTT_ERR_NO_CONN):
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 100 == 0:
                log.warning("message to %s dropped (%s); %d dropped so far", topic,
                            "not connected" if qos == 0 else f"{self.settings.max_queued} already waiting",
                            self._dropped)
            return None
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttError(f"cannot publish to {topic}: {paho.error_string(info.rc)}")
        if qos > 0:
            with self._pending_lock:
                while self._pending and self._pending[0].is_published():
                    self._pending.popleft()
                self._pending.append(info)
        return info

    def wait_acked(self, infos: Iterable[paho.MQTTMessageInfo | None] | None = None, *,
                   timeout: float | None = None, stop_early: bool = True) -> int:
        """Wait until the broker acknowledged `infos` (default: everything pending).

        Waits at most `timeout` seconds (default --ack-timeout); with stop_early, returns as soon
        as a stop is requested. Returns how many are still unacknowledged (0: all done).
        """
        deadline = time.monotonic() + (self.settings.ack_timeout if timeout is None else timeout)
        while True:
            missing = self._unacknowledged(infos)
            if not missing or (stop_early and self._stop):
                return missing
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return missing
            # paho calls on_publish (our wake-up) just *before* it marks the message published,
            # so after a wake-up look again shortly rather than trusting the wake-up alone.
            self._wait(min(remaining, 0.02))

    def _unacknowledged(self, infos: Iterable[paho.MQTTMessageInfo | None] | None = None) -> int:
        if infos is not None:
            return sum(1 for info in infos if info is not None and not info.is_published())
        with self._pending_lock:
            while self._pending and self._pending[0].is_published():
                self._pending.popleft()
            return sum(1 for info in self._pending if not info.is_published())

    def publish_every(self, topic: str, make_payload: Callable[[int], bytes | str], *, interval: float,
                      count: int | None = None) -> int:
        """Publish make_payload(seq) every `interval` s (seq 1, 2, ...) until stopped, or until
        `count` messages were accepted and then acknowledged. Returns the exit status.

        A message dropped because the queue is full still uses up its sequence number, so
        receivers see the gap.
        """
        accepted = 0
        seq = 0
        next_at = time.monotonic()
        while count is None or accepted < count:
            if not self.sleep_until(next_at):
                return 0
            seq += 1
            if self.publish(topic, make_payload(seq)) is not None:
                accepted += 1
            next_at += interval
            now = time.monotonic()
            if next_at < now - interval:
                next_at = now  # after a stall, carry on at the interval instead of catching up in a burst
        missing = self.wait_acked()
        if missing and not self._stop:
            raise MqttError(f"{missing} of {count} message(s) to {topic} not acknowledged by the broker "
                            f"within {self.settings.ack_timeout:g} s (see --ack-timeout)")
        log.info("%d message(s) published to %s and acknowledged", count, topic)
        return 0

    # ---- subscribing ----

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None], *, qos: int = 1) -> None:
        """Call handler(topic: str, payload: bytes) for every message matching `topic_filter`.

        Handlers run in paho's network thread: they may publish(), never wait. An exception in a
        handler is logged and the message skipped. Subscriptions are made on every (re)connect;
        register them before run() so that "online" implies they are in place.
        """
        def dispatch(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
            try:
                handler(message.topic, message.payload)
            except Exception:  # noqa: BLE001 - one bad message must not stop the program
                log.exception("handler for %s failed on a message of %d bytes", topic_filter, len(message.payload))

        self._handlers[topic_filter] = qos
        self._client.message_callback_add(topic_filter, dispatch)
        if self._client.is_connected():
            self._client.subscribe(topic_filter, qos)

    # ---- paho callbacks (network thread) ----

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            message = f"the broker at {self.where} refused the connection: {reason_code}"
            if not self._ever_ready:
                self._fatal = MqttError(message)
                self.stop(exit_code=1)  # ends a work that started before the first connection
            else:
                log.error("%s; retrying", message)
            return
        self._connections += 1
        log.info("%s to %s as %s", "reconnected" if self._ever_ready else "connected", self.where,
                 self.settings.client_id)
        self._sub_filters = list(self._handlers.items())
        if self._sub_filters:
            _result, self._sub_mid = client.subscribe(self._sub_filters)
        else:
            self._announce()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if mid != self._sub_mid:
            return
        refused = [f for (f, _qos), code in zip(self._sub_filters, reason_codes) if code.is_failure]
        if refused:
            message = f"the broker at {self.where} refused the subscription to {', '.join(refused)}"
            if not self._ever_ready:
                self._fatal = MqttError(message)
                self.stop(exit_code=1)
                return
            log.error(message)
        self._announce()

    def _announce(self) -> None:
        self.publish(self.status_topic, "online", qos=1, retain=True)
        self._ever_ready = True
        self._ready.set()
        self._wake()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_ready = self._ready.is_set()
        self._ready.clear()
        if not self._closing and was_ready:
            log.warning("connection to %s lost (%s); reconnecting; %d message(s) waiting", self.where,
                        reason_code, self._unacknowledged())
        self._wake()

    def _on_connect_fail(self, client: paho.Client, userdata: object) -> None:
        log.debug("reconnecting to %s failed; retrying with backoff", self.where)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._wake()  # wait_acked() rechecks

    def _thread_crashed(self, args: threading.ExceptHookArgs) -> None:
        log.critical("internal error in thread %s", getattr(args.thread, "name", "?"),
                     exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
        self.stop(exit_code=1)


def _describe(exc: BaseException) -> str:
    """The reason without errno noise: "Connection refused", "timed out", ..."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def run(settings: Settings, prog: str, work: Callable[[Connection], int],
        handlers: dict[str, Callable[[str, bytes], None]] | None = None, *, wait_online: bool = True) -> int:
    """Shortcut: Connection(settings, prog), subscribe `handlers` ({filter: callable}), run(work)."""
    connection = Connection(settings, prog)
    for topic_filter, handler in (handlers or {}).items():
        connection.subscribe(topic_filter, handler)
    return connection.run(work, wait_online=wait_online)
