"""The size runtime's source: the deb-src entry derived from the machine's Debian entry (as
scripts/install.sh derives bookworm-backports), and the .dsc checksum check (fast, synthetic)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from build.deb822 import stanzas
from build.runtime.sources import (DEB_SRC_NAME, RuntimeSourceError, deb_src_from_one_line, derive_deb_src,
                                   has_deb_src, parse_dsc, verify_dsc)

DEBIAN_SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
BACKPORTS_ONLY = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
"""


def test_deb822_entry_keeps_mirror_and_key_and_names_only_the_release() -> None:
    folder = Path("/etc/apt/sources.list.d")
    entry = derive_deb_src({folder / "a-backports.sources": BACKPORTS_ONLY, folder / "debian.sources": DEBIAN_SOURCES},
                           None, "bookworm", folder)
    assert entry is not None
    assert entry.path == folder / f"{DEB_SRC_NAME}.sources"
    assert stanzas(entry.text) == [{"Types": "deb-src", "URIs": "http://deb.debian.org/debian", "Suites": "bookworm",
                                    "Components": "main",
                                    "Signed-By": "/usr/share/keyrings/debian-archive-keyring.gpg"}]


def test_an_inline_signed_by_key_stays_a_valid_continuation_in_the_derived_entry() -> None:
    key = "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBGPL0BUBEADmW5NdOOHwPIJlgPu6JDcKw/NZJPR8\n -----END PGP PUBLIC KEY BLOCK-----\n"
    text = f"Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n{key}"
    entry = derive_deb_src({Path("/etc/apt/sources.list.d/debian.sources"): text}, None, "bookworm")
    # Every line of the key still indented under its field: apt can read the entry.
    assert entry is not None and "Signed-By: \n" + key.split("\n", 1)[1] in entry.text
    assert stanzas(entry.text)[0]["Signed-By"] == stanzas(text)[0]["Signed-By"]


def test_one_line_entry_with_options() -> None:
    text = ("# comment\ndeb http://deb.debian.org/debian-security bookworm-security main\n"
            "#deb http://old.example/debian bookworm main\n"
            "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib  # the mirror\n")
    assert deb_src_from_one_line(text, "bookworm") == \
        "deb-src [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib\n"
    entry = derive_deb_src({}, text, "bookworm")
    assert entry is not None and entry.path.name == f"{DEB_SRC_NAME}.list"


def test_no_debian_entry_derives_nothing() -> None:
    assert derive_deb_src({Path("x.sources"): BACKPORTS_ONLY}, "deb http://x/debian trixie main\n", "bookworm") is None


def test_existing_deb_src_is_detected_and_disabled_one_is_not() -> None:
    assert not has_deb_src([DEBIAN_SOURCES], None)
    assert has_deb_src([DEBIAN_SOURCES.replace("Types: deb\n", "Types: deb deb-src\n", 1)], None)
    assert not has_deb_src(["Types: deb-src\nURIs: http://x\nSuites: bookworm\nEnabled: no\n"], None)
    assert has_deb_src([], "deb-src http://x/debian bookworm main\n")
    assert not has_deb_src([], "# deb-src http://x/debian bookworm main\n#deb-src http://x/debian bookworm main\n")


def test_a_dash_escaped_signed_dsc_reads_as_dpkg_reads_it() -> None:
    # Clear-signed text escapes lines starting with "-" as "- -" (RFC 4880); the armour and the
    # escapes are not part of the fields.
    sha = "a" * 64
    text = ("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nFormat: 3.0 (quilt)\nSource: python3.11\n"
            f"Version: 3.11.2-6\nChecksums-Sha256:\n {sha} 12 x.orig.tar.gz\n- -----BEGIN not a signature\n"
            "-----BEGIN PGP SIGNATURE-----\n\niQIz\n-----END PGP SIGNATURE-----\n")
    dsc = parse_dsc(text)
    assert (dsc.source, dsc.version, dsc.files) == ("python3.11", "3.11.2-6", (("x.orig.tar.gz", 12, sha),))


def _package(folder: Path, files: dict[str, bytes], *, signed: bool = True) -> Path:
    for name, data in files.items():
        (folder / name).write_bytes(data)
    lines = "".join(f" {hashlib.sha256(d).hexdigest()} {len(d)} {n}\n" for n, d in files.items())
    body = f"Format: 3.0 (quilt)\nSource: python3.11\nVersion: 3.11.2-6+deb12u8\nChecksums-Sha256:\n{lines}"
    text = (f"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n{body}\n-----BEGIN PGP SIGNATURE-----\nxyz\n"
            f"-----END PGP SIGNATURE-----\n") if signed else body
    dsc = folder / "python3.11_3.11.2-6+deb12u8.dsc"
    dsc.write_text(text)
    return dsc


def test_dsc_checksums_verify(tmp_path: Path) -> None:
    dsc = _package(tmp_path, {"python3.11_3.11.2.orig.tar.gz": b"orig" * 1000, "python3.11.debian.tar.xz": b"deb"})
    checked = verify_dsc(dsc)
    assert checked.version == "3.11.2-6+deb12u8"
    assert [name for name, _, _ in checked.files] == ["python3.11_3.11.2.orig.tar.gz", "python3.11.debian.tar.xz"]


@pytest.mark.parametrize("tamper", ["same size", "truncated", "missing"])
def test_tampered_file_fails(tmp_path: Path, tamper: str) -> None:
    dsc = _package(tmp_path, {"python3.11_3.11.2.orig.tar.gz": b"orig" * 1000, "python3.11.debian.tar.xz": b"deb"})
    target = tmp_path / "python3.11_3.11.2.orig.tar.gz"
    if tamper == "same size":
        target.write_bytes(b"evil" + b"orig" * 999)
    elif tamper == "truncated":
        target.write_bytes(b"orig" * 999)
    else:
        target.unlink()
    with pytest.raises(RuntimeSourceError, match="missing" if tamper == "missing" else "checksum mismatch"):
        verify_dsc(dsc)


def test_dsc_without_checksums_is_refused() -> None:
    with pytest.raises(RuntimeSourceError, match="Checksums-Sha256"):
        parse_dsc("Source: python3.11\nVersion: 1\nFiles:\n 0123 4 x\n")


def test_a_truncated_signed_dsc_is_refused_in_one_line() -> None:
    with pytest.raises(RuntimeSourceError, match="Checksums-Sha256"):
        parse_dsc("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n")


def test_dsc_cannot_name_a_file_outside_its_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "outside").write_bytes(b"x")
    sha = hashlib.sha256(b"x").hexdigest()
    dsc = tmp_path / "sub" / "p.dsc"
    dsc.write_text(f"Source: p\nVersion: 1\nChecksums-Sha256:\n {sha} 1 ../outside\n")
    with pytest.raises(RuntimeSourceError, match="missing"):
        verify_dsc(dsc)


def test_no_debian_entry_to_derive_from_is_one_clear_error(tmp_path: Path) -> None:
    from build.runtime.sources import debian_release, ensure_deb_src

    (tmp_path / "other.sources").write_text(BACKPORTS_ONLY.replace("bookworm-backports", "nowhere"))
    release = debian_release()
    with pytest.raises(RuntimeSourceError, match=f"adding a deb-src entry: no Debian '{release}' entry"):
        ensure_deb_src(tmp_path / "log", folder=tmp_path, sources_list=tmp_path / "sources.list")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sources"]  # nothing written


def test_an_existing_deb_src_entry_is_left_alone(tmp_path: Path) -> None:
    from build.runtime.sources import ensure_deb_src

    (tmp_path / "debian.sources").write_text(DEBIAN_SOURCES.replace("Types: deb\n", "Types: deb deb-src\n", 1))
    ensure_deb_src(tmp_path / "log", folder=tmp_path, sources_list=tmp_path / "sources.list")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["debian.sources"] and not (tmp_path / "log").exists()
