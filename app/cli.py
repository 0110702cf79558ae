"""The one multi-call entry point the build freezes.

    python -m app <command> [args]      slimfreeze <command> [args]
    telemetry [args]                    (a symlink or hard link named after the command, busybox style)

Only `os` and `sys` are imported here (both already loaded by the interpreter), so `hello`,
`--help` and `--version` stay as small as the interpreter itself; each command imports what it
needs when it runs.
"""

import os
import sys

from app import __version__

# Command name -> one-line summary. The summary lives here, not in the command module, so that
# --help can describe commands without importing them.
COMMANDS = {
    "control": "answer JSON commands (ping, echo, status) from devices/<id>/cmd on devices/<id>/reply",
    "heartbeat": "publish a sequence-numbered heartbeat to devices/<id>/heartbeat",
    "hello": "print a greeting and exit (no MQTT)",
    "run": "run several commands in one process that imports once and forks a worker for each",
    "store": "publish readings to devices/<id>/store, kept in an SQLite file until the broker has them",
    "telemetry": "publish a JSON reading of the device to devices/<id>/telemetry",
}
MULTICALL_NAME = "slimfreeze"
_PACKAGE = "app.commands"


def main(argv: list[str] | None = None) -> int:
    """Run the command named by argv[0]'s basename, or else by argv[1]; return the exit status.

    `argv` is a whole argument vector including the program name (default: sys.argv).
    """
    argv = sys.argv if argv is None else list(argv)
    invoked = os.path.basename(argv[0]) if argv and argv[0] else MULTICALL_NAME
    if invoked in COMMANDS:
        return run(invoked, argv[1:], invoked)
    prog = "python -m app" if invoked in ("__main__.py", "-m", "-c") else invoked
    args = argv[1:]
    if not args:
        _err(f"{prog}: error: no command given; choose from: {', '.join(available())} (or --help)")
        return 2
    first = args[0]
    if first in ("-h", "--help"):
        print(help_text(prog))
        return 0
    if first in ("-V", "--version"):
        print(f"{MULTICALL_NAME} {__version__}")
        return 0
    if first not in COMMANDS:
        what = "option" if first.startswith("-") else "command"
        _err(f"{prog}: error: unknown {what} '{first}'; choose from: {', '.join(available())} (or --help)")
        return 2
    return run(first, args[1:], f"{prog} {first}")


def run(name: str, args: list[str], prog: str) -> int:
    """Import the command's module by name and run it; a command left out of the build is a usage error."""
    module_name = f"{_PACKAGE}.{name}"
    try:
        # __import__ rather than importlib: one import fewer on the path every command takes.
        __import__(module_name)
    except ModuleNotFoundError as exc:
        if not exc.name or not (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise  # something the command itself imports is missing: a real bug, show it
        _err(f"{prog}: error: command '{name}' is not included in this build")
        return 2
    return sys.modules[module_name].main(list(args), prog)


def available() -> list[str]:
    """The commands this program actually contains (a frozen build may bundle only some)."""
    import importlib.util  # only --help and error messages pay for it

    found = []
    for name in COMMANDS:
        try:
            present = importlib.util.find_spec(f"{_PACKAGE}.{name}") is not None
        except (ImportError, ValueError):
            # PyInstaller's and Nuitka's importers may raise instead of returning None.
            present = False
        if present:
            found.append(name)
    return found


def help_text(prog: str) -> str:
    names = available()
    width = max((len(n) for n in names), default=0)
    lines = [
        f"usage: {prog} <command> [options]",
        "       <command> [options]    (through a link named after the command)",
        "",
        f"{MULTICALL_NAME} {__version__}: small MQTT device programs sharing one MQTT interface.",
        "",
        "commands:",
    ]
    lines += [f"  {n:<{width}}  {COMMANDS[n]}" for n in names] or ["  (none in this build)"]
    lines += [
        "",
        "options:",
        "  -h, --help     show this help and exit",
        "  -V, --version  print the version and exit",
        "",
        f"Run '{prog} <command> --help' for a command's options.",
    ]
    return "\n".join(lines)


def _err(line: str) -> None:
    print(line, file=sys.stderr)
