"""One module per command, each exposing `main(args: list[str], prog: str) -> int`, and, if it
imports more than the MQTT commands share (app.commands.run.PRELOAD), `PRELOAD`: a tuple of module
names the `run` supervisor imports before it forks when this command is one of its workers.

The multi-call entry (app.cli) finds them by module name, so a build that bundles only some of
them offers only those.
"""
