"""`tick --out FILE --count N [--interval S]`: N lines, one every S seconds, then `done N`."""

import argparse
import asyncio


async def _ticks(path: str, count: int, interval: float) -> int:
    with open(path, "w", encoding="utf-8") as out:
        for number in range(1, count + 1):
            out.write(f"tick {number} at {asyncio.get_running_loop().time():.3f}\n")
            out.flush()
            await asyncio.sleep(interval)
    return count


def run(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tick", description="write timed lines to a file")
    parser.add_argument("--out", required=True)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.05)
    ns = parser.parse_args(args)
    if ns.count < 1:
        parser.error("--count must be at least 1")
    written = asyncio.run(_ticks(ns.out, ns.count, ns.interval))
    print(f"done {written}")
    return 0
