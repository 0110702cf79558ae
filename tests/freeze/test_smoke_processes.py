"""The smoke test's runner ends a timed-out program's whole tree: a command that forks (as a
onefile does: its starter forks the real application) leaves nothing running."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

from processes import FORKER, left_running

from build.application import parse_application
from build.freeze.scenarios import Runner

APP = parse_application({"program": "p", "entry": "m:f", "commands": {
    "hangs": {"scenarios": [{"name": "forks-and-hangs", "timeout": 2}]}}})


def test_a_smoke_command_that_forks_and_hangs_times_out_and_leaves_no_process(tmp_path: Path, token: str) -> None:
    log = tmp_path / "smoke.log"
    broker = SimpleNamespace(host="127.0.0.1", port=1, tls_port=None, tls_ports={})  # the scenario needs no broker
    runner = Runner(APP, lambda name, label: [sys.executable, "-c", FORKER, "double", token], broker=broker, certs=None,  # type: ignore[arg-type]
                    seen=None, cwd=tmp_path, log=log, base_env=dict(os.environ))  # type: ignore[arg-type]
    scenario = APP.commands["hangs"].scenarios[0]
    check = runner.check("hangs forks-and-hangs", "hangs", scenario, ["hangs"])
    assert not check.passed and "timed out" in check.detail and "forked" in check.detail
    assert "timed out" in log.read_text()
    assert left_running(token) == []
