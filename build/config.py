"""Profiles from `[tool.slimfreeze]` in pyproject.toml, resolved like Cargo's `[profile.*]`.

Raw TOML never leaves this module: `load_profiles()` returns frozen `Profile` objects. Resolution is
one pure function (`resolve_profiles`) with explicit merge rules:

- a profile's own keys override the keys of the profile it `inherits` (chains allowed, cycles are
  errors); every profile ultimately inherits from a base profile (the backends' defaults, every command the app declares);
- list values replace, they do not append (as in Cargo): what a profile says is what it gets;
- unknown keys and bad values are errors that name the TOML path and suggest the closest key.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from build.application import Application, parse_application, read_tool_table
from build.errors import ConfigError
from build.paths import plain_name
from build.toolchain import ALIASES, ARCHITECTURES, host_architecture

TABLE = "tool.slimfreeze"
BACKENDS = ("pyinstaller", "nuitka")
LAYOUTS = ("onefile", "onedir")
# What "compression" may say, per backend. PyInstaller's archive is always zlib; Nuitka's onefile
# payload is zstd unless switched off.
COMPRESSIONS: Mapping[str, tuple[str, ...]] = {"pyinstaller": ("zlib",), "nuitka": ("zstd", "none")}
IMAGE_FORMATS = ("squashfs",)
# `system`: the Python that runs build.py; `size`: CPython built for size (build/runtime/).
RUNTIMES = ("system", "size", "balanced")
# Built from Debian's source (build/runtime/): `size` trims for bytes, `balanced` keeps the speed
# (-O2, quickening on) with the trims that cost none; their recipes are build/runtime/flags.RECIPES.
BUILT_RUNTIMES = ("size", "balanced")
TARGETS = tuple(ARCHITECTURES)
IMAGE_COMPRESSORS = ("xz", "zstd", "gzip", "lzo", "lz4")
# Modules with a slimfreeze stand-in (build/freeze/standins/): a tiny module that replaces the real one in
# the frozen program. `tls = false` implies the `ssl` one.
STAND_INS = ("ssl", "urllib.request")


@dataclass(frozen=True, kw_only=True)
class Profile:
    """One fully resolved build profile."""

    name: str
    description: str = ""
    inherits: str | None = None
    backend: str = "pyinstaller"
    layout: str = "onefile"
    commands: tuple[str, ...] = ()  # which of the app's commands to bundle; BASE holds them all
    multicall: bool = True
    strip: bool = False
    optimize: int = 0
    debug_ranges: bool = True
    archive: bool = True
    exclude: tuple[str, ...] = ()
    exclude_unused: bool = False
    stand_ins: tuple[str, ...] = ()
    upx: bool = False
    compression: str | None = None
    tls: bool = True
    budget: int | None = None
    image: str | None = None
    image_compressor: str = "xz"
    image_block_size: int = 1 << 20
    pyinstaller_args: tuple[str, ...] = ()
    nuitka_args: tuple[str, ...] = ()
    target: str = field(default_factory=host_architecture)
    runtime: str = "system"
    # The application the profile builds (`[tool.slimfreeze.app]`): the same for every profile.
    app: Application | None = field(default=None, compare=False, repr=False)

    @property
    def effective_stand_ins(self) -> tuple[str, ...]:
        """Stand-ins to install, with `ssl` added when TLS is off."""
        wanted = set(self.stand_ins) | (set() if self.tls else {"ssl"})
        return tuple(sorted(wanted))

    @property
    def effective_compression(self) -> str:
        return self.compression or COMPRESSIONS[self.backend][0]

    def to_dict(self) -> dict[str, Any]:
        """The resolved profile as plain data, for manifests, reports and `--list-profiles`."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "app"}
        data["compression"] = self.effective_compression
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Profile) if f.name not in ("name", "app"))


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _check_value(path: str, key: str, value: Any, app: Application) -> Any:
    """Validate one raw TOML value for `key`; return it in the form Profile stores."""

    def fail(expected: str) -> ConfigError:
        return ConfigError(f"{path}.{key} = {value!r}: expected {expected}")

    def one_of(choices: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ConfigError(f"{path}.{key} = {value!r}: expected one of {', '.join(choices)}"
                              + (_suggest(value, choices) if isinstance(value, str) else ""))
        return value

    def str_list() -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise fail("a list of non-empty strings")
        return tuple(value)

    match key:
        case "description" | "inherits":
            if not isinstance(value, str):
                raise fail("a string")
            return value
        case "backend":
            return one_of(BACKENDS)
        case "layout":
            return one_of(LAYOUTS)
        case "image":
            return one_of(IMAGE_FORMATS)
        case "image_compressor":
            return one_of(IMAGE_COMPRESSORS)
        case "target":
            # Spelled as users expect (aarch64, armv7); Debian's names (arm64, armhf) are accepted.
            if isinstance(value, str) and value in ALIASES:
                return ALIASES[value]
            if not isinstance(value, str) or value not in TARGETS:
                raise ConfigError(f"{path}.{key} = {value!r}: expected one of {', '.join(TARGETS)} (or Debian's "
                                  f"{', '.join(ARCHITECTURES.values())})"
                                  + (_suggest(value, [*TARGETS, *ALIASES]) if isinstance(value, str) else ""))
            return value
        case "runtime":
            return one_of(RUNTIMES)
        case "compression":
            return one_of(tuple(sorted({c for cs in COMPRESSIONS.values() for c in cs})))
        case "commands":
            commands = str_list()
            known = app.command_names
            for command in commands:
                if command not in known:
                    raise ConfigError(f"{path}.commands: unknown command '{command}' (the app declares "
                                      f"{', '.join(known)}){_suggest(command, known)}")
            if not commands:
                raise fail("at least one command")
            return commands
        case "stand_ins":
            names = str_list()
            for name in names:
                if name not in STAND_INS:
                    raise ConfigError(f"{path}.stand_ins: no stand-in for '{name}' (available: "
                                      f"{', '.join(STAND_INS)}){_suggest(name, STAND_INS)}")
            return names
        case "exclude" | "pyinstaller_args" | "nuitka_args":
            return str_list()
        case "multicall" | "strip" | "upx" | "tls" | "exclude_unused" | "debug_ranges" | "archive":
            if not isinstance(value, bool):
                raise fail("true or false")
            return value
        case "optimize":
            if isinstance(value, bool) or value not in (0, 1, 2):
                raise fail("0, 1 or 2")
            return value
        case "budget":
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise fail("a positive number of bytes")
            return value
        case "image_block_size":
            # mksquashfs takes powers of two from 4 KiB to 1 MiB; say so now, not after the build.
            if isinstance(value, bool) or not isinstance(value, int) or value not in [1 << n for n in range(12, 21)]:
                raise fail("a power of two from 4096 (4 KiB) to 1048576 (1 MiB)")
            return value
    raise AssertionError(key)  # unreachable: keys are checked before values


def _check_table(path: str, table: Any, app: Application) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{path} must be a table")
    checked = {}
    for key, value in table.items():
        if key not in KEYS:
            raise ConfigError(f"{path}: unknown key '{key}'{_suggest(key, KEYS)}")
        checked[key] = _check_value(path, key, value, app)
    return checked


def resolve_profiles(tool_table: Mapping[str, Any]) -> dict[str, Profile]:
    """Resolve every profile in a `[tool.slimfreeze]` table (pure: TOML data in, profiles out),
    each checked against the application the same table declares."""
    unknown = set(tool_table) - {"profiles", "app"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"{TABLE}: unknown key '{key}'{_suggest(key, ['profiles', 'app'])}")
    app = parse_application(tool_table.get("app"))
    base = Profile(name="<base>", commands=app.command_names, app=app)
    raw_profiles = tool_table.get("profiles", {})
    if not isinstance(raw_profiles, dict) or not raw_profiles:
        raise ConfigError(f"{TABLE}.profiles: no profiles defined")
    # A profile's name becomes work/<name> and dist/<name>: checked here, where it enters.
    own = {plain_name(name, f"{TABLE}.profiles.{name!r}"): _check_table(f"{TABLE}.profiles.{name}", table, app)
           for name, table in raw_profiles.items()}

    resolved: dict[str, Profile] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> Profile:
        if name in resolved:
            return resolved[name]
        if name in chain:
            cycle = " -> ".join((*chain[chain.index(name):], name))
            raise ConfigError(f"{TABLE}.profiles: inheritance cycle {cycle}")
        keys = own[name]
        parent_name = keys.get("inherits")
        if parent_name is None:
            parent = base
        elif parent_name not in own:
            raise ConfigError(f"{TABLE}.profiles.{name}.inherits: no profile '{parent_name}'"
                              + _suggest(parent_name, sorted(own)))
        else:
            parent = resolve(parent_name, (*chain, name))
        # description is the profile's own; everything else is inherited unless overridden.
        profile = dataclasses.replace(parent, **{**keys, "name": name, "inherits": parent_name,
                                                 "description": keys.get("description", "")})
        _check_combination(profile)
        resolved[name] = profile
        return profile

    for name in own:
        resolve(name, ())
    return resolved


def _check_combination(profile: Profile) -> None:
    """Reject key combinations a backend cannot build, naming the profile."""
    path = f"{TABLE}.profiles.{profile.name}"
    if profile.compression and profile.compression not in COMPRESSIONS[profile.backend]:
        raise ConfigError(f"{path}.compression = '{profile.compression}': the {profile.backend} backend "
                          f"offers {', '.join(COMPRESSIONS[profile.backend])}")
    if profile.backend == "nuitka" and profile.layout == "onedir" and not profile.multicall:
        raise ConfigError(f"{path}: Nuitka cannot share one standalone folder between several "
                          f"executables; use multicall = true (one executable, one link per command)")
    if not profile.archive and profile.backend != "pyinstaller":
        raise ConfigError(f"{path}.archive = false: only the pyinstaller backend keeps modules in an archive")
    if profile.tls is False and "ssl" in profile.exclude:
        raise ConfigError(f"{path}: tls = false already replaces 'ssl' with a stand-in; "
                          f"remove it from exclude (excluding it breaks paho-mqtt)")
    if profile.runtime == "balanced" and profile.target != host_architecture():
        raise ConfigError(f"{path}: runtime = 'balanced' is built for this machine only; for target = "
                          f"'{profile.target}' use 'size' or 'system'")
    if profile.runtime == "balanced" and profile.tls:
        raise ConfigError(f"{path}: runtime = 'balanced' has no TLS build yet (its OpenSSL is the size runtime's); "
                          f"set tls = false or runtime = 'size'")
    if profile.runtime == "size" and profile.target != host_architecture() and profile.backend != "pyinstaller":
        # Cross-compiled for the target and measured with PyInstaller; Nuitka there compiles its C
        # under emulation against it, which was never tried.
        raise ConfigError(f"{path}: runtime = 'size' for target = '{profile.target}' works with the pyinstaller "
                          f"backend; with nuitka set runtime = 'system'")
    _check_scenarios(profile, path)
    if profile.runtime in BUILT_RUNTIMES and profile.backend == "nuitka" and "--static-libpython=yes" not in profile.nuitka_args:
        # The size runtime's libpython exports only what PyInstaller's bootloader and the extension
        # modules import (build/runtime/exports.py); a Nuitka program links against far more,
        # unless it links the static library, which keeps everything.
        raise ConfigError(f"{path}: runtime = '{profile.runtime}' works with the pyinstaller backend, or with nuitka given "
                          f"nuitka_args = [\"--static-libpython=yes\"]; else set runtime = 'system'")


def _check_scenarios(profile: Profile, path: str) -> None:
    """Every bundled command must be proved by at least one of its scenarios in this build: a
    command whose every scenario needs a left-out command (or the other TLS setting) would
    otherwise ship unchecked."""
    app = profile.app
    assert app is not None
    for name in profile.commands:
        command = app.commands[name]
        if not any(s.applies(profile.commands, profile.tls) for s in command.scenarios):
            needs = sorted({n for s in command.scenarios for n in s.needs} - set(profile.commands))
            why = f"they need {', '.join(needs)}, which it leaves out" if needs else f"none is for tls = {str(profile.tls).lower()}"
            raise ConfigError(f"{path}.commands: '{name}' would ship unchecked: none of its scenarios can run in "
                              f"this build ({why})")


def load_profiles(pyproject: Path) -> dict[str, Profile]:
    """Read pyproject.toml and resolve its profiles."""
    return resolve_profiles(read_tool_table(pyproject))


def select(profiles: Mapping[str, Profile], names: list[str]) -> list[Profile]:
    """The profiles named on the command line, in order, or an error suggesting the closest name."""
    chosen = []
    for name in names:
        if name not in profiles:
            raise ConfigError(f"unknown profile '{name}'{_suggest(name, sorted(profiles))} "
                              f"(profiles: {', '.join(profiles)})")
        chosen.append(profiles[name])
    return chosen
