"""`serve [--port P]`: echo each TCP line back in upper case until SIGTERM, then exit 0."""

import argparse
import asyncio
import signal


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()
    writer.close()


async def _serve(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = await asyncio.start_server(_echo, "127.0.0.1", port)
    host, bound = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{bound}", flush=True)
    async with server:
        await stop.wait()
    print("stopped cleanly", flush=True)


def run(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="serve", description="echo TCP lines until stopped")
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(_serve(parser.parse_args(args).port))
    return 0
