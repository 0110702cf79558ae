"""The toolchain a profile's build runs with: the host's Python, a Debian root of the profile's
`target` architecture (build/targets/), a CPython built for size (build/runtime/), or both: the
size runtime cross-compiled against the target's root, the freezer running in a venv of it there."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from build.config import BUILT_RUNTIMES, Profile
from build.project import Project
from build.toolchain import Toolchain, host_architecture, host_toolchain

if TYPE_CHECKING:
    from build.targets.toolchain import TargetRoot
    from build.targets.venv import BasePython


def needs_making(profile: Profile) -> bool:
    """Whether the profile's toolchain is made (and cached) rather than the host's own."""
    return profile.runtime in BUILT_RUNTIMES or profile.target != host_architecture()


def toolchain_for(profile: Profile, project: Project, log: Path) -> Toolchain:
    """Make (or reuse from work/) what the profile needs; the host's own toolchain costs nothing."""
    # Imported where used, not to dodge a cycle (tests/test_layout.py sees these edges): a plain
    # build never loads the runtime builder or the root maker.
    foreign = profile.target != host_architecture()
    if profile.runtime == "size" and not foreign and profile.tls:
        # TLS from OpenSSL built for a client (issue 20); if it does not build, neither does the profile.
        from build.runtime.tls import tls_runtime_toolchain

        return tls_runtime_toolchain(project, log)
    if profile.runtime in BUILT_RUNTIMES and not foreign:
        from build.runtime.flags import size_flags
        from build.runtime.toolchain import size_runtime_toolchain

        return size_runtime_toolchain(project, log, flags=size_flags(host_architecture(), profile.runtime))
    if foreign:
        from build.targets.toolchain import target_root, target_toolchain

        made = target_root(profile.target, project, log)
        base = _cross_size_runtime(made, project, log, tls=profile.tls) if profile.runtime == "size" else None
        return target_toolchain(profile.target, project, log, backend=profile.backend, base=base, made=made)
    return host_toolchain()


def _cross_size_runtime(made: TargetRoot, project: Project, log: Path, *, tls: bool) -> BasePython:
    """The size runtime cross-compiled against the target's root, as the base of the root's venv;
    with `tls`, its sibling whose _ssl carries OpenSSL cross-compiled for a client (issue 20)."""
    from build.runtime.cross import Cross
    from build.runtime.toolchain import facts, size_runtime
    from build.targets.venv import BasePython

    cross = Cross(triplet=made.arch.triplet, sysroot=made.made.path, sysroot_key=made.made.spec.key,
                  run=made.launcher())
    runtime = size_runtime(project, log, target=made.arch.name, cross=cross)
    extra: dict[str, object] = {}
    if tls:
        from build.runtime.tls import cross_tls_runtime

        runtime, extra = cross_tls_runtime(project, runtime, cross, log)
    # The runtime lives under the project's cache, which the root binds at the same path.
    return BasePython(python=PurePosixPath(runtime.python), key=runtime.key, facts={**facts(project, runtime), **extra})
