"""`control`: answer JSON commands from devices/<id>/cmd on devices/<id>/reply.

A request is a JSON object {"id": <string|integer>, "cmd": "ping"|"echo"|"status", "data": ...};
the reply is {"id": <the request's id>, "cmd": ..., "ok": true, "result": ...} or
{"id": ..., "ok": false, "error": "<why>"}. Anything else (oversized, not UTF-8, not JSON, not an
object, unknown command) is logged and answered with an error reply; it never stops the program.
"""

import json
from collections.abc import Callable

DESCRIPTION = ("Answer JSON commands (ping, echo, status) received on devices/<id>/cmd with a reply "
               "on devices/<id>/reply carrying the request's id.")
MAX_PAYLOAD = 16 * 1024
KNOWN = ("echo", "ping", "status")


def main(args: list[str], prog: str) -> int:
    from app import settings

    p = settings.parser(prog, DESCRIPTION)
    p.add_argument("--count", type=settings.positive_int, metavar="N",
                   help="stop after handling N requests, good or bad (default: run until stopped)")
    s, ns = settings.parse(p, args, command="control")

    import logging
    import os
    import time

    from app import __version__, mqtt, sysinfo

    log = logging.getLogger("app.control")
    started = time.monotonic()
    tally = {"requests": 0, "errors": 0}
    connection = mqtt.Connection(s, prog)
    reply_topic = s.topic("reply")

    def status() -> dict[str, object]:
        return {"device": s.device_id, "version": __version__, "pid": os.getpid(),
                "uptime_s": round(time.monotonic() - started, 3), "requests": tally["requests"],
                "errors": tally["errors"], "system": sysinfo.reading()}

    def on_request(topic: str, payload: bytes) -> None:
        tally["requests"] += 1
        reply = answer(payload, status)
        if reply["ok"]:
            log.debug("request %r: %s answered", reply["id"], reply["cmd"])
        else:
            tally["errors"] += 1
            log.warning("bad request on %s (%d bytes): %s", topic, len(payload), reply["error"])
        connection.publish(reply_topic, json.dumps(reply, separators=(",", ":")))
        if ns.count is not None and tally["requests"] >= ns.count:
            connection.stop()

    connection.subscribe(s.topic("cmd"), on_request)
    return connection.run(mqtt.Connection.wait_for_stop)


def answer(payload: bytes, status: Callable[[], object]) -> dict[str, object]:
    """The reply (a dict) to one request payload (bytes). Pure apart from calling status()."""
    if len(payload) > MAX_PAYLOAD:
        return _error(None, f"payload too large: {len(payload)} bytes (limit {MAX_PAYLOAD})")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _error(None, f"payload is not valid UTF-8 (bad byte at offset {exc.start})")
    try:
        request = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        return _error(None, f"invalid JSON: {exc}")
    except RecursionError:
        return _error(None, "invalid JSON: nested too deeply")
    if not isinstance(request, dict):
        return _error(None, f"a request must be a JSON object, not {_json_type(request)}")
    rid = request.get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, (str, int))):
        return _error(None, f"'id' must be a string or an integer, not {_json_type(rid)}")
    cmd = request.get("cmd")
    if not isinstance(cmd, str):
        return _error(rid, f"missing 'cmd' (one of: {', '.join(KNOWN)})")
    if cmd == "ping":
        return _ok(rid, cmd, "pong")
    if cmd == "echo":
        return _ok(rid, cmd, request.get("data"))
    if cmd == "status":
        return _ok(rid, cmd, status())
    shown = cmd if len(cmd) <= 40 else cmd[:40] + "..."
    return _error(rid, f"unknown command {shown!r} (one of: {', '.join(KNOWN)})", cmd=cmd[:40])


def _ok(rid: object, cmd: str, result: object) -> dict[str, object]:
    return {"id": rid, "cmd": cmd, "ok": True, "result": result}


def _error(rid: object, message: str, cmd: str | None = None) -> dict[str, object]:
    return {"id": rid, "cmd": cmd, "ok": False, "error": message}


def _reject_constant(name: str) -> object:
    # NaN and Infinity are not JSON; accepting them would make us send invalid JSON back.
    raise ValueError(f"{name} is not allowed")


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
