"""Errors the user can act on. Each one's str() is the single line the CLI prints."""

from __future__ import annotations


class SlimfreezeError(Exception):
    """A failure with a message for the user and the exit status it maps to."""

    return_code = 1


class ConfigError(SlimfreezeError):
    """Invalid pyproject.toml configuration or command-line usage."""

    return_code = 2


class ToolMissing(SlimfreezeError):
    """An external program is not installed."""

    def __init__(self, tool: str, package: str) -> None:
        super().__init__(f"'{tool}' was not found on PATH; install the Debian package '{package}' "
                         f"(or run scripts/install.sh)")
        self.tool = tool
        self.package = package


class CommandFailed(SlimfreezeError):
    """An external command exited non-zero; the log holds its whole output."""


class BuildFailed(SlimfreezeError):
    """A profile did not produce a working artifact."""


class ArtifactError(SlimfreezeError):
    """A file or folder is not a readable frozen artifact (or report)."""


class InternalError(SlimfreezeError):
    """A check of slimfreeze's own results failed: a bug, reported as one (never the user's input)."""

    return_code = 70  # EX_SOFTWARE

    def __init__(self, what: str) -> None:
        super().__init__(f"internal error (a bug in slimfreeze; please report it with this line): {what}")
