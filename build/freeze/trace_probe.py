"""Run the generated entry script from source and record what the program really loads.

    python trace_probe.py OUT ENTRY COMMAND [ARGS...]

Runs ENTRY (the same script the freezer freezes, with the profile's stand-ins) as if invoked under
the name COMMAND, and at exit writes OUT: the imported modules, one `module NAME` line each, and
the shared libraries mapped into the process, one `library PATH` line each. Only `sys` and `os`
(loaded by every interpreter anyway) are used, so the probe adds nothing to what it records.

SLIMFREEZE_TRACE_BLOCK (comma-separated module names) makes those modules and their submodules
unimportable, as they are in a build that excludes them, so the trace sees the fallbacks the
frozen program will take (hashlib without _hashlib, shutil without bz2, ...).
"""

import os
import sys


def _record(out_path):
    lines = [f"module {name}" for name in sorted(sys.modules) if name != "__main__"]
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6}
    except OSError:
        paths = set()
    lines += [f"library {p}" for p in sorted(paths) if p.startswith("/") and ".so" in os.path.basename(p)]
    with open(out_path + ".tmp", "w", encoding="utf-8") as stream:
        stream.write("\n".join(lines) + "\n")
    os.replace(out_path + ".tmp", out_path)


class _Blocker:
    """A meta path finder that refuses the excluded modules, like a frozen build that lacks them."""

    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, name, path=None, target=None):
        parts = name.split(".")
        if any(".".join(parts[:i]) in self.names for i in range(1, len(parts) + 1)):
            raise ModuleNotFoundError(f"No module named {name!r} (excluded by the profile)", name=name)
        return None


def main():
    blocked = [n for n in os.environ.pop("SLIMFREEZE_TRACE_BLOCK", "").split(",") if n]
    if blocked:
        sys.meta_path.insert(0, _Blocker(blocked))
    out_path, entry, command, *args = sys.argv[1:]
    # Running a script puts its folder (build/) first on sys.path, where trace.py would shadow
    # the standard library's `trace`; the app is found through PYTHONPATH instead.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    sys.argv = [command, *args]
    with open(entry, encoding="utf-8") as stream:
        code = compile(stream.read(), entry, "exec")
    try:
        exec(code, {"__name__": "__main__", "__file__": entry})
    finally:
        _record(out_path)


if __name__ == "__main__":
    main()
