"""Real target roots and builds: a root made once (cached under work/.cache), its own Python and
libraries seen through the launcher, ARM artifacts smoke-tested under emulation, clear failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from tls_checks import tls_manifest_checked

from build import proc
from build.analysis import analyse
from build.analysis.ops import diff_reports, portable_name
from build.errors import ToolMissing
from build.project import Project
from build.targets import root as roots
from build.targets import sources
from build.targets.arch import EMULATED
from build.targets.toolchain import target_toolchain

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "work" / ".cache"  # shared with the builds and the README's first build
pytestmark = pytest.mark.integration
# What each target's artifact must be, as its ELF header says.
ELF = {"min-aarch64": ("EM_AARCH64", 64), "min-armv7": ("EM_ARM", 32)}


def project_in(tmp_path: Path, cache: Path = CACHE) -> Project:
    return Project.at(ROOT, dist=tmp_path / "dist", work=tmp_path / "work", reports=tmp_path / "reports", cache=cache)


@pytest.fixture(scope="module")
def aarch64(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("aarch64")
    return target_toolchain("arm64", project_in(folder), folder / "toolchain.log")


def guest(toolchain, argv: list[str], timeout: float = 120) -> proc.Captured:
    return proc.capture(toolchain.program_argv(argv), timeout=timeout)


def test_a_root_is_made_once_and_reused_without_downloading(aarch64, tmp_path):
    log = tmp_path / "again.log"
    again = target_toolchain("aarch64", project_in(tmp_path), log)
    assert again.python == aarch64.python and again.launcher == aarch64.launcher
    assert not log.exists() or "mmdebstrap" not in log.read_text()  # nothing made, nothing downloaded
    facts = aarch64.facts
    assert facts["architecture"] == "aarch64" and facts["debian_arch"] == "arm64"
    assert facts["root_packages"]["python3.11"].startswith("3.11.") and "libc6" in facts["root_packages"]
    assert facts["emulator"].startswith("qemu-aarch64-static ") and facts["python"].startswith("3.11.")


def test_the_roots_python_runs_under_emulation_in_its_venv(aarch64):
    ran = proc.capture(aarch64.python_argv("-c", "import platform, sys; print(platform.machine(), sys.prefix)"),
                       timeout=120)
    assert ran.code == 0, ran.output
    machine, prefix = ran.output.split()
    assert machine == "aarch64" and prefix == str(aarch64.python.parent.parent)


def test_ldd_inside_the_root_sees_the_roots_libraries(aarch64):
    # Without launcher.py's ENOSYS for faccessat2, Debian's ldd calls every library unreadable and
    # PyInstaller bundles none of the libraries an extension module needs.
    module = f"/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-{EMULATED['aarch64'].triplet}.so"
    ran = guest(aarch64, ["/usr/bin/ldd", module])
    assert ran.code == 0, ran.output
    assert f"libssl.so.3 => /usr/lib/{EMULATED['aarch64'].triplet}/libssl.so.3" in ran.output


def test_the_guest_reaches_the_hosts_loopback(aarch64, broker):
    ran = proc.capture(aarch64.python_argv("-c", f"import socket; socket.create_connection(('127.0.0.1', "
                                                 f"{broker.port}), timeout=20).close(); print('connected')"),
                       timeout=120)
    assert ran.code == 0 and ran.output.strip() == "connected", ran.output


def test_the_guest_runs_the_roots_own_strip(aarch64):
    ran = guest(aarch64, ["/bin/sh", "-c", "command -v strip && strip --version | head -n 1"])
    assert ran.code == 0 and ran.output.splitlines()[0] == "/usr/bin/strip", ran.output
    assert "GNU strip" in ran.output


@pytest.mark.parametrize("profile", sorted(ELF))
def test_target_profiles_build_and_pass_the_smoke_test_under_emulation(built, profile):
    result = built(profile)
    assert result.ok and result.smoke_passed is True
    manifest = json.loads((result.dist_dir / "manifest.json").read_text())
    machine, bits = ELF[profile]
    with (result.dist_dir / "slimfreeze").open("rb") as stream:
        header = ELFFile(stream).header
        assert (header["e_machine"], header["e_ident"]["EI_CLASS"]) == (machine, f"ELFCLASS{bits}")
    assert manifest["target"] == manifest["toolchain"]["architecture"] == profile.split("-")[-1]
    assert manifest["smoke"]["passed"] is True and all(c["passed"] for c in manifest["smoke"]["checks"])
    assert manifest["toolchain"]["root_packages"]["libpython3.11"].startswith("3.11.")
    report = json.loads((built.project.reports_root / profile / "report.json").read_text())
    assert report["total_stored"] == result.total_bytes == (result.dist_dir / "slimfreeze").stat().st_size
    # The report says which architecture, as read from the executable itself, and its page shows it.
    assert report["architecture"] == profile.split("-")[-1]
    page = (built.project.reports_root / profile / "index.html").read_text()
    assert f"Size report: {profile} ({report['architecture']})" in page


def test_a_diff_across_architectures_pairs_the_same_extension_module(built):
    # `_struct.cpython-311-aarch64-linux-gnu.so` and `...-arm-linux-gnueabihf.so` are one module.
    old, new = analyse(built("min-aarch64").dist_dir), analyse(built("min-armv7").dist_dir)
    diff = diff_reports(old, new)
    names = {c.name for c in diff.changes}
    assert not any("linux-gnu" in name for name in names)
    shared = ({portable_name(r.name) for r in old.rows if ".cpython-" in r.name}
              & {portable_name(r.name) for r in new.rows if ".cpython-" in r.name})
    assert shared
    assert not {c.name for c in diff.changes if c.kind in ("appeared", "vanished")} & shared


def test_target_artifacts_bundle_every_library_their_native_files_need(built):
    # Whatever the runtime, each library the bundled libpython and extension modules link must travel
    # with the artifact (the device need not have it), unless PyInstaller's own rule leaves it to the
    # device (glibc); that needs a working ldd in the root. The program interpreter is never bundled.
    from io import BytesIO

    from PyInstaller.archive.readers import CArchiveReader
    from PyInstaller.depend.dylib import include_library

    for profile in sorted(ELF):
        archive = CArchiveReader(str(built(profile).dist_dir / "slimfreeze"))
        loader = Path(EMULATED[profile.split("-")[-1]].loader).name
        native = [name for name in archive.toc if name.endswith(".so") or ".so." in name]
        assert "libpython3.11.so.1.0" in native and any("zlib.cpython-311" in name for name in native)
        for name in native:
            dynamic = ELFFile(BytesIO(archive.extract(name))).get_section_by_name(".dynamic")
            needed = {tag.needed for tag in dynamic.iter_tags() if tag.entry.d_tag == "DT_NEEDED"}
            missing = {lib for lib in needed if lib not in archive.toc and include_library(lib) and lib != loader}
            assert not missing, f"{profile}: {name} needs {sorted(missing)}, not in the artifact"


def test_target_profiles_ship_the_size_runtime_cross_compiled_for_them(built, tmp_path):
    # The artifact's libpython is the one compiled here for the target (the build-id of an unstripped
    # copy the runtime keeps), not the root's Debian one; relr is not among its flags where the
    # target's linker ignores it.
    from PyInstaller.archive.readers import CArchiveReader

    from build.elfid import build_id

    for profile in sorted(ELF):
        result = built(profile)
        toolchain = json.loads((result.dist_dir / "manifest.json").read_text())["toolchain"]
        assert toolchain["runtime"] == "size" and "relr" not in toolchain["flag_steps"]
        assert "exports" in toolchain["flag_steps"]
        assert toolchain["runtime_key"].startswith(f"python3.11-{profile.split('-')[-1]}-")
        shipped = tmp_path / f"{profile}.so"
        shipped.write_bytes(CArchiveReader(str(result.dist_dir / "slimfreeze")).extract("libpython3.11.so.1.0"))
        debug = ROOT / Path(toolchain["build_log"]).parent / "lib" / "debug" / ".build-id"
        copies = {f"{p.parent.name}{p.stem}" for p in debug.glob("*/*.debug")}
        assert build_id(shipped) in copies


# The TLS flash profiles: OpenSSL and _ssl cross-compiled for the target (issue 20).
TLS_PROFILES = {"flash-min-tls-aarch64": "EM_AARCH64", "flash-min-tls-armv7": "EM_ARM"}


@pytest.mark.parametrize("profile", sorted(TLS_PROFILES))
def test_tls_target_profiles_pass_every_tls_scenario_under_emulation(built, profile):
    result = built(profile)
    openssl = tls_manifest_checked(result.dist_dir)["toolchain"]["openssl"]
    assert openssl["key"].startswith(f"openssl-{profile.split('-')[-1]}-")
    # _ssl is the target's, with OpenSSL inside it: no libssl or libcrypto travels or is needed.
    shipped = [p for p in result.dist_dir.rglob("*") if p.is_file()]
    assert not [p.name for p in shipped if p.name.startswith(("libssl.so", "libcrypto.so"))]
    module = next(p for p in shipped if p.name.startswith("_ssl.cpython-311-"))
    with module.open("rb") as stream:
        elf = ELFFile(stream)
        assert elf.header["e_machine"] == TLS_PROFILES[profile]
        needed = {t.needed for t in elf.get_section_by_name(".dynamic").iter_tags() if t.entry.d_tag == "DT_NEEDED"}
    assert not {n for n in needed if n.startswith(("libssl", "libcrypto"))}
    assert (result.dist_dir / f"{profile}.squashfs").is_file()


# --- failures: one line, nothing half-made ------------------------------------------------------

def test_a_missing_emulator_names_its_debian_package(tmp_path, monkeypatch):
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("mmdebstrap", "proot"):
        (tools / tool).symlink_to(proc.require_tool(tool))
    monkeypatch.setenv("PATH", str(tools))
    with pytest.raises(ToolMissing) as info:
        target_toolchain("armv7", project_in(tmp_path), tmp_path / "log")
    assert str(info.value) == ("'qemu-arm-static' was not found on PATH; install the Debian package "
                               "'qemu-user-static' (or run scripts/install.sh)")


def test_a_root_that_cannot_be_downloaded_says_why_and_leaves_nothing(tmp_path):
    project = project_in(tmp_path, cache=tmp_path / "cache")
    unreachable = sources.render([sources.Entry(uri="http://127.0.0.1:9/debian", suites=("bookworm",),
                                                components=("main",))])
    spec = roots.RootSpec(arch=EMULATED["aarch64"], packages=("dash",), sources=unreachable)
    cache = project.cache_root / "targets"
    cache.mkdir(parents=True)
    with pytest.raises(roots.RootFailed) as info:
        roots.make_root(spec, cache=cache, log=tmp_path / "root.log", deletable=project.output_roots,
                        launch=lambda path: ["/bin/false"])
    message = str(info.value)
    assert message.startswith("cannot make the aarch64 (arm64) Debian root: mmdebstrap: E: ")
    assert "127.0.0.1:9" in message and "\n" not in message
    assert sorted(p.name for p in cache.iterdir()) == [f".{spec.name}.lock"]


def test_a_root_without_room_is_refused_before_anything_is_downloaded(tmp_path, monkeypatch):
    project = project_in(tmp_path, cache=tmp_path / "cache")
    monkeypatch.setattr(roots, "MIN_FREE_BYTES", 1 << 60)
    spec = roots.RootSpec(arch=EMULATED["armv7"], packages=("dash",), sources="Types: deb\n")
    cache = project.cache_root / "targets"
    cache.mkdir(parents=True)
    with pytest.raises(roots.RootFailed, match=r"^cannot make the armv7 \(armhf\) Debian root: only \d+ MiB free"):
        roots.make_root(spec, cache=cache, log=tmp_path / "root.log", deletable=project.output_roots,
                        launch=lambda path: ["/bin/false"])
    assert not (tmp_path / "root.log").exists()
    assert sorted(p.name for p in cache.iterdir()) == [f".{spec.name}.lock"]


def test_the_cli_names_a_missing_proot_in_one_line_and_publishes_nothing(tmp_path):
    tools = tmp_path / "bin"  # every program of /usr/bin and /bin but proot
    tools.mkdir()
    for folder in (Path("/usr/bin"), Path("/bin")):
        for program in folder.iterdir():
            if program.name != "proot" and not (tools / program.name).exists():
                (tools / program.name).symlink_to(program)
    env = {**os.environ, "PATH": f"{tools}:/usr/local/bin:/usr/sbin:/sbin"}
    ran = subprocess.run([sys.executable, "build.py", "--profile", "min-aarch64", "--dist", str(tmp_path / "dist"),
                          "--work", str(tmp_path / "work"), "--reports", str(tmp_path / "reports")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert ran.returncode != 0
    errors = [line for line in ran.stderr.splitlines() if "error:" in line]
    assert errors == [("slimfreeze: error: profile 'min-aarch64' failed: 'proot' was not found on PATH; install "
                       "the Debian package 'proot' (or run scripts/install.sh)")], ran.stderr
    assert not (tmp_path / "dist" / "min-aarch64").exists()
    assert not (tmp_path / "reports" / "min-aarch64").exists()


def test_a_venv_is_made_once_per_requirement_set(aarch64, tmp_path):
    from build.targets import venv

    root_path = Path(aarch64.launcher[aarch64.launcher.index("-r") + 1])
    launch = list(aarch64.launcher)
    project = project_in(tmp_path)
    log = tmp_path / "venv.log"
    made = venv.make_venv(root_path, "test", ["paho-mqtt==2.2.0"], launch=launch, log=log,
                          deletable=project.output_roots)
    assert (made.host / venv.STAMP).is_file()  # complete (made now, or by an earlier run)
    size = log.stat().st_size if log.exists() else 0
    again = venv.make_venv(root_path, "test", ["paho-mqtt==2.2.0"], launch=launch, log=log,
                           deletable=project.output_roots)
    assert again == made and (log.stat().st_size if log.exists() else 0) == size
    ran = proc.capture([*launch, str(made.python), "-c", "import paho.mqtt, sys; print(sys.prefix)"], timeout=120)
    assert ran.code == 0 and ran.output.strip() == str(made.guest), ran.output
    assert not any(p.name.endswith(".partial") for p in made.host.parent.iterdir())
