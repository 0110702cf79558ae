"""apt's sources as one form: deb822 `.sources` stanzas and one-line `sources.list` entries.

The one reader for the runtime's deb-src entry (build/runtime/sources.py) and the target roots'
sources (build/targets/sources.py), with the stricter rule of the two it replaces: comments are
skipped in both formats, a trailing `# ...` on a one-line entry included, as apt does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from build.deb822 import stanzas


@dataclass(frozen=True, kw_only=True)
class AptSource:
    """One entry: `fields` are a deb822 stanza's, as written (continuation lines kept); a one-line
    entry has `options` (the text inside its [ ]) instead."""

    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    enabled: bool = True
    fields: tuple[tuple[str, str], ...] = ()
    options: str = ""

    def field(self, name: str) -> str | None:
        return dict(self.fields).get(name)

    @property
    def signed_by(self) -> str | None:
        """The keyring (a path, or an inline key), from either format."""
        if self.fields:
            return self.field("Signed-By")
        found = dict(o.split("=", 1) for o in self.options.split() if "=" in o)
        return found.get("signed-by")


def deb822_sources(text: str) -> list[AptSource]:
    """The stanzas of a `.sources` file (disabled ones too, marked so)."""
    return [AptSource(types=tuple(s.get("Types", "").split()), uris=tuple(s.get("URIs", "").split()),
                      suites=tuple(s.get("Suites", "").split()),
                      components=tuple(s.get("Components", "main").split()),
                      enabled=s.get("Enabled", "yes").strip().lower() != "no", fields=tuple(s.items()))
            for s in stanzas(text)]


_ONE_LINE = re.compile(r"^\s*(?P<type>deb|deb-src)\s+(?:\[(?P<options>[^\]]*)\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)"
                       r"\s*(?P<components>.*)$")


def one_line_sources(text: str) -> list[AptSource]:
    """The `deb`/`deb-src URI SUITE COMPONENTS...` lines of a sources.list, comments skipped."""
    found = []
    for line in text.splitlines():
        match = _ONE_LINE.match(line.split("#", 1)[0])
        if match:
            found.append(AptSource(types=(match["type"],), uris=(match["uri"],), suites=(match["suite"],),
                                   components=tuple(match["components"].split()),
                                   options=(match["options"] or "").strip()))
    return found


def one_line(entry: AptSource, kind: str) -> str:
    """`entry` (one URI, one suite) as a one-line entry of type `kind`."""
    options = f"[{entry.options}] " if entry.options else ""
    return f"{kind} {options}{entry.uris[0]} {entry.suites[0]} {' '.join(entry.components)}".rstrip() + "\n"
