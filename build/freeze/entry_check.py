"""Before anything is built: the declared entry point imports and is callable, and every module
a command declares can be found, from source with the Python that traces the app."""

from __future__ import annotations

import json
import os
import sys

from build import proc
from build.application import TABLE
from build.config import Profile
from build.errors import ConfigError
from build.freeze.trace import source_paths
from build.project import Project

# Run in a child, so that importing the app's entry module leaves this process as it was.
_PROBE = """
import importlib, importlib.util, json, sys
entry, modules = json.loads(sys.argv[1])
module, _, function = entry.partition(":")
try:
    target = getattr(importlib.import_module(module), function)
except Exception as exc:
    print(f"entry = {entry!r}: {type(exc).__name__}: {exc}")
    sys.exit(1)
if not callable(target):
    print(f"entry = {entry!r}: {function} is not callable")
    sys.exit(1)
for command, name in modules:
    try:
        found = importlib.util.find_spec(name) is not None
    except Exception as exc:
        found = False
    if not found:
        print(f"commands.{command}.modules: no module {name!r} on the app's paths or installed")
        sys.exit(1)
"""


def check_entry_point(project: Project, profile: Profile) -> None:
    """One ConfigError naming the TOML path if the entry or a command's module cannot be found."""
    app = profile.app
    assert app is not None
    modules = [(c, m) for c in profile.commands for m in app.commands[c].modules]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(source_paths(project, profile))}
    done = proc.capture([sys.executable, "-c", _PROBE, json.dumps([app.entry, modules])], env=env,
                        cwd=project.root, timeout=120)
    if done.code != 0:
        last = done.output.strip().splitlines()[-1] if done.output.strip() else "timed out"
        raise ConfigError(f"{TABLE}.{last}")
