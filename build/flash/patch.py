"""`flash --patch FILE`: update a device from the slot that holds the patch's base.

The patch (build/update/delta.py) is checked first (its signature, with --trusted-key, then its
content), then applied to the device's current or previous slot whose manifest is the patch's
base: into a folder beside the flash, never into the slot itself. The result is a dist folder
whose every file must match NEW's sha256 before the ordinary flash writes it as a new slot and
switches; any refusal leaves the device as it was.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import replace
from pathlib import Path

from build.flash.device import CURRENT, PREVIOUS, Layout, check_slot, check_target, read_state
from build.flash.install import FlashRequest, Say, flash
from build.flash.plan import MANIFEST_NAME
from build.manifest import sha256_of
from build.update.delta import Patch, PatchRefused, apply_patch, read_patch
from build.update.signing import SignatureRefused, load_public_key, verify_file


def read_checked_patch(patch_file: Path, trusted_key: Path | None) -> Patch:
    """The patch, once its signature shows the trusted key made it (when one is given) and its
    structure is sound; refusals say that nothing was written."""
    if trusted_key is not None:
        try:
            verify_file(patch_file, load_public_key(trusted_key))
        except SignatureRefused as exc:
            raise SignatureRefused(f"{exc}; nothing was written") from None
        except OSError as exc:
            raise PatchRefused(f"cannot read the patch {patch_file}: {exc.strerror}") from None
    try:
        return read_patch(patch_file)
    except PatchRefused as exc:
        raise PatchRefused(f"{exc}; nothing was written") from None


def flash_patch(patch_file: Path, request: FlashRequest, *, say: Say = functools.partial(print, flush=True)) -> str | None:
    """Apply `patch_file` to the slot holding its base and flash the result; return the new slot id."""
    patch = read_checked_patch(patch_file, request.trusted_key)
    check_target(request.target, writable=True)
    layout = Layout(request.target)
    state = read_state(layout)
    base = None
    for name, slot in ((CURRENT, state.current), (PREVIOUS, state.previous)):
        if slot and _manifest_sha256(layout.slot(slot) / MANIFEST_NAME) == patch.old.manifest_sha256:
            problems = check_slot(layout.slot(slot))
            if problems:
                raise PatchRefused(f"the patch's base is {name} slot {slot}, which is corrupted ({problems[0]}); "
                                   f"flash the full build of {patch.new.profile} instead; nothing was written")
            base = slot
            break
    if base is None:
        holds = f"its current slot is {state.current}" if state.current else "nothing is flashed on it"
        raise PatchRefused(f"{request.target} does not hold the patch's base {patch.old.describe()} ({holds}); "
                           f"flash the full build of {patch.new.profile} instead; nothing was written")
    say(f"flash: patch {patch_file.name} from {patch.old.describe()} to {patch.new.describe()}, "
        f"applied to slot {base}")
    with tempfile.TemporaryDirectory(prefix="slimfreeze-patched-") as tmp:
        try:
            apply_patch(patch, layout.slot(base), Path(tmp) / patch.new.profile)
        except PatchRefused as exc:
            raise PatchRefused(f"{exc}; nothing was written") from None
        say(f"flash: the patched files match {patch.new.profile}'s sha256")
        return flash(replace(request, dist_root=Path(tmp), profile=patch.new.profile), say=say)


def _manifest_sha256(path: Path) -> str | None:
    try:
        return sha256_of(path)
    except OSError:
        return None
