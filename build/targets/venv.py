"""The project's pinned freezer packages in a venv inside a target root, made once per requirement set.

Only what runs inside the root goes in: the app's run-time dependencies and the chosen backend's
freezer (the orchestrator, the analysis and the reports run on the host). Pins come from
pyproject.toml, the one place they are listed. One venv per backend, because under emulation pip
is slow: Nuitka (an sdist pip turns into a wheel) and zstandard took 103 s on aarch64, PyInstaller
24-27 s; on armhf PyInstaller has no armv7l wheel and pip compiles its bootloader (140-290 s).

The venv lives inside the root, at a guest path (/opt/slimfreeze/venv-<key>), so renaming the root
never moves it. It is made at a temporary guest path and renamed complete; its console scripts'
`#!` lines name that temporary path, which is harmless: everything runs `python -m <tool>`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from build import proc
from build.errors import ConfigError
from build.locks import held
from build.project import pins
from build.paths import remove_tree

GUEST_FOLDER = PurePosixPath("/opt/slimfreeze")
STAMP = ".slimfreeze-venv.json"
# The distributions each backend's build imports inside the root (pins: pyproject.toml).
FREEZERS: dict[str, tuple[str, ...]] = {
    "pyinstaller": ("pyinstaller", "pyinstaller-hooks-contrib"),
    "nuitka": ("nuitka", "ordered-set", "zstandard"),
}
PIP_TIMEOUT = 3600.0  # armhf compiles PyInstaller's bootloader under emulation


ROOT_PYTHON = PurePosixPath("/usr/bin/python3.11")


@dataclass(frozen=True, kw_only=True)
class BasePython:
    """Another interpreter a venv can be made of: the size runtime cross-compiled for the target. It
    lives under the project's cache, which every root binds at the same path (emulation.host_binds)."""

    python: PurePosixPath
    key: str  # what it was built from: another interpreter, another venv
    facts: Mapping[str, object]


@dataclass(frozen=True, kw_only=True)
class Venv:
    guest: PurePosixPath  # its folder as the guest sees it
    host: Path  # the same folder on the host
    requirements: tuple[str, ...]

    @property
    def python(self) -> PurePosixPath:
        return self.guest / "bin" / "python"


def _name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def requirements(pyproject_text: str, backend: str) -> tuple[str, ...]:
    """The pinned requirement lines for a root's venv: run time + `backend`'s freezer (pure)."""
    if backend not in FREEZERS:
        raise ConfigError(f"no target venv for backend {backend!r}; expected one of {', '.join(FREEZERS)}")
    found = pins(pyproject_text)
    build = {_name(r): r for r in found.build}
    missing = [n for n in FREEZERS[backend] if n not in build]
    if missing:
        raise ConfigError(f"pyproject.toml's build dependencies do not pin {', '.join(missing)}")
    return (*found.run, *(build[n] for n in FREEZERS[backend]))


def venv_key(root_key: str, reqs: Sequence[str], base: str | None = None) -> str:
    data: dict[str, object] = {"root": root_key, "requirements": list(reqs)}
    if base is not None:  # the root's own python3.11 keeps the keys venvs were made under before
        data["base"] = base
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]


def make_venv(root: Path, root_key: str, reqs: Sequence[str], *, launch: Sequence[str], log: Path,
              deletable: Sequence[Path], base: BasePython | None = None) -> Venv:
    """The venv for `reqs` inside `root` (a host path), made now if missing.

    `launch` is the argv prefix that runs a guest program in this root (build.targets.emulation).
    The venv has no pip of its own: the root's Debian pip installs into it (`pip --python`), which
    saves ensurepip's 20-40 s under emulation. `base`: the interpreter the venv is made of, when not
    the root's own python3.11.
    """
    key = venv_key(root_key, reqs, base.key if base else None)
    guest = GUEST_FOLDER / f"venv-{key}"
    host = root / guest.relative_to("/")
    venv = Venv(guest=guest, host=host, requirements=tuple(reqs))
    if (host / STAMP).is_file():
        return venv
    with held(root.parent / f".{root.name}.venv-{key}.lock"):  # two builds of one target at once
        if (host / STAMP).is_file():
            return venv
        _make(root, key, venv, launch=launch, log=log, deletable=deletable,
              python=base.python if base else ROOT_PYTHON)
    return venv


def _make(root: Path, key: str, venv: Venv, *, launch: Sequence[str], log: Path, deletable: Sequence[Path],
          python: PurePosixPath) -> None:
    partial_guest = GUEST_FOLDER / f".venv-{key}.partial"
    partial = root / partial_guest.relative_to("/")
    remove_tree(partial, deletable)
    remove_tree(venv.host, deletable)  # no stamp: an interrupted rename; never used as it is
    try:
        partial.parent.mkdir(parents=True, exist_ok=True)
        proc.run([*launch, str(python), "-m", "venv", "--without-pip", str(partial_guest)], log=log, timeout=600)
        # The root's pip installs into the venv whatever its interpreter (`pip --python`).
        proc.run([*launch, str(ROOT_PYTHON), "-m", "pip", "--python", str(partial_guest / "bin" / "python"),
                  "install", "--no-input", "--disable-pip-version-check", *venv.requirements], log=log,
                 timeout=PIP_TIMEOUT)
        (partial / STAMP).write_text(json.dumps({"key": key, "requirements": list(venv.requirements)}, indent=2)
                                     + "\n", encoding="utf-8")
        partial.rename(venv.host)
    finally:
        remove_tree(partial, deletable)
