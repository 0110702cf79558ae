"""Settings: flags over environment over defaults; a bad value is one line and exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app import settings
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def resolve(args: list[str], env: dict[str, str] | None = None, command: str = "telemetry") -> Settings:
    p = settings.parser(command, "test")
    return settings.parse(p, args, command=command, environ=env or {})[0]


def test_defaults() -> None:
    s = resolve([], {})
    assert (s.host, s.port, s.tls, s.username, s.password, s.keepalive, s.qos) == ("localhost", 1883, False,
                                                                                    None, None, 60, 1)
    assert s.device_id == settings.default_device_id()
    assert s.client_id == f"{s.device_id}-telemetry"
    assert s.topic("status") == f"devices/{s.device_id}/status"


def test_environment_is_used() -> None:
    s = resolve([], {"MQTT_HOST": "broker.lan", "MQTT_PORT": "1884", "MQTT_USERNAME": "u", "MQTT_PASSWORD": "p",
                     "DEVICE_ID": "pump-7", "MQTT_KEEPALIVE": "30", "MQTT_QOS": "0", "LOG_LEVEL": "DEBUG"})
    assert (s.host, s.port, s.username, s.password, s.device_id, s.keepalive, s.qos, s.log_level) == (
        "broker.lan", 1884, "u", "p", "pump-7", 30, 0, "debug")
    assert s.client_id == "pump-7-telemetry"


def test_flags_win_over_environment() -> None:
    env = {"MQTT_HOST": "from-env", "MQTT_PORT": "1111", "DEVICE_ID": "env-dev", "MQTT_TLS": "1",
           "MQTT_KEEPALIVE": "not-a-number"}
    s = resolve(["--host", "from-flag", "--port", "2222", "--device-id", "flag-dev", "--no-tls",
                 "--keepalive", "15"], env)
    # MQTT_KEEPALIVE is not even looked at when the flag is given.
    assert (s.host, s.port, s.device_id, s.tls, s.keepalive) == ("from-flag", 2222, "flag-dev", False, 15)


def test_empty_variables_count_as_unset() -> None:
    s = resolve([], {"MQTT_HOST": "", "MQTT_PORT": "", "MQTT_TLS": "", "MQTT_USERNAME": "", "DEVICE_ID": ""})
    assert (s.host, s.port, s.tls, s.username) == ("localhost", 1883, False, None)
    assert s.device_id == settings.default_device_id()


def test_tls_is_implied_by_a_ca_file_and_changes_the_default_port(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    s = resolve([], {"MQTT_TLS_CA": str(ca)})
    assert (s.tls, s.tls_ca, s.port, s.tls_insecure) == (True, str(ca), 8883, False)
    assert resolve(["--port", "9999"], {"MQTT_TLS_CA": str(ca)}).port == 9999


@pytest.mark.parametrize("args, env, fragment", [
    (["--port", "0"], {}, "argument --port: must be between 1 and 65535, got 0"),
    ([], {"MQTT_PORT": "http"}, "environment variable MQTT_PORT: expected a whole number, got 'http'"),
    ([], {"MQTT_KEEPALIVE": "1"}, "environment variable MQTT_KEEPALIVE: must be between 5 and 65535"),
    (["--qos", "3"], {}, "argument --qos: must be between 0 and 2"),
    ([], {"DEVICE_ID": "a/b"}, "environment variable DEVICE_ID: expected 1-64 characters"),
    (["--device-id", "x#"], {}, "argument --device-id: expected 1-64 characters"),
    ([], {"MQTT_HOST": "br\u00f6ker"}, "environment variable MQTT_HOST: expected a host name or address in ASCII"),
    ([], {"MQTT_TLS_CA": "/nonexistent/ca.pem"}, "environment variable MQTT_TLS_CA: no such file"),
    (["--tls-cert", "/nonexistent/c.pem"], {}, "argument --tls-cert: no such file"),
    ([], {"MQTT_TLS": "maybe"}, "environment variable MQTT_TLS: expected 1/0, true/false"),
    ([], {"MQTT_PASSWORD": "secret"}, "--password (MQTT_PASSWORD) needs --username"),
    (["--interval", "0"], {}, "argument --interval: must be at least 0.001 s"),
    (["--count", "-1"], {}, "argument --count: must be between 1 and"),
    (["--reconnect-min", "5", "--reconnect-max", "1"], {}, "--reconnect-min (5 s) is larger than --reconnect-max"),
    ([], {"MQTT_CONNECT_TIMEOUT": "nan"}, "environment variable MQTT_CONNECT_TIMEOUT: expected a finite number"),
    (["--log-level", "loud"], {}, "argument --log-level: expected debug, info, warning or error"),
    (["--bogus"], {}, "unrecognized arguments: --bogus"),
])
def test_bad_values_give_one_line_and_exit_2(args: list[str], env: dict[str, str], fragment: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    p = settings.parser("telemetry", "test")
    p.add_argument("--interval", type=settings.positive_seconds, default=1.0)
    p.add_argument("--count", type=settings.positive_int)
    with pytest.raises(SystemExit) as exit_info:
        settings.parse(p, args, command="telemetry", environ=env)
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("telemetry: error: ")
    assert fragment in err


def test_tls_key_without_certificate_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k.pem"
    key.write_text("x")
    with pytest.raises(SystemExit):
        resolve(["--tls-key", str(key)])
    assert "--tls-key (MQTT_TLS_KEY) needs --tls-cert" in capsys.readouterr().err


def test_no_tls_with_tls_files_is_a_contradiction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    with pytest.raises(SystemExit):
        resolve(["--no-tls"], {"MQTT_TLS_CA": str(ca)})
    assert "TLS is switched off" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["telemetry", "heartbeat", "control"])
def test_bad_environment_value_in_a_real_run(command: str) -> None:
    """End to end: nothing connects, one line on stderr, status 2."""
    result = subprocess.run([sys.executable, "-m", "app", command], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "MQTT_KEEPALIVE": "soon"})
    assert result.returncode == 2
    assert result.stderr == (f"python -m app {command}: error: environment variable MQTT_KEEPALIVE: "
                             "expected a whole number, got 'soon'\n")


def test_the_password_never_shows_in_the_settings_repr():
    import argparse

    from app.settings import resolve

    s = resolve(argparse.Namespace(username="u", password="hunter2"), command="x", environ={})
    assert s.password == "hunter2"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "password='***'" in repr(s)
