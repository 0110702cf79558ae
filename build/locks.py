"""One maker of a cached thing at a time: two builds (or a test session and a user's build) may want
the same runtime, root or venv at once; the second waits for the first, then finds it made."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def held(lock: Path) -> Iterator[None]:
    """Hold an exclusive flock on the file `lock` (made if missing); released when the block ends, and
    by the kernel when the process ends however it ends."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@contextmanager
def held_if_free(lock: Path) -> Iterator[bool]:
    """Like `held`, without waiting: yields whether the lock was free (and is now ours)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


@contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Hold `<folder>.lock`, beside the folder being made."""
    with held(folder.with_name(folder.name + ".lock")):
        yield
