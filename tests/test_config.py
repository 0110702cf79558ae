"""Profile resolution and validation: TOML snippet in, resolved profile (or one clear error) out."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from declared_app import with_app

from build.config import RUNTIMES, load_profiles, resolve_profiles, select
from build.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def resolve(toml: str):
    return resolve_profiles(with_app(tomllib.loads(toml)["tool"]["slimfreeze"]))


def test_base_defaults_are_the_backend_defaults():
    profile = resolve("[tool.slimfreeze.profiles.plain]\n")["plain"]
    assert (profile.backend, profile.layout, profile.multicall) == ("pyinstaller", "onefile", True)
    assert profile.commands == ("greet", "serve", "boss")  # every declared command, in declared order
    assert (profile.strip, profile.optimize, profile.upx, profile.tls) == (False, 0, False, True)
    assert profile.exclude == () and profile.budget is None
    assert profile.effective_compression == "zlib"


def test_inheritance_chain_overrides_and_lists_replace():
    profiles = resolve("""
        [tool.slimfreeze.profiles.a]
        strip = true
        exclude = ["tkinter", "pydoc"]
        description = "A"
        [tool.slimfreeze.profiles.b]
        inherits = "a"
        optimize = 2
        [tool.slimfreeze.profiles.c]
        inherits = "b"
        exclude = ["doctest"]
        strip = false
    """)
    b, c = profiles["b"], profiles["c"]
    assert (b.strip, b.optimize, b.exclude) == (True, 2, ("tkinter", "pydoc"))
    assert b.description == ""  # a description is a profile's own, never inherited
    assert (c.strip, c.optimize, c.exclude) == (False, 2, ("doctest",))
    assert c.inherits == "b"


def test_profiles_may_inherit_from_one_defined_later():
    profiles = resolve("""
        [tool.slimfreeze.profiles.child]
        inherits = "parent"
        [tool.slimfreeze.profiles.parent]
        budget = 1000
    """)
    assert profiles["child"].budget == 1000


def test_cycle_is_reported_with_its_path():
    with pytest.raises(ConfigError, match=r"inheritance cycle a -> c -> b -> a$"):
        resolve("""
            [tool.slimfreeze.profiles.a]
            inherits = "c"
            [tool.slimfreeze.profiles.b]
            inherits = "a"
            [tool.slimfreeze.profiles.c]
            inherits = "b"
        """)


def test_self_inheritance_is_a_cycle():
    with pytest.raises(ConfigError, match="cycle a -> a"):
        resolve('[tool.slimfreeze.profiles.a]\ninherits = "a"\n')


def test_unknown_parent_suggests_closest():
    with pytest.raises(ConfigError, match=r"profiles\.b\.inherits: no profile 'mni'; did you mean 'min'\?"):
        resolve('[tool.slimfreeze.profiles.min]\n[tool.slimfreeze.profiles.b]\ninherits = "mni"\n')


def test_unknown_key_names_the_toml_path_and_suggests():
    with pytest.raises(ConfigError) as info:
        resolve('[tool.slimfreeze.profiles.p]\nexlude = ["x"]\n')
    assert str(info.value) == "tool.slimfreeze.profiles.p: unknown key 'exlude'; did you mean 'exclude'?"


def test_unknown_top_level_key_suggests_profiles():
    with pytest.raises(ConfigError, match="unknown key 'profile'; did you mean 'profiles'"):
        resolve("[tool.slimfreeze.profile.p]\n")


@pytest.mark.parametrize(("snippet", "message"), [
    ('backend = "pyinstaler"', r"backend = 'pyinstaler': expected one of pyinstaller, nuitka; did you mean 'pyinstaller'\?"),
    ('layout = "onefiles"', r"expected one of onefile, onedir; did you mean 'onefile'"),
    ("optimize = 3", r"optimize = 3: expected 0, 1 or 2"),
    ("optimize = true", r"optimize = True: expected 0, 1 or 2"),
    ('strip = "yes"', r"strip = 'yes': expected true or false"),
    ("budget = -5", r"budget = -5: expected a positive number of bytes"),
    ('exclude = "tkinter"', r"exclude = 'tkinter': expected a list of non-empty strings"),
    ('commands = ["gret"]', r"unknown command 'gret' \(the app declares greet, serve, boss\).*did you mean 'greet'"),
    ("commands = []", r"expected at least one command"),
    ('stand_ins = ["json"]', r"no stand-in for 'json'"),
    ('image = "ext4"', r"image = 'ext4': expected one of squashfs"),
    ("image_block_size = 1000", r"expected a power of two from 4096"),
])
def test_bad_values_name_the_key_and_what_is_expected(snippet, message):
    with pytest.raises(ConfigError, match=message):
        resolve(f"[tool.slimfreeze.profiles.p]\n{snippet}\n")


def test_compression_is_checked_against_the_backend():
    with pytest.raises(ConfigError, match="the pyinstaller backend offers zlib"):
        resolve('[tool.slimfreeze.profiles.p]\ncompression = "zstd"\n')
    profile = resolve('[tool.slimfreeze.profiles.p]\nbackend = "nuitka"\ncompression = "none"\n')["p"]
    assert profile.effective_compression == "none"


def test_nuitka_cannot_share_one_folder_between_executables():
    with pytest.raises(ConfigError, match="use multicall = true"):
        resolve('[tool.slimfreeze.profiles.p]\nbackend = "nuitka"\nlayout = "onedir"\nmulticall = false\n')


def test_tls_false_implies_the_ssl_stand_in():
    profiles = resolve("""
        [tool.slimfreeze.profiles.a]
        stand_ins = ["urllib.request"]
        [tool.slimfreeze.profiles.b]
        inherits = "a"
        tls = false
    """)
    assert profiles["a"].effective_stand_ins == ("urllib.request",)
    assert profiles["b"].effective_stand_ins == ("ssl", "urllib.request")


def test_excluding_ssl_without_tls_is_refused_because_paho_needs_it():
    with pytest.raises(ConfigError, match="tls = false already replaces 'ssl'"):
        resolve('[tool.slimfreeze.profiles.p]\ntls = false\nexclude = ["ssl"]\n')


def test_select_suggests_the_closest_profile():
    profiles = resolve("[tool.slimfreeze.profiles.min]\n[tool.slimfreeze.profiles.default]\n")
    assert [p.name for p in select(profiles, ["default", "min"])] == ["default", "min"]
    with pytest.raises(ConfigError, match="unknown profile 'mn'; did you mean 'min'"):
        select(profiles, ["mn"])


def test_a_pyproject_that_is_not_utf8_is_one_clear_error(tmp_path):
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.slimfreeze]\n# \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_profiles(tmp_path / "pyproject.toml")


def test_invalid_toml_is_one_clear_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.slimfreeze\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_profiles(tmp_path / "pyproject.toml")


def test_shipped_profiles_resolve_and_keep_their_promises():
    profiles = load_profiles(ROOT / "pyproject.toml")
    assert {"default", "min", "min-tls", "onedir-min", "nuitka-min"} <= set(profiles)
    assert profiles["default"].strip is False and profiles["default"].exclude == ()
    assert profiles["min"].tls is False and profiles["min-tls"].tls is True
    assert profiles["min"].layout == "onefile" and profiles["min"].multicall
    assert profiles["min"].commands == profiles["min"].app.command_names
    assert profiles["min"].budget == 3 * 1024 * 1024
    assert profiles["onedir-min"].layout == "onedir" and not profiles["onedir-min"].multicall
    assert profiles["nuitka-min"].backend == "nuitka"
    for profile in profiles.values():
        data = profile.to_dict()
        assert data["name"] == profile.name and isinstance(data["exclude"], list)


@pytest.mark.parametrize("spelling, target", [("aarch64", "aarch64"), ("arm64", "aarch64"), ("armv7", "armv7"),
                                              ("armhf", "armv7"), ("x86_64", "x86_64"), ("amd64", "x86_64")])
def test_target_is_spelled_as_users_expect_and_debians_names_are_accepted(spelling, target):
    profile = resolve_profiles(with_app({"profiles": {"p": {"target": spelling}}}))["p"]
    assert profile.target == target
    assert profile.to_dict()["target"] == target


def test_an_unknown_target_is_answered_with_the_list_and_the_closest():
    with pytest.raises(ConfigError) as err:
        resolve_profiles(with_app({"profiles": {"p": {"target": "aarch46"}}}))
    assert "x86_64, aarch64, armv7" in str(err.value) and "did you mean 'aarch64'" in str(err.value)


def test_target_defaults_to_the_build_machine_and_is_inherited():
    profiles = resolve_profiles(with_app({"profiles": {"a": {"target": "armhf"}, "b": {"inherits": "a"}, "c": {}}}))
    assert profiles["b"].target == "armv7"
    # Debian's own word for the machine, independent of how the code reads it.
    debian_arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    assert profiles["c"].target == {"amd64": "x86_64", "arm64": "aarch64", "armhf": "armv7"}[debian_arch]


@pytest.mark.parametrize("value", ["fast", "", 1, True])
def test_runtime_is_system_or_size(value):
    with pytest.raises(ConfigError, match="runtime"):
        resolve_profiles(with_app({"profiles": {"p": {"runtime": value}}}))
    assert resolve_profiles(with_app({"profiles": {"p": {"runtime": "size"}}}))["p"].runtime == "size"


def test_the_balanced_runtime_is_a_profile_choice_for_this_machine():
    from build.freeze.toolchains import needs_making
    from build.runtime.flags import RECIPES

    profiles = load_profiles(ROOT / "pyproject.toml")
    assert profiles["min-balanced"].runtime == "balanced" and needs_making(profiles["min-balanced"])
    assert set(RECIPES) == {"size", "balanced"} and "balanced" in RUNTIMES
    with pytest.raises(ConfigError, match=r"p: runtime = 'balanced' is built for this machine only"):
        resolve_profiles(with_app({"profiles": {"p": {"runtime": "balanced", "target": "armv7", "tls": False}}}))
    with pytest.raises(ConfigError, match=r"p: runtime = 'balanced' has no TLS build yet"):
        resolve_profiles(with_app({"profiles": {"p": {"runtime": "balanced"}}}))
    with pytest.raises(ConfigError, match=r"p: runtime = 'balanced' works with the pyinstaller backend, or with nuitka"):
        resolve_profiles(with_app({"profiles": {"p": {"runtime": "balanced", "backend": "nuitka", "tls": False}}}))
