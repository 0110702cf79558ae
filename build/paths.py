"""Names that become paths, and the one way slimfreeze deletes anything.

Every name that ends up as a path component (profile names, command names, collected folder names,
names read from a manifest) is checked once, where it enters, by `plain_name`. Independently, every
delete goes through `remove_tree`, which refuses anything that is not strictly inside one of the
project's own output folders (work/, dist/, size_reports/), symlinks resolved. Either check alone
would have stopped `[tool.slimfreeze.profiles.".."]` from deleting the project.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from build.errors import ConfigError, SlimfreezeError

# A letter, digit or '_' first: that rules out '', '.', '..', '-x' (an option) and hidden names.
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
MAX_NAME = 128


def is_plain_name(name: object) -> bool:
    return isinstance(name, str) and len(name) <= MAX_NAME and _PLAIN.fullmatch(name) is not None


def plain_name(name: object, where: str) -> str:
    """`name` if it is safe as one path component; else a ConfigError naming `where` it came from."""
    if not is_plain_name(name):
        raise ConfigError(f"{where}: {name!r} is not a plain name (a letter, digit or '_' first, then "
                          f"letters, digits, '.', '_' or '-'; at most {MAX_NAME} characters)")
    return name  # type: ignore[return-value]


class UnsafeDelete(SlimfreezeError):
    """A delete outside the project's output folders was asked for: a bug or a hostile name."""


def _strictly_inside(path: Path, root: Path) -> bool:
    return path != root and root in path.parents


def check_deletable(path: Path, roots: Iterable[Path]) -> Path:
    """`path` resolved, if it lies strictly inside one of `roots` (resolved too); else UnsafeDelete."""
    # Resolve the parent, not the path: deleting a symlink removes the link, not what it points to.
    resolved = Path(os.path.realpath(path.parent)) / path.name
    real_roots = [Path(os.path.realpath(root)) for root in roots]
    if path.name in ("", ".", "..") or not any(_strictly_inside(resolved, root) for root in real_roots):
        raise UnsafeDelete(f"refusing to delete {path}: not inside "
                           + " or ".join(str(root) for root in real_roots))
    return resolved


def remove_tree(path: Path, roots: Iterable[Path], *, missing_ok: bool = True) -> None:
    """Delete a file, link or folder that lies strictly inside one of `roots`."""
    target = check_deletable(path, roots)
    if target.is_symlink() or target.is_file():
        target.unlink(missing_ok=missing_ok)
    elif target.is_dir():
        shutil.rmtree(target)
    elif not missing_ok:
        raise FileNotFoundError(target)


# renameat2(2) flag: swap two existing paths in one step (Linux 3.15+, glibc 2.28+).
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap `a` and `b` atomically; False when this system or filesystem cannot (then nothing moved)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def publish_tree(stage: Path, target: Path, roots: Iterable[Path]) -> None:
    """Put the folder `stage` at `target` so that `target` is never missing: `stage` is moved beside
    it, then the two are exchanged in one renameat2(RENAME_EXCHANGE) and the old one is removed
    (remove_tree, so `target` must lie inside `roots`). Without an old one, or where the kernel or
    filesystem cannot exchange, renames do it."""
    check_deletable(target, roots)
    target.parent.mkdir(parents=True, exist_ok=True)
    incoming = target.with_name(f".{target.name}.incoming")
    outgoing = target.with_name(f".{target.name}.outgoing")
    for leftover in (incoming, outgoing):  # of a publish that was cut short
        remove_tree(leftover, roots)
    shutil.move(str(stage), incoming)  # a rename when on the same filesystem
    if not os.path.lexists(target):
        os.rename(incoming, target)
    elif _exchange(incoming, target):
        remove_tree(incoming, roots)  # now the old version
    else:
        os.replace(target, outgoing)
        os.replace(incoming, target)
        remove_tree(outgoing, roots)
