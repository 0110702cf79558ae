"""`telemetry`: every --interval seconds, publish a JSON reading of the device (load average,
memory, uptime, free disk) to devices/<id>/telemetry; --count N stops after N acknowledged."""

DESCRIPTION = ("Publish a JSON reading of the device (load average, memory, uptime, free disk) to "
               "devices/<id>/telemetry every --interval seconds.")


def main(args: list[str], prog: str) -> int:
    from app import settings

    p = settings.parser(prog, DESCRIPTION)
    p.add_argument("--interval", type=settings.positive_seconds, default=10.0, metavar="SECONDS",
                   help="seconds between readings (default: 10)")
    p.add_argument("--count", type=settings.positive_int, metavar="N",
                   help="stop after N readings were acknowledged by the broker (default: run until stopped)")
    p.add_argument("--disk-path", default="/", metavar="PATH",
                   help="report free space of the file system holding PATH (default: /)")
    s, ns = settings.parse(p, args, command="telemetry")

    import json
    import time

    from app import mqtt, sysinfo

    def make_payload(seq: int) -> str:
        reading = {"device": s.device_id, "seq": seq, "ts": round(time.time(), 3)}
        reading.update(sysinfo.reading(ns.disk_path))
        return json.dumps(reading, separators=(",", ":"))

    topic = s.topic("telemetry")
    return mqtt.run(s, prog, lambda conn: conn.publish_every(topic, make_payload, interval=ns.interval,
                                                             count=ns.count))
