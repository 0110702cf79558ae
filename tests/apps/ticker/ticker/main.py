"""`ticker tick` writes timed lines to a file; `ticker serve` runs a TCP echo server until stopped.

Busybox style like the MQTT app, but with its own dispatcher: the command is argv[0]'s name (a
link) or the first argument. Everything runs on asyncio.
"""

import os
import sys

COMMANDS = ("tick", "serve")


def main() -> int:
    argv = sys.argv
    name = os.path.basename(argv[0])
    args = argv[1:]
    if name not in COMMANDS:
        if not args or args[0] in ("-h", "--help"):
            print("usage: ticker {tick,serve} [options]\n\ncommands:\n  tick   write timed lines to a file\n"
                  "  serve  echo TCP lines until stopped")
            return 0 if args else 2
        if args[0] == "--version":
            from ticker import __version__
            print(f"ticker {__version__}")
            return 0
        name, args = args[0], args[1:]
    if name == "tick":
        from ticker.tick import run
    elif name == "serve":
        from ticker.serve import run
    else:
        print(f"ticker: error: unknown command {name!r}", file=sys.stderr)
        return 2
    return run(args)
