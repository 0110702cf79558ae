"""A target root's Debian sources are the machine's own bookworm entry, re-targeted (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from build.targets import sources
from build.targets.sources import NoDebianSources, derive

DEBIAN_SOURCES = """\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def test_deb822_keeps_the_bookworm_entry_and_leaves_security_out():
    assert derive([("debian.sources", DEBIAN_SOURCES)], []) == (
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")


def test_deb822_drops_architectures_sources_and_disabled_stanzas():
    text = """\
Types: deb deb-src
URIs: http://a.example/debian http://b.example/debian
Suites: bookworm
Components: main contrib
Architectures: amd64

Types: deb-src
URIs: http://c.example/debian
Suites: bookworm

Types: deb
URIs: http://d.example/debian
Suites: bookworm
Enabled: no

Types: deb
URIs: http://e.example/debian
Suites: bookworm-backports

Types: deb
URIs: http://f.example/debian
Suites: trixie
"""
    assert derive([("x.sources", text)], []) == (
        "Types: deb\nURIs: http://a.example/debian\nSuites: bookworm\nComponents: main contrib\n\n"
        "Types: deb\nURIs: http://b.example/debian\nSuites: bookworm\nComponents: main contrib\n\n"
        "Types: deb\nURIs: http://e.example/debian\nSuites: bookworm-backports\nComponents: main\n")


def test_an_inline_signed_by_key_keeps_its_continuation_lines():
    text = "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm\nComponents: main\nSigned-By:\n" \
           " -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBF\n -----END PGP PUBLIC KEY BLOCK-----\n"
    out = derive([("k.sources", text)], [])
    assert "Signed-By: \n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBF\n -----END PGP PUBLIC KEY BLOCK-----\n" in out


def test_one_line_entries_become_deb822_without_arch():
    text = """\
# the machine's sources
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://m.example/debian bookworm main contrib
deb http://m.example/debian bookworm-updates main
deb-src http://m.example/debian bookworm main
deb http://m.example/debian-security bookworm-security main
deb http://m.example/debian bullseye main
"""
    assert derive([], [("sources.list", text)]) == (
        "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm\nComponents: main contrib\n"
        "Signed-By: /usr/share/keyrings/k.gpg\n\n"
        "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm-updates\nComponents: main\n")


@pytest.mark.parametrize("deb822, one_line", [
    ([], []),
    ([("debian.sources", "Types: deb\nURIs: http://m.example/debian\nSuites: bullseye\n")], []),
    ([], [("sources.list", "deb http://m.example/debian bookworm-updates main\n")]),
    ([("s.sources", "Types: deb-src\nURIs: http://m.example/debian\nSuites: bookworm\n")], []),
])
def test_no_bookworm_entry_is_one_clear_error(deb822, one_line):
    with pytest.raises(NoDebianSources, match=r"^no Debian 'bookworm' entry in the machine's apt sources .* "
                                              r"add Debian bookworm to /etc/apt/sources.list.d/ and retry$"):
        derive(deb822, one_line)


def test_the_same_inputs_give_the_same_text():
    # The text is part of the root's cache key: it must not depend on anything else.
    assert derive([("a", DEBIAN_SOURCES)], []) == derive([("b", DEBIAN_SOURCES)], [])


def test_machine_sources_reads_both_formats(tmp_path: Path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://one.example/debian bookworm main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEBIAN_SOURCES)
    out = sources.machine_sources(tmp_path)
    assert out.index("http://one.example/debian") < out.index("http://mirror.example/debian")
    assert "security" not in out


def test_machine_sources_without_any_file_says_so(tmp_path: Path):
    with pytest.raises(NoDebianSources, match=r"\(nothing\)"):
        sources.machine_sources(tmp_path)
