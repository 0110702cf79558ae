"""The toolchain a profile's build runs with: the host's Python, a Debian root of the profile's
`target` architecture (build/targets/), or a CPython built for size (build/runtime/)."""

from __future__ import annotations

from pathlib import Path

from build.config import Profile
from build.project import Project
from build.toolchain import Toolchain, host_architecture, host_toolchain


def needs_making(profile: Profile) -> bool:
    """Whether the profile's toolchain is made (and cached) rather than the host's own."""
    return profile.runtime == "size" or profile.target != host_architecture()


def toolchain_for(profile: Profile, project: Project, log: Path) -> Toolchain:
    """Make (or reuse from work/) what the profile needs; the host's own toolchain costs nothing."""
    # Imported where used, not to dodge a cycle (tests/test_layout.py sees these edges): a plain
    # build never loads the runtime builder or the root maker.
    if profile.runtime == "size":
        from build.runtime.toolchain import size_runtime_toolchain

        return size_runtime_toolchain(project, log, target=profile.target)
    if profile.target != host_architecture():
        from build.targets.toolchain import target_toolchain

        return target_toolchain(profile.target, project, log, backend=profile.backend)
    return host_toolchain()
