"""The scenario runner against a real mosquitto: each expectation a scenario can declare holds
when the program does it, and fails, saying what it saw, when it does not."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from build.application import parse_application
from build.freeze.scenarios import Runner
from build.freeze.trace import hook_needs
from build.testbed.broker import Subscriber

PROGRAM = Path(__file__).with_name("scenario_program.py")
ENV = {"BROKER_HOST": "{broker_host}", "BROKER_PORT": "{broker_port}"}


def runner_for(scenarios: list[dict], broker, seen, tmp_path: Path):
    app = parse_application({"program": "p", "entry": "m:f", "env": ENV,
                             "commands": {"c": {"scenarios": scenarios}}})
    runner = Runner(app, lambda name, label: [sys.executable, str(PROGRAM)], broker=broker, certs=None, seen=seen,
                    cwd=tmp_path, log=tmp_path / "log", base_env=dict(os.environ))
    return app, runner


def check(scenario: dict, broker, tmp_path: Path):
    with Subscriber(broker.host, broker.port, ["#"]) as seen:
        app, runner = runner_for([scenario], broker, seen, tmp_path)
        return runner.check("c x", "c", app.commands["c"].scenarios[0], ["c"])


@pytest.mark.parametrize(("scenario", "problem"), [
    ({"args": ["publish", "t/{device}/a", "2", '{"seq": 1, "ts": 2}'],
      "messages": [{"topic": "t/{device}/a", "count": 2, "json_keys": ["seq", "ts"]}]}, None),
    ({"args": ["publish", "t/{device}/a", "2", '{"seq": 1}'],
      "messages": [{"topic": "t/{device}/a", "count": 2, "json_keys": ["seq", "ts"]}], "timeout": 3},
     "lacks the key(s) ts"),
    ({"args": ["publish", "t/{device}/a", "1", "x"], "messages": [{"topic": "t/{device}/a", "count": 2}],
      "timeout": 3}, "no 2 expected message(s)"),
    ({"args": ["publish", "t/{device}/a", "1", "hello"], "messages": [{"topic": "t/{device}/a", "payload": "bye"}],
      "timeout": 3}, "payload 'hello', expected 'bye'"),
    ({"args": ["exit", "3", "done"], "exit": 3, "output": ["^done$"]}, None),
    ({"args": ["exit", "0", "done"], "exit": 3}, "expected exit 3"),
    ({"args": ["exit", "0", "done"], "output": ["^finished"]}, "output does not match '^finished'"),
    ({"args": ["exit", "0", "done"], "creates": ["{tmp}/state.db"]}, "state.db was not created"),
    ({"name": "s", "args": ["serve", "t/{device}/cmd", "t/{device}/reply"], "stop": "SIGTERM",
      "ready_output": "serving", "output": ["stopped"],
      "requests": [{"topic": "t/{device}/cmd", "payload": "ping {token}", "reply_topic": "t/{device}/reply",
                    "reply": "^re:ping {token}$"}]}, None),
    ({"name": "s", "args": ["serve", "t/{device}/cmd", "t/{device}/reply"], "stop": "SIGTERM", "ready_output": "serving",
      "requests": [{"topic": "t/{device}/cmd", "payload": "ping", "reply_topic": "t/{device}/reply",
                    "reply": "^pong"}], "timeout": 3}, "no reply"),
    ({"name": "s", "args": ["stubborn"], "stop": "SIGTERM", "ready_output": "^up", "timeout": 5},
     "still running 5 s after SIGTERM"),
])
def test_each_expectation_holds_or_fails_naming_what_it_saw(broker, tmp_path, scenario, problem):
    result = check({"name": "x", **scenario}, broker, tmp_path)
    if problem is None:
        assert result.passed, result.detail
    else:
        assert not result.passed and problem in result.detail, result.detail


def test_runtime_hooks_keep_what_they_import_for_modules_that_stay():
    graph = {"edges": [["zipfile", "shutil"], ["shutil", "bz2"], ["zipfile", "binascii"], ["inspect", "dis"]],
             "runtime_hooks": {"inspect": ["inspect", "zipfile", "os"], "multiprocessing": ["multiprocessing", "x"]}}
    # inspect is loaded, so its hook runs at start: zipfile and what it imports stay; what the
    # trace loaded itself (shutil, os) needs no keeping, nor below it (bz2 comes from shutil)
    assert hook_needs(graph, frozenset({"inspect", "shutil", "os"})) == {"zipfile", "binascii"}
    # no hook for a module that is left out
    assert hook_needs(graph, frozenset({"os"})) == set()
