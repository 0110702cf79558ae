"""The toolchain a profile's build runs with: the host's Python, a Debian root of the profile's
`target` architecture (build/targets/), or a CPython built for size (build/runtime/)."""

from __future__ import annotations

import importlib
from pathlib import Path

from build.config import Profile
from build.errors import ConfigError
from build.project import Project
from build.toolchain import Toolchain, host_architecture, host_toolchain


def toolchain_for(profile: Profile, project: Project, log: Path) -> Toolchain:
    """Make (or reuse from work/) what the profile needs; the host's own toolchain costs nothing."""
    foreign = profile.target != host_architecture()
    if profile.runtime == "size":
        # Imported on demand: a plain build never loads the runtime builder or the root maker.
        runtime = _provider("build.runtime.toolchain", "runtime = \"size\"", profile)
        return runtime.size_runtime_toolchain(project, log, target=profile.target)
    if foreign:
        targets = _provider("build.targets.toolchain", f"target = \"{profile.target}\"", profile)
        return targets.target_toolchain(profile.target, project, log, backend=profile.backend)
    return host_toolchain()


def _provider(module: str, what: str, profile: Profile):  # noqa: ANN202 - a module
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:
            raise
        raise ConfigError(f"profile '{profile.name}': {what} is not available in this version of slimfreeze") from None
