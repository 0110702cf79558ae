"""`python build.py`: argument parsing and dispatch only.

Each command's parser lives with its command (`add_parser(subparsers)` in its sub-package's
`command.py`); the default command (build profiles) is `build.freeze.command`. `main()` turns
SlimfreezeError into one `slimfreeze: error: ...` line and its exit status; anything unexpected is
a bug and crashes with its traceback. No other module imports this one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from build import log
from build.errors import SlimfreezeError
from build.explore import command as explore_command
from build.flash import command as flash_command
from build.freeze import command as default_command
from build.project import add_project_options
from build.report import command as bloat_command
from build.sweep import command as sweep_command
from build.update import command as update_command

# Sub-command modules: each has add_parser(subparsers), whose parsers set `run` (or the module's
# `run` is their default). Imported by name, so tests/test_layout.py sees these edges too.
SUBCOMMAND_MODULES: tuple[ModuleType, ...] = (
    bloat_command,    # bloat
    flash_command,    # flash
    update_command,   # delta
    sweep_command,    # sweep, matrix
    explore_command,  # trace, suggest, why
)


def make_parser(modules: Sequence[ModuleType] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="build.py",
        description="Freeze the MQTT application into the smallest working executables, "
                    "smoke-test them against a real broker and report where every byte goes.")
    default_command.add_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of reported errors")
    add_project_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in modules:
        before = set(subparsers.choices)
        module.add_parser(subparsers)
        for name in set(subparsers.choices) - before:
            sub = subparsers.choices[name]
            add_project_options(sub)
            if sub.get_default("handler") is None:
                sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser(SUBCOMMAND_MODULES)
    args = parser.parse_args(argv)
    try:
        return args.handler(args) if args.command else default_command.run(args)
    except SlimfreezeError as err:
        if getattr(args, "debug", False):
            raise
        log.error(str(err))
        return err.return_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
