"""build.proc: a program's whole tree ends with it (on a timeout, Ctrl-C, or after it exits), and
nothing it started is left running. Real processes, found afterwards with psutil."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from build import proc
from build.errors import CommandFailed

from processes import FORKER, left_running, without_dac_override  # noqa: F401


def wait_until_forked(token: str, count: int) -> None:
    deadline = time.monotonic() + 20
    while len(left_running(token)) < count:
        assert time.monotonic() < deadline, f"the forker did not start {count} processes"
        time.sleep(0.02)


@pytest.mark.parametrize("how", ["plain", "setpgid", "setsid", "double"])
def test_a_timed_out_program_that_forks_leaves_no_process(how: str, token: str) -> None:
    ran = proc.capture([sys.executable, "-c", FORKER, how, token], timeout=2)
    assert ran.code is None
    assert left_running(token) == []


def test_a_timed_out_run_is_a_command_failure_and_leaves_no_process(tmp_path: Path, token: str) -> None:
    log = tmp_path / "run.log"
    with pytest.raises(CommandFailed, match="timed out after 2 s"):
        proc.run([sys.executable, "-c", FORKER, "plain", token], log=log, timeout=2)
    assert "forked" in log.read_text()
    assert left_running(token) == []


def test_children_left_behind_by_a_program_that_exited_are_ended(tmp_path: Path, token: str) -> None:
    proc.run([sys.executable, "-c", FORKER, "exit", token], log=tmp_path / "run.log", timeout=60)
    assert left_running(token) == []


def test_ctrl_c_while_waiting_ends_the_whole_tree(token: str) -> None:
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        # Children in their own session do not get the terminal's SIGINT: proc must end them.
        signal.setitimer(signal.ITIMER_REAL, 1.5)
        with pytest.raises(KeyboardInterrupt):
            proc.capture([sys.executable, "-c", FORKER, "plain", token], timeout=120)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert left_running(token) == []


def test_end_stops_a_started_program_and_what_it_forked(token: str) -> None:
    child = proc.start([sys.executable, "-c", FORKER, "setsid", token])
    wait_until_forked(token, 3)
    proc.end(child, grace=1)
    assert child.returncode is not None
    assert left_running(token) == []


def test_capture_keeps_stdout_and_stderr_apart_when_asked() -> None:
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    ran = proc.capture([sys.executable, "-c", script], timeout=30, separate_stderr=True)
    assert (ran.code, ran.output, ran.errors) == (3, "out\n", "err\n")
    merged = proc.capture([sys.executable, "-c", script], timeout=30)
    assert sorted(merged.output.split()) == ["err", "out"]


def test_wait_gives_the_status_without_reaping_so_the_group_is_still_ours(token: str) -> None:
    # The parent exits at once, its forked children sleep on in its process group.
    child = proc.start([sys.executable, "-c", FORKER, "exit", token])
    assert proc.wait(child, 20) == 0
    os.kill(child.pid, 0)  # not reaped: the pid (and so its process group) cannot have been reused
    wait_until_forked(token, 2)
    proc.end(child, grace=1)
    assert child.returncode == 0 and left_running(token) == []
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)  # reaped by end


def test_wait_reports_a_signal_as_a_negative_status() -> None:
    child = proc.start([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"])
    assert proc.wait(child, 20) == -signal.SIGTERM
    proc.end(child)
    assert child.returncode == -signal.SIGTERM
