"""Stand-in modules that a profile puts in place of heavy standard-library modules.

Each `_slimfreeze_<name>.py` here replaces `<name>` (dots become underscores) in the frozen program:
the generated entry script registers it in `sys.modules` before the application imports anything,
and the backend excludes the real module, so its code and native libraries are not bundled.
"""

from pathlib import Path

DIRECTORY = Path(__file__).parent


def module_name(replaced: str) -> str:
    """`urllib.request` -> `_slimfreeze_urllib_request`."""
    return "_slimfreeze_" + replaced.replace(".", "_")


# What excluding each replaced module must also drop: the native parts only it uses.
NATIVE_COMPANIONS: dict[str, tuple[str, ...]] = {
    "ssl": ("_ssl",),
    "urllib.request": (),
}
