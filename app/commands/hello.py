"""`hello`: print a greeting and exit. No MQTT, no argparse: the size control of every build."""

import sys

from app import __version__

USAGE = "usage: {prog} [-h] [-V]\n\nPrint a greeting and exit (no MQTT)."


def main(args: list[str], prog: str) -> int:
    if args in (["-h"], ["--help"]):
        print(USAGE.format(prog=prog))
        return 0
    if args in (["-V"], ["--version"]):
        print(f"slimfreeze {__version__}")
        return 0
    if args:
        print(f"{prog}: error: unexpected argument '{args[0]}' (hello takes none)", file=sys.stderr)
        return 2
    print(f"Hello from slimfreeze {__version__} (Python {sys.version_info[0]}.{sys.version_info[1]})")
    return 0
