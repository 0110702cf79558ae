"""Helpers for tests of process handling: a program that forks and hides its children, finding
what is left running, and file permissions that apply to root."""

from __future__ import annotations

import os
import shutil

import psutil
import pytest

# A parent that forks children which sleep; how each child hides varies (see the cases below).
FORKER = """
import os, sys, time
how = sys.argv[1]
for _ in range(2):
    if os.fork() == 0:
        if how == "setsid":
            os.setsid()            # leaves the session and the process group
        elif how == "setpgid":
            os.setpgid(0, 0)       # leaves the process group, stays in the session
        elif how == "double":
            if os.fork():          # a daemon: the middle process exits, init adopts the sleeper
                os._exit(0)
        time.sleep(300)
        os._exit(0)
print("forked", flush=True)
if how == "exit":
    os._exit(0)                    # leaves its children running
time.sleep(300)
"""


def without_dac_override() -> list[str]:
    """A command prefix under which file permissions apply even to root (as they do to a user)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root without setpriv (util-linux): file permissions cannot be made to apply")
    return [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]


def left_running(token: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if token in (process.info["cmdline"] or []) and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found
