"""The Debian sources a target root is made from: the machine's own bookworm entry, re-targeted.

Like scripts/install.sh's bookworm-backports entry, the root's sources are derived from the
machine's apt configuration, so no mirror address is ever written into the repository. From each
binary entry for one of `SUITES` we keep its URIs, components and keyring and those suites, and drop
what would stop another architecture (`Architectures:` / `arch=`). Plain bookworm must be among them.

bookworm-security is left out on purpose: a root is keyed by its sources text and made once, so it
never follows security updates anyway, and it is a separate archive whose armhf index this
machine's mirror served inconsistently ("File has unexpected size"), which fails the whole root.
The root's package versions go into every manifest, so what an artifact bundles is on record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from build.apt_sources import deb822_sources, one_line_sources
from build.errors import SlimfreezeError

SUITE = "bookworm"
# bookworm-backports only for what bookworm lacks (upx-ucl, for Nuitka's upx plugin): apt never
# prefers a backport over a bookworm package unless asked to.
SUITES = ("bookworm", "bookworm-updates", "bookworm-backports")
# Fields copied from a deb822 stanza; anything else (Architectures, Enabled, X-*) stays behind.
KEPT_FIELDS = ("URIs", "Components", "Signed-By", "Trusted", "Check-Valid-Until")
APT = Path("/etc/apt")


class NoDebianSources(SlimfreezeError):
    """The machine's apt configuration names no Debian bookworm entry to make a root from."""


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One apt source for the root: a URI, the suites of ours it serves, its components and keyring."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None = None  # a keyring path, or an inline key (deb822 continuation lines)
    extra: tuple[tuple[str, str], ...] = ()


def _ours(suites: Iterable[str]) -> tuple[str, ...]:
    listed = set(suites)
    return tuple(s for s in SUITES if s in listed)


def deb822_entries(text: str) -> list[Entry]:
    """Entries of a `.sources` file that serve one of our suites as binary packages."""
    found = []
    for source in deb822_sources(text):
        suites = _ours(source.suites)
        if "deb" not in source.types or not source.enabled or not suites:
            continue
        extra = tuple((k, v) for k in KEPT_FIELDS[3:] if (v := source.field(k)) is not None)
        for uri in source.uris:
            found.append(Entry(uri=uri, suites=suites, components=source.components, signed_by=source.signed_by,
                               extra=extra))
    return found


def one_line_entries(text: str) -> list[Entry]:
    """Entries of a one-line sources.list (`deb [options] URI SUITE COMPONENTS...`) for our suites."""
    by_uri: dict[tuple[str, tuple[str, ...], str | None], list[str]] = {}
    for source in one_line_sources(text):
        if source.types != ("deb",) or source.suites[0] not in SUITES:
            continue
        key = (source.uris[0], source.components or ("main",), source.signed_by)
        by_uri.setdefault(key, []).append(source.suites[0])
    return [Entry(uri=uri, suites=_ours(suites), components=components, signed_by=signed_by)
            for (uri, components, signed_by), suites in by_uri.items()]


def render(entries: Sequence[Entry]) -> str:
    """The deb822 text mmdebstrap gets (deterministic: it is part of the root's cache key)."""
    stanzas = []
    for entry in entries:
        lines = ["Types: deb", f"URIs: {entry.uri}", f"Suites: {' '.join(entry.suites)}",
                 f"Components: {' '.join(entry.components)}"]
        if entry.signed_by:
            lines.append(f"Signed-By: {entry.signed_by}")
        lines += [f"{key}: {value}" for key, value in entry.extra]
        stanzas.append("\n".join(lines))
    return "\n\n".join(stanzas) + "\n"


def derive(deb822_files: Sequence[tuple[str, str]], one_line_files: Sequence[tuple[str, str]]) -> str:
    """The root's sources from the machine's files ((name, text) pairs, in apt's reading order);
    NoDebianSources when none names bookworm."""
    entries: list[Entry] = []
    for _, text in one_line_files:
        entries += one_line_entries(text)
    for _, text in deb822_files:
        entries += deb822_entries(text)
    unique = list(dict.fromkeys(entries))
    if not any(SUITE in e.suites for e in unique):
        looked = ", ".join(name for name, _ in [*one_line_files, *deb822_files]) or "nothing"
        raise NoDebianSources(f"no Debian '{SUITE}' entry in the machine's apt sources ({looked}) to make a "
                              f"target root from; add Debian bookworm to /etc/apt/sources.list.d/ and retry")
    return render(unique)


def machine_sources(apt: Path = APT) -> str:
    """derive() over the machine's /etc/apt/sources.list and sources.list.d/*.{list,sources}."""
    def read(paths: Iterable[Path]) -> list[tuple[str, str]]:
        found = []
        for path in paths:
            try:
                found.append((str(path), path.read_text(encoding="utf-8", errors="replace")))
            except OSError:
                continue  # unreadable: apt would skip it too
        return found
    listed = sorted((apt / "sources.list.d").glob("*.list"))
    one_line = read([apt / "sources.list", *listed])
    return derive(read(sorted((apt / "sources.list.d").glob("*.sources"))), one_line)
