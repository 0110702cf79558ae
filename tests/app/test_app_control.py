"""control's request handling as a pure function: every input gets a reply, none raises."""

from __future__ import annotations

import json

import pytest

from app.commands.control import MAX_PAYLOAD, answer


def status() -> dict[str, object]:
    return {"device": "dev", "requests": 1}


@pytest.mark.parametrize("request_, expected", [
    ({"id": "a", "cmd": "ping"}, {"id": "a", "cmd": "ping", "ok": True, "result": "pong"}),
    ({"id": 7, "cmd": "echo", "data": {"x": [1, "two", None]}},
     {"id": 7, "cmd": "echo", "ok": True, "result": {"x": [1, "two", None]}}),
    ({"id": "s", "cmd": "status"}, {"id": "s", "cmd": "status", "ok": True, "result": {"device": "dev", "requests": 1}}),
    ({"cmd": "ping"}, {"id": None, "cmd": "ping", "ok": True, "result": "pong"}),
])
def test_known_commands(request_: dict[str, object], expected: dict[str, object]) -> None:
    assert answer(json.dumps(request_).encode(), status) == expected


@pytest.mark.parametrize("payload, rid, fragment", [
    (b"\xff\xfe\x00\x80", None, "not valid UTF-8"),
    (b'{"id": "x", "cmd": "ping"', None, "invalid JSON"),
    (b"", None, "invalid JSON"),
    (b"[1, 2, 3]", None, "must be a JSON object, not an array"),
    (b'"ping"', None, "must be a JSON object, not a string"),
    (b'{"id": "u", "cmd": "reboot"}', "u", "unknown command 'reboot'"),
    (b'{"id": "m"}', "m", "missing 'cmd'"),
    (b'{"id": "m", "cmd": 5}', "m", "missing 'cmd'"),
    (b'{"id": [1], "cmd": "ping"}', None, "'id' must be a string or an integer, not an array"),
    (b'{"id": true, "cmd": "ping"}', None, "'id' must be a string or an integer, not a boolean"),
    (b'{"id": "n", "cmd": "echo", "data": NaN}', None, "NaN is not allowed"),
    (b"[" * 8000 + b"]" * 8000, None, "invalid JSON: nested too deeply"),
    (b" " * (MAX_PAYLOAD + 1), None, f"payload too large: {MAX_PAYLOAD + 1} bytes"),
    (b"x" * 65536, None, "payload too large: 65536 bytes"),
])
def test_garbage_gets_an_error_reply(payload: bytes, rid: object, fragment: str) -> None:
    reply = answer(payload, status)
    assert reply["ok"] is False and reply["id"] == rid
    assert fragment in reply["error"]
    json.dumps(reply, allow_nan=False)  # the reply itself is always valid JSON


@pytest.mark.parametrize("size", [MAX_PAYLOAD - 1, MAX_PAYLOAD, MAX_PAYLOAD + 1])
def test_the_payload_limit_is_exact(size: int) -> None:
    # The same valid echo request, its data filled to `size` bytes: answered up to the limit and
    # refused one byte over it (an off-by-one either way fails one of the three).
    empty = json.dumps({"id": "big", "cmd": "echo", "data": ""})
    payload = json.dumps({"id": "big", "cmd": "echo", "data": "x" * (size - len(empty))}).encode()
    reply = answer(payload, status)
    if size <= MAX_PAYLOAD:
        assert reply == {"id": "big", "cmd": "echo", "ok": True, "result": "x" * (size - len(empty))}
    else:
        assert reply["ok"] is False and f"payload too large: {size} bytes" in reply["error"]


def test_long_unknown_command_is_shortened_in_the_error() -> None:
    reply = answer(json.dumps({"id": 1, "cmd": "z" * 5000}).encode(), status)
    assert reply["ok"] is False and len(reply["error"]) < 200
