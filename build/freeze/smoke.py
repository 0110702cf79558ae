"""Smoke test: every command of a built artifact, run against a real mosquitto, before it counts.

The same scenarios drive the import trace of the app from source (`build.freeze.trace`), through a
different `Launcher`, so "what the smoke test exercises" and "what the trace saw" are one thing.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from build import proc
from build.config import SUPERVISOR
from build.testbed.broker import Broker, Subscriber
from build.testbed.certs import make_test_certs
from build.toolchain import Toolchain

# command name -> argv that runs it (the artifact's link, or python -m app <command>)
Launcher = Callable[[str], list[str]]
RUN_TIMEOUT = 60.0
OUTPUT_LIMIT = 4000


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str
    passed: bool
    detail: str


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


@dataclass(frozen=True, kw_only=True)
class Ran:
    argv: list[str]
    code: int | None
    output: str

    def describe(self) -> str:
        status = "timed out" if self.code is None else f"exit {self.code}"
        text = self.output if len(self.output) <= OUTPUT_LIMIT else "..." + self.output[-OUTPUT_LIMIT:]
        return f"`{' '.join(self.argv)}`: {status}; output:\n{text.rstrip() or '(none)'}"


# The caller's own app settings must not leak into a checked or measured process.
APP_ENV_PREFIXES = ("MQTT_", "DEVICE_ID", "LOG_LEVEL")


def app_env(base: Mapping[str, str], broker: Broker, device: str, **extra: str) -> dict[str, str]:
    """Environment for one app process under test: `base` without any app setting, pointed at
    `broker` as `device`, with quick reconnects; `extra` overrides."""
    env = {k: v for k, v in base.items() if not k.startswith(APP_ENV_PREFIXES)}
    env.update(MQTT_HOST=broker.host, MQTT_PORT=str(broker.port), DEVICE_ID=device, LOG_LEVEL="info",
               MQTT_CONNECT_TIMEOUT="15", MQTT_RECONNECT_MIN="0.2", MQTT_RECONNECT_MAX="2")
    env.update(extra)
    return env


def _run(argv: list[str], env: Mapping[str, str], cwd: Path, log: Path, timeout: float = RUN_TIMEOUT) -> Ran:
    done = proc.capture(argv, env=env, cwd=cwd, timeout=timeout)  # a timeout ends its whole tree
    ran = Ran(argv=argv, code=done.code, output=done.output)
    _log(log, ran)
    return ran


def _log(log: Path, ran: Ran) -> None:
    with log.open("a", encoding="utf-8") as sink:
        sink.write(f"[smoke] {ran.describe()}\n")


def _names(device: str) -> str:
    return f"smoke-{device}-{secrets.token_hex(3)}"


class Scenario:
    """Runs the checks of each command with one broker and one independent subscriber."""

    def __init__(self, launcher: Launcher, *, broker: Broker, seen: Subscriber, cwd: Path, log: Path,
                 env: Mapping[str, str]) -> None:
        self.launcher, self.broker, self.seen, self.cwd, self.log, self.env = launcher, broker, seen, cwd, log, env

    def version(self, command: str) -> Check:
        ran = _run([*self.launcher(command), "--version"], self.env, self.cwd, self.log)
        ok = ran.code == 0 and "slimfreeze" in ran.output
        return Check(name="version", passed=ok, detail=ran.output.strip() if ok else ran.describe())

    def help(self, commands: Sequence[str], multicall: str | None) -> Check:
        """Every command's `--help`, and the multi-call program's command list (which asks the frozen
        importer what is bundled): the paths a user takes first must survive the trimming too."""
        problems = []
        for command in commands:
            ran = _run([*self.launcher(command), "--help"], self.env, self.cwd, self.log)
            if ran.code != 0 or "usage" not in ran.output.lower():
                problems.append(ran.describe())
        if multicall:
            ran = _run([*self.launcher(multicall), "--help"], self.env, self.cwd, self.log)
            missing = [c for c in commands if c not in ran.output]
            if ran.code != 0 or missing:
                problems.append(f"missing {missing}; {ran.describe()}")
        return Check(name="help", passed=not problems,
                     detail="\n".join(problems) or f"--help of {', '.join(commands)}"
                                                    + (f" and {multicall}" if multicall else ""))

    def hello(self) -> Check:
        ran = _run(self.launcher("hello"), self.env, self.cwd, self.log)
        ok = ran.code == 0 and "hello" in ran.output.lower()
        return Check(name="hello", passed=ok, detail=ran.output.strip() if ok else ran.describe())

    def publisher(self, command: str, count: int = 2) -> Check:
        device = _names(command)
        topic = f"devices/{device}/{command}"
        ran = _run([*self.launcher(command), "--count", str(count), "--interval", "0.2"],
                   app_env(self.env, self.broker, device), self.cwd, self.log)
        try:
            messages = self.seen.wait_count(count, topic, timeout=10)
            readings = [json.loads(m.payload) for m in messages]
        except (TimeoutError, ValueError) as err:
            return Check(name=command, passed=False, detail=f"{err}; {ran.describe()}")
        if ran.code != 0:
            return Check(name=command, passed=False, detail=ran.describe())
        return Check(name=command, passed=True,
                     detail=f"{len(readings)} acknowledged messages on {topic}, e.g. {messages[0].text[:120]}")

    def _ping(self, device: str) -> str:
        """Send `ping` to devices/<device>/cmd once it is online; return the reply's text."""
        self.seen.wait_payload(f"devices/{device}/status", "online", timeout=20)
        request_id = secrets.token_hex(4)
        self.seen.publish(f"devices/{device}/cmd", json.dumps({"id": request_id, "cmd": "ping"}))
        reply = self.seen.wait_for(lambda ms: any(_reply_id(m.payload) == request_id for m in ms),
                                   topic_filter=f"devices/{device}/reply", timeout=10,
                                   what=f"reply to ping {request_id}")
        return reply[-1].text[:120]

    def _long_running(self, name: str, argv: list[str], device: str, exercise: Callable[[], str]) -> Check:
        """Start a program that runs until stopped, `exercise` it, then SIGTERM must end it with 0."""
        output = tempfile.TemporaryFile()
        child = proc.start(argv, env=app_env(self.env, self.broker, device), cwd=self.cwd, stdout=output,
                           stderr=subprocess.STDOUT)
        detail = ""
        try:
            detail = exercise()
            os.kill(child.pid, signal.SIGTERM)  # safe: proc.wait does not reap, so the pid is still ours
            code = proc.wait(child, 30)
            if code is None:
                raise TimeoutError("still running 30 s after SIGTERM")
            self.seen.wait_payload(f"devices/{device}/status", "offline", timeout=10)
            passed = code == 0
            detail += f"; SIGTERM -> exit {code}, status offline"
        except TimeoutError as err:
            passed, detail = False, f"{detail} {err}".strip()
        finally:
            proc.end(child)  # whatever of its tree is still running (a onefile's child, workers)
            output.seek(0)
            ran = Ran(argv=argv, code=child.returncode, output=output.read().decode(errors="replace"))
            output.close()
            _log(self.log, ran)
        return Check(name=name, passed=passed, detail=detail if passed else f"{detail}; {ran.describe()}")

    def control(self) -> Check:
        device = _names("control")
        return self._long_running("control", self.launcher("control"), device,
                                  lambda: f"answered ping: {self._ping(device)}")

    def supervisor(self, workers: Sequence[str]) -> Check:
        """`run` forks the MQTT commands as workers: each does its work, SIGTERM stops them all cleanly."""
        device = _names("run")
        publishers = [w for w in workers if w != "control"]

        def exercise() -> str:
            for worker in publishers:
                self.seen.wait_count(2, f"devices/{device}/{worker}", timeout=20)
            if "control" in workers:
                self._ping(device)
            return f"workers {', '.join(workers)} ran under one supervisor"

        argv = [*self.launcher("run"), *(f"{w}:--interval=0.2" if w in publishers else w for w in workers)]
        return self._long_running("run", argv, device, exercise)

    def tls(self, command: str, *, expect_tls: bool, ca_cert: Path) -> Check:
        """A TLS build connects with verification; a TLS-free build refuses with its clear message."""
        device = _names(f"tls-{command}")
        env = app_env(self.env, self.broker, device, MQTT_PORT=str(self.broker.tls_port), MQTT_TLS_CA=str(ca_cert),
                   MQTT_HOST="localhost")
        ran = _run([*self.launcher(command), "--count", "1", "--interval", "0.2"], env, self.cwd, self.log)
        if expect_tls:
            try:
                self.seen.wait_count(1, f"devices/{device}/{command}", timeout=10)
            except TimeoutError as err:
                return Check(name="tls", passed=False, detail=f"{err}; {ran.describe()}")
            ok = ran.code == 0
            return Check(name="tls", passed=ok, detail="verified TLS connection, message acknowledged" if ok
                         else ran.describe())
        ok = ran.code not in (0, None) and "TLS is not available in this build" in ran.output
        return Check(name="tls refused (tls = false)", passed=ok,
                     detail="TLS request refused with a clear message" if ok else ran.describe())


def _reply_id(payload: bytes) -> object:
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    return data.get("id") if isinstance(data, dict) else None


def run_scenarios(launcher: Launcher, commands: Sequence[str], *, tls: bool, log: Path, cwd: Path,
                  env: Mapping[str, str] | None = None, multicall: str | None = None) -> SmokeResult:
    """Run every command's checks through `launcher` against a fresh broker with a TLS listener."""
    base_env = dict(os.environ if env is None else env)
    log.parent.mkdir(parents=True, exist_ok=True)
    checks: list[Check] = []
    with tempfile.TemporaryDirectory(prefix="slimfreeze-smoke-") as tmp:
        certs = make_test_certs(Path(tmp) / "certs")
        with Broker(Path(tmp) / "broker", certs=certs) as broker, \
                Subscriber(broker.host, broker.port, ["devices/#"]) as seen:
            scenario = Scenario(launcher, broker=broker, seen=seen, cwd=cwd, log=log, env=base_env)
            checks.append(scenario.version(commands[0]))
            checks.append(scenario.help(commands, multicall))
            for command in commands:
                started = time.monotonic()
                if command == "hello":
                    check = scenario.hello()
                elif command == "control":
                    check = scenario.control()
                elif command == SUPERVISOR:
                    workers = [c for c in commands if c not in ("hello", SUPERVISOR)]
                    if not workers:
                        continue  # a supervisor with nothing to supervise: --help covered it
                    check = scenario.supervisor(workers)
                else:
                    check = scenario.publisher(command)
                checks.append(check)
                _log(log, Ran(argv=[f"check {command}"], code=0 if check.passed else 1,
                              output=f"{check.detail} ({time.monotonic() - started:.1f} s)"))
            mqtt_command = next((c for c in commands if c in ("telemetry", "heartbeat")), None)
            if mqtt_command:
                checks.append(scenario.tls(mqtt_command, expect_tls=tls, ca_cert=certs.ca_cert))
    return SmokeResult(checks=tuple(checks))


def run(folder: Path, commands: Mapping[str, str], *, tls: bool, log: Path,
        multicall: str | None = None, toolchain: Toolchain | None = None) -> SmokeResult:
    """Smoke-test the artifact in `folder`: each command through its link or executable, and the
    multi-call program itself when there is one; under emulation when the toolchain says so."""
    def launcher(name: str) -> list[str]:
        argv = [str(folder / commands.get(name, name))]
        return toolchain.program_argv(argv) if toolchain else argv

    return run_scenarios(launcher, list(commands), tls=tls, log=log, cwd=folder, multicall=multicall)
