"""The multi-call entry point: help, version, dispatch by argument and by program name, lazy imports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import __version__
from app.cli import COMMANDS
from build.testbed.broker import Broker, Subscriber

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def python_app(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "app", *args], cwd=cwd)


@pytest.fixture
def links(tmp_path: Path) -> Path:
    """A folder with a launcher script `slimfreeze` (what a frozen build's entry does) and links to it
    named after each command, plus one with an unrelated name."""
    folder = tmp_path / "bin"
    folder.mkdir()
    launcher = folder / "slimfreeze"
    launcher.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                        "from app.cli import main\nsys.exit(main())\n")
    launcher.chmod(0o755)
    for name in [*COMMANDS, "some-other-name"]:
        (folder / name).symlink_to("slimfreeze")
    return folder


def test_help_lists_every_command() -> None:
    result = python_app("--help")
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.split("commands:\n")[1].split("\n\n")[0].splitlines()]
    assert listed == sorted(COMMANDS) == ["control", "heartbeat", "hello", "run", "store", "telemetry"]


def test_version() -> None:
    result = python_app("--version")
    assert (result.returncode, result.stdout) == (0, f"slimfreeze {__version__}\n")


def test_hello_greets() -> None:
    result = python_app("hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Hello from slimfreeze")
    assert result.stderr == ""


@pytest.mark.parametrize("args, fragment", [
    ([], "no command given"),
    (["reboot"], "unknown command 'reboot'"),
    (["--frobnicate"], "unknown option '--frobnicate'"),
    (["hello", "extra"], "unexpected argument 'extra'"),
])
def test_usage_errors_are_one_line_and_exit_2(args: list[str], fragment: str) -> None:
    result = python_app(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert fragment in result.stderr and "error:" in result.stderr


HEAVY = ("paho", "argparse", "logging", "ssl", "socket", "threading", "json", "typing", "signal",
         "app.mqtt", "app.settings")


@pytest.mark.parametrize("argv", [["slimfreeze", "hello"], ["slimfreeze", "--help"], ["slimfreeze", "--version"]])
def test_hello_help_and_version_do_not_load_mqtt_or_argparse(argv: list[str]) -> None:
    """The size control stays small: none of the heavy modules are imported."""
    probe = (f"import sys\nsys.argv = {argv!r}\nfrom app.cli import main\ncode = main()\n"
             "print('@@', code, *sorted(sys.modules))\n")
    result = run([sys.executable, "-c", probe])
    assert result.returncode == 0, result.stderr
    marker, code, *loaded = result.stdout.splitlines()[-1].split()
    assert (marker, code) == ("@@", "0")
    assert "app.cli" in loaded
    assert [m for m in loaded if m in HEAVY or m.split(".")[0] in HEAVY] == []


def test_command_runs_by_link_name(links: Path) -> None:
    hello = run([str(links / "hello")])
    assert (hello.returncode, hello.stderr) == (0, "")
    assert hello.stdout.startswith("Hello from slimfreeze")

    for name in COMMANDS:
        version = run([str(links / name), "--version"])
        assert (version.returncode, version.stdout) == (0, f"slimfreeze {__version__}\n"), name

    telemetry_help = run([str(links / "telemetry"), "--help"])
    assert telemetry_help.returncode == 0
    assert telemetry_help.stdout.startswith("usage: telemetry ")


@pytest.mark.parametrize("name", ["slimfreeze", "some-other-name"])
def test_multicall_name_or_unknown_name_takes_the_command_from_the_first_argument(links: Path, name: str) -> None:
    result = run([str(links / name), "hello"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Hello from slimfreeze")
    listed = run([str(links / name), "--help"])
    assert listed.stdout.startswith(f"usage: {name} <command>")


@pytest.mark.integration
def test_telemetry_link_publishes_against_the_broker(links: Path, broker: Broker) -> None:
    topic = "devices/linked/telemetry"
    with Subscriber(broker.host, broker.port, [topic]) as seen:
        result = run([str(links / "telemetry"), "--count", "2", "--interval", "0.01", "--host", broker.host,
                      "--port", str(broker.port), "--device-id", "linked"])
        assert result.returncode == 0, result.stderr
        assert [json.loads(m.payload)["seq"] for m in seen.wait_count(2, topic)] == [1, 2]


def test_a_build_with_some_commands_offers_only_those(tmp_path: Path) -> None:
    """Commands are found by module name, so leaving modules out of a build removes the commands."""
    shutil.copytree(ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    for left_out in ("control", "heartbeat"):
        os.remove(tmp_path / "app" / "commands" / f"{left_out}.py")

    listed = python_app("--help", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "  hello " in listed.stdout and "  telemetry " in listed.stdout
    assert "control" not in listed.stdout and "heartbeat" not in listed.stdout

    missing = python_app("control", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "python -m app control: error: command 'control' is not included in this build"

    assert python_app("hello", cwd=tmp_path).returncode == 0
