"""The one way slimfreeze runs external programs: argument lists, explicit env and cwd, a timeout,
the whole output appended to a log file, the last lines in the error on failure."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from build.errors import CommandFailed, ToolMissing

# Which Debian package provides each external tool we call, for the "install X" message.
TOOL_PACKAGES: dict[str, str] = {
    "mosquitto": "mosquitto",
    "mosquitto_sub": "mosquitto-clients",
    "mosquitto_pub": "mosquitto-clients",
    "mosquitto_passwd": "mosquitto",
    "upx": "upx-ucl (from bookworm-backports)",
    "mksquashfs": "squashfs-tools",
    "unsquashfs": "squashfs-tools",
    "patchelf": "patchelf",
    "strip": "binutils",
    "objdump": "binutils",
    "objcopy": "binutils",
    "openssl": "openssl",
    "chromium": "chromium",
    "gcc": "gcc",
}

TAIL_LINES = 25


def require_tool(name: str) -> str:
    """Return the absolute path of `name`, or raise ToolMissing naming its package."""
    # mosquitto lives in /usr/sbin, which is not on every user's PATH.
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise ToolMissing(name, TOOL_PACKAGES.get(name, name))
    return found


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 1800,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `cmd`, appending the command line and all its output to `log`.

    On a non-zero exit (with check) or a timeout, raise CommandFailed whose message names the
    command, the log, and shows the log's last lines.
    """
    argv = [os.fspath(a) for a in cmd]
    if os.sep not in argv[0]:
        argv[0] = require_tool(argv[0])
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("a", encoding="utf-8", errors="replace") as sink:
        sink.write(f"+ {shlex.join(argv)}\n")
        sink.flush()
        try:
            proc = subprocess.run(argv, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env=dict(env) if env is not None else None, cwd=cwd, timeout=timeout,
                                  text=True)
        except subprocess.TimeoutExpired:
            sink.write(f"! timed out after {timeout:.0f} s\n")
            raise CommandFailed(_failure(argv, f"timed out after {timeout:.0f} s", log)) from None
        sink.write(f"= exit {proc.returncode} after {time.monotonic() - started:.1f} s\n")
    if check and proc.returncode != 0:
        raise CommandFailed(_failure(argv, f"exited with status {proc.returncode}", log))
    return proc


def _failure(argv: list[str], what: str, log: Path) -> str:
    name = Path(argv[0]).name
    return f"{name} {what}; whole output in {log}\n--- last lines of the log ---\n{tail(log)}"
