"""Backend command lines and generated files, checked without starting a build."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from declared_app import with_app

from build.application import load_application
from build.config import Profile, load_profiles, resolve_profiles
from build.errors import CommandFailed
from build.freeze.backends import BACKENDS, BuildPlan, executables_for
from build.freeze.backends.pyinstaller import spec_source
from build.freeze.entry import entry_source
from build.freeze.excludes import plan_excludes
from build.freeze.standins import DIRECTORY as STANDINS
from build.toolchain import Toolchain, host_toolchain

ROOT = Path(__file__).resolve().parents[2]
APP = load_application(ROOT / "pyproject.toml")


def make_profile(**keys) -> Profile:
    """A profile of this project's app, as config would resolve it (every command unless given)."""
    return Profile(**{"name": "p", "app": APP, "commands": APP.command_names, **keys})


def plan_for(profile: Profile, tmp_path: Path, toolchain: Toolchain | None = None) -> BuildPlan:
    toolchain = toolchain or host_toolchain()
    return BuildPlan(profile=profile, project_root=ROOT, work_dir=tmp_path / "work", stage_dir=tmp_path / "stage",
                     entry_script=tmp_path / "work" / "slimfreeze_entry.py", executables=executables_for(profile),
                     excludes=plan_excludes(profile), module_paths=(STANDINS,),
                     include_modules=("_slimfreeze_ssl",), log=tmp_path / "build.log", toolchain=toolchain)


def spec_calls(source: str) -> dict[str, list[ast.Call]]:
    calls: dict[str, list[ast.Call]] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            calls.setdefault(node.func.id, []).append(node)
    return calls


def keyword(call: ast.Call, name: str):
    return next(ast.literal_eval(k.value) for k in call.keywords if k.arg == name)


def test_multicall_onefile_spec_is_one_analysis_one_exe(tmp_path):
    profile = make_profile(strip=True, optimize=2, tls=False, exclude=("tkinter",))
    calls = spec_calls(spec_source(plan_for(profile, tmp_path)))
    assert len(calls["Analysis"]) == 1 and len(calls["EXE"]) == 1 and "COLLECT" not in calls
    analysis, exe = calls["Analysis"][0], calls["EXE"][0]
    assert keyword(analysis, "optimize") == 2
    assert set(keyword(analysis, "excludes")) == {"tkinter", "ssl", "_ssl"}
    assert set(keyword(analysis, "hiddenimports")) == {
        "app.commands.telemetry", "app.commands.heartbeat", "app.commands.control", "app.commands.hello",
        "app.commands.run", "app.commands.store", "_slimfreeze_ssl"}
    assert keyword(exe, "name") == "slimfreeze" and keyword(exe, "strip") is True
    assert keyword(exe, "upx") is False  # PyInstaller's own UPX packs every library; ours decides


def test_onedir_per_command_shares_one_collect(tmp_path):
    profile = make_profile(layout="onedir", multicall=False, commands=("telemetry", "hello"))
    calls = spec_calls(spec_source(plan_for(profile, tmp_path)))
    assert [keyword(e, "name") for e in calls["EXE"]] == ["telemetry", "hello"]
    assert all(keyword(e, "exclude_binaries") is True for e in calls["EXE"])
    assert len(calls["COLLECT"]) == 1
    # each executable bundles only its own command's code
    assert [keyword(a, "hiddenimports")[0] for a in calls["Analysis"]] == ["app.commands.telemetry",
                                                                           "app.commands.hello"]


def test_the_supervisor_executable_bundles_every_command_it_forks():
    profile = make_profile(layout="onedir", multicall=False, commands=("telemetry", "hello", "run"))
    exes = {exe.name: exe.commands for exe in executables_for(profile)}
    assert exes == {"telemetry": ("telemetry",), "hello": ("hello",), "run": ("telemetry", "hello", "run")}


def test_pyinstaller_work_files_stay_out_of_the_build_package(tmp_path):
    profile = make_profile(pyinstaller_args=("--log-level", "DEBUG"))
    [argv] = BACKENDS["pyinstaller"].command_lines(plan_for(profile, tmp_path))
    workpath = Path(argv[argv.index("--workpath") + 1])
    distpath = Path(argv[argv.index("--distpath") + 1])
    for path in (workpath, distpath, Path(argv[-1])):
        assert ROOT / "build" not in path.parents
        assert tmp_path in path.parents
    assert argv[-3:-1] == ["--log-level", "DEBUG"]  # pass-through arguments come last, before the spec


def test_nuitka_flags_follow_the_profile(tmp_path):
    profile = make_profile(backend="nuitka", optimize=2, tls=False, upx=True, compression="none",
                      exclude=("pydoc",), nuitka_args=("--lto=no",))
    [argv] = BACKENDS["nuitka"].command_lines(plan_for(profile, tmp_path))
    assert argv[1:3] == ["-m", "nuitka"] and "--onefile" in argv
    for flag in ("--python-flag=no_asserts", "--python-flag=no_docstrings", "--onefile-no-compression",
                 "--plugin-enable=upx", "--nofollow-import-to=ssl", "--nofollow-import-to=_ssl",
                 "--nofollow-import-to=pydoc", "--include-module=app.commands.control",
                 "--include-module=_slimfreeze_ssl", "--output-filename=slimfreeze", "--lto=no"):
        assert flag in argv
    assert argv[-1].endswith("slimfreeze_entry.py")


def test_nuitka_standalone_without_optimisation_has_no_python_flags(tmp_path):
    profile = make_profile(backend="nuitka", layout="onedir")
    [argv] = BACKENDS["nuitka"].command_lines(plan_for(profile, tmp_path))
    assert "--standalone" in argv and not any(a.startswith("--python-flag") for a in argv)


def test_nuitka_builds_one_program_per_command_without_multicall(tmp_path):
    profile = make_profile(backend="nuitka", multicall=False, commands=("hello", "heartbeat"))
    argvs = BACKENDS["nuitka"].command_lines(plan_for(profile, tmp_path))
    assert [next(a for a in argv if a.startswith("--output-filename=")) for argv in argvs] == [
        "--output-filename=hello", "--output-filename=heartbeat"]


def test_every_backend_reports_its_versions(tmp_path):
    for backend in BACKENDS.values():
        versions = backend.tool_versions(host_toolchain())
        assert versions and all(isinstance(v, str) and v[0].isdigit() for v in versions.values())
        # Read through a launcher (as in an emulated root), the same versions come back from the
        # toolchain's own Python instead of this process's metadata.
        launched = Toolchain(python=Path(sys.executable), launcher=("env",))
        assert backend.tool_versions(launched) == versions
        with pytest.raises(CommandFailed, match="could not read the versions"):
            backend.tool_versions(Toolchain(python=Path(sys.executable), launcher=("false",)))


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_the_freezer_runs_with_the_toolchains_python_behind_its_launcher(tmp_path, backend):
    toolchain = Toolchain(python=Path("/root-of-arm64/venv/bin/python"), launcher=("proot", "-q", "qemu"),
                          target="aarch64")
    profile = resolve_profiles(with_app({"profiles": {"p": {"backend": backend}}}))["p"]
    for argv in BACKENDS[backend].command_lines(plan_for(profile, tmp_path, toolchain)):
        assert argv[:4] == ["proot", "-q", "qemu", "/root-of-arm64/venv/bin/python"]
        assert argv[4:6] == ["-m", {"pyinstaller": "PyInstaller", "nuitka": "nuitka"}[backend]]


@pytest.mark.parametrize("stand_ins", [(), ("ssl",), ("ssl", "urllib.request")])
def test_generated_entry_installs_stand_ins_before_the_app(tmp_path, stand_ins):
    # The declared entry point is what the script calls, after the stand-ins are in place.
    (tmp_path / "probe_app.py").write_text(
        "def start():\n    import ssl, urllib.request\n    print(ssl.__name__, urllib.request.__name__)\n    return 7\n")
    entry = tmp_path / "entry.py"
    entry.write_text(entry_source(stand_ins, "p", "probe_app:start"))
    ran = subprocess.run([sys.executable, str(entry)], capture_output=True, text=True,
                         env={"PYTHONPATH": f"{tmp_path}:{STANDINS}"})
    out = ran.stdout.split()
    assert ran.returncode == 7, ran.stderr  # the entry point's return value is the exit status
    assert out[0] == ("_slimfreeze_ssl" if "ssl" in stand_ins else "ssl")
    assert out[1] == ("_slimfreeze_urllib_request" if "urllib.request" in stand_ins else "urllib.request")


def test_resolved_list_keys_cannot_change_under_the_build(tmp_path):
    # Lists from pyproject.toml become tuples when resolved: a backend, the trace or the stand-ins
    # step cannot append to the profile the manifest records, and a profile is a usable key.
    pyproject = ROOT / "pyproject.toml"
    resolved = load_profiles(pyproject)
    assert {resolved["min"]: "min"}[resolved["min"]] == "min"
    for profile in resolved.values():
        for field in dataclasses.fields(profile):
            assert not isinstance(getattr(profile, field.name), (list, dict, set)), (profile.name, field.name)
        plan_for(profile, tmp_path, host_toolchain())
        assert profile == load_profiles(pyproject)[profile.name]
