"""Which architecture a device root runs, and whether an artifact fits it.

A device root says so by its dynamic loader (every glibc system has exactly one of these), or the
user says so with `flash --arch`. An artifact's architecture is its manifest's `target`.
"""

from __future__ import annotations

from pathlib import Path

from build.errors import ConfigError
from build.toolchain import ALIASES, ARCHES, ARCHITECTURES

# The dynamic loader of each architecture, as Debian installs it (relative to the device root).
LOADERS: dict[str, tuple[str, ...]] = {name: arch.loaders for name, arch in ARCHES.items()}


class WrongArchitecture(ConfigError):
    """The artifact was built for another architecture than the device runs."""


def normalise(name: str) -> str:
    """'arm64' -> 'aarch64', 'armv7l' -> 'armv7'; an unknown name is an error listing the known."""
    name = ALIASES.get(name, name)
    if name not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {name!r}; expected one of {', '.join(ARCHITECTURES)}")
    return name


def device_architecture(root: Path) -> str | None:
    """The architecture whose loader the device root holds, or None when it holds none (or several)."""
    found = {arch for arch, loaders in LOADERS.items()
             if any((root / loader).exists() or (root / loader).is_symlink() for loader in loaders)}
    return found.pop() if len(found) == 1 else None


def check_fits(artifact: str, profile: str, device: str | None, where: str) -> None:
    """Refuse an artifact whose architecture is not the device's (when the device's is known)."""
    if device is not None and normalise(artifact) != device:
        raise WrongArchitecture(f"profile {profile} is built for {normalise(artifact)} but {where} runs {device}; "
                                f"build a profile with target = \"{device}\" (nothing was written)")
