"""The stand-in modules keep what paho-mqtt touches and behave like the originals where they can."""

from __future__ import annotations

import os
import re
import urllib.request
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    {"no_proxy": "", "NO_PROXY": "upper.example"},  # an empty lower-case one removes it
    {"HTTP_PROXY": "http://cgi:1", "https_proxy": "http://d:4", "REQUEST_METHOD": "GET"},
])
def test_getproxies_matches_the_standard_library(monkeypatch, environment):
    for name in [n for n in list(os.environ) if n.lower().endswith("_proxy") or n == "REQUEST_METHOD"]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert fake_request.getproxies() == urllib.request.getproxies_environment()


NAMES = ["example.com", "broker.example.com", "EXAMPLE.com", "mq.internal", "internal", "localhost", "127.0.0.1",
         "a.b.c", "b.c", "x", ""]
HOSTS = st.builds(lambda name, port: name + port, st.sampled_from(NAMES),
                  st.sampled_from(["", ":1883", ":8883", ":"]))
ENTRIES = st.builds(lambda lead, name, port, pad: f"{pad}{lead}{name}{port}{pad}", st.sampled_from(["", ".", ".."]),
                    st.sampled_from(NAMES), st.sampled_from(["", ":1883"]), st.sampled_from(["", " "]))
NO_PROXY = st.one_of(st.sampled_from(["*", " * ", "", ","]),
                     st.lists(st.one_of(ENTRIES, st.just("*")), max_size=4).map(",".join))


@given(host=HOSTS, lower=st.none() | NO_PROXY, upper=st.none() | NO_PROXY)
@settings(max_examples=400, deadline=None, derandomize=True, database=None)
def test_proxy_bypass_matches_the_standard_library(host, lower, upper):
    environment = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    environment.update({k: v for k, v in (("no_proxy", lower), ("NO_PROXY", upper)) if v is not None})
    with patch.dict(os.environ, environment, clear=True):
        assert fake_request.proxy_bypass(host) == urllib.request.proxy_bypass_environment(host), (host, lower, upper)
