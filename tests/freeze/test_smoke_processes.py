"""The smoke test's runner ends a timed-out program's whole tree: a command that forks (as a
onefile does: its starter forks the real application) leaves nothing running."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from build.freeze import smoke
from processes import FORKER, left_running


def test_a_smoke_command_that_forks_and_hangs_times_out_and_leaves_no_process(tmp_path: Path, token: str) -> None:
    log = tmp_path / "smoke.log"
    ran = smoke._run([sys.executable, "-c", FORKER, "double", token], dict(os.environ), tmp_path, log, timeout=2)
    assert ran.code is None and "forked" in ran.output
    assert "timed out" in log.read_text()
    assert left_running(token) == []
