"""`heartbeat`: publish a sequence-numbered heartbeat to devices/<id>/heartbeat every --interval
seconds; --count N stops after N acknowledged."""

DESCRIPTION = "Publish a sequence-numbered heartbeat to devices/<id>/heartbeat every --interval seconds."


def main(args: list[str], prog: str) -> int:
    from app import settings

    p = settings.parser(prog, DESCRIPTION)
    p.add_argument("--interval", type=settings.positive_seconds, default=5.0, metavar="SECONDS",
                   help="seconds between heartbeats (default: 5)")
    p.add_argument("--count", type=settings.positive_int, metavar="N",
                   help="stop after N heartbeats were acknowledged by the broker (default: run until stopped)")
    s, ns = settings.parse(p, args, command="heartbeat")

    import time

    from app import mqtt

    def make_payload(seq: int) -> str:
        # Formatted by hand: two numbers do not need the json module.
        return f'{{"seq":{seq},"ts":{time.time():.3f}}}'

    topic = s.topic("heartbeat")
    return mqtt.run(s, prog, lambda conn: conn.publish_every(topic, make_payload, interval=ns.interval,
                                                             count=ns.count))
