"""The stand-in modules keep what paho-mqtt touches and behave like the originals where they can."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from build.freeze.standins import _slimfreeze_ssl as fake_ssl
from build.freeze.standins import _slimfreeze_urllib_request as fake_request

PAHO = Path(__import__("paho.mqtt.client").mqtt.client.__file__).parent


def test_ssl_stand_in_defines_every_name_paho_uses():
    used = set()
    for source in PAHO.glob("*.py"):
        used |= set(re.findall(r"\bssl\.([A-Za-z_][A-Za-z0-9_]*)", source.read_text()))
    assert used, "paho-mqtt no longer mentions ssl: re-check what the stand-in must provide"
    missing = sorted(name for name in used if not hasattr(fake_ssl, name))
    assert not missing


def test_ssl_stand_in_exceptions_nest_like_the_real_ones():
    assert issubclass(fake_ssl.SSLWantReadError, fake_ssl.SSLError)
    assert issubclass(fake_ssl.SSLError, OSError)
    assert issubclass(fake_ssl.CertificateError, ValueError)


@pytest.mark.parametrize("call", [lambda: fake_ssl.SSLContext(fake_ssl.PROTOCOL_TLS_CLIENT),
                                  fake_ssl.create_default_context,
                                  lambda: fake_ssl.match_hostname({}, "h")])
def test_any_tls_use_fails_with_one_clear_message(call):
    with pytest.raises(fake_ssl.SSLError, match="TLS is not available in this build"):
        call()


@pytest.mark.parametrize("environment", [
    {},
    {"http_proxy": "http://a:1", "HTTPS_PROXY": "http://b:2"},
    {"MQTT_PROXY": "socks://upper:1", "mqtt_proxy": "socks://lower:2"},
    {"no_proxy": "example.com", "all_proxy": "http://c:3"},
])
def test_getproxies_matches_the_standard_library(monkeypatch, environment):
    for name in [n for n in list(__import__("os").environ) if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert fake_request.getproxies() == urllib.request.getproxies_environment()


def test_proxy_bypass_honours_no_proxy(monkeypatch):
    monkeypatch.setenv("no_proxy", "example.com, .internal")
    assert fake_request.proxy_bypass("broker.example.com")
    assert fake_request.proxy_bypass("mq.internal:1883")
    assert not fake_request.proxy_bypass("example.org")
    monkeypatch.setenv("no_proxy", "*")
    assert fake_request.proxy_bypass("anything")
