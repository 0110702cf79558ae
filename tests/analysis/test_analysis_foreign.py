"""Artifacts built elsewhere: a small requests + PyYAML program frozen by plain PyInstaller (onefile
and onedir) and plain Nuitka (standalone), not through a slimfreeze profile. Every row's
distribution is asserted, the totals equal the bytes on disk, hostile file names stay data, and
native files break down into functions and units (on `min` too)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

from build import proc
from build.analysis import analyse
from build.analysis.debug_copies import builder_dirs, native_breakdown
from build.analysis.model import SizeReport
from build.analysis.native import file_bytes, with_native
from build.analysis.ops import check_accounted, diff_native
from build.report import command as bloat
from build.report import html, jsonio

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
PROGRAM = '''"""A small program bundling requests + PyYAML (+ certifi's CA bundle)."""
import sys

import certifi
import requests
import yaml


def main() -> int:
    config = yaml.safe_load("url: http://127.0.0.1:9/\\nretries: 1\\n")
    print("ca bundle:", certifi.where().rsplit("/", 1)[-1])
    print("requests", requests.__version__, "yaml", yaml.__version__, config["retries"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''
# Data files whose names would drive a terminal: a "clear screen" escape and a newline.
HOSTILE = ("esc\x1b[2Jclear.txt", "nl\nline.txt")
# Top-level import name -> distribution (what pip installed from PyPI: pyproject.toml's test extras).
# PyInstaller also takes cryptography (and cffi): installed in the test environment, urllib3 imports it.
THIRD_PARTY = {"requests": "requests", "yaml": "pyyaml", "_yaml": "pyyaml", "certifi": "certifi", "idna": "idna",
               "urllib3": "urllib3", "charset_normalizer": "charset-normalizer", "cryptography": "cryptography",
               "_cffi_backend": "cffi", "cffi": "cffi", "pycparser": "pycparser"}
LIBRARIES = {"libssl": "libssl", "libcrypto": "libcrypto", "libz": "libz", "libbz2": "libbz2", "liblzma": "liblzma",
             "libffi": "libffi", "libgcc_s": "libgcc_s"}
CONTRIB_RTHOOKS = {"pyi_rth_cryptography_openssl"}  # run-time hooks of pyinstaller-hooks-contrib

pytestmark = pytest.mark.integration


def _write_program(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fetchcfg.py").write_text(PROGRAM)
    data = folder / "data"
    data.mkdir(exist_ok=True)
    for name in HOSTILE:
        (data / name).write_text("hostile name\n")
    return folder / "fetchcfg.py"


def _pyinstaller(tmp: Path, *args: str) -> Path:
    script = _write_program(tmp / "src")
    proc.run([PYTHON, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", tmp / "dist",
              "--workpath", tmp / "work", "--specpath", tmp / "spec", "--add-data", f"{tmp / 'src' / 'data'}:data",
              *args, script], log=tmp / "build.log", cwd=tmp, timeout=900)
    return tmp / "dist"


@pytest.fixture(scope="session")
def pyi_onefile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _pyinstaller(tmp_path_factory.mktemp("pyi-onefile"), "--onefile") / "fetchcfg"


@pytest.fixture(scope="session")
def pyi_onedir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # With two distributions' metadata bundled (PyInstaller's --copy-metadata): the first evidence.
    return _pyinstaller(tmp_path_factory.mktemp("pyi-onedir"), "--onedir", "--copy-metadata", "requests",
                        "--copy-metadata", "PyYAML") / "fetchcfg"


@pytest.fixture(scope="session")
def nuitka_standalone() -> Path:
    """Nuitka takes minutes: built once, cached under work/.cache keyed by everything it depends on."""
    versions = {d: metadata.version(d) for d in ("nuitka", "requests", "PyYAML", "certifi", "idna", "urllib3",
                                                   "charset-normalizer")}
    key = hashlib.sha256(json.dumps([PROGRAM, versions, sys.version, PYTHON]).encode()).hexdigest()[:16]
    cache = ROOT / "work" / ".cache" / "analysis-foreign" / f"nuitka-{key}"
    if (cache / "fetchcfg.dist" / "fetchcfg").is_file():
        return cache / "fetchcfg.dist"
    building = cache.with_name(f"{cache.name}.tmp{os.getpid()}")
    script = _write_program(building / "src")
    proc.run([PYTHON, "-m", "nuitka", "--standalone", "--unstripped", "--assume-yes-for-downloads", "--quiet",
              f"--output-dir={building}", "--output-filename=fetchcfg", "--include-package-data=certifi", script],
             log=building / "build.log", cwd=building, timeout=1800)
    os.replace(building, cache)  # a complete build or none
    return cache / "fetchcfg.dist"


def _on_disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def expected(name: str, fmt: str) -> str:
    """The distribution a row must have, from where the file or module sits in the artifact."""
    parts = [p for p in re.split(r"[/]", name) if p not in ("_internal", "fetchcfg", "PYZ.pyz", "code",
                                                              "constants", "bytecode")] or [name]
    first = parts[0]
    if name in ("fetchcfg", "fetchcfg/fetchcfg"):
        return "app"  # the entry script (in onedir: inside the executable named after it)
    if "base_library.zip" in name:
        return "python-runtime"
    if first in CONTRIB_RTHOOKS:
        return "pyinstaller-hooks-contrib"
    if name.endswith(("[bootloader]", "[archive index]", "[padding]", "[payload framing]")) or \
            first.startswith(("pyimod", "pyiboot", "pyi_rth_")):
        return "nuitka" if fmt.startswith("nuitka") else "pyinstaller"
    if first in ("[executable]", "[shared]") or name.endswith("[shared]"):
        return "nuitka"
    if first.startswith("libpython") or first == "base_library.zip":
        return "python-runtime"
    top = first.split(".")[0]
    if top in ("__main__",) or (first == "fetchcfg" and name.count("/") <= 1) or name == "fetchcfg":
        return "app"
    if first == "data":
        return "app?"
    stem = re.sub(r"[-.].*", "", top)
    if stem in LIBRARIES:
        return LIBRARIES[stem]
    if top in THIRD_PARTY:
        return THIRD_PARTY[top]
    if first.endswith(".dist-info"):
        return first.split("-")[0].lower()
    return "python-stdlib"


def _check_rows(report: SizeReport, artifact: Path) -> None:
    check_accounted(report.rows, report.total_stored, report.artifact)
    assert report.total_stored == _on_disk(artifact)
    wrong = []
    for row in report.rows:
        want = expected(row.name, report.format)
        got = row.distribution + ("?" if row.guess else "")
        if want.endswith("?"):
            ok = got.endswith("?") and got != "app?"
        else:
            ok = got == want or (want in ("nuitka", "pyinstaller") and got.rstrip("?") == want)
        if not ok:
            wrong.append((row.name, got, want))
    assert not wrong, wrong[:20]


def test_pyinstaller_onefile_rows_and_total(pyi_onefile: Path) -> None:
    report = analyse(pyi_onefile)
    assert report.format == "pyinstaller-onefile"
    _check_rows(report, pyi_onefile)
    names = {r.name: r for r in report.rows}
    assert names["certifi/cacert.pem"].distribution == "certifi"  # a data file is its package's
    assert next(r for r in report.rows if r.name.startswith("yaml/_yaml")).distribution == "pyyaml"


def test_pyinstaller_onedir_rows_and_total(pyi_onedir: Path) -> None:
    report = analyse(pyi_onedir)
    assert report.format == "pyinstaller-onedir"
    _check_rows(report, pyi_onedir)


def test_nuitka_rows_total_and_compiled_code_per_module(nuitka_standalone: Path) -> None:
    report = analyse(nuitka_standalone)
    assert report.format == "nuitka-standalone"
    _check_rows(report, nuitka_standalone)
    code = {r.name.split("/code/", 1)[1]: r for r in report.rows if "/code/" in r.name}
    assert code["requests.api"].distribution == "requests" and code["yaml.loader"].distribution == "pyyaml"
    assert code["__main__"].distribution == "app"
    assert sum(r.stored for r in code.values()) > 1_000_000  # the modules' compiled C, no longer in one row
    assert any("symbol table" in n for n in report.notes)


def test_without_metadata_every_package_is_a_guess_by_its_own_name(pyi_onefile: Path, tmp_path: Path) -> None:
    empty = tmp_path / "site-packages"
    empty.mkdir()
    report = analyse(pyi_onefile, site_packages=(empty,))
    check_accounted(report.rows, report.total_stored, report.artifact)
    # PyInstaller's hooks bundle some distributions' metadata (cryptography's): that is evidence.
    bundled = {r.name.split("-")[0].lower() for r in report.rows if ".dist-info/" in r.name}
    for row in report.rows:
        top = row.name.split("/")[-1].split(".")[0] if row.name.startswith("PYZ.pyz/") else row.name.split("/")[0]
        if top in THIRD_PARTY and THIRD_PARTY[top] not in bundled:
            assert row.guess and row.distribution == top.lstrip("_").replace("_", "-").lower(), row
        elif top in THIRD_PARTY:
            assert (row.distribution, row.guess) == (THIRD_PARTY[top], False), row
        assert (row.distribution, row.guess) != ("app", True), row
    assert [r.name for r in report.rows if r.distribution == "app"] == ["fetchcfg"]  # the entry script


def test_bundled_metadata_comes_first(pyi_onedir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "site-packages"
    empty.mkdir()
    report = analyse(pyi_onedir, site_packages=(empty,))
    rows = {r.name: r for r in report.rows}
    assert (rows["fetchcfg/PYZ.pyz/requests.api"].distribution, rows["fetchcfg/PYZ.pyz/requests.api"].guess) \
        == ("requests", False)
    yaml_ext = next(r for r in report.rows if r.name.startswith("_internal/yaml/_yaml"))
    assert (yaml_ext.distribution, yaml_ext.guess) == ("pyyaml", False)  # RECORD says PyYAML owns yaml/
    assert (rows["fetchcfg/PYZ.pyz/idna.core"].distribution, rows["fetchcfg/PYZ.pyz/idna.core"].guess) \
        == ("idna", True)  # not bundled, not installed: a guess


def test_hostile_names_are_shown_not_sent(pyi_onefile: Path, capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    report = analyse(pyi_onefile)
    names = {r.name for r in report.rows}
    assert {f"data/{h}" for h in HOSTILE} <= names
    assert bloat.main([str(pyi_onefile), "-n", "0"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "data/esc\\x1b[2Jclear.txt" in out
    assert "data/nl\\nline.txt" in out and not any(line.startswith("line.txt") for line in out.splitlines())
    back = jsonio.report_from_dict(json.loads(jsonio.dumps(report)), source="r")
    assert {f"data/{h}" for h in HOSTILE} <= {r.name for r in back.rows}  # JSON keeps them exact
    page = tmp_path / "page.html"
    assert bloat.main([str(pyi_onefile), "--html", str(page), "--json"]) == 0
    capsys.readouterr()
    text = page.read_text()
    assert "\x1b" not in text and "\\u001b[2J" in text  # in the embedded JSON, as an escape: text, not markup


def test_symbols_of_the_largest_native_file(pyi_onefile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bloat.main([str(pyi_onefile), "--symbols", "-n", "5"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["File", ".text", "Size", "Unit", "Name"]
    assert "more symbols. Use -n N to show more." in out and "libpython3.11.so.1.0" in out
    assert "Symbols: the file's own .symtab." in out  # PyInstaller ships the build machine's libpython as is
    assert bloat.main([str(pyi_onefile), "--units", "libpython", "-n", "5"]) == 0
    units = capsys.readouterr().out
    assert "Objects/unicodeobject.c" in units and "Units from DWARF" in units


def test_diff_says_which_functions_grew(pyi_onefile: Path, pyi_onedir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    old = with_native(analyse(pyi_onefile), pyi_onefile, wanted="libpython3.11.so.1.0")
    new = with_native(analyse(pyi_onedir), pyi_onedir, wanted="_internal/libpython3.11.so.1.0")
    same = diff_native(old, new)
    assert same.changes == () and same.unchanged > 1000  # the same library: no function changed
    assert bloat.main(["--diff", str(pyi_onefile), str(pyi_onedir), "--symbols", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["level"] == "symbol"


def test_html_page_for_any_artifact(nuitka_standalone: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "nuitka.html"
    assert bloat.main([str(nuitka_standalone), "--html", str(page), "-n", "1"]) == 0
    capsys.readouterr()
    text = page.read_text()
    assert "Size report: fetchcfg.dist" in text and "default-src 'none'" in text
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', text, re.S).group(1))
    assert "fetchcfg/[executable]" in data["native"]  # the largest native row, broken down


def test_min_libpython_code_is_attributed_to_source_files(built, capsys: pytest.CaptureFixture[str]) -> None:
    """On `min-system` the shipped libpython is stripped: its symbols come from the build machine's
    copy (the Python that built it), matched by GNU build-id; DWARF names each function's source
    file. (`min` ships the size runtime's libpython: see the next test.)"""
    dist = built("min-system").dist_dir
    report = analyse(dist)
    lib = next(r for r in report.rows if "libpython" in r.name)
    data = file_bytes(dist, lib.name)
    b = native_breakdown(data, lib.name)
    assert "same build-id" in b.source and b.units_from == "DWARF"
    assert b.code_in_units >= 0.9 * b.code_bytes, (b.code_in_units, b.code_bytes)
    top5 = [u for u in b.units if not u.name.startswith("[")][:5]
    with capsys.disabled():
        print(f"\nmin: {100 * b.code_in_units / b.code_bytes:.1f}% of libpython's {b.code_bytes:,} code bytes in "
              f"named units; largest: " + ", ".join(f"{u.name} {u.size:,}" for u in top5))
    assert bloat.main([str(dist), "--symbols", lib.name, "-n", "10"]) == 0
    assert "same build-id" in capsys.readouterr().out.replace("\n", " ")


def test_min_lto_libpython_code_is_attributed_to_source_files(built, capsys: pytest.CaptureFixture[str]) -> None:
    """`min` ships the size runtime's libpython, built with LTO: every DWARF unit is <artificial>,
    so each function's source file comes from the line table of the runtime's unstripped copy."""
    dist = built("min").dist_dir
    report = analyse(dist)
    lib = next(r for r in report.rows if "libpython" in r.name)
    b = native_breakdown(file_bytes(dist, lib.name), lib.name, search=builder_dirs(report.manifest, ROOT))
    assert "same build-id" in b.source and b.units_from.startswith("DWARF line tables")
    assert b.code_in_units >= 0.9 * b.code_bytes, (b.code_in_units, b.code_bytes)
    named = {u.name for u in b.units}
    assert {"Objects/unicodeobject.c", "Python/ceval.c", "Parser/parser.c"} <= named and "<artificial>" not in named
    top5 = [u for u in b.units if not u.name.startswith("[")][:5]
    with capsys.disabled():
        print(f"\nmin (LTO): {100 * b.code_in_units / b.code_bytes:.1f}% of libpython's {b.code_bytes:,} code bytes "
              f"in named units; largest: " + ", ".join(f"{u.name} {u.size:,}" for u in top5))


OTHER_PYTHONS = sorted(Path("/root/.pyenv/versions").glob("3.1[0-9].*"))


def _other_python_onefile(python: Path) -> Path:
    """A PyInstaller onefile of a PyYAML program built by another CPython, in a venv made for it
    (PyInstaller and PyYAML from PyPI); cached under work/.cache keyed by that Python and the pins."""
    key = hashlib.sha256(json.dumps([str(python), PROGRAM, "pyinstaller==6.22.3", "PyYAML==6.0.4"]).encode())
    cache = ROOT / "work" / ".cache" / "analysis-foreign" / f"other-python-{python.parent.parent.name}-{key.hexdigest()[:12]}"
    artifact = cache / "dist" / "fetchcfg"
    if artifact.is_file():
        return artifact
    building = cache.with_name(f"{cache.name}.tmp{os.getpid()}")
    log = building / "build.log"
    proc.run([python, "-m", "venv", building / "venv"], log=log, timeout=300)
    venv_python = building / "venv" / "bin" / "python"
    proc.run([venv_python, "-m", "pip", "install", "-q", "pyinstaller==6.22.3", "PyYAML==6.0.4"], log=log, timeout=900)
    script = _write_program(building / "src")
    proc.run([venv_python, "-m", "PyInstaller", "--onefile", "--noconfirm", "--log-level", "WARN", "--distpath",
              building / "dist", "--workpath", building / "work", "--specpath", building / "spec", script],
             log=log, cwd=building, timeout=900)
    os.replace(building, cache)
    return artifact


@pytest.mark.parametrize("python", [v for v in OTHER_PYTHONS if not v.name.startswith("3.11")] or
                         [pytest.param(None, marks=pytest.mark.skip(reason="no other CPython under /root/.pyenv"))],
                         ids=lambda p: p.name if p else "none")
def test_archive_of_another_python_is_analysed(python: Path) -> None:
    """Built by CPython 3.10/3.12/3.13: analysed from the archive's own tables, not refused."""
    artifact = _other_python_onefile(python / "bin" / "python3")
    report = analyse(artifact)
    check_accounted(report.rows, report.total_stored, report.artifact)
    assert report.total_stored == artifact.stat().st_size
    version = ".".join(python.name.split(".")[:2])
    assert any(f"Python {version}" in n for n in report.notes)
    rows = {r.name: r for r in report.rows}
    assert rows["PYZ.pyz/yaml.loader"].distribution == "pyyaml" and rows["PYZ.pyz/yaml.loader"].raw > 0
    assert any(name.startswith(f"libpython{version}") for name in rows)
    assert html.profile_page(report) and jsonio.dumps(report)
