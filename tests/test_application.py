"""The application's declarations (`[tool.slimfreeze.app]`): TOML in, Application (or one clear
error naming the TOML path) out; and the shipped app's declarations are what build/ runs."""

from __future__ import annotations

import ast
import copy
import subprocess
import sys
from pathlib import Path

import pytest
from declared_app import MINI_APP, with_app

from build.application import PLACEHOLDERS, load_application, parse_application
from build.config import resolve_profiles
from build.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def app_with(change) -> dict:
    app = copy.deepcopy(MINI_APP)
    change(app)
    return app


def test_declarations_parse_into_commands_scenarios_and_modules():
    app = parse_application(copy.deepcopy(MINI_APP))
    assert app.command_names == ("greet", "serve", "boss")
    assert (app.entry_module, app.entry_function) == ("tool.cli", "main")
    assert app.commands["greet"].modules == ("tool.greet",)
    serve = app.commands["serve"].scenarios[0]
    assert serve.long_running and serve.ready[0].topic == "t/{device}/status"
    assert app.bundled_by("boss", ("greet", "boss")) == ("greet", "boss")
    assert app.bundled_by("greet", ("greet", "boss")) == ("greet",)
    assert app.own_packages == ("tool",)


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: a["commands"]["greet"]["scenarios"][0].update(args=["--to", "{brokr_port}"]),
     r"commands\.greet\.scenarios\[0\]\.args: unknown placeholder '\{brokr_port\}'; did you mean 'broker_port'"),
    (lambda a: a["commands"]["serve"]["scenarios"][0]["ready"][0].update(topic="t/+/status"),
     r"commands\.serve\.scenarios\[0\]\.ready\[0\]\.topic = 't/\+/status': expected one topic, without the wildcards"),
    (lambda a: a["commands"]["serve"]["scenarios"][0]["ready"][0].update(count=-1),
     r"ready\[0\]\.count = -1: expected a whole number of at least 1"),
    (lambda a: a.update(entry="tool.cli"), r"tool\.slimfreeze\.app\.entry = 'tool\.cli': expected module:function"),
    (lambda a: a["commands"]["greet"]["scenarios"].append({"name": "greets"}),
     r"scenarios\[1\]\.name: scenario 'greets' is declared twice"),
    (lambda a: a["commands"]["greet"].update(scenarios=[]), r"commands\.greet: command 'greet' has no scenario"),
    (lambda a: a["commands"]["greet"].update(sumary="x"), r"commands\.greet: unknown key 'sumary'; did you mean 'summary'"),
    (lambda a: a["commands"]["boss"]["scenarios"][0].update(needs=["serv"]),
     r"boss\.scenarios\[0\]\.needs: no command 'serv'; did you mean 'serve'"),
    (lambda a: a["commands"]["greet"]["scenarios"][0].update(stop="SIGTREM"),
     r"greet\.scenarios\[0\]\.stop = 'SIGTREM': expected one of SIGTERM.*did you mean 'SIGTERM'"),
    (lambda a: a["commands"]["greet"]["scenarios"][0].update(requests=[{"topic": "a", "payload": "b", "reply_topic": "c"}]),
     r"greet\.scenarios\[0\]: 'ready', 'ready_output', 'requests' and 'after_stop' need a long-running command"),
    (lambda a: a["commands"]["greet"]["scenarios"][0].update(output=["(unclosed"]),
     r"greet\.scenarios\[0\]\.output: '\(unclosed' is not a regular expression"),
    (lambda a: a["commands"]["greet"]["scenarios"][0].update(device=True, args=["{tmp}"]),
     r"greet\.scenarios\[0\]\.device = true: a check run on an installed device has no broker and no placeholders"),
    (lambda a: a.update(program="greet"), r"app\.program = 'greet': a command has that name too"),
    (lambda a: a["commands"].update({"../x": a["commands"]["greet"]}), r"commands\.'\.\./x': a command's name becomes a file name"),
    (lambda a: a.update(paths=["../elsewhere"]), r"app\.paths: '\.\./elsewhere' must be a folder inside the project"),
    (lambda a: a.update(measure={"worker": "greet/greets"}),
     r"measure\.worker = 'greet/greets': memory is measured at rest, so it must be a long-running scenario"),
    (lambda a: a.update(measure={"startup": "greet/greet"}),
     r"measure\.startup = 'greet/greet': no such scenario \(command/scenario\); did you mean 'greet/greets'"),
])
def test_bad_declarations_are_one_line_naming_the_toml_path(change, message):
    with pytest.raises(ConfigError, match=message) as raised:
        parse_application(app_with(change))
    assert "\n" not in str(raised.value) and str(raised.value).startswith("tool.slimfreeze.app")


def test_a_command_declared_twice_is_refused_by_toml_with_its_line(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.slimfreeze.app]\nprogram = "p"\nentry = "m:f"\n'
        '[tool.slimfreeze.app.commands.a]\nsummary = "x"\n[tool.slimfreeze.app.commands.a]\nsummary = "y"\n')
    with pytest.raises(ConfigError, match=r"invalid TOML: Cannot declare .*'a'.* twice \(at line 6"):
        load_application(tmp_path / "pyproject.toml")


def test_a_profile_whose_command_would_ship_unchecked_is_refused():
    tool = with_app({"profiles": {"p": {"commands": ["greet", "boss"]}}})
    with pytest.raises(ConfigError, match=r"profiles\.p\.commands: 'boss' would ship unchecked: .*need serve"):
        resolve_profiles(tool)
    assert resolve_profiles(with_app({"profiles": {"p": {"commands": ["serve", "boss"]}}}))["p"].commands == ("serve", "boss")


def test_tls_only_scenarios_leave_a_tls_free_build_unchecked():
    app = app_with(lambda a: a["commands"]["greet"]["scenarios"][0].update(tls=True))
    with pytest.raises(ConfigError, match=r"'greet' would ship unchecked: .*none is for tls = false"):
        resolve_profiles(with_app({"profiles": {"p": {"tls": False}}}, app))


def test_every_placeholder_has_a_value_in_a_run():
    from build.freeze.scenarios import placeholder_values

    class FakeBroker:
        host, port, tls_port = "127.0.0.1", 1883, 8883
        tls_ports = {"tls12": 8884}

    values = placeholder_values(broker=FakeBroker(), certs=None, device="d", tmp=Path("/tmp/x"))
    assert set(values) == set(PLACEHOLDERS)


# ---- the shipped application ----

def _command_names() -> set[str]:
    return set(load_application(ROOT / "pyproject.toml").command_names)


def test_no_command_name_of_the_app_is_a_string_in_build():
    """build/ learns the app's commands from its declarations only."""
    names = _command_names() | {"store"}
    found = []
    for path in sorted((ROOT / "build").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not found, found


def test_the_apps_help_lists_exactly_the_declared_commands_with_their_summaries():
    """app/cli.py's own table and the declarations must not drift apart."""
    app = load_application(ROOT / "pyproject.toml")
    done = subprocess.run([sys.executable, "-m", "app", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    listed = {line.split()[0]: line.split(None, 1)[1].strip() for line in
              done.stdout.split("commands:")[1].split("\n\n")[0].strip().splitlines()}
    assert listed == {name: command.summary for name, command in app.commands.items()}
