"""Connection settings from command-line flags and environment variables; flags win.

Every value is checked here, once, with the same converter for the flag and for its variable, so
a bad value gets one line on stderr (`<prog>: error: ...`) and exit status 2 before anything
connects.
"""

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple


class Settings(NamedTuple):
    """Everything the shared MQTT interface needs (a NamedTuple: no dataclasses/inspect import)."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    tls_ca: str | None
    tls_cert: str | None
    tls_key: str | None
    tls_insecure: bool
    device_id: str
    client_id: str
    keepalive: int
    qos: int
    connect_timeout: float
    ack_timeout: float
    reconnect_min: float
    reconnect_max: float
    max_queued: int
    log_level: str

    def topic(self, leaf: str) -> str:
        """`devices/<device id>/<leaf>`."""
        return f"devices/{self.device_id}/{leaf}"

    def __repr__(self) -> str:
        # Never show the password, should settings ever reach a log line or a traceback.
        shown = self._replace(password="***") if self.password is not None else self
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, tuple(shown))) + ")"


# ---- converters: str -> value, or ValueError whose text completes "<where>: ..." ----

def _int_in(low: int, high: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value
    return convert


def _seconds(minimum: float, *, allow_zero: bool = False) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError(f"expected a number of seconds, got {text!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"expected a finite number of seconds, got {text!r}")
        if allow_zero and value == 0:
            return 0.0
        if value < minimum:
            raise ValueError(f"must be at least {minimum:g} s{' (or 0)' if allow_zero else ''}, got {text!r}")
        return value
    return convert


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def _host(text: str) -> str:
    if not text or not text.isascii() or not text.isprintable() or " " in text:
        raise ValueError(f"expected a host name or address in ASCII (for an international name, "
                         f"its xn-- form), got {text!r}")
    return text


def _device_id(text: str) -> str:
    # It becomes a topic level: no '/', '+', '#', spaces or control characters.
    if not text or len(text) > 64 or not all(c.isascii() and (c.isalnum() or c in "-_.:") for c in text):
        raise ValueError(f"expected 1-64 characters out of A-Z a-z 0-9 - _ . :, got {text!r}")
    return text


def _client_id(text: str) -> str:
    if not text or len(text) > 128 or not text.isprintable():
        raise ValueError(f"expected 1-128 printable characters, got {text!r}")
    return text


def _readable_file(text: str) -> str:
    if not text:
        raise ValueError("must not be empty")
    if not os.path.isfile(text):
        raise ValueError(f"no such file: {text!r}")
    if not os.access(text, os.R_OK):
        raise ValueError(f"file is not readable: {text!r}")
    return text


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected 1/0, true/false, yes/no or on/off, got {text!r}")


def _log_level(text: str) -> str:
    lowered = text.strip().lower()
    if lowered not in ("debug", "info", "warning", "error"):
        raise ValueError(f"expected debug, info, warning or error, got {text!r}")
    return lowered


_port = _int_in(1, 65535)

# dest, flag, environment variable, converter (None: boolean switch), metavar, help.
# Defaults are applied in resolve(), after flag and variable, so the help can show them.
_OPTIONS = (
    ("host", "--host", "MQTT_HOST", _host, "HOST", "broker host name or address (default: localhost)"),
    ("port", "--port", "MQTT_PORT", _port, "PORT", "broker port (default: 1883, or 8883 with TLS)"),
    ("username", "--username", "MQTT_USERNAME", _text, "NAME", "user name for the broker"),
    ("password", "--password", "MQTT_PASSWORD", str, "SECRET",
     "password for the broker (prefer the variable: flags show up in ps)"),
    ("tls", "--tls", "MQTT_TLS", None, None, "use TLS (implied by --tls-ca/--tls-cert)"),
    ("tls_ca", "--tls-ca", "MQTT_TLS_CA", _readable_file, "FILE",
     "CA certificate(s) that must have signed the broker's certificate (default: the system's CAs)"),
    ("tls_cert", "--tls-cert", "MQTT_TLS_CERT", _readable_file, "FILE", "client certificate (PEM)"),
    ("tls_key", "--tls-key", "MQTT_TLS_KEY", _readable_file, "FILE", "client private key (PEM)"),
    ("tls_insecure", "--tls-insecure", "MQTT_TLS_INSECURE", None, None,
     "do NOT verify the broker's certificate or host name (testing only)"),
    ("device_id", "--device-id", "DEVICE_ID", _device_id, "ID",
     "device id used in topics devices/<id>/... (default: the host name)"),
    ("client_id", "--client-id", "MQTT_CLIENT_ID", _client_id, "ID",
     "MQTT client id (default: <device id>-<command>)"),
    ("keepalive", "--keepalive", "MQTT_KEEPALIVE", _int_in(5, 65535), "SECONDS", "keepalive interval (default: 60)"),
    ("qos", "--qos", "MQTT_QOS", _int_in(0, 2), "0|1|2", "QoS of published messages (default: 1)"),
    ("connect_timeout", "--connect-timeout", "MQTT_CONNECT_TIMEOUT", _seconds(0.1, allow_zero=True), "SECONDS",
     "give up when the first connection fails for this long; 0 retries forever (default: 30)"),
    ("ack_timeout", "--ack-timeout", "MQTT_ACK_TIMEOUT", _seconds(0.1), "SECONDS",
     "longest wait for the broker's acknowledgements before giving up (default: 10)"),
    ("reconnect_min", "--reconnect-min", "MQTT_RECONNECT_MIN", _seconds(0.01), "SECONDS",
     "first reconnect delay, doubled after each failure (default: 1)"),
    ("reconnect_max", "--reconnect-max", "MQTT_RECONNECT_MAX", _seconds(0.01), "SECONDS",
     "cap of the reconnect delay (default: 60)"),
    ("max_queued", "--max-queued", "MQTT_MAX_QUEUED", _int_in(1, 1_000_000), "N",
     "unacknowledged messages kept while the broker is away; newer ones are dropped (default: 1000)"),
    ("log_level", "--log-level", "LOG_LEVEL", _log_level, "LEVEL", "debug, info, warning or error (default: info)"),
)

_DEFAULTS = {
    "host": "localhost", "username": None, "password": None, "tls_ca": None, "tls_cert": None, "tls_key": None,
    "tls_insecure": False, "keepalive": 60, "qos": 1, "connect_timeout": 30.0, "ack_timeout": 10.0,
    "reconnect_min": 1.0, "reconnect_max": 60.0, "max_queued": 1000, "log_level": "info",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (`prog: error: ...`), not usage plus message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _for_argparse(convert: Callable[[str], object]) -> Callable[[str], object]:
    def wrapped(text: str) -> object:
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    wrapped.__name__ = getattr(convert, "__name__", "value")
    return wrapped


# For the commands' own options (argparse `type=`).
positive_int = _for_argparse(_int_in(1, 2**31 - 1))
positive_seconds = _for_argparse(_seconds(0.001))


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the shared MQTT options; the command adds its own."""
    p = _Parser(prog=prog, description=description, allow_abbrev=False,
                epilog="Each MQTT option can also be set by the environment variable shown (empty counts as "
                       "unset); the flag wins.")
    group = p.add_argument_group("MQTT connection")
    for dest, flag, env, convert, metavar, text in _OPTIONS:
        if convert is None:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None,
                               help=f"{text} [{env}]")
        else:
            group.add_argument(flag, dest=dest, type=_for_argparse(convert), metavar=metavar, default=None,
                               help=f"{text} [{env}]")
    p.add_argument("-V", "--version", action="version", version=_version())
    return p


def parse(p: argparse.ArgumentParser, args: Sequence[str], *, command: str,
          environ: Mapping[str, str] | None = None) -> tuple[Settings, argparse.Namespace]:
    """Parse `args` with parser `p` and resolve the settings; exits 2 with one line on a bad value."""
    ns = p.parse_args(args)
    try:
        settings = resolve(ns, command=command, environ=os.environ if environ is None else environ)
    except ValueError as exc:
        p.error(str(exc))
    return settings, ns


def resolve(ns: argparse.Namespace, *, command: str, environ: Mapping[str, str]) -> Settings:
    """Flags (attributes of `ns`, None when not given) over environment over defaults.

    Raises ValueError naming the flag or variable at fault.
    """
    values = {}
    for dest, flag, env, convert, _metavar, _text_ in _OPTIONS:
        value = getattr(ns, dest, None)
        raw = environ.get(env, "")
        if value is None and raw != "":  # empty counts as unset, as compose files and unit files use it
            try:
                value = (_boolean if convert is None else convert)(raw)
            except ValueError as exc:
                raise ValueError(f"environment variable {env}: {exc}") from None
        values[dest] = value

    tls_files = [name for name in ("tls_ca", "tls_cert", "tls_key") if values[name]]
    if values["tls"] is None:
        values["tls"] = bool(tls_files or values["tls_insecure"])
    elif not values["tls"] and (tls_files or values["tls_insecure"]):
        culprit = _flag(tls_files[0] if tls_files else "tls_insecure")
        raise ValueError(f"TLS is switched off (--no-tls / MQTT_TLS) but {culprit} is set")
    if values["tls_key"] and not values["tls_cert"]:
        raise ValueError("--tls-key (MQTT_TLS_KEY) needs --tls-cert (MQTT_TLS_CERT)")
    if values["password"] is not None and values["username"] is None:
        raise ValueError("--password (MQTT_PASSWORD) needs --username (MQTT_USERNAME)")

    for name, default in _DEFAULTS.items():
        if values[name] is None:
            values[name] = default
    if values["port"] is None:
        values["port"] = 8883 if values["tls"] else 1883
    if values["reconnect_min"] > values["reconnect_max"]:
        raise ValueError(f"--reconnect-min ({values['reconnect_min']:g} s) is larger than "
                         f"--reconnect-max ({values['reconnect_max']:g} s)")
    if values["device_id"] is None:
        values["device_id"] = default_device_id()
    if values["client_id"] is None:
        values["client_id"] = f"{values['device_id']}-{command}"[:128]
    return Settings(**values)


def default_device_id() -> str:
    """The host name when it is usable as a topic level, else "device"."""
    name = os.uname().nodename.split(".")[0]
    try:
        return _device_id(name)
    except ValueError:
        return "device"


def _flag(dest: str) -> str:
    return next(flag for d, flag, *_rest in _OPTIONS if d == dest)


def _version() -> str:
    from app import __version__
    return f"slimfreeze {__version__}"


def configure_logging(level: str) -> None:
    """Log lines to stderr, with the time of day to line them up with the broker's log."""
    import logging

    logging.basicConfig(stream=sys.stderr, level=level.upper(),
                        format="%(asctime)s.%(msecs)03d %(name)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
