"""Which distribution ("crate") a module or file belongs to.

The index is read once from installed-package metadata (importlib.metadata: every distribution's
file list) and the standard library's own list and folders; lookups are pure functions of it.
Anything inferred rather than found is returned with guess=True.
"""

from __future__ import annotations

import csv
import functools
import os
import re
import sys
import sysconfig
from dataclasses import dataclass
from importlib import metadata
from pathlib import PurePosixPath

PYTHON_STDLIB = "python-stdlib"
PYTHON_RUNTIME = "python-runtime"
PYINSTALLER = "pyinstaller"
NUITKA = "nuitka"
SLIMFREEZE = "slimfreeze"
APP = "app"
UNKNOWN = "unknown"

_EXT_SUFFIX = re.compile(r"(\.cpython-[^.]*|\.abi3|\.cp\d+[^.]*)?\.(so|pyd)$")
_VENDOR_HASH = re.compile(r"-[0-9a-f]{8}$")  # auditwheel/delocate rename libfoo.so.1 to libfoo-1a2b3c4d.so.1


@dataclass(frozen=True, kw_only=True)
class Attribution:
    module: str
    package: str
    distribution: str
    guess: bool = False


@dataclass(frozen=True, kw_only=True)
class DistIndex:
    modules: dict[str, str]  # dotted module -> distribution
    top_level: dict[str, str]  # top-level import name -> distribution
    files: dict[str, str]  # path relative to site-packages -> distribution
    basenames: dict[str, str]  # shared library file name shipped inside a wheel -> distribution
    rthooks: dict[str, str]  # pyi_rth_* -> distribution (pyinstaller or pyinstaller-hooks-contrib)
    stdlib: frozenset[str]  # top-level names of the standard library


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def module_of_path(path: str) -> str | None:
    """paho/mqtt/client.py -> paho.mqtt.client; a/__init__.py -> a; x.cpython-311-...so -> x."""
    p = PurePosixPath(path)
    if p.suffix in (".py", ".pyc"):
        stem = p.with_suffix("")
    elif _EXT_SUFFIX.search(p.name):
        stem = p.with_name(_EXT_SUFFIX.sub("", p.name))
    else:
        return None
    parts = [part for part in stem.parts if part != "__pycache__"]
    if not parts or any(not part.isidentifier() for part in parts[:-1]):
        return None
    if parts[-1] == "__init__":
        parts = parts[:-1]
    name = ".".join(parts)
    return name.split(".cpython-")[0] or None


@functools.lru_cache(maxsize=4)
def load_index(paths: tuple[str, ...] | None = None) -> DistIndex:
    """Read the distributions installed in `paths` (default: the running environment's sys.path)
    and the standard library (I/O, cached)."""
    modules: dict[str, str] = {}
    top: dict[str, str] = {}
    files: dict[str, str] = {}
    basenames: dict[str, str] = {}
    rthooks: dict[str, str] = {}
    found = metadata.distributions() if paths is None else metadata.distributions(path=list(paths))
    for name, top_level, record in sorted(filter(None, map(_read_installed, found)), key=lambda d: d[0]):
        for tl in top_level:
            top.setdefault(tl, name)
        for rel in record:
            if rel.startswith(".."):
                continue
            files.setdefault(rel, name)
            base = PurePosixPath(rel).name
            if base.startswith("pyi_rth_") and base.endswith(".py"):
                rthooks.setdefault(base[:-3], name)
            module = module_of_path(rel)
            if module and ".dist-info" not in rel and ".data/" not in rel:
                modules.setdefault(module, name)
                top.setdefault(module.split(".")[0], name)
            elif base.startswith("lib") and ".so" in base:
                basenames.setdefault(base, name)
    return DistIndex(modules=modules, top_level=top, files=files, basenames=basenames, rthooks=rthooks,
                     stdlib=_stdlib_names())


def _read_installed(dist: metadata.Distribution) -> tuple[str, tuple[str, ...], tuple[str, ...]] | None:
    """(name, top-level names, RECORD paths) of an installed distribution; None without a name or
    when its metadata cannot be read (a damaged environment given with --site-packages or
    --python costs that distribution its name, not the analysis)."""
    try:
        name = canonical(dist.metadata["Name"] or "")
        top_level = tuple((dist.read_text("top_level.txt") or "").split())
        record = tuple(entry.as_posix() for entry in dist.files or ())
    except (OSError, UnicodeDecodeError, ValueError, csv.Error):
        return None
    return (name, top_level, record) if name else None


def _stdlib_names() -> frozenset[str]:
    names = set(sys.stdlib_module_names)
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib"):
        folder = paths.get(key)
        if not folder or not os.path.isdir(folder):
            continue
        for entry in os.listdir(folder):
            if entry in ("site-packages", "dist-packages"):
                continue
            module = module_of_path(entry) or (entry if entry.isidentifier() else None)
            if module:
                names.add(module.split(".")[0])
        dynload = os.path.join(folder, "lib-dynload")
        if os.path.isdir(dynload):
            names.update(m.split(".")[0] for m in map(module_of_path, os.listdir(dynload)) if m)
    return frozenset(names)


def classify_module(module: str, index: DistIndex, *, slimfreeze_build: bool = False,
                    script: bool = False, app: frozenset[str] = frozenset()) -> Attribution:
    """The distribution of a Python module (or a frozen script when `script`). `app`: the names of
    the entry scripts, whose own package is the application too. A module no metadata names is
    guessed to be the distribution of its top-level name ("requests?"), never the application."""
    top = module.split(".")[0]

    def result(dist: str, guess: bool = False) -> Attribution:
        return Attribution(module=module, package=top, distribution=dist, guess=guess)

    if top.startswith(("_slimfreeze", "slimfreeze_")):
        return result(SLIMFREEZE)
    if top.startswith(("pyimod0", "pyiboot0")):
        return result(PYINSTALLER)
    if top.startswith("pyi_rth_"):
        return result(index.rthooks.get(top, PYINSTALLER), guess=top not in index.rthooks)
    if top == "__main__":
        return result(SLIMFREEZE if slimfreeze_build else APP)
    if script:
        return result(APP)
    if top in index.stdlib:  # first: at run time the standard library shadows a same-named package
        return result(PYTHON_STDLIB)
    if module in index.modules:
        return result(index.modules[module])
    if top in index.top_level:
        return result(index.top_level[top])
    if top == APP or top in app:
        return result(APP)
    if top.startswith(("nuitka", "__nuitka")):
        return result(NUITKA)
    return result(canonical(top.lstrip("_") or top), guess=True)


def library_stem(name: str) -> str:
    """libssl.so.3 -> libssl; libcrypto-1a2b3c4d.so.3 -> libcrypto; libbz2.so.1.0 -> libbz2."""
    stem = name.split(".so")[0]
    return _VENDOR_HASH.sub("", stem)


def classify_file(path: str, index: DistIndex, *, soname: str | None = None, slimfreeze_build: bool = False,
                  app: frozenset[str] = frozenset()) -> Attribution:
    """The distribution of a file as laid out at run time (relative to the runtime folder)."""
    p = PurePosixPath(path)
    base = p.name

    def result(dist: str, module: str | None = None, package: str | None = None, guess: bool = False) -> Attribution:
        return Attribution(module=module or path, package=package or (p.parts[0] if p.parts else path),
                           distribution=dist, guess=guess)

    if base == "base_library.zip":
        return result(PYTHON_RUNTIME, package="base_library")
    if base.startswith("libpython"):
        return result(PYTHON_RUNTIME, package=library_stem(base))
    if path in index.files:
        module = module_of_path(path)
        return result(index.files[path], module=module, package=(module or path).split(".")[0]
                      if module else None)
    for part in p.parts[:-1]:
        if part.endswith(".dist-info"):
            return result(canonical(part.split("-")[0]), package=part)
    if _EXT_SUFFIX.search(base) and not base.startswith("lib"):
        # An extension module: python3.11/lib-dynload/_ssl.cpython-311-...so, Nuitka's _ssl.so,
        # or pkg/sub/_speedups.cpython-311-...so.
        dirs = [d for d in p.parts[:-1] if d not in ("lib-dynload",) and not d.startswith("python3")]
        module = ".".join([*dirs, _EXT_SUFFIX.sub("", base)])
        a = classify_module(module, index, slimfreeze_build=slimfreeze_build, app=app)
        return result(a.distribution, module=module, package=a.package, guess=a.guess)
    if base.startswith("lib") and ".so" in base:
        if base in index.basenames:
            return result(index.basenames[base], package=library_stem(base))
        stem = library_stem(soname or base)
        if stem.startswith("libpython"):
            return result(PYTHON_RUNTIME, package=stem)
        return result(stem, package=stem)
    if p.suffix in (".pyc", ".py"):
        # Loose bytecode (PyInstaller's noarchive, `archive = false`): named by its module.
        module = module_of_path(path)
        if module:
            a = classify_module(module, index, slimfreeze_build=slimfreeze_build, app=app)
            return result(a.distribution, module=module, package=a.package, guess=a.guess)
    top = p.parts[0] if len(p.parts) > 1 else None
    # A data file inside a package's folder (certifi/cacert.pem) is that package's distribution's.
    if top and top in index.top_level:
        return result(index.top_level[top], package=top)
    if top and top in index.stdlib:
        return result(PYTHON_STDLIB, package=top, guess=True)
    if top and (top == APP or top in app):
        return result(APP, package=top)
    if top and top.isidentifier():
        return result(canonical(top.lstrip("_") or top), package=top, guess=True)
    return result(UNKNOWN, guess=True)
