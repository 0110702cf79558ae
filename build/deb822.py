"""Debian's deb822 format (apt's .sources files, a source package's .dsc): one reader for both."""

from __future__ import annotations


def stanzas(text: str) -> list[dict[str, str]]:
    """Stanzas as {field: value}, comments dropped. A continuation line is kept as it is, indent
    included, so a stanza written back out stays valid (an inline `Signed-By` key block)."""
    found: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    last: str | None = None
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if fields:
                found.append(fields)
            fields, last = {}, None
        elif line.startswith("#"):
            continue
        elif line[0] in " \t" and last is not None:
            fields[last] += "\n" + line
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip()
            fields[last] = value.strip()
    return found
