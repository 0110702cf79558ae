"""Flashing a device over SSH (issue 19): a real sshd on loopback with generated host and client
keys; the device root is a folder on this machine, so every result is also checked directly.

The connection is cut at every step (the flash SIGKILLs itself before step n, its ssh commands
being the steps): the device then runs the previous version, or the new one once it was switched
to (after its files were checked there with sha256sum), never anything else, and the next flash succeeds.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from build.flash.device import KILL_AT_ENV
from build.flash.install import verify
from build.flash.remote import parse_target
from build.update.delta import make_patch
from build.update.signing import load_private_key, sign_build, sign_file
from test_flash import (  # noqa: F401 (dist, device: fixtures)
    assert_one_line_error,
    cli,
    damage,
    make_dist,
    device,
    dist,
    profile_of,
    quiet,
    running_version,
    snapshot,
    tmpfs,
)
from test_flash_updates import keys, releases  # noqa: F401 (fixtures)

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class Sshd:
    port: int
    config: Path  # the client's ssh_config: identity and known_hosts
    folder: Path

    def target(self, path: Path, *, port: int | None = None) -> str:
        return f"ssh://root@127.0.0.1:{port or self.port}{path}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    if not Path(SSHD).exists() or shutil.which("ssh") is None:
        if os.environ.get("CI"):
            pytest.fail("openssh-server and openssh-client must be installed in CI (scripts/install.sh)")
        pytest.skip("openssh-server is not installed")
    if os.geteuid() != 0:
        pytest.skip("sshd logs in as the user running it; these tests run as root (CI)")
    folder = tmp_path / "sshd"
    folder.mkdir()
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    port = free_port()
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\nPidFile {folder / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n")
    host_key = (folder / "host_key.pub").read_text().split()
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    (folder / "ssh_config").write_text(
        f"Host 127.0.0.1\n  IdentityFile {folder / 'client_key'}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {folder / 'known_hosts'}\n  LogLevel ERROR\n"
        # One connection for all of a test's ssh commands (as a user's ssh_config may say too; its
        # socket in /tmp: a socket path has at most 107 bytes):
        # a flash's steps are still separate commands, each cut on its own.
        f"  ControlMaster auto\n  ControlPath /tmp/slimfreeze-test-ssh-{port}-%C\n  ControlPersist 60\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # Debian's sshd wants its privilege separation folder
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], stdout=subprocess.DEVNULL,
                              stderr=(folder / "sshd.log").open("wb"), start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start: {(folder / 'sshd.log').read_text()}")
            time.sleep(0.05)
        yield Sshd(port=port, config=folder / "ssh_config", folder=folder)
    finally:
        subprocess.run(["ssh", "-F", str(folder / "ssh_config"), "-p", str(port), "-O", "exit", "127.0.0.1"],
                       capture_output=True, timeout=30)  # the shared connection's master process
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def ssh_flash(sshd: Sshd, *args: str | Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return cli(*args, "--ssh-config", sshd.config, env_extra=env_extra)


def test_targets_are_parsed_and_a_malformed_one_is_refused() -> None:
    target = parse_target("ssh://pi@gateway.local:2222/srv/device")
    assert (target.user, target.host, target.port, target.path) == ("pi", "gateway.local", 2222, "/srv/device")
    assert parse_target("/mnt/device") is None
    for bad in ("ssh://host", "ssh://host:notaport/x", "ssh://host/a/../b", "ssh:///x"):
        with pytest.raises(Exception, match="expected ssh://"):
            parse_target(bad)


@pytest.mark.integration
def test_flash_over_ssh_installs_verifies_and_keeps_the_previous_version(sshd: Sshd, dist: Path, tmp_path: Path) -> None:
    device = tmp_path / "a device's root"  # quoted through ssh and sh -c
    device.mkdir()
    for version in ("v1", "v2"):
        proc = ssh_flash(sshd, "--profile", version, "--dist", dist, "--target", sshd.target(device))
        assert proc.returncode == 0, proc.stderr
        assert f"hello from {version}" in proc.stdout
    assert running_version(device) == "v2" and profile_of(device, "previous") == "v1"
    verify(device, say=quiet)  # what sshd wrote, checked through the file system
    proc = ssh_flash(sshd, "--rollback", "--target", sshd.target(device))
    assert proc.returncode == 0, proc.stderr
    assert running_version(device) == "v1" and profile_of(device, "previous") == "v2"
    assert ssh_flash(sshd, "--rollback", "--target", sshd.target(device)).returncode == 0
    assert running_version(device) == "v2" and profile_of(device, "previous") == "v1"
    proc = ssh_flash(sshd, "--verify", "--target", sshd.target(device))
    assert proc.returncode == 0 and "match their sha256" in proc.stdout, proc.stderr
    damage(device / "slimfreeze" / "current" / "_internal" / "base_library.zip")
    assert_one_line_error(ssh_flash(sshd, "--verify", "--target", sshd.target(device)), code=1, fragment="corrupted")


@pytest.mark.integration
def test_a_tampered_or_unsigned_build_is_refused_over_ssh(sshd: Sshd, dist: Path, device: Path, tmp_path: Path) -> None:
    private, public = tmp_path / "k.pem", tmp_path / "k.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)], check=True)
    sign_build(dist / "v1", load_private_key(private))
    proc = ssh_flash(sshd, "--profile", "v1", "--dist", dist, "--target", sshd.target(device), "--trusted-key", public)
    assert proc.returncode == 0, proc.stderr
    before = snapshot(device)
    assert_one_line_error(ssh_flash(sshd, "--profile", "v2", "--dist", dist, "--target", sshd.target(device),
                                    "--trusted-key", public), code=1, fragment="is not signed")
    sign_build(dist / "v2", load_private_key(private))
    manifest = dist / "v2" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"build_seconds": 0.1', '"build_seconds": 0.2'))
    assert_one_line_error(ssh_flash(sshd, "--profile", "v2", "--dist", dist, "--target", sshd.target(device),
                                    "--trusted-key", public), code=1, fragment="changed after it was signed")
    assert snapshot(device) == before and running_version(device) == "v1"


@pytest.mark.integration
def test_an_unreachable_host_or_a_changed_host_key_is_one_line(sshd: Sshd, dist: Path, device: Path) -> None:
    line = assert_one_line_error(ssh_flash(sshd, "--profile", "v1", "--dist", dist, "--target",
                                           sshd.target(device, port=free_port())), code=1, fragment="cannot reach")
    assert "refused" in line.lower()
    other = sshd.folder / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    key = (sshd.folder / "other_key.pub").read_text().split()
    (sshd.folder / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {key[0]} {key[1]}\n")
    assert_one_line_error(ssh_flash(sshd, "--profile", "v1", "--dist", dist, "--target", sshd.target(device)),
                          code=1, fragment="host key changed")
    assert not (device / "slimfreeze").exists()


@pytest.mark.integration
def test_a_connection_cut_at_every_step_leaves_a_working_device(sshd: Sshd, dist: Path, tmp_path: Path) -> None:
    seen = []
    step = 1
    while True:
        device = tmp_path / f"device-{step}"  # each cut on a device that runs v1, as a field device would
        device.mkdir()
        assert ssh_flash(sshd, "--profile", "v1", "--dist", dist, "--target", sshd.target(device)).returncode == 0
        proc = ssh_flash(sshd, "--profile", "v2", "--dist", dist, "--target", sshd.target(device),
                         env_extra={KILL_AT_ENV: str(step)})
        if proc.returncode == 0:
            break  # the flash finished before step n: every step has been cut once
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        running = running_version(device)
        verify(device, run_commands=False, say=quiet)  # whatever is current is intact
        seen.append(running)
        # The next flash cleans up after the cut one and succeeds.
        again = ssh_flash(sshd, "--profile", "v2", "--dist", dist, "--target", sshd.target(device))
        assert again.returncode == 0, again.stderr
        assert running_version(device) == "v2"
        step += 1
    # Cut before the switch: v1 runs; after it (only the commands were left to run): v2 runs.
    switch = seen.index("v2")
    assert step > 6 and seen == ["v1"] * switch + ["v2"] * (len(seen) - switch), seen


@pytest.mark.integration
def test_a_version_whose_commands_fail_over_ssh_is_switched_back(sshd: Sshd, dist: Path, device: Path) -> None:
    make_dist(dist, "bad", hello_rc=3)
    assert ssh_flash(sshd, "--profile", "v1", "--dist", dist, "--target", sshd.target(device)).returncode == 0
    line = assert_one_line_error(ssh_flash(sshd, "--profile", "bad", "--dist", dist, "--target", sshd.target(device)),
                                 code=1, fragment="exited with status 3")
    assert "switched back" in line
    assert running_version(device) == "v1" and len(list((device / "slimfreeze" / "slots").iterdir())) == 1


@pytest.mark.integration
def test_a_patch_over_ssh_is_applied_on_the_device_and_a_bad_one_refused(
        sshd: Sshd, releases, keys, device: Path, tmp_path: Path) -> None:
    patch_file = make_patch(releases["v1"], releases["v2"], tmp_path / "v1-v2.patch", work=tmp_path)
    trusted = keys["release"][1]
    # A device without the base: refused, nothing written.
    assert ssh_flash(sshd, "--profile", "app", "--dist", releases["v3"].parent, "--target",
                     sshd.target(device)).returncode == 0
    before = snapshot(device)
    assert_one_line_error(ssh_flash(sshd, "--patch", patch_file, "--target", sshd.target(device)),
                          code=1, fragment="does not hold the patch's base")
    assert snapshot(device) == before
    # The base current; the patch signed, then changed by one byte: refused before connecting.
    assert ssh_flash(sshd, "--profile", "app", "--dist", releases["v1"].parent, "--target",
                     sshd.target(device)).returncode == 0
    sign_file(patch_file, load_private_key(keys["release"][0]))
    good = patch_file.read_bytes()
    patch_file.write_bytes(good[:-600] + bytes([good[-600] ^ 1]) + good[-599:])
    before = snapshot(device)
    assert_one_line_error(ssh_flash(sshd, "--patch", patch_file, "--target", sshd.target(device),
                                    "--trusted-key", trusted), code=1, fragment="changed after it was signed")
    assert snapshot(device) == before and running_version(device) == "v1"
    patch_file.write_bytes(good)
    proc = ssh_flash(sshd, "--patch", patch_file, "--target", sshd.target(device), "--trusted-key", trusted)
    assert proc.returncode == 0, proc.stderr
    assert running_version(device) == "v2" and "applied to slot" in proc.stdout
    assert (device / "slimfreeze" / "current" / "app.squashfs").read_bytes() == \
        (releases["v2"] / "app.squashfs").read_bytes()
    verify(device, say=quiet)


@pytest.mark.integration
def test_a_full_device_disk_over_ssh_is_one_line_and_the_old_version_runs(sshd: Sshd, tmp_path: Path, tmpfs) -> None:
    device = tmpfs("2m")
    small, big = tmp_path / "small", tmp_path / "big"
    make_dist(small, "app", version="v1", pad=200_000)
    make_dist(big, "app", version="v2", pad=3_000_000)
    assert ssh_flash(sshd, "--profile", "app", "--dist", small, "--target", sshd.target(device)).returncode == 0
    before = snapshot(device)
    line = assert_one_line_error(ssh_flash(sshd, "--profile", "app", "--dist", big, "--target", sshd.target(device)),
                                 code=1, fragment="not enough space")
    assert "nothing was written" in line
    assert snapshot(device) == before and running_version(device) == "v1"


@pytest.mark.integration
def test_an_artifact_for_another_architecture_is_refused_over_ssh(sshd: Sshd, tmp_path: Path, device: Path) -> None:
    other = "aarch64" if os.uname().machine != "aarch64" else "x86_64"
    make_dist(tmp_path / "dist", "arm", machine=other)
    line = assert_one_line_error(ssh_flash(sshd, "--profile", "arm", "--dist", tmp_path / "dist", "--target",
                                           sshd.target(device), "--no-run"), code=2, fragment=f"built for {other}")
    assert "nothing was written" in line and not (device / "slimfreeze").exists()
