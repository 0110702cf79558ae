"""Run one declared scenario (build.application.Scenario) and say whether it held.

The smoke test, the import trace and `sweep`'s measurements all run the app through here, each
with its own `Launcher` (an artifact's link, or the entry script from source under the probe),
so what is proved, what is traced and what is measured are the same runs.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from build import proc
from build.paths import remove_tree
from build.application import PLACEHOLDER, Application, Messages, Scenario
from build.testbed.broker import Broker, Received, Subscriber
from build.testbed.certs import CertSet

# (a command or the multi-call program, the check's label) -> argv that runs it
Launcher = Callable[[str, str], list[str]]
OUTPUT_LIMIT = 4000
DELIVERY_TIMEOUT = 10.0   # for a message the program says it published to reach the subscriber
READY_TIMEOUT = 30.0      # for a long-running program to be ready (connect, subscribe, "online")
STOP_TIMEOUT = 30.0       # for it to exit once signalled


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class Ran:
    argv: list[str]
    code: int | None
    output: str

    def describe(self) -> str:
        status = "timed out" if self.code is None else f"exit {self.code}"
        text = self.output if len(self.output) <= OUTPUT_LIMIT else "..." + self.output[-OUTPUT_LIMIT:]
        return f"`{' '.join(self.argv)}`: {status}; output:\n{text.rstrip() or '(none)'}"


class ScenarioFailed(Exception):
    """What did not hold, in one line or a few."""


def fill(text: str, values: Mapping[str, str]) -> str:
    """`text` with each {placeholder} replaced (pure; names were checked when declared)."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def placeholder_values(*, broker: Broker, certs: CertSet | None, device: str, tmp: Path) -> dict[str, str]:
    """The values of every placeholder for one run."""
    values = {"broker_host": broker.host, "broker_port": str(broker.port), "broker_tls_host": "localhost",
              "broker_tls_port": str(broker.tls_port or ""), "device": device, "tmp": str(tmp),
              "token": secrets.token_hex(4), "ca_cert": "", "client_cert": "", "client_key": ""}
    for name in ("tls12", "tls13", "rsa", "mtls", "expired", "wrong_host", "cipher"):
        port = broker.tls_ports.get(name)
        values[f"broker_{name}_port"] = str(port) if port else ""
    if certs is not None:
        values.update(ca_cert=str(certs.ca_cert), client_cert=str(certs.client_cert), client_key=str(certs.client_key))
    return values


def scenario_env(app: Application, scenario: Scenario, base: Mapping[str, str], values: Mapping[str, str],
                 **extra: str) -> dict[str, str]:
    """The environment of one run (pure): `base` without the variables the app clears, then the
    app's declared variables, then the scenario's own, then `extra`."""
    env = {k: v for k, v in base.items() if not (app.clear_env and k.startswith(tuple(app.clear_env)))}
    env.update({k: fill(v, values) for k, v in app.env.items()})
    env.update({k: fill(v, values) for k, v in scenario.env.items()})
    env.update(extra)
    return env


def new_device(label: str) -> str:
    """A device id no other run uses, so that topics never mix."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "-", label)
    return f"smoke-{clean}-{secrets.token_hex(3)}"[:64]


def message_problem(expected: Messages, received: Received) -> str | None:
    """Why `received` is not what `expected` asks for, or None (pure; `expected` already filled in)."""
    text = received.text
    if expected.payload is not None and text != expected.payload:
        return f"payload {text[:120]!r}, expected {expected.payload!r}"
    if expected.matches is not None and not re.search(expected.matches, text):
        return f"payload {text[:120]!r} does not match {expected.matches!r}"
    if expected.json_keys:
        try:
            data = json.loads(received.payload)
        except ValueError:
            return f"payload {text[:120]!r} is not JSON"
        if not isinstance(data, dict):
            return f"payload {text[:120]!r} is not a JSON object"
        missing = [k for k in expected.json_keys if k not in data]
        if missing:
            return f"payload {text[:120]!r} lacks the key(s) {', '.join(missing)}"
    return None


def filled_messages(expected: Messages, values: Mapping[str, str]) -> Messages:
    return Messages(topic=fill(expected.topic, values), count=expected.count,
                    payload=None if expected.payload is None else fill(expected.payload, values),
                    matches=None if expected.matches is None else fill(expected.matches, values),
                    json_keys=expected.json_keys)


def await_output(read: Callable[[], str], pattern: str, *, timeout: float, alive: Callable[[], bool]) -> None:
    """Wait until what `read()` returns matches `pattern` (a long-running program says it is ready)."""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, read(), re.MULTILINE):
        if not alive():
            raise ScenarioFailed(f"it ended before its output matched {pattern!r}")
        if time.monotonic() > deadline:
            raise ScenarioFailed(f"its output did not match {pattern!r} within {timeout:g} s")
        time.sleep(0.02)


def await_messages(seen: Subscriber, expected: Messages, *, timeout: float,
                   alive: Callable[[], bool] = lambda: True) -> list[Received]:
    """Wait until `expected.count` messages on its topic are as expected; the matching ones.
    Gives up early once `alive()` says the program that should send them is gone."""
    def enough(messages: list[Received]) -> bool:
        good = [m for m in messages if message_problem(expected, m) is None]
        return len(good) >= expected.count or not alive()

    try:
        messages = seen.wait_for(enough, topic_filter=expected.topic, timeout=timeout,
                                 what=f"{expected.count} expected message(s)")
    except TimeoutError as err:
        problems = [p for m in seen.messages(expected.topic) if (p := message_problem(expected, m))]
        raise ScenarioFailed(f"{err}" + (f"; {problems[-1]}" if problems else "")) from None
    good = [m for m in messages if message_problem(expected, m) is None]
    if len(good) < expected.count:
        problems = [p for m in messages if (p := message_problem(expected, m))]
        raise ScenarioFailed(f"{len(good)} of {expected.count} expected message(s) on {expected.topic!r} before "
                             f"the program ended" + (f"; {problems[-1]}" if problems else ""))
    return good[:expected.count]


class Runner:
    """Runs scenarios through one launcher against one broker, watched by one subscriber."""

    def __init__(self, app: Application, launcher: Launcher, *, broker: Broker, certs: CertSet | None,
                 seen: Subscriber, cwd: Path, log: Path, base_env: Mapping[str, str]) -> None:
        self.app, self.launcher, self.broker, self.certs = app, launcher, broker, certs
        self.seen, self.cwd, self.log, self.base_env = seen, cwd, log, base_env

    def check(self, label: str, name: str, scenario: Scenario, bundled: Sequence[str]) -> Check:
        """Run `scenario` through `name` (a command or the program); `label` names the check."""
        tmp = Path(tempfile.mkdtemp(prefix="slimfreeze-scenario-"))
        try:
            values = placeholder_values(broker=self.broker, certs=self.certs, device=new_device(label), tmp=tmp)
            argv = [*self.launcher(name, label), *(fill(a, values) for a in scenario.args)]
            env = scenario_env(self.app, scenario, self.base_env, values)
            run = self._long_running if scenario.long_running else self._to_exit
            try:
                detail, ran = run(scenario, argv, env, values)
                self._expect_output(scenario, ran, bundled)
                self._expect_files(scenario, values)
            except ScenarioFailed as failed:
                return Check(name=label, passed=False, detail=str(failed))
            return Check(name=label, passed=True, detail=detail)
        finally:
            remove_tree(tmp, (Path(tempfile.gettempdir()),))  # made by mkdtemp above

    # ---- the two kinds of run ----

    def _to_exit(self, scenario: Scenario, argv: list[str], env: dict[str, str],
                 values: Mapping[str, str]) -> tuple[str, Ran]:
        done = proc.capture(argv, env=env, cwd=self.cwd, timeout=scenario.timeout)  # a timeout ends its tree
        ran = Ran(argv=argv, code=done.code, output=done.output)
        self._log(ran)
        if ran.code != scenario.exit:
            raise ScenarioFailed(f"expected exit {scenario.exit}; {ran.describe()}")
        seen = []
        for expected in scenario.messages:
            filled = filled_messages(expected, values)
            try:
                got = await_messages(self.seen, filled, timeout=min(DELIVERY_TIMEOUT, scenario.timeout))
            except ScenarioFailed as failed:
                raise ScenarioFailed(f"{failed}; {ran.describe()}") from None
            seen.append(f"{len(got)} on {filled.topic}, e.g. {got[0].text[:100]}")
        return ("; ".join(seen) or f"exit {ran.code}: {ran.output.strip()[:120]}"), ran

    def _long_running(self, scenario: Scenario, argv: list[str], env: dict[str, str],
                      values: Mapping[str, str]) -> tuple[str, Ran]:
        """Start it, wait until ready, check its messages and requests, stop it with its signal."""
        output = tempfile.TemporaryFile()
        child = proc.start(argv, env=env, cwd=self.cwd, stdout=output, stderr=subprocess.STDOUT)
        done: list[str] = []
        code: int | None = None

        def alive() -> bool:
            return proc.wait(child, 0) is None

        def ran() -> Ran:
            return Ran(argv=argv, code=code, output=output_text())

        def output_text() -> str:
            output.seek(0)
            return output.read().decode(errors="replace")

        try:
            try:
                if scenario.ready_output is not None:
                    await_output(output_text, fill(scenario.ready_output, values), timeout=READY_TIMEOUT, alive=alive)
                    done.append("ready (output)")
                for expected in scenario.ready:
                    filled = filled_messages(expected, values)
                    await_messages(self.seen, filled, timeout=READY_TIMEOUT, alive=alive)
                    done.append(f"ready ({filled.topic})")
                for expected in scenario.messages:
                    filled = filled_messages(expected, values)
                    got = await_messages(self.seen, filled, timeout=READY_TIMEOUT, alive=alive)
                    done.append(f"{len(got)} on {filled.topic}")
                for request in scenario.requests:
                    reply_topic, pattern = fill(request.reply_topic, values), fill(request.reply, values)
                    before = len(self.seen.messages(reply_topic))
                    self.seen.publish(fill(request.topic, values), fill(request.payload, values))
                    try:
                        reply = self.seen.wait_for(
                            lambda ms: any(re.search(pattern, m.text) for m in ms[before:]) or not alive(),
                            topic_filter=reply_topic, timeout=min(DELIVERY_TIMEOUT, scenario.timeout), what="reply")
                    except TimeoutError as err:
                        raise ScenarioFailed(str(err)) from None
                    answer = next((m for m in reply[before:] if re.search(pattern, m.text)), None)
                    if answer is None:
                        raise ScenarioFailed(f"no reply on {reply_topic!r} matching {pattern!r} before the program ended")
                    done.append(f"answered on {reply_topic}: {answer.text[:100]}")
                if not alive():
                    raise ScenarioFailed("it ended before it was stopped")
                assert scenario.stop is not None
                os.kill(child.pid, signal.Signals[scenario.stop])  # safe: proc.wait does not reap, the pid is ours
                stop_timeout = min(STOP_TIMEOUT, scenario.timeout)
                code = proc.wait(child, stop_timeout)
                if code is None:
                    raise ScenarioFailed(f"still running {stop_timeout:g} s after {scenario.stop}")
                if code != scenario.exit:
                    raise ScenarioFailed(f"{scenario.stop} -> exit {code}, expected {scenario.exit}")
                done.append(f"{scenario.stop} -> exit {code}")
                for expected in scenario.after_stop:
                    filled = filled_messages(expected, values)
                    await_messages(self.seen, filled, timeout=DELIVERY_TIMEOUT)
                    done.append(f"then {filled.payload or filled.topic}")
            except ScenarioFailed as failed:
                code = child.poll() if code is None else code
                raise ScenarioFailed(f"{'; '.join([*done, str(failed)])}; {ran().describe()}") from None
        finally:
            proc.end(child)  # whatever of its tree still runs (a onefile's child, workers)
            result = ran()
            output.close()
            self._log(result)
        return "; ".join(done), result

    # ---- what must hold afterwards ----

    def _expect_output(self, scenario: Scenario, ran: Ran, bundled: Sequence[str]) -> None:
        for pattern in scenario.output:
            if not re.search(pattern, ran.output, re.MULTILINE):
                raise ScenarioFailed(f"output does not match {pattern!r}; {ran.describe()}")
        if scenario.lists_commands:
            missing = [c for c in bundled if not re.search(rf"(?m)^\s*{re.escape(c)}\b", ran.output)]
            if missing:
                raise ScenarioFailed(f"output does not list the bundled command(s) {', '.join(missing)}; "
                                     f"{ran.describe()}")

    def _expect_files(self, scenario: Scenario, values: Mapping[str, str]) -> None:
        for pattern in scenario.creates:
            path = Path(fill(pattern, values))
            if not path.exists():
                raise ScenarioFailed(f"{path} was not created")

    def _log(self, ran: Ran) -> None:
        with self.log.open("a", encoding="utf-8") as sink:
            sink.write(f"[scenario] {ran.describe()}\n")
