"""The device side of a flash: its layout, reading its state, checking slots, and the one writer
through which every change to the device goes.

Layout under the target folder (the device root; relative links, so it works wherever the device
is mounted):

    slimfreeze/slots/<slot-id>/            one installed version: artifact files, links, the image
                                           if the profile has one, and the manifest.json it was
                                           flashed from (the slot is verified against that copy)
    slimfreeze/slots/.incoming-<slot-id>/  a slot being written; never pointed at by a link;
                                           removed at the start of the next flash
    slimfreeze/current  -> slots/<slot-id> the version that runs
    slimfreeze/previous -> slots/<slot-id> the version `--rollback` goes back to
    slimfreeze/.current.tmp, .previous.tmp a link's new value, just before it is renamed over the link

A slot id is `<UTC time %Y%m%dT%H%M%SZ>-<first 12 hex digits of the manifest's sha256>`, with
`-2`, `-3`... appended if that name is taken. Concurrent flashes are excluded by an flock on the
`slimfreeze/` folder itself, so a flash never removes another one's `.incoming-*` slot.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import signal
import stat
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from build.errors import ArtifactError, ConfigError, SlimfreezeError
from build.flash.plan import MANIFEST_NAME, Manifest
from build.manifest import parse_manifest, sha256_of
from build.paths import UnsafeDelete, check_deletable

ROOT_NAME = "slimfreeze"
SLOTS_NAME = "slots"
CURRENT = "current"
PREVIOUS = "previous"
INCOMING_PREFIX = ".incoming-"
# A complete slot's name never starts with a dot, so a link can never select an incoming slot.
_LINK_TARGET = re.compile(rf"{SLOTS_NAME}/([^./][^/]*)")
_TEMP_LINK = re.compile(rf"\.({CURRENT}|{PREVIOUS})\.tmp")

WRITE_CHUNK = 256 * 1024
KILL_AT_ENV = "SLIMFREEZE_FLASH_KILL_AT"


class DeviceError(SlimfreezeError):
    """The target cannot take a flash or is not in a usable state."""


class NoSpace(DeviceError):
    """The target's filesystem has too little free space for the new slot."""


class CorruptSlot(DeviceError):
    """A slot on the device no longer matches its manifest."""


class CheckFailed(DeviceError):
    """A command of the new version did not run from the device."""


@dataclass(frozen=True)
class Layout:
    target: Path

    @property
    def root(self) -> Path:
        return self.target / ROOT_NAME

    @property
    def slots(self) -> Path:
        return self.root / SLOTS_NAME

    def slot(self, slot_id: str) -> Path:
        return self.slots / slot_id

    def incoming(self, slot_id: str) -> Path:
        return self.slots / f"{INCOMING_PREFIX}{slot_id}"

    def link(self, name: str) -> Path:
        return self.root / name


@dataclass(frozen=True, kw_only=True)
class DeviceState:
    current: str | None
    previous: str | None
    slots: tuple[str, ...]  # complete slot folders
    leftovers: tuple[Path, ...]  # incoming slots, stray files in slots/, temporary links

    @property
    def orphans(self) -> tuple[str, ...]:
        """Complete slots no link points to: from a flash cut before its switch, or already replaced."""
        return tuple(s for s in self.slots if s not in (self.current, self.previous))


def new_slot_id(manifest_sha256: str, taken: Iterable[str], now: float | None = None) -> str:
    base = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}-{manifest_sha256[:12]}"
    taken = set(taken)
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def check_target(target: Path, *, writable: bool) -> None:
    """One clear error for a target that is missing, not a folder, or (when writing) read-only."""
    if not target.exists():
        raise DeviceError(f"target {target} does not exist; mount the device there or create the folder")
    if not target.is_dir():
        raise DeviceError(f"target {target} is not a directory")
    root = Layout(target).root
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise DeviceError(f"{root} is not a folder made by slimfreeze; move it away and flash again")
    if writable:
        if os.statvfs(target).f_flag & os.ST_RDONLY:
            raise DeviceError(f"target {target} is read-only; remount it read-write "
                              f"(mount -o remount,rw {target}) and try again")
        for folder in (target, root, root / SLOTS_NAME):
            if folder.is_dir() and not os.access(folder, os.W_OK):
                raise DeviceError(f"target {folder} is not writable by this user; fix its permissions "
                                  f"or flash as its owner")


def read_state(layout: Layout) -> DeviceState:
    if not layout.root.is_dir():
        return DeviceState(current=None, previous=None, slots=(), leftovers=())
    slots: list[str] = []
    leftovers: list[Path] = []
    if layout.slots.is_dir():
        for entry in sorted(os.scandir(layout.slots), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                leftovers.append(Path(entry.path))
            else:
                slots.append(entry.name)
    leftovers += sorted(p for p in layout.root.iterdir() if _TEMP_LINK.fullmatch(p.name))
    return DeviceState(current=_read_link(layout.link(CURRENT)), previous=_read_link(layout.link(PREVIOUS)),
                       slots=tuple(slots), leftovers=tuple(leftovers))


def _read_link(path: Path) -> str | None:
    try:
        target = os.readlink(path)
    except FileNotFoundError:
        return None
    except OSError:
        raise DeviceError(f"{path} is not a link made by slimfreeze; move it away and flash again") from None
    match = _LINK_TARGET.fullmatch(target)
    if not match:
        raise DeviceError(f"{path} points to {target!r}, which is not a slimfreeze slot; "
                          f"remove the link and flash again")
    return match.group(1)


def read_content(slot_dir: Path) -> Manifest:
    return parse_manifest((slot_dir / MANIFEST_NAME).read_bytes(), origin=str(slot_dir / MANIFEST_NAME))


def check_slot(slot_dir: Path) -> list[str]:
    """Problems of a slot against its own manifest.json (empty when intact). Files are re-read from
    the device, not from the page cache where the filesystem allows dropping it."""
    if not slot_dir.is_dir() or slot_dir.is_symlink():
        return ["its folder is missing"]
    try:
        content = read_content(slot_dir)
    except OSError:
        return [f"{MANIFEST_NAME} is missing or unreadable"]
    except ArtifactError as exc:
        return [f"{MANIFEST_NAME} is damaged ({exc})"]
    problems: list[str] = []
    for entry in content.payload:
        path = slot_dir / entry.path
        try:
            info = path.lstat()
        except OSError:
            problems.append(f"{entry.path} is missing")
            continue
        if not stat.S_ISREG(info.st_mode):
            problems.append(f"{entry.path} is not a regular file")
        elif info.st_size != entry.size:
            problems.append(f"{entry.path} has {info.st_size:,} bytes instead of {entry.size:,}")
        elif sha256_of(path, uncached=True) != entry.sha256:
            problems.append(f"{entry.path} has the wrong sha256")
    for link in content.links:
        try:
            if os.readlink(slot_dir / link.path) != link.target:
                problems.append(f"link {link.path} does not point to {link.target}")
        except OSError:
            problems.append(f"link {link.path} is missing")
    for executable in content.executables:
        path = slot_dir / executable
        if path.is_file() and not path.stat().st_mode & 0o111:
            problems.append(f"{executable} is not executable")
    return problems


def free_space(target: Path) -> tuple[int, int]:
    """(bytes available to us, allocation block size) of the filesystem holding `target`."""
    info = os.statvfs(target)
    block = info.f_frsize or info.f_bsize
    return info.f_bavail * block, block


def allocated_bytes(paths: Iterable[Path]) -> int:
    """Space the given files/trees occupy (what removing them gives back)."""
    total = 0
    for path in paths:
        info = path.lstat()
        total += info.st_blocks * 512
        if stat.S_ISDIR(info.st_mode):
            total += allocated_bytes(path.iterdir())
    return total


@contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """Hold an exclusive flock on slimfreeze/ for the duration of a change (released if killed)."""
    fd = os.open(layout.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DeviceError(f"another flash is running on {layout.target}; wait for it to finish") from None
        yield
    finally:
        os.close(fd)


def kill_step(environ: Mapping[str, str] = os.environ) -> int | None:
    """The step before which the test hook SLIMFREEZE_FLASH_KILL_AT=n kills the flash (None: unset)."""
    value = environ.get(KILL_AT_ENV)
    if not value:
        return None
    if not value.isdigit():
        raise ConfigError(f"{KILL_AT_ENV}={value!r}: this test hook takes a step number (a whole number); "
                          f"unset it to flash normally")
    return int(value)


class DeviceWriter:
    """Every change a flash makes to the device, one counted step per modifying system call
    (create, write, chmod, fsync, mkdir, link, rename, unlink).

    Test hook, for cutting a flash at every point exactly once: with SLIMFREEZE_FLASH_KILL_AT=n in
    the environment, the process SIGKILLs itself just before step n.
    """

    def __init__(self, *, kill_at: int | None = None) -> None:
        self.steps = 0
        self._kill_at = kill_at

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DeviceWriter:
        return cls(kill_at=kill_step(environ))

    def _step(self) -> None:
        self.steps += 1
        if self.steps == self._kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def mkdir(self, path: Path) -> None:
        self._step()
        os.mkdir(path, 0o755)

    def copy_file(self, source: Path, dest: Path, mode: int) -> None:
        with source.open("rb") as stream:
            self._write(iter(lambda: stream.read(WRITE_CHUNK), b""), dest, mode)

    def write_bytes(self, data: bytes, dest: Path, mode: int = 0o644) -> None:
        self._write((data[i:i + WRITE_CHUNK] for i in range(0, len(data), WRITE_CHUNK)), dest, mode)

    def _write(self, chunks: Iterable[bytes], dest: Path, mode: int) -> None:
        self._step()
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    self._step()
                    view = view[os.write(fd, view):]
            self._step()
            os.fchmod(fd, mode)  # explicit: the mode given to open() is masked by the umask
            self._step()
            os.fsync(fd)
            # Drop the cached pages so the verification that follows reads what the device holds.
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError as exc:
            exc.filename = exc.filename or str(dest)  # write() and fsync() errors carry no name
            raise
        finally:
            os.close(fd)

    def symlink(self, target: str, path: Path) -> None:
        self._step()
        os.symlink(target, path)

    def rename(self, source: Path, dest: Path) -> None:
        self._step()
        os.rename(source, dest)

    def replace(self, source: Path, dest: Path) -> None:
        self._step()
        os.replace(source, dest)

    def unlink(self, path: Path) -> None:
        self._step()
        os.unlink(path)

    def fsync_dir(self, path: Path) -> None:
        self._step()
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        except OSError as exc:
            exc.filename = str(path)
            raise
        finally:
            os.close(fd)

    def remove_tree(self, path: Path, root: Path) -> None:
        """Remove a file, link or folder tree without following links; only strictly inside `root`
        (the device's slimfreeze/ folder: the rest of the device is the user's)."""
        try:
            check_deletable(path, (root,))
        except UnsafeDelete as exc:
            raise DeviceError(str(exc)) from None
        self._remove(path)

    def _remove(self, path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            for entry in sorted(path.iterdir()):
                self._remove(entry)
            self._step()
            os.rmdir(path)
        else:
            self.unlink(path)

    def set_link(self, layout: Layout, name: str, slot_id: str | None) -> None:
        """Point slimfreeze/<name> at a slot atomically (new link under a temporary name, renamed
        over the old one), or remove it when slot_id is None."""
        link = layout.link(name)
        if slot_id is None:
            if os.path.lexists(link):
                self.unlink(link)
                self.fsync_dir(layout.root)
            return
        temp = layout.link(f".{name}.tmp")
        if os.path.lexists(temp):
            self.unlink(temp)
        self.symlink(f"{SLOTS_NAME}/{slot_id}", temp)
        self.fsync_dir(layout.root)
        self.replace(temp, link)
        self.fsync_dir(layout.root)


def is_out_of_space(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)
