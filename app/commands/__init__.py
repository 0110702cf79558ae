"""One module per command, each exposing `main(args: list[str], prog: str) -> int`.

The multi-call entry (app.cli) finds them by module name, so a build that bundles only some of
them offers only those.
"""
