"""Distribution attribution against the real environment's package metadata and stdlib."""

from __future__ import annotations

from pathlib import Path

import pytest

from build.analysis import elf
from build.analysis.distributions import classify_file, classify_module, library_stem, load_index, module_of_path
from platform_names import extension


@pytest.fixture(scope="module")
def index():
    return load_index()


@pytest.mark.parametrize(("module", "expected"), [
    ("paho.mqtt.client", ("paho-mqtt", False)),
    ("paho", ("paho-mqtt", False)),
    ("json.decoder", ("python-stdlib", False)),
    ("_ssl", ("python-stdlib", False)),
    ("encodings.idna", ("python-stdlib", False)),
    ("pyimod02_importers", ("pyinstaller", False)),
    ("pyi_rth_inspect", ("pyinstaller", False)),
    ("_slimfreeze_ssl", ("slimfreeze", False)),
    ("slimfreeze_entry", ("slimfreeze", False)),
    ("app.commands.telemetry", ("app", False)),
    ("zstandard", ("zstandard", False)),
    ("surely_not_installed_anywhere", ("surely-not-installed-anywhere", True)),  # never "app"
])
def test_modules(index, module: str, expected: tuple[str, bool]) -> None:
    a = classify_module(module, index)
    assert (a.distribution, a.guess) == expected
    assert a.package == module.split(".")[0]


def test_main_is_slimfreeze_in_a_slimfreeze_build(index) -> None:
    assert classify_module("__main__", index, slimfreeze_build=True).distribution == "slimfreeze"
    assert classify_module("__main__", index).distribution == "app"


def test_runtime_hook_from_hooks_contrib(index) -> None:
    contrib = [name for name, dist in index.rthooks.items() if dist == "pyinstaller-hooks-contrib"]
    assert contrib, "pyinstaller-hooks-contrib ships run-time hooks"
    assert classify_module(contrib[0], index).distribution == "pyinstaller-hooks-contrib"


@pytest.mark.parametrize(("path", "expected"), [
    ("python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", ("python-stdlib", "_ssl")),
    ("_ssl.so", ("python-stdlib", "_ssl")),  # Nuitka's naming
    ("libssl.so.3", ("libssl", "libssl.so.3")),
    ("libcrypto-1a2b3c4d.so.3", ("libcrypto", "libcrypto-1a2b3c4d.so.3")),
    ("libpython3.11.so.1.0", ("python-runtime", "libpython3.11.so.1.0")),
    ("base_library.zip", ("python-runtime", "base_library.zip")),
    ("paho_mqtt-2.2.0.dist-info/METADATA", ("paho-mqtt", "paho_mqtt-2.2.0.dist-info/METADATA")),
    ("paho/mqtt/client.py", ("paho-mqtt", "paho.mqtt.client")),
    ("README.txt", ("unknown", "README.txt")),
])
def test_files(index, path: str, expected: tuple[str, str]) -> None:
    a = classify_file(path, index)
    assert (a.distribution, a.module) == expected


def test_soname_wins_over_the_file_name(index) -> None:
    assert classify_file("libfoo.so", index, soname="libbar.so.2").distribution == "libbar"


def test_helpers() -> None:
    assert module_of_path("paho/mqtt/__init__.py") == "paho.mqtt"
    assert module_of_path("x/_speedups.cpython-311-x86_64-linux-gnu.so") == "x._speedups"
    assert module_of_path("data.json") is None
    assert library_stem("libbz2.so.1.0") == "libbz2"


def test_elf_sections_cover_a_real_library() -> None:
    lib = extension("_socket")
    data = lib.read_bytes()
    ranges = elf.section_ranges(data)
    assert ranges is not None
    assert ranges[0][1] == 0 and ranges[-1][2] == len(data)
    assert all(a[2] == b[1] for a, b in zip(ranges, ranges[1:]))  # contiguous, no overlap
    sizes = {g: sum(e - s for gg, s, e in ranges if gg == g) for g in elf.GROUPS}
    assert sizes["code"] > 0 and sizes["rodata"] > 0 and sizes["dynamic"] > 0 and sizes["unwind"] > 0
    assert sum(sizes.values()) == len(data)
    assert elf.section_ranges(b"not an elf file") is None
    assert elf.section_ranges(data[:200]) is None  # a damaged library loses its drill-down, not its bytes


@pytest.mark.parametrize(("path", "expected"), [
    ("typing.pyc", ("python-stdlib", "typing", False)),
    ("encodings/utf_8.pyc", ("python-stdlib", "encodings.utf_8", False)),
    ("paho/mqtt/client.pyc", ("paho-mqtt", "paho.mqtt.client", False)),
    ("app/commands/run.pyc", ("app", "app.commands.run", False)),
])
def test_loose_bytecode_is_named_by_its_module(index, path: str, expected: tuple[str, str, bool]) -> None:
    """archive = false leaves PyInstaller's modules as .pyc files in the runtime folder."""
    a = classify_file(path, index, slimfreeze_build=True)
    assert (a.distribution, a.module, a.guess) == expected


def test_a_damaged_distribution_in_a_given_environment_costs_only_its_own_name(tmp_path: Path) -> None:
    def dist(name: str, metadata: bytes, record: bytes) -> None:
        info = tmp_path / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_bytes(metadata)
        (info / "RECORD").write_bytes(record)

    dist("good", b"Metadata-Version: 2.1\nName: good\nVersion: 1.0\n", b"good/__init__.py,,\n")
    dist("undecodable", b"Name: \xff\xfe\n", b"undecodable/__init__.py,,\n")
    # csv: "field larger than field limit"
    dist("huge", b"Metadata-Version: 2.1\nName: huge\nVersion: 1.0\n", b'huge/__init__.py,"' + b"x" * 200_000 + b'",\n')
    index = load_index((str(tmp_path),))
    assert index.modules.get("good") == "good"
    assert "undecodable" not in index.modules and "huge" not in index.modules
