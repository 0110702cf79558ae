"""A real mosquitto on free loopback ports, for the tests and the smoke tests of built artifacts,
and `Subscriber`, an independent MQTT client that records what the broker delivers.

    with Broker(tmp_path / "broker", certs=make_test_certs(tmp_path / "certs")) as broker:
        with Subscriber(broker.host, broker.port, ["devices/#"]) as seen:
            ...run the program against broker.port (or broker.tls_port)...
            seen.wait_count(3, "devices/+/telemetry")

The broker keeps its configuration, persistence file and log in its folder. Persistence is on, so
retained messages and the queued messages of persistent sessions (Subscriber's, by default)
survive stop() + start(), which reuses the same ports.
"""

from __future__ import annotations

import os
import pwd
import secrets
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from build import proc
from build.errors import SlimfreezeError
from build.paths import remove_tree
from build.testbed.certs import CertSet

LOG_TAIL_LINES = 30


class BrokerError(SlimfreezeError):
    """mosquitto did not start, or a Subscriber could not connect or subscribe."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass(frozen=True, kw_only=True)
class TlsListener:
    """One more TLS listener of the test broker: the certificate it shows (a CertSet field name) and
    what it accepts. mosquitto's `tls_version` is a minimum."""

    cert: str = "server_cert"
    key: str = "server_key"
    min_version: str | None = None  # mosquitto's tls_version: tlsv1.3, tlsv1.2
    ciphers: str | None = None  # TLS 1.2 suites (OpenSSL names)
    ciphers_tls13: str | None = None  # TLS 1.3 suites
    require_certificate: bool = False


# Given certs, the broker offers these besides `tls_port` (ECDSA, any TLS version), each on its own
# port in `tls_ports`; scenarios name them as {broker_<name>_port}. "tls12" is another mosquitto
# (TLS12_SIDE): mosquitto 2.0 cannot cap one listener's version, so that process's OpenSSL is
# capped (OPENSSL_CONF: MaxProtocol = TLSv1.2); messages sent to it do not reach `port`.
TLS_LISTENERS: Mapping[str, TlsListener] = {
    "tls13": TlsListener(min_version="tlsv1.3"),
    "rsa": TlsListener(cert="rsa_server_cert", key="rsa_server_key"),
    "mtls": TlsListener(require_certificate=True),
    "expired": TlsListener(cert="expired_server_cert", key="expired_server_key"),
    "wrong_host": TlsListener(cert="wrong_host_server_cert", key="wrong_host_server_key"),
    # Only suites a client built for MQTT leaves out (ARIA; CCM_8, which no default list offers).
    "cipher": TlsListener(ciphers="ECDHE-ECDSA-ARIA128-GCM-SHA256", ciphers_tls13="TLS_AES_128_CCM_8_SHA256"),
}
TLS12_SIDE = "tls12"
_MAX_TLS12 = ("openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n[ssl_sect]\n"
              "system_default = system_default_sect\n[system_default_sect]\nMaxProtocol = TLSv1.2\n")


class Broker:
    """mosquitto with a plain listener on `port` and, given `certs`, a TLS listener on `tls_port` and
    the TLS_LISTENERS on `tls_ports` (with a second mosquitto for "tls12")."""

    def __init__(
        self,
        folder: Path | None = None,
        *,
        certs: CertSet | None = None,
        require_client_cert: bool = False,
        users: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        start_timeout: float = 10.0,
        listeners: bool = True,
        max_tls12: bool = False,
    ) -> None:
        self._own_folder = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="slimfreeze-broker-") if folder is None else folder).resolve()
        self.host = host
        self.certs = certs
        self.require_client_cert = require_client_cert
        self.users = dict(users or {})
        self.start_timeout = start_timeout
        self.port = 0
        self.tls_port: int | None = None
        self.tls_ports: dict[str, int] = {}
        self.listeners = dict(TLS_LISTENERS) if certs and listeners else {}
        self.max_tls12 = max_tls12
        self._side: Broker | None = None
        self.config_path = self.folder / "mosquitto.conf"
        self.log_path = self.folder / "mosquitto.log"
        self.stderr_path = self.folder / "mosquitto.stderr"
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_once = False

    # ---- life cycle ----

    def start(self) -> Broker:
        """Start mosquitto (again, on the same ports after stop()) and wait until it accepts connections."""
        if self.running:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        # The first start picks free ports; another process may grab one between our probe and
        # mosquitto's bind, so that start tries a few times with new ports. Later starts reuse them.
        attempts = 1 if self._started_once else 5
        for attempt in range(1, attempts + 1):
            if not self._started_once:
                self.port = free_port(self.host)
                self.tls_port = free_port(self.host) if self.certs else None
                self.tls_ports = {name: free_port(self.host) for name in self.listeners}
            try:
                self._launch()
                break
            except BrokerError:
                if attempt == attempts or "Address already in use" not in self.log_text():
                    raise
        self._started_once = True
        if self.listeners and self._side is None:
            self._side = Broker(self.folder / TLS12_SIDE, certs=self.certs, host=self.host, listeners=False,
                                max_tls12=True, start_timeout=self.start_timeout)
        if self._side is not None:
            try:
                self._side.start()
            except BaseException:
                self.stop()
                raise
            assert self._side.tls_port is not None
            self.tls_ports[TLS12_SIDE] = self._side.tls_port
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (mosquitto saves its persistence file), wait; SIGKILL if it does not end in time."""
        if self._side is not None:
            self._side.stop(timeout)
        p = self._proc
        if p is None:
            return
        self._proc = None
        if proc.wait(p, 0) is None:
            os.kill(p.pid, signal.SIGTERM)  # not reaped yet (proc.wait), so the pid is still mosquitto's
            proc.wait(p, timeout)
        proc.end(p, grace=1.0)  # SIGKILL if it did not end in time

    def restart(self) -> Broker:
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop; remove the folder if this Broker made it."""
        self.stop()
        if self._own_folder:  # made by mkdtemp in the temporary folder
            remove_tree(self.folder, (Path(tempfile.gettempdir()),))

    @property
    def running(self) -> bool:
        return self._proc is not None and proc.wait(self._proc, 0) is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    def log_text(self) -> str:
        """mosquitto's log and anything it wrote to stderr (config errors come before the log opens)."""
        parts = []
        for path in (self.stderr_path, self.log_path):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            if text:
                parts.append(f"--- {path.name} ---\n{text}")
        return "\n".join(parts)

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---- internals ----

    def _launch(self) -> None:
        self._write_config()
        mosquitto = proc.require_tool("mosquitto")
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        env = None
        if self.max_tls12:
            capped = self.folder / "openssl-max-tls12.cnf"
            capped.write_text(_MAX_TLS12)
            env = {**os.environ, "OPENSSL_CONF": str(capped)}
        with self.stderr_path.open("ab") as err:
            self._proc = proc.start([mosquitto, "-c", str(self.config_path)], stdout=err, stderr=subprocess.STDOUT,
                                    cwd=self.folder, env=env)
        ports = [self.port] + ([self.tls_port] if self.tls_port else []) + list(self.tls_ports.values())
        deadline = time.monotonic() + self.start_timeout
        # Listening is not enough: mosquitto opens its sockets before it loads the TLS files and
        # may still exit; it logs "mosquitto version X running" once everything is set up.
        while not (self._logged_running(log_offset) and all(_accepts(self.host, port) for port in ports)):
            if proc.wait(self._proc, 0) is not None:
                proc.end(self._proc)  # reaps it
                self._proc = None
                raise BrokerError(f"mosquitto exited at start; config {self.config_path}\n{self._tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"mosquitto did not listen on {self.host}:{ports} within "
                                  f"{self.start_timeout:g} s\n{self._tail()}")
            time.sleep(0.01)

    def _logged_running(self, offset: int) -> bool:
        try:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                return b" running" in f.read()
        except OSError:
            return False

    def _write_config(self) -> None:
        lines = [
            "# written by build/testbed/broker.py",
            # As root mosquitto would switch to user 'mosquitto', which cannot write this folder.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            "per_listener_settings false",
            f"allow_anonymous {'false' if self.users else 'true'}",
            "persistence true",
            f"persistence_location {self.folder}/",
            "persistence_file mosquitto.db",
            "max_queued_messages 100000",
            f"log_dest file {self.log_path}",
            "log_type all",
            "log_timestamp_format %H:%M:%S",
            "connection_messages true",
        ]
        if self.users:
            lines.append(f"password_file {self._write_password_file()}")
        lines.append(f"listener {self.port} {self.host}")
        if self.certs and self.tls_port:
            lines += [
                f"listener {self.tls_port} {self.host}",
                f"cafile {self.certs.ca_cert}",
                f"certfile {self.certs.server_cert}",
                f"keyfile {self.certs.server_key}",
                f"require_certificate {'true' if self.require_client_cert else 'false'}",
            ]
            for name, listener in self.listeners.items():
                lines += [
                    f"listener {self.tls_ports[name]} {self.host}",
                    f"cafile {self.certs.ca_cert}",
                    f"certfile {getattr(self.certs, listener.cert)}",
                    f"keyfile {getattr(self.certs, listener.key)}",
                    f"require_certificate {'true' if listener.require_certificate else 'false'}",
                    *([f"tls_version {listener.min_version}"] if listener.min_version else []),
                    *([f"ciphers {listener.ciphers}"] if listener.ciphers else []),
                    *([f"ciphers_tls1.3 {listener.ciphers_tls13}"] if listener.ciphers_tls13 else []),
                ]
        if any("\n" in line for line in lines):
            raise BrokerError(f"a path for mosquitto's config contains a line break: {self.folder}")
        tmp = self.config_path.with_name(self.config_path.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, self.config_path)

    def _write_password_file(self) -> Path:
        path = self.folder / "passwords"
        tmp = path.with_name("passwords.tmp")
        remove_tree(tmp, (self.folder,))
        # Plain `user:password` lines, hashed in place by `mosquitto_passwd -U`: the passwords never
        # appear on a command line (ps) or in the log, which records the command.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.writelines(f"{user}:{password}\n" for user, password in self.users.items())
        proc.run([proc.require_tool("mosquitto_passwd"), "-U", tmp], log=self.folder / "mosquitto_passwd.log",
                 timeout=30)
        os.replace(tmp, path)
        return path

    def _tail(self) -> str:
        return "\n".join(self.log_text().splitlines()[-LOG_TAIL_LINES:])


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    at: float = field(default=0.0, compare=False)  # time.monotonic() when it arrived

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace")


class Subscriber:
    """An independent observer: subscribes to `topics`, records every message, survives restarts.

    By default it uses a persistent session (clean_session false, QoS 1), so messages that reach
    the broker while the Subscriber is reconnecting after a broker restart are still delivered.
    """

    def __init__(
        self,
        host: str,
        port: int,
        topics: Sequence[str] = ("#",),
        *,
        qos: int = 1,
        persistent: bool = True,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        ca_cert: Path | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.host = host
        self.port = port
        self.topics = list(topics)
        self.qos = qos
        self.persistent = persistent
        self.client_id = client_id or f"observer-{secrets.token_hex(4)}"
        self.username = username
        self.password = password
        self.ca_cert = ca_cert
        self.timeout = timeout
        self._received: list[Received] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._client = None

    def start(self) -> Subscriber:
        """Connect and wait until the subscriptions are in place."""
        from paho.mqtt.client import Client
        from paho.mqtt.enums import CallbackAPIVersion

        client = Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=not self.persistent)
        client.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]  # floats work; restarts are quick
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.ca_cert is not None:
            client.tls_set(ca_certs=str(self.ca_cert))
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        try:
            client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise BrokerError(f"subscriber cannot connect to {self.host}:{self.port}: {exc}") from None
        client.loop_start()
        if not self._subscribed.wait(self.timeout):
            self.close()
            raise BrokerError(f"subscriber got no SUBACK from {self.host}:{self.port} within {self.timeout:g} s")
        return self

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def __enter__(self) -> Subscriber:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---- what was seen ----

    def messages(self, topic_filter: str = "#") -> list[Received]:
        from paho.mqtt.client import topic_matches_sub

        with self._cond:
            return [m for m in self._received if topic_matches_sub(topic_filter, m.topic)]

    def payloads(self, topic_filter: str = "#") -> list[bytes]:
        return [m.payload for m in self.messages(topic_filter)]

    def wait_for(self, predicate: Callable[[list[Received]], bool], *, topic_filter: str = "#",
                 timeout: float | None = None, what: str = "the expected messages") -> list[Received]:
        """Wait until predicate(messages matching topic_filter) is true; return those messages.

        Raises TimeoutError describing what arrived instead.
        """
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        with self._cond:
            while True:
                seen = self.messages(topic_filter)
                if predicate(seen):
                    return seen
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {what} on {topic_filter!r} within {limit:g} s; "
                                       f"{len(seen)} message(s) arrived: {_summary(seen)}")
                self._cond.wait(remaining)

    def wait_count(self, n: int, topic_filter: str = "#", *, timeout: float | None = None) -> list[Received]:
        return self.wait_for(lambda seen: len(seen) >= n, topic_filter=topic_filter, timeout=timeout,
                             what=f"{n} message(s)")

    def wait_payload(self, topic: str, payload: bytes | str, *, timeout: float | None = None) -> Received:
        """Wait for a message on `topic` (a filter) with exactly `payload`; return the first such."""
        wanted = payload.encode() if isinstance(payload, str) else payload
        seen = self.wait_for(lambda ms: any(m.payload == wanted for m in ms), topic_filter=topic,
                             timeout=timeout, what=f"payload {wanted!r}")
        return next(m for m in seen if m.payload == wanted)

    def clear(self) -> None:
        with self._cond:
            self._received.clear()

    def publish(self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False,
                timeout: float | None = None) -> None:
        """Publish and wait for the broker's acknowledgement."""
        if self._client is None:
            raise BrokerError("subscriber is not started")
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(self.timeout if timeout is None else timeout)
        if not info.is_published():
            raise TimeoutError(f"publish to {topic} not acknowledged")

    # ---- paho callbacks (network thread) ----

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            return
        if flags.session_present and self._subscribed.is_set():
            return  # the broker kept our subscriptions; subscribing again would resend retained messages
        client.subscribe([(t, self.qos) for t in self.topics])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:  # type: ignore[no-untyped-def]
        if not any(code.is_failure for code in reason_codes):
            self._subscribed.set()

    def _on_message(self, client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        with self._cond:
            self._received.append(Received(message.topic, bytes(message.payload), message.qos, bool(message.retain),
                                           at=time.monotonic()))
            self._cond.notify_all()


def _summary(messages: Iterable[Received], limit: int = 5) -> str:
    items = list(messages)
    shown = [f"{m.topic}={m.payload[:60]!r}{' (retained)' if m.retain else ''}" for m in items[-limit:]]
    return ("..., " if len(items) > limit else "") + ", ".join(shown) if shown else "none"
