"""The application slimfreeze freezes, as it declares itself in `[tool.slimfreeze.app]`.

The app owns its entry point, its commands and how to prove each one works; `build/` reads them
here and knows no command by name. Raw TOML never leaves this module: `parse_application()` is a
pure function from the table to frozen dataclasses, and every error names the TOML path.

    [tool.slimfreeze.app]
    program = "slimfreeze"            # the multi-call executable's name; commands are links to it
    entry = "app.cli:main"            # module:function, called with sys.argv; returns the exit status
    paths = ["."]                     # folders (project-relative) the app's modules are found in
    clear_env = ["MQTT_", "DEVICE_ID"]  # caller variables no checked process may inherit (prefixes)
    env = { MQTT_HOST = "{broker_host}" }  # set for every scenario

    [tool.slimfreeze.app.commands.hello]
    summary = "print a greeting and exit"
    modules = ["app.commands.hello"]  # imported by name at run time: the freezer must bundle them

    [[tool.slimfreeze.app.commands.hello.scenarios]]
    name = "greets"
    output = ["(?i)hello"]

Scenarios say what to run (`args`, `env`) and what must then be true: exit status, output
(regular expressions), files created, MQTT messages seen by an independent subscriber,
request -> reply exchanges, and for long-running commands the signal that stops them. Strings may
hold the placeholders in PLACEHOLDERS, filled in per run.
"""

from __future__ import annotations

import difflib
import re
import signal
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from build.errors import ConfigError

TABLE = "tool.slimfreeze.app"
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# What a scenario's strings may name; each is filled in for one run of one scenario.
PLACEHOLDERS: Mapping[str, str] = {
    "broker_host": "the test broker's address (127.0.0.1)",
    "broker_port": "its plain MQTT port",
    "broker_tls_host": "the name its TLS certificate is made for (localhost)",
    "broker_tls_port": "its TLS port",
    "broker_tls12_port": "a TLS port of a broker limited to TLS 1.2 (messages sent there reach no observer)",
    "broker_tls13_port": "a TLS port that accepts TLS 1.3 only",
    "broker_rsa_port": "a TLS port showing an RSA certificate (the others: ECDSA P-256)",
    "broker_mtls_port": "a TLS port that requires a client certificate signed by the test CA",
    "broker_expired_port": "a TLS port showing a certificate that expired yesterday",
    "broker_wrong_host_port": "a TLS port showing a certificate made for another host name",
    "broker_cipher_port": "a TLS port offering only suites a client built for MQTT leaves out (ARIA, CCM_8)",
    "ca_cert": "the test CA that signed the broker's certificate",
    "client_cert": "a client certificate signed by that CA",
    "client_key": "that client certificate's key",
    "device": "an id no other run uses, so topics never mix",
    "tmp": "an empty folder of this run's own",
    "token": "a random token, fresh for each run (match a reply to its request)",
}
# Placeholders that make a scenario depend on the test broker: a `device` check (run on an
# installed device, where there is none) may not use them.
BROKER_PLACEHOLDERS = frozenset({"broker_host", "broker_port", "broker_tls_host", "broker_tls_port", "ca_cert",
                                 "client_cert", "client_key", "broker_tls12_port", "broker_tls13_port",
                                 "broker_rsa_port", "broker_mtls_port", "broker_expired_port",
                                 "broker_wrong_host_port", "broker_cipher_port"})
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True, kw_only=True)
class Messages:
    """`count` messages on `topic` (one topic, no wildcards), each matching what is given."""

    topic: str
    count: int = 1
    payload: str | None = None         # exactly this text
    matches: str | None = None         # a regular expression the text must match
    json_keys: tuple[str, ...] = ()    # a JSON object with at least these keys


@dataclass(frozen=True, kw_only=True)
class Request:
    """Publish `payload` on `topic`, then expect a message on `reply_topic` matching `reply`."""

    topic: str
    payload: str
    reply_topic: str
    reply: str = ""


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One run of a command (or of the multi-call program) and what must then be true."""

    name: str
    path: str                              # its TOML path, for messages
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    exit: int = 0                          # after exiting by itself, or after `stop`
    output: tuple[str, ...] = ()           # regular expressions its output must match
    lists_commands: bool = False           # its output names every command the build bundles
    creates: tuple[str, ...] = ()          # files that exist afterwards
    ready: tuple[Messages, ...] = ()       # long-running: seen before it is exercised
    ready_output: str | None = None        # long-running: ready once its output matches this
    messages: tuple[Messages, ...] = ()
    requests: tuple[Request, ...] = ()
    stop: str | None = None                # a signal name: the command runs until sent it
    after_stop: tuple[Messages, ...] = ()
    needs: tuple[str, ...] = ()            # other commands it runs (a supervisor's workers)
    tls: bool | None = None                # only in builds with (True) or without (False) TLS
    device: bool = False                   # also the check `flash` runs on an installed device
    timeout: float = DEFAULT_TIMEOUT

    @property
    def long_running(self) -> bool:
        return self.stop is not None

    @property
    def mqtt(self) -> bool:
        return bool(self.ready or self.messages or self.requests or self.after_stop)

    def applies(self, commands: tuple[str, ...], tls: bool) -> bool:
        """Whether this scenario can run in a build bundling `commands`, with or without TLS."""
        return set(self.needs) <= set(commands) and (self.tls is None or self.tls == tls)


@dataclass(frozen=True, kw_only=True)
class Command:
    name: str
    summary: str
    modules: tuple[str, ...]
    scenarios: tuple[Scenario, ...]
    supervisor: bool = False  # runs the other commands as its workers: its executable bundles them


@dataclass(frozen=True, kw_only=True)
class Measures:
    """Which scenarios `sweep` times and measures (`command/scenario`; each optional)."""

    startup: str | None = None        # a short run: wall-clock start to exit
    first_message: str | None = None  # start until its first expected message reaches the broker's subscriber
    worker: str | None = None         # long-running: several side by side, memory at rest
    supervisor: str | None = None     # long-running: one process tree, memory at rest


@dataclass(frozen=True, kw_only=True)
class Application:
    program: str
    entry: str
    paths: tuple[str, ...]
    commands: Mapping[str, Command]
    scenarios: tuple[Scenario, ...] = ()        # run through the multi-call program
    each_command: tuple[Scenario, ...] = ()     # run through every bundled command
    env: Mapping[str, str] = field(default_factory=dict)
    clear_env: tuple[str, ...] = ()
    measures: Measures = Measures()

    @property
    def entry_module(self) -> str:
        return self.entry.partition(":")[0]

    @property
    def entry_function(self) -> str:
        return self.entry.partition(":")[2]

    @property
    def command_names(self) -> tuple[str, ...]:
        return tuple(self.commands)

    @property
    def own_packages(self) -> tuple[str, ...]:
        """Top-level packages of the entry and of every command's modules: never "unused"."""
        names = [self.entry_module, *(m for c in self.commands.values() for m in c.modules)]
        return tuple(dict.fromkeys(n.split(".")[0] for n in names))

    def scenario(self, ref: str) -> tuple[Command, Scenario]:
        """The scenario `command/name`."""
        command_name, _, name = ref.partition("/")
        command = self.commands[command_name]
        return command, next(s for s in command.scenarios if s.name == name)

    def bundled_by(self, command: str, commands: tuple[str, ...]) -> tuple[str, ...]:
        """The commands an executable of its own for `command` holds (a supervisor holds them all)."""
        return commands if self.commands[command].supervisor else (command,)

    def summary(self) -> dict[str, Any]:
        """What the manifest records of the application (plain data)."""
        return {"program": self.program, "entry": self.entry, "paths": list(self.paths),
                "commands": {n: {"summary": c.summary, "modules": list(c.modules),
                                 "scenarios": [s.name for s in c.scenarios]} for n, c in self.commands.items()}}


# ---- parsing (pure) ----

def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


class _Table:
    """One TOML table being read: typed getters that fail naming `path.key`, and a check that no
    key was left unread (an unknown key, with the closest known one suggested)."""

    def __init__(self, path: str, raw: Any, known: tuple[str, ...]) -> None:
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} must be a table")
        for key in raw:
            if key not in known:
                raise ConfigError(f"{path}: unknown key '{key}'{_suggest(key, known)}")
        self.path, self.raw = path, raw

    def fail(self, key: str, expected: str) -> ConfigError:
        return ConfigError(f"{self.path}.{key} = {self.raw.get(key)!r}: expected {expected}")

    def text(self, key: str, default: str | None = None, *, pattern: re.Pattern[str] | None = None,
             placeholders: bool = False) -> str:
        value = self.raw.get(key, default)
        if value is None:
            raise ConfigError(f"{self.path}: '{key}' is missing")
        if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
            raise self.fail(key, "a string" if pattern is None else f"a name matching {pattern.pattern}")
        if placeholders:
            _check_placeholders(f"{self.path}.{key}", value)
        return value

    def optional_text(self, key: str, *, placeholders: bool = False) -> str | None:
        return self.text(key, placeholders=placeholders) if key in self.raw else None

    def texts(self, key: str, *, pattern: re.Pattern[str] | None = None, placeholders: bool = False,
              regex: bool = False) -> tuple[str, ...]:
        value = self.raw.get(key, [])
        if isinstance(value, str) and regex:
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "a list of strings")
        for item in value:
            where = f"{self.path}.{key}"
            if pattern is not None and not pattern.fullmatch(item):
                raise ConfigError(f"{where}: {item!r} is not a name matching {pattern.pattern}")
            if placeholders:
                _check_placeholders(where, item)
            if regex:
                _check_regex(where, item)
        return tuple(value)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value

    def whole(self, key: str, default: int, *, low: int) -> int:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(key, f"a whole number of at least {low}")
        return value

    def seconds(self, key: str, default: float) -> float:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.fail(key, "a positive number of seconds")
        return float(value)

    def env(self, key: str) -> dict[str, str]:
        value = self.raw.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.fail(key, "a table of strings")
        for name, text in value.items():
            _check_placeholders(f"{self.path}.{key}.{name}", text)
        return dict(value)

    def tables(self, key: str) -> list[tuple[str, Any]]:
        """An array of tables (or one table), each with its TOML path."""
        value = self.raw.get(key, [])
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise self.fail(key, "an array of tables")
        return [(f"{self.path}.{key}[{i}]", item) for i, item in enumerate(value)]


def _check_placeholders(where: str, text: str) -> None:
    for name in PLACEHOLDER.findall(text):
        if name not in PLACEHOLDERS:
            raise ConfigError(f"{where}: unknown placeholder '{{{name}}}'{_suggest(name, PLACEHOLDERS)} "
                              f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})")


def _check_regex(where: str, text: str) -> None:
    try:
        re.compile(PLACEHOLDER.sub("x", text))
    except re.error as err:
        raise ConfigError(f"{where}: {text!r} is not a regular expression ({err})") from None


def _regex(where: str, text: str | None) -> str | None:
    if text is not None:
        _check_regex(where, text)
    return text


def _check_topic(where: str, topic: str) -> str:
    if not topic or "+" in topic or "#" in topic or "\0" in topic:
        raise ConfigError(f"{where} = {topic!r}: expected one topic, without the wildcards + and #")
    return topic


MESSAGE_KEYS = ("topic", "count", "payload", "matches", "json_keys")


def _messages(path: str, raw: Any) -> Messages:
    table = _Table(path, raw, MESSAGE_KEYS)
    return Messages(topic=_check_topic(f"{path}.topic", table.text("topic", placeholders=True)),
                    count=table.whole("count", 1, low=1),
                    payload=table.optional_text("payload", placeholders=True),
                    matches=_regex(f"{path}.matches", table.optional_text("matches", placeholders=True)),
                    json_keys=table.texts("json_keys"))


def _request(path: str, raw: Any) -> Request:
    table = _Table(path, raw, ("topic", "payload", "reply_topic", "reply"))
    reply = table.text("reply", "", placeholders=True)
    _check_regex(f"{path}.reply", reply)
    return Request(topic=_check_topic(f"{path}.topic", table.text("topic", placeholders=True)),
                   payload=table.text("payload", placeholders=True),
                   reply_topic=_check_topic(f"{path}.reply_topic", table.text("reply_topic", placeholders=True)),
                   reply=reply)


SCENARIO_KEYS = ("name", "args", "env", "exit", "output", "lists_commands", "creates", "ready", "ready_output", "messages",
                 "requests", "stop", "after_stop", "needs", "tls", "device", "timeout")
SIGNALS = tuple(s.name for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2))


def _scenario(path: str, raw: Any) -> Scenario:
    table = _Table(path, raw, SCENARIO_KEYS)
    stop = table.optional_text("stop")
    if stop is not None and stop not in SIGNALS:
        raise ConfigError(f"{path}.stop = {stop!r}: expected one of {', '.join(SIGNALS)}{_suggest(stop, SIGNALS)}")
    tls = raw.get("tls")
    if tls is not None and not isinstance(tls, bool):
        raise table.fail("tls", "true or false")
    scenario = Scenario(
        name=table.text("name", pattern=NAME), path=path, args=table.texts("args", placeholders=True),
        env=table.env("env"), exit=table.whole("exit", 0, low=0),
        output=table.texts("output", placeholders=True, regex=True), lists_commands=table.flag("lists_commands"),
        creates=table.texts("creates", placeholders=True),
        ready=tuple(_messages(p, t) for p, t in table.tables("ready")),
        ready_output=_regex(f"{path}.ready_output", table.optional_text("ready_output", placeholders=True)),
        messages=tuple(_messages(p, t) for p, t in table.tables("messages")),
        requests=tuple(_request(p, t) for p, t in table.tables("requests")),
        stop=stop, after_stop=tuple(_messages(p, t) for p, t in table.tables("after_stop")),
        needs=table.texts("needs", pattern=NAME), tls=tls, device=table.flag("device"),
        timeout=table.seconds("timeout", DEFAULT_TIMEOUT))
    if scenario.exit > 255:
        raise table.fail("exit", "an exit status from 0 to 255")
    if not scenario.long_running and (scenario.ready or scenario.ready_output or scenario.requests
                                      or scenario.after_stop):
        raise ConfigError(f"{path}: 'ready', 'ready_output', 'requests' and 'after_stop' need a long-running command: "
                          f"say which signal stops it (stop = \"SIGTERM\")")
    if scenario.device:
        used = {name for text in (*scenario.args, *scenario.env.values()) for name in PLACEHOLDER.findall(text)}
        if scenario.mqtt or scenario.long_running or scenario.creates or used:
            raise ConfigError(f"{path}.device = true: a check run on an installed device has no broker and no "
                              f"placeholders; it may only give args, exit and output")
    return scenario


def _scenarios(table: _Table, key: str) -> tuple[Scenario, ...]:
    found = tuple(_scenario(p, t) for p, t in table.tables(key))
    seen: set[str] = set()
    for scenario in found:
        if scenario.name in seen:
            raise ConfigError(f"{scenario.path}.name: scenario '{scenario.name}' is declared twice")
        seen.add(scenario.name)
    return found


def _command(path: str, name: str, raw: Any) -> Command:
    table = _Table(path, raw, ("summary", "modules", "scenarios", "supervisor"))
    scenarios = _scenarios(table, "scenarios")
    if not scenarios:
        raise ConfigError(f"{path}: command '{name}' has no scenario; declare how to prove it works "
                          f"([[{path}.scenarios]])")
    return Command(name=name, summary=table.text("summary", ""), modules=table.texts("modules", pattern=MODULE),
                   scenarios=scenarios, supervisor=table.flag("supervisor"))


APP_KEYS = ("program", "entry", "paths", "commands", "scenarios", "each_command", "env", "clear_env", "measure")


def parse_application(raw: Any) -> Application:
    """The application from its `[tool.slimfreeze.app]` table (pure: TOML data in, Application out)."""
    if raw is None:
        raise ConfigError(f"no [{TABLE}] table: declare the application's entry point, commands and scenarios")
    table = _Table(TABLE, raw, APP_KEYS)
    entry = table.text("entry")
    module, _, function = entry.partition(":")
    if not MODULE.fullmatch(module) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", function):
        raise table.fail("entry", "module:function, such as 'app.cli:main'")
    paths = table.texts("paths") or (".",)
    for folder in paths:
        if Path(folder).is_absolute() or ".." in Path(folder).parts:
            raise ConfigError(f"{TABLE}.paths: {folder!r} must be a folder inside the project")
    raw_commands = raw.get("commands")
    if not isinstance(raw_commands, dict) or not raw_commands:
        raise ConfigError(f"{TABLE}.commands: no commands declared ([{TABLE}.commands.<name>])")
    commands: dict[str, Command] = {}
    for name, command_raw in raw_commands.items():
        if not NAME.fullmatch(name):
            raise ConfigError(f"{TABLE}.commands.{name!r}: a command's name becomes a file name: "
                              f"letters, digits, '.', '_' and '-' only")
        commands[name] = _command(f"{TABLE}.commands.{name}", name, command_raw)
    program = table.text("program", pattern=NAME)
    if program in commands:
        raise ConfigError(f"{TABLE}.program = {program!r}: a command has that name too")
    app = Application(program=program, entry=entry, paths=paths, commands=commands,
                      scenarios=_scenarios(table, "scenarios"), each_command=_scenarios(table, "each_command"),
                      env=table.env("env"), clear_env=table.texts("clear_env"),
                      measures=_measures(raw.get("measure", {}), commands))
    for scenario in (*app.scenarios, *app.each_command, *(s for c in commands.values() for s in c.scenarios)):
        for needed in scenario.needs:
            if needed not in commands:
                raise ConfigError(f"{scenario.path}.needs: no command '{needed}'{_suggest(needed, commands)}")
    return app


def _measures(raw: Any, commands: Mapping[str, Command]) -> Measures:
    path = f"{TABLE}.measure"
    table = _Table(path, raw, ("startup", "first_message", "worker", "supervisor"))
    found: dict[str, str] = {}
    for key in ("startup", "first_message", "worker", "supervisor"):
        ref = table.optional_text(key)
        if ref is None:
            continue
        command_name, _, name = ref.partition("/")
        command = commands.get(command_name)
        scenario = next((s for s in command.scenarios if s.name == name), None) if command else None
        if scenario is None:
            refs = [f"{c.name}/{s.name}" for c in commands.values() for s in c.scenarios]
            raise ConfigError(f"{path}.{key} = {ref!r}: no such scenario (command/scenario){_suggest(ref, refs)}")
        if key in ("worker", "supervisor") and not scenario.long_running:
            raise ConfigError(f"{path}.{key} = {ref!r}: memory is measured at rest, so it must be a long-running "
                              f"scenario (one with stop = \"SIGTERM\")")
        if key == "first_message" and not scenario.messages:
            raise ConfigError(f"{path}.{key} = {ref!r}: that scenario expects no message")
        found[key] = ref
    return Measures(**found)


def load_application(pyproject: Path) -> Application:
    """The application declared in a pyproject.toml."""
    return parse_application(read_tool_table(pyproject).get("app"))


def read_tool_table(pyproject: Path) -> dict[str, Any]:
    """The `[tool.slimfreeze]` table of a pyproject.toml, or one clear error."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{pyproject} not found; run from the project folder") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{pyproject}: cannot be read ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{pyproject}: invalid TOML: {err}") from None
    tool = data.get("tool", {}).get("slimfreeze")
    if not isinstance(tool, dict):
        raise ConfigError(f"{pyproject}: no [tool.slimfreeze] table")
    return tool
