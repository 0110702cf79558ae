"""What each target architecture is called by Debian, by qemu and by the toolchain."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from build.errors import ConfigError
from build.toolchain import ALIASES, host_architecture


@dataclass(frozen=True, kw_only=True)
class Arch:
    name: str  # the profile's spelling: aarch64, armv7
    debian: str  # dpkg's: arm64, armhf
    qemu: str  # the user-mode emulator that runs its programs
    triplet: str  # Debian's multiarch folder name
    loader: str  # the program interpreter every dynamic executable of the root names


EMULATED: dict[str, Arch] = {
    "aarch64": Arch(name="aarch64", debian="arm64", qemu="qemu-aarch64-static", triplet="aarch64-linux-gnu",
                    loader="/lib/ld-linux-aarch64.so.1"),
    "armv7": Arch(name="armv7", debian="armhf", qemu="qemu-arm-static", triplet="arm-linux-gnueabihf",
                  loader="/lib/ld-linux-armhf.so.3"),
}


def arch_for(target: str) -> Arch:
    """The emulated architecture `target` names (Debian's spelling accepted); a ConfigError listing the
    known ones, with a suggestion, for anything else."""
    name = ALIASES.get(target, target)
    if name in EMULATED:
        return EMULATED[name]
    if name == host_architecture():
        raise ConfigError(f"target {target!r} is this machine's own architecture: it needs no Debian root")
    known = sorted({*EMULATED, *(a for a, n in ALIASES.items() if n in EMULATED)})
    close = difflib.get_close_matches(target, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(sorted(EMULATED))  # what this accepts (x86_64 is never emulated)
    raise ConfigError(f"unknown target {target!r}: expected one of {listed} (or Debian's arm64/armhf){hint}")
