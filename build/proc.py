"""The one way slimfreeze runs external programs: argument lists, explicit env and cwd, a timeout,
the whole output appended to a log file, the last lines in the error on failure.

Every program starts in a session of its own, so that on a timeout, an error or Ctrl-C the whole
tree it started ends with it: Nuitka's scons and gcc, a onefile's real application process, the
workers of a supervisor. `start`/`end` are the pieces for programs that run until stopped.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

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
    "addr2line": "binutils",
    "openssl": "openssl",
    "chromium": "chromium",
    "gcc": "gcc",
    "make": "make",
    "apt-get": "apt",
    "dpkg-source": "dpkg-dev",
    "git": "git",
    # Target roots of other architectures (build/targets/).
    "mmdebstrap": "mmdebstrap",
    "proot": "proot",
    "qemu-aarch64-static": "qemu-user-static",
    "qemu-arm-static": "qemu-user-static",
    # The size runtime cross-compiled for them (build/runtime/cross.py), with this machine's 3.11.
    "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
    "aarch64-linux-gnu-strip": "binutils-aarch64-linux-gnu",
    "arm-linux-gnueabihf-gcc": "gcc-arm-linux-gnueabihf",
    "arm-linux-gnueabihf-strip": "binutils-arm-linux-gnueabihf",
    "python3.11": "python3.11",
}

TAIL_LINES = 25
GRACE = 5.0  # seconds between SIGTERM and SIGKILL when a program's tree is ended
VERSION_TIMEOUT = 30.0  # for `tool --version` and the like


def require_tools(*names: str) -> None:
    """`require_tool` for each of `names`: ToolMissing for the first not on PATH."""
    for name in names:
        require_tool(name)


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


def start(argv: Sequence[str | os.PathLike[str]], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
          stdout: int | IO[Any] | None = None, stderr: int | IO[Any] | None = None,
          stdin: int | IO[Any] | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """Start `argv` as the leader of a new session (and process group); end it with `end`."""
    return subprocess.Popen([os.fspath(a) for a in argv], env=dict(env) if env is not None else None, cwd=cwd,
                            stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=True)


def _tree(leader: int) -> list[psutil.Process]:
    """Every process that `leader` (a session leader from `start`) is responsible for: those in its
    session (a process group of their own included) and its descendants (setsid() ones included)."""
    found: dict[int, psutil.Process] = {}
    try:
        for child in psutil.Process(leader).children(recursive=True):
            found[child.pid] = child
    except psutil.Error:
        pass
    for process in psutil.process_iter():
        try:
            if process.pid != leader and os.getsid(process.pid) == leader:
                found.setdefault(process.pid, process)
        except (OSError, psutil.Error):
            continue  # ended while we looked
    return list(found.values())


def wait(child: subprocess.Popen[Any], timeout: float) -> int | None:
    """`child`'s exit status once it has ended (None if it still runs after `timeout` s), without
    reaping it: until `end` reaps it, its pid stays reserved, so its process group and session can
    still be ended without any risk of hitting an unrelated process that got the pid since.
    (Popen.wait and Popen.poll reap; use this instead for programs from `start`.)"""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        if child.returncode is not None:
            return child.returncode
        info = os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None and info.si_pid == child.pid:
            return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.05)


def end(child: subprocess.Popen[Any], *, grace: float = GRACE, sig: int = signal.SIGTERM) -> None:
    """End `child` (started by `start`) and everything it started: `sig` to its process group,
    SIGKILL to whatever of the group, the session or the descendants is left after `grace` s.
    Then reap `child`. Call it before anything reaps `child` (see `wait`); on a child already
    reaped elsewhere it does nothing, as its pid may name another process by now."""
    if child.returncode is not None:
        return
    leftovers = _tree(child.pid)
    _signal_group(child.pid, sig)
    for process in leftovers:
        try:
            process.send_signal(sig)  # psutil checks that the pid still names the same process
        except psutil.Error:
            pass
    wait(child, grace)
    _, alive = psutil.wait_procs(leftovers, timeout=max(0.0, grace / 5))
    # Those that ignored `sig`, and any started meanwhile.
    for process in [*alive, *_tree(child.pid)]:
        try:
            process.kill()
        except psutil.Error:
            pass
    _signal_group(child.pid, signal.SIGKILL)
    child.wait()  # reaps: only now may the pid be reused
    psutil.wait_procs([p for p in leftovers if _exists(p)], timeout=grace)


def _signal_group(leader: int, sig: int) -> None:
    try:
        os.killpg(leader, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is empty but for the unreaped leader, or already gone


def _exists(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@dataclass(frozen=True, kw_only=True)
class Captured:
    """A finished (or timed-out: code None) program and its combined stdout and stderr."""

    argv: list[str]
    code: int | None
    output: str  # stdout, and stderr too unless asked for separately
    errors: str = ""  # stderr, when captured separately


def capture(argv: Sequence[str | os.PathLike[str]], *, env: Mapping[str, str] | None = None,
            cwd: Path | None = None, timeout: float, separate_stderr: bool = False,
            stdin: bytes = b"") -> Captured:
    """Run `argv` to its end with stdout and stderr captured (together unless `separate_stderr`),
    `stdin` as its input; on a timeout, an error or Ctrl-C its whole tree is ended, and after it
    exits whatever it left running. Input and output go through temporary files, not pipes, so a
    process it left behind holding them cannot keep this waiting. OSError (no such program, not
    executable) propagates."""
    args = [os.fspath(a) for a in argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as given:
        given.write(stdin)
        given.seek(0)
        child = start(args, env=env, cwd=cwd, stdout=out, stderr=err if separate_stderr else subprocess.STDOUT,
                      stdin=given)
        try:
            code = wait(child, timeout)
        finally:
            end(child)  # on a timeout, an error or Ctrl-C; after an exit, what it left behind
        out.seek(0)
        err.seek(0)
        return Captured(argv=args, code=code, output=out.read().decode(errors="replace"),
                        errors=err.read().decode(errors="replace"))


def tool_output(argv: Sequence[str], timeout: float = VERSION_TIMEOUT) -> str:
    """stdout and stderr of a short query like `upx --version`; empty if it fails or hangs."""
    try:
        return capture([require_tool(argv[0]), *argv[1:]], timeout=timeout).output
    except OSError:
        return ""


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
    command, the log, and shows the log's last lines. On a timeout, an error or Ctrl-C, the whole
    process tree of `cmd` is ended.
    """
    argv = [os.fspath(a) for a in cmd]
    if os.sep not in argv[0]:
        argv[0] = require_tool(argv[0])
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("a", encoding="utf-8", errors="replace") as sink:
        sink.write(f"+ {shlex.join(argv)}\n")
        sink.flush()
        child = start(argv, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)
        try:
            code = wait(child, timeout)
        finally:
            end(child)  # on a timeout, an error or Ctrl-C; after an exit, what it left behind
        if code is None:
            sink.write(f"! timed out after {timeout:.0f} s\n")
            raise CommandFailed(_failure(argv, f"timed out after {timeout:.0f} s", log))
        sink.write(f"= exit {code} after {time.monotonic() - started:.1f} s\n")
    if check and code != 0:
        raise CommandFailed(_failure(argv, f"exited with status {code}", log))
    return subprocess.CompletedProcess(argv, code, None, None)


def _failure(argv: list[str], what: str, log: Path) -> str:
    name = Path(argv[0]).name
    return f"{name} {what}; whole output in {log}\n--- last lines of the log ---\n{tail(log)}"
