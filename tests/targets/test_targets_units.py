"""Pure parts of build/targets: names, cache keys, mmdebstrap's failures, binds, the launcher argv."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from build.errors import ConfigError
from build.targets import emulation, root, venv
from build.targets.arch import EMULATED, arch_for

AARCH64, ARMV7 = EMULATED["aarch64"], EMULATED["armv7"]
PYPROJECT = """
[project]
dependencies = ["paho-mqtt==2.2.0"]
[project.optional-dependencies]
build = ["pyinstaller==6.22.3", "pyinstaller_hooks-contrib==2026.9", "nuitka==4.3.3", "ordered-set==4.1.0",
         "zstandard==0.25.0", "rich==15.0.0"]
"""


# --- architectures ------------------------------------------------------------------------------

@pytest.mark.parametrize("spelling, name", [("aarch64", "aarch64"), ("arm64", "aarch64"), ("armv7", "armv7"),
                                            ("armhf", "armv7"), ("armv7l", "armv7")])
def test_targets_are_named_as_users_and_debian_name_them(spelling, name):
    assert arch_for(spelling).name == name


def test_an_unknown_target_lists_the_known_and_suggests_one():
    with pytest.raises(ConfigError) as info:
        arch_for("arm46")
    message = str(info.value)
    assert message.startswith("unknown target 'arm46': expected one of aarch64, armv7")
    assert "did you mean 'arm64'?" in message
    assert "\n" not in message


def test_the_host_architecture_needs_no_root():
    with pytest.raises(ConfigError, match="needs no Debian root"):
        arch_for("x86_64")


# --- roots --------------------------------------------------------------------------------------

def spec(**changes) -> root.RootSpec:
    values = {"arch": AARCH64, "packages": ("python3.11", "gcc"), "sources": "Types: deb\n"} | changes
    return root.RootSpec(**values)


def test_a_root_key_changes_with_each_input_and_nothing_else():
    base = spec()
    assert spec(packages=("gcc", "python3.11", "gcc")).key == base.key  # order and repeats do not count
    others = [spec(arch=ARMV7), spec(packages=("python3.11",)), spec(sources="Types: deb\n\n")]
    assert len({base.key, *(o.key for o in others)}) == 4
    assert base.name == f"aarch64-{base.key}"


def test_every_root_can_compile_and_run_the_freezers():
    packages = root.default_packages()
    assert {"python3.11", "python3.11-venv", "binutils", "gcc", "python3.11-dev", "zlib1g-dev"} <= set(packages)
    # ... and is the sysroot the size runtime is cross-compiled against (ssl, hashlib, ctypes).
    assert {"libc6-dev", "libssl-dev", "libffi-dev"} <= set(packages)
    assert list(packages) == sorted(set(packages))


def test_a_new_root_prunes_the_roots_it_replaces_and_nothing_else(tmp_path: Path):
    import json

    from build.locks import held

    cache = tmp_path / "work" / ".cache" / "targets"
    current = spec()

    def made(name: str, key: str | None) -> Path:
        folder = cache / name
        (folder / "usr").mkdir(parents=True)
        if key is not None:
            (folder / root.STAMP).write_text(json.dumps({"key": key}))
        return folder

    kept = [made(current.name, current.key), made("armv7-old", "old"), made("aarch64-partial", None),
            made("aarch64-busy", "busy"), cache / ".aarch64-x.partial"]
    cache.joinpath(".aarch64-x.partial").mkdir()
    replaced = made("aarch64-old", "old")
    with held(cache / ".aarch64-busy.lock"):  # being made by another build right now
        pruned = root.prune_replaced(cache, current, deletable=[tmp_path / "work"])
    assert pruned == ["aarch64-old"] and not replaced.exists()
    assert all(folder.is_dir() for folder in kept)


def test_mmdebstrap_extracts_only_and_keeps_the_debs_for_their_versions(tmp_path: Path):
    argv = root.mmdebstrap_argv(spec(), tmp_path / "r", tmp_path / "s.sources")
    assert argv[:4] == ["mmdebstrap", "--mode=chrootless", "--variant=extract", "--arch=arm64"]
    assert "--include=gcc,python3.11" in argv and "--skip=cleanup/apt/cache" in argv
    assert argv[-3:] == ["bookworm", str(tmp_path / "r"), str(tmp_path / "s.sources")]


def test_deb_file_names_give_package_versions():
    assert root.deb_versions(["python3.11_3.11.2-6%2bdeb12u6_arm64.deb", "libc6_2.36-9%2bdeb12u13_armhf.deb",
                              "gcc_4%3a12.2.0-3_arm64.deb", "lock", "partial"]) == {
        "gcc": "4:12.2.0-3", "libc6": "2.36-9+deb12u13", "python3.11": "3.11.2-6+deb12u6"}


@pytest.mark.parametrize("output, reason", [
    (("I: x\nE: Failed to fetch http://m/Packages.xz  File has unexpected size (1 != 2).\n"
     "E: Some index files failed to download.\nE: mmdebstrap failed to run\n"),
     "E: Failed to fetch http://m/Packages.xz  File has unexpected size (1 != 2)."),
    ("I: extracting archives...\ntar: ./usr/lib/x.so: Cannot write: No space left on device\nE: mmdebstrap failed\n",
     "no space left on device"),
    ("E: Unable to locate package pyhton3.11\nE: mmdebstrap failed to run\n", "E: Unable to locate package pyhton3.11"),
    ("something else\n", "something else"),
    ("", "no output"),
])
def test_a_failed_mmdebstrap_says_why_in_one_line(output, reason):
    assert root.failure_reason(output) == reason


# --- binds and the launcher ---------------------------------------------------------------------

@pytest.mark.parametrize("path, owned", [
    ("/", True), ("/usr", True), ("/usr/lib/python3", True), ("/lib/x86_64-linux-gnu", True), ("/etc", True),
    ("/var/lib/dpkg", True), ("/opt", True), ("/usr/share/ca-certificates", False), ("/etc/pip.conf", False),
    ("/opt/wheels", False), ("/work/main", False), ("/usr2", False), ("/tmp", False),
])
def test_no_bind_hides_the_guests_own_software(path, owned):
    assert emulation.guest_owned(PurePosixPath(path)) is owned


def test_binds_are_minimal_and_sorted():
    paths = [PurePosixPath(p) for p in ("/work/main/work", "/work/main", "/etc/ssl/certs/ca.crt", "/etc/ssl/certs",
                                        "/work/main", "/work/mainx")]
    assert emulation.minimal(paths) == [PurePosixPath(p) for p in ("/etc/ssl/certs", "/work/main", "/work/mainx")]


def test_pip_configuration_names_the_host_paths_to_bind():
    texts = ["[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n",
             "[global]\nconstraint = /etc/xdg/pip/constraints.txt\n",
             ("[global]\nfind-links = /opt/wheels\nextra-index-url =\n    file:///opt/pypi/simple\n"
             "    https://index.example/simple\ntimeout = 60\n"),
             "[install]\nindex-url = file:///srv/mirror/simple/\nrequirement = /srv/req/simple\n",
             "not an ini file ["]
    environ = {"PIP_FIND_LINKS": "/opt/more /opt/other", "PIP_CERT": "/etc/pki/ca.pem", "PIP_TIMEOUT": "/x",
               "HOME": "/root"}
    assert sorted(map(str, emulation.pip_config_paths(texts, environ))) == [
        "/etc/pki/ca.pem", "/etc/ssl/certs/ca-certificates.crt", "/etc/xdg/pip/constraints.txt", "/opt/more",
        "/opt/other", "/opt/pypi", "/opt/wheels", "/srv/mirror", "/srv/req/simple"]


def test_pip_config_files_follow_xdg(tmp_path: Path):
    files = emulation.pip_config_files({"XDG_CONFIG_DIRS": "/a:/b", "PIP_CONFIG_FILE": "/c/pip.ini"}, Path("/h"))
    assert files == [Path("/etc/pip.conf"), Path("/a/pip/pip.conf"), Path("/b/pip/pip.conf"),
                     Path("/h/.config/pip/pip.conf"), Path("/h/.pip/pip.conf"), Path("/c/pip.ini")]


def test_the_guest_finds_the_venv_then_the_roots_own_tools():
    env = emulation.guest_env(AARCH64, "/opt/slimfreeze/venv-1/bin")
    assert env == {"PATH": "/opt/slimfreeze/venv-1/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    assert emulation.guest_env(ARMV7, None)["TMPDIR"] == "/dev/shm"


def test_launcher_argv():
    argv = emulation.launcher_argv(root=Path("/c/targets/aarch64-k"), proot="/usr/bin/proot",
                                   qemu="/usr/bin/qemu-aarch64-static", binds=["/dev", "/work/p"],
                                   env={"PATH": "/usr/bin"}, python="/py")
    assert argv == ("/py", str(emulation.LAUNCHER), "/usr/bin/proot", "-q", "/usr/bin/qemu-aarch64-static",
                    "-r", "/c/targets/aarch64-k", "-b", "/dev", "-b", "/work/p", "/usr/bin/env", "PATH=/usr/bin")


# --- the venv's requirements --------------------------------------------------------------------

def test_a_venv_gets_the_run_time_pins_and_its_backends_freezer():
    assert venv.requirements(PYPROJECT, "pyinstaller") == (
        "paho-mqtt==2.2.0", "pyinstaller==6.22.3", "pyinstaller_hooks-contrib==2026.9")
    assert venv.requirements(PYPROJECT, "nuitka") == (
        "paho-mqtt==2.2.0", "nuitka==4.3.3", "ordered-set==4.1.0", "zstandard==0.25.0")


def test_a_missing_pin_or_backend_is_a_config_error():
    with pytest.raises(ConfigError, match="do not pin nuitka"):
        venv.requirements(PYPROJECT.replace('"nuitka==4.3.3", ', ""), "nuitka")
    with pytest.raises(ConfigError, match="no target venv for backend 'cx_freeze'"):
        venv.requirements(PYPROJECT, "cx_freeze")


def test_the_venv_key_follows_root_and_requirements():
    keys = {venv.venv_key("r1", ["a==1"]), venv.venv_key("r2", ["a==1"]), venv.venv_key("r1", ["a==2"])}
    assert len(keys) == 3 and venv.venv_key("r1", ("a==1",)) in keys


# --- launcher.py ----------------------------------------------------------------------------

PROBE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(512)
results = []
for nr, args in ((332, (-100, b"/", 0, 0x7ff, buf)), (439, (-100, b"/", 4, 0x200))):
    ctypes.set_errno(0)
    results.append((libc.syscall(nr, *args), ctypes.get_errno()))
print(results, os.stat("/").st_mode > 0, os.access("/", os.R_OK))
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers of x86_64")
def test_launcher_answers_statx_and_faccessat2_with_enosys_and_nothing_else():
    plain = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                           timeout=60).stdout
    assert f"(-1, {errno.ENOSYS})" not in plain  # the kernel has both calls
    wrapped = subprocess.run([sys.executable, str(emulation.LAUNCHER), sys.executable, "-c", PROBE],
                             capture_output=True, text=True, check=True, timeout=60).stdout
    assert wrapped.strip() == f"[(-1, {errno.ENOSYS}), (-1, {errno.ENOSYS})] True True"


def test_launcher_reports_a_missing_program():
    ran = subprocess.run([sys.executable, str(emulation.LAUNCHER), "/nonexistent/prog"], capture_output=True,
                         text=True, check=False, timeout=60)
    assert ran.returncode == 1
    assert ran.stderr.strip() == "launcher.py: cannot run /nonexistent/prog: No such file or directory"



STOPPABLE = ("import signal, sys, time\n"
             "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\n"
             "print('ready', flush=True)\n"
             "time.sleep(60)\n")


def test_launcher_passes_sigterm_to_the_program_under_a_parent_that_ignores_it():
    # `sh` stands in for proot: it ignores SIGTERM and waits for its child, as proot does.
    launched = subprocess.Popen([sys.executable, str(emulation.LAUNCHER), "sh", "-c",
                                 f'trap "" TERM; {sys.executable} -c "$0"; exit $?', STOPPABLE],
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert launched.stdout is not None and launched.stdout.readline() == "ready\n"
        launched.send_signal(signal.SIGTERM)
        assert launched.wait(timeout=20) == 7
    finally:
        if launched.poll() is None:
            os.killpg(launched.pid, signal.SIGKILL)
            launched.wait()


def test_launcher_dies_by_the_signal_its_program_died_by():
    ran = subprocess.run([sys.executable, str(emulation.LAUNCHER), sys.executable, "-c",
                          "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"], check=False, timeout=30)
    assert ran.returncode == -signal.SIGKILL


def test_launcher_on_a_host_without_syscall_numbers_says_so_in_one_line(monkeypatch, capsys):
    from build.targets import launcher
    monkeypatch.setattr(launcher.platform, "machine", lambda: "riscv64")
    assert launcher.main(["/bin/true"]) == 1
    assert capsys.readouterr().err == ("launcher.py: cannot install the seccomp filter proot needs here: "
                                       "no system call numbers for a riscv64 host\n")


def test_children_are_the_direct_children_of_a_real_process():
    # A shell with two children, one of which has its own: only the shell's two are its children.
    import time

    from build.targets import launcher
    shell = subprocess.Popen(["sh", "-c", "sleep 30 & sh -c 'sleep 30 & wait' & wait"], start_new_session=True)
    try:
        for _ in range(200):
            found = launcher.children(shell.pid)
            grandchildren = [g for pid in found for g in launcher.children(pid)]
            if len(found) == 2 and grandchildren:
                break
            time.sleep(0.05)
        assert len(found) == 2 and shell.pid not in found
        assert len(grandchildren) == 1 and grandchildren[0] not in found
    finally:
        os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()
    assert launcher.children(shell.pid) == []  # gone: no children, no error
