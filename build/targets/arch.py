"""The target architectures made as Debian roots (their facts: build.toolchain.ARCHES, the one table)."""

from __future__ import annotations

import difflib

from build.errors import ConfigError
from build.toolchain import ALIASES, ARCHES, Arch, host_architecture

__all__ = ["EMULATED", "Arch", "arch_for"]


# The architectures made as Debian roots and run under qemu (x86_64, this machine's, never is).
EMULATED: dict[str, Arch] = {name: ARCHES[name] for name in ("aarch64", "armv7")}


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
