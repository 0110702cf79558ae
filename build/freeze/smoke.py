"""Smoke test: every declared scenario of every bundled command, run against a real mosquitto,
before an artifact counts.

What runs comes from the application's declarations (`[tool.slimfreeze.app]`, read by
build.application): the multi-call program's own scenarios (multi-call builds), the scenarios run
through every command, and each command's own, those that apply to this build (its commands, TLS
or not). The same scenarios drive the import trace of the app from source (`build.freeze.trace`),
through a different `Launcher`, so "what the smoke test exercises" and "what the trace saw" are one
thing.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from build.application import Application
from build.freeze.scenarios import Check as Check
from build.freeze.scenarios import Launcher, Runner
from build.freeze.scenarios import Ran as Ran
from build.testbed.broker import Broker, Subscriber
from build.testbed.certs import make_test_certs
from build.toolchain import Toolchain

@dataclass(frozen=True, kw_only=True)
class SmokeResult:
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def failure_text(self) -> str:
        return "\n".join(f"- {c.name}: {c.detail}" for c in self.checks if not c.passed)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}


def plan(app: Application, commands: Sequence[str], *, tls: bool, multicall: bool) -> list[tuple[str, str, Any]]:
    """What a build runs, in order (pure): (check label, program or command to run, scenario)."""
    bundled = tuple(commands)
    steps: list[tuple[str, str, Any]] = []
    if multicall:
        steps += [(f"{app.program} {s.name}", app.program, s) for s in app.scenarios if s.applies(bundled, tls)]
    for command in bundled:
        steps += [(f"{command} {s.name}", command, s) for s in app.each_command if s.applies(bundled, tls)]
        steps += [(f"{command} {s.name}", command, s) for s in app.commands[command].scenarios
                  if s.applies(bundled, tls)]
    return steps


def run_scenarios(app: Application, launcher: Launcher, commands: Sequence[str], *, tls: bool, log: Path, cwd: Path,
                  env: Mapping[str, str] | None = None, multicall: bool = False) -> SmokeResult:
    """Run every applicable scenario through `launcher` against a fresh broker with a TLS listener."""
    base_env = dict(os.environ if env is None else env)
    log.parent.mkdir(parents=True, exist_ok=True)
    checks: list[Check] = []
    with tempfile.TemporaryDirectory(prefix="slimfreeze-smoke-") as tmp:
        certs = make_test_certs(Path(tmp) / "certs")
        with Broker(Path(tmp) / "broker", certs=certs) as broker, \
                Subscriber(broker.host, broker.port, ["#"]) as seen:
            runner = Runner(app, launcher, broker=broker, certs=certs, seen=seen, cwd=cwd, log=log, base_env=base_env)
            for label, name, scenario in plan(app, commands, tls=tls, multicall=multicall):
                started = time.monotonic()
                check = runner.check(label, name, scenario, commands)
                checks.append(check)
                with log.open("a", encoding="utf-8") as sink:
                    sink.write(f"[smoke] {'passed' if check.passed else 'FAILED'} {label}: {check.detail} "
                               f"({time.monotonic() - started:.1f} s)\n")
    return SmokeResult(checks=tuple(checks))


def run(app: Application, folder: Path, commands: Mapping[str, str], *, tls: bool, log: Path,
        multicall: bool = False, toolchain: Toolchain | None = None) -> SmokeResult:
    """Smoke-test the artifact in `folder`: each command through its link or executable, and the
    multi-call program itself when there is one; under emulation when the toolchain says so."""
    def launcher(name: str, label: str) -> list[str]:
        argv = [str(folder / commands.get(name, name))]
        return toolchain.program_argv(argv) if toolchain else argv

    return run_scenarios(app, launcher, list(commands), tls=tls, log=log, cwd=folder, multicall=multicall)
