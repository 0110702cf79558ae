"""Debian's deb822 format (apt's .sources files, a source package's .dsc), read by python-debian:
one reader for both, which knows comments, continuation lines, PGP armour and dash-escaping."""

from __future__ import annotations

from debian.deb822 import Deb822, Dsc


def stanzas(text: str) -> list[dict[str, str]]:
    """Stanzas as {field: value}, comments dropped. A continuation line is kept as it is, indent
    included, so a stanza written back out stays valid (an inline `Signed-By` key block)."""
    return [dict(stanza) for stanza in Deb822.iter_paragraphs(text.splitlines(keepends=True), use_apt_pkg=False)]


def signed_stanza(text: str) -> dict[str, str]:
    """The first stanza of a (possibly clear-signed) file such as a .dsc, its PGP armour removed and
    its dash-escaped lines restored, every field as text; {} when there is none."""
    stanza = Dsc(text.splitlines(keepends=True))
    return {key: stanza.get_as_string(key) for key in stanza}
