"""Shared pytest fixtures."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from processes import left_running

from build.testbed.broker import Broker
from build.testbed.certs import CertSet, make_test_certs

ROOT = Path(__file__).resolve().parent.parent

# ======================================================================================
# Broker, TLS and app-process fixtures (owner: app / issue 2). Build fixtures go below.
# ======================================================================================

# Variables the app reads; cleared for app subprocesses so the developer's shell cannot leak in.
APP_ENV_VARS = ("MQTT_HOST", "MQTT_PORT", "MQTT_USERNAME", "MQTT_PASSWORD", "MQTT_TLS", "MQTT_TLS_CA",
                "MQTT_TLS_CERT", "MQTT_TLS_KEY", "MQTT_TLS_INSECURE", "DEVICE_ID", "MQTT_CLIENT_ID",
                "MQTT_KEEPALIVE", "MQTT_QOS", "MQTT_CONNECT_TIMEOUT", "MQTT_ACK_TIMEOUT", "MQTT_RECONNECT_MIN",
                "MQTT_RECONNECT_MAX", "MQTT_MAX_QUEUED", "LOG_LEVEL", "STORE_DB")
DEVICE = "dev"
WAIT = 30.0  # generous bound for things that normally take milliseconds; only reached on failure


def _print_tail(title: str, text: str, lines: int = 60) -> None:
    tail = "\n".join(text.splitlines()[-lines:])
    print(f"----- {title} (last {lines} lines) -----\n{tail}")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh mosquitto on a free loopback port; its log is printed when the test fails."""
    b = Broker(tmp_path / "broker")
    b.start()
    try:
        yield b
    finally:
        b.stop()
        _print_tail(f"mosquitto log {b.log_path}", b.log_text())


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    """A test CA, a server certificate for 127.0.0.1/localhost, a client certificate, an unrelated CA."""
    return make_test_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def tls_broker(tmp_path: Path, tls_certs: CertSet) -> Iterator[Broker]:
    """mosquitto with a plain listener (`port`) and a TLS listener (`tls_port`)."""
    b = Broker(tmp_path / "tls-broker", certs=tls_certs)
    b.start()
    try:
        yield b
    finally:
        b.stop()
        _print_tail(f"mosquitto log {b.log_path}", b.log_text())


class AppProcess:
    """One `python -m app ...` subprocess; stderr goes to a file so it can never block."""

    def __init__(self, args: list[str], *, stderr_path: Path, env: dict[str, str], cwd: Path) -> None:
        self.args = args
        self.stderr_path = stderr_path
        with stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                         env=env, cwd=cwd)

    def wait(self, timeout: float = WAIT) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.args[3:]} still running after {timeout:g} s; stderr:\n"
                                 f"{self.stderr_text()[-3000:]}") from None

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stdout_text(self) -> str:
        assert self.proc.stdout is not None and self.proc.poll() is not None
        return self.proc.stdout.read().decode(errors="replace")

    def wait_for_stderr(self, text: str, timeout: float = WAIT) -> None:
        """Wait until `text` appears in the process's stderr (its log)."""
        deadline = time.monotonic() + timeout
        while text not in self.stderr_text():
            if self.proc.poll() is not None:
                raise AssertionError(f"exited ({self.proc.returncode}) before logging {text!r}:\n{self.stderr_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged within {timeout:g} s:\n{self.stderr_text()[-3000:]}")
            time.sleep(0.01)


class AppRunner:
    """Starts the app as a subprocess the way a user would: `python -m app <command> ...` in the repo."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[AppProcess] = []
        self.env = {k: v for k, v in os.environ.items() if k not in APP_ENV_VARS}
        self.env["PYTHONUNBUFFERED"] = "1"

    def start(self, *args: str, env: dict[str, str] | None = None) -> AppProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        stderr_path = self.folder / f"app-{len(self.started)}-{args[0] if args else 'none'}.stderr"
        p = AppProcess([sys.executable, "-m", "app", *args], stderr_path=stderr_path,
                       env={**self.env, **(env or {})}, cwd=ROOT)
        self.started.append(p)
        return p

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = WAIT) -> tuple[int, str, str]:
        """Run to the end; return (exit status, stdout, stderr)."""
        p = self.start(*args, env=env)
        code = p.wait(timeout)
        return code, p.stdout_text(), p.stderr_text()

    @staticmethod
    def mqtt_args(broker: Broker, *, tls: bool = False, device: str = DEVICE) -> list[str]:
        """Flags that point a command at `broker`, with quick reconnects for tests."""
        port = broker.tls_port if tls else broker.port
        return ["--host", broker.host, "--port", str(port), "--device-id", device,
                "--reconnect-min", "0.05", "--reconnect-max", "0.5", "--connect-timeout", "10"]

    def close(self) -> None:
        for p in self.started:
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGKILL)
                p.proc.wait()
            if p.proc.stdout:
                p.proc.stdout.close()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppRunner]:
    """Runs app commands as subprocesses; leftovers are killed and their stderr printed on failure."""
    runner = AppRunner(tmp_path / "app")
    try:
        yield runner
    finally:
        runner.close()
        for p in runner.started:
            _print_tail(f"stderr of {' '.join(p.args[3:])}", p.stderr_text(), lines=30)

# ======================================================================================
# End of broker / TLS / app fixtures.
# ======================================================================================

# ======================================================================================
# Build fixtures: every shipped profile is built at most once per test session, on demand,
# into a session folder (never into the developer's dist/ or size_reports/).
# ======================================================================================


class Builds:
    """`built(name)` returns the BuildResult of the shipped profile `name`, building it once."""

    def __init__(self, folder: Path) -> None:
        from build.config import load_profiles
        from build.project import Project

        self.project = Project.at(ROOT, dist=folder / "dist", work=folder / "work", reports=folder / "size_reports",
                                  cache=ROOT / "work" / ".cache")
        self.profiles = load_profiles(self.project.pyproject)
        self.results: dict = {}

    def __call__(self, name: str):
        from build.freeze.orchestrate import build_profile

        if name not in self.results:
            self.results[name] = build_profile(self.profiles[name], self.project)
        result = self.results[name]
        if not result.ok:
            pytest.fail(f"building profile {name!r} failed: {result.error}", pytrace=False)
        return result


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return Builds(tmp_path_factory.mktemp("builds"))


@pytest.fixture
def token() -> Iterator[str]:
    """A unique argument that marks every process of one test; any survivor is killed afterwards."""
    value = f"slimfreeze-proc-test-{secrets.token_hex(4)}"
    yield value
    for process in left_running(value):
        process.kill()
