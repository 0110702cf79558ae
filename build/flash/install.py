"""Flash a built profile onto a device root safely; roll back; verify what a device holds.

The on-device layout (slots, `current`, `previous`) is described in build.flash.device.

A flash, in order; after every step the device has an intact, runnable `current`:
 1. Checks that write nothing: the dist folder against its manifest, the target (a folder,
    writable), the current slot against its sha256s, and the free space (statvfs) against the
    space the new slot needs, counting what removing leftovers of earlier flashes gives back.
    A refusal leaves the device untouched.
 2. Under an flock on slimfreeze/: remove leftovers of killed flashes (`.incoming-*` slots,
    temporary links) and slots no link points to.
 3. Write slots/.incoming-<id>/, fsync every file and folder, re-read every file and check it
    against the manifest's sha256, then rename it to slots/<id>.
 4. Switch: `previous` -> old current, then `current` -> new slot (each a new link under a
    temporary name, fsync, rename over the old link, fsync). A cut between the two leaves both on
    the old version.
 5. Run the commands from `current` (`--version`, `hello`); if one fails, switch back to the old
    version and remove the new slot.
 6. Remove slots other than `current` and `previous`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from build import proc
from build.errors import ConfigError
from build.flash.arch import check_fits, device_architecture, normalise
from build.flash.device import (
    CURRENT,
    KILL_AT_ENV,
    PREVIOUS,
    CheckFailed,
    CorruptSlot,
    DeviceError,
    DeviceState,
    DeviceWriter,
    Layout,
    NoSpace,
    allocated_bytes,
    check_slot,
    check_target,
    free_space,
    is_out_of_space,
    locked,
    new_slot_id,
    read_content,
    read_state,
)
from build.flash.plan import (
    MANIFEST_NAME,
    DeviceCheck,
    FlashPlan,
    Manifest,
    count,
    load_dist,
    space_needed,
)
from build.sizes import format_bytes
from build.toolchain import ALIASES, host_architecture
from build.update.signing import SignatureRefused, load_public_key, signature_path, verify_bytes

Say = Callable[[str], None]
T = TypeVar("T")
CHECK_TIMEOUT = 120.0  # seconds per command; a onefile build unpacks itself at every start


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True, kw_only=True)
class FlashRequest:
    dist_root: Path
    profile: str
    target: Path
    arch: str | None = None  # the device's architecture, when its root does not show it
    run_commands: bool = True
    dry_run: bool = False
    force: bool = False  # replace a corrupted current slot instead of refusing
    trusted_key: Path | None = None  # when given, only a build this key signed is flashed


def checks_for(content: Manifest) -> tuple[DeviceCheck, ...]:
    """What runs after a switch: the checks the application declared for a device (`device = true`
    scenarios), as the build recorded them in the manifest."""
    return content.device_checks


def check_problem(check: DeviceCheck, code: int, output: str) -> str | None:
    """Why a declared device check failed, given its exit status and output, or None (pure)."""
    lines = output.strip().splitlines()
    if code != check.exit:
        return f"exited with status {code} (expected {check.exit}): {lines[-1] if lines else '(no output)'}"
    unmatched = next((p for p in check.output if not re.search(p, output, re.MULTILINE)), None)
    if unmatched is not None:
        return f"printed {lines[0] if lines else '(no output)'!r}, which does not match {unmatched!r}"
    return None


def _no_stray_os_errors(action: Callable[..., T]) -> Callable[..., T]:
    """An OSError the writing steps did not already explain (reading the dist folder or the
    device's state, before anything is written) becomes one clear error instead of a traceback."""
    @functools.wraps(action)
    def checked(*args: Any, **kwargs: Any) -> T:
        try:
            return action(*args, **kwargs)
        except OSError as exc:
            raise DeviceError(f"cannot read {exc.filename or 'the device'}: {exc.strerror or exc}; "
                              f"nothing was changed") from None
    return checked


@_no_stray_os_errors
def flash(request: FlashRequest, *, say: Say = _print) -> str | None:
    """Install dist/<profile> as the current version on the target; return the new slot id
    (None for a dry run)."""
    plan = load_dist(request.dist_root, request.profile)
    if request.trusted_key is not None:
        check_signed(plan, load_public_key(request.trusted_key), say)
    content = plan.content
    target = request.target
    check_target(target, writable=True)
    device_arch = normalise(request.arch) if request.arch else device_architecture(target)
    check_fits(content.target, content.profile, device_arch, str(target))
    _require_runnable(content, request.run_commands)
    layout = Layout(target)
    state = read_state(layout)
    current_ok = _check_current(layout, state, force=request.force, say=say)

    free, block = free_space(target)
    need = space_needed(content, manifest_size=len(plan.manifest_bytes), block_size=block)
    garbage = [*state.leftovers, *(layout.slot(s) for s in state.orphans)]
    reclaim = allocated_bytes(garbage)
    say(f"flash: profile {content.profile} ({count(len(content.payload), 'file')}, "
        f"{count(len(content.links), 'link')}, "
        f"{format_bytes(content.payload_bytes)}) from {plan.dist_dir} to {target}")
    say(f"flash: needs {format_bytes(need)} on the device (block size {block:,}); "
        f"{format_bytes(free)} free" + (f" + {format_bytes(reclaim)} held by leftovers" if reclaim else ""))
    slot_id = new_slot_id(plan.manifest_sha256, state.slots)
    if request.dry_run:
        _describe(plan, layout, state, slot_id, garbage, current_ok=current_ok, say=say)
    if need > free + reclaim:
        raise NoSpace(f"not enough space on {target}: the new version needs {need:,} bytes, "
                      f"{free + reclaim:,} bytes are free; nothing was written"
                      + (f", slot {state.current} stays current" if state.current else ""))
    if request.dry_run:
        say("flash: dry run: it fits; nothing was written")
        return None

    writer = DeviceWriter.from_env()
    try:
        if not layout.root.is_dir():
            with suppress(FileExistsError):  # another flash just made it; the lock sorts us out
                writer.mkdir(layout.root)
            writer.fsync_dir(target)
        with locked(layout):
            if read_state(layout) != state:
                raise DeviceError(f"{target} changed while the flash was being prepared; run it again")
            _remove(writer, layout, garbage, say)
            if not layout.slots.is_dir():
                writer.mkdir(layout.slots)
                writer.fsync_dir(layout.root)
            _install(writer, plan, layout, slot_id, state, say)
            old_current = state.current if current_ok else None
            # previous first: a cut between the two switches leaves both on the old version.
            if old_current and old_current != state.previous:
                writer.set_link(layout, PREVIOUS, old_current)
            writer.set_link(layout, CURRENT, slot_id)
            say(f"flash: current -> slots/{slot_id}"
                + (f", previous -> slots/{old_current}" if old_current else ""))
            if request.run_commands:
                _check_or_switch_back(writer, layout, content, slot_id, state, old_current, say)
            else:
                say("flash: --no-run: the commands were not run")
            fresh = read_state(layout)
            _remove(writer, layout, [layout.slot(s) for s in fresh.orphans], say)
    except OSError as exc:
        raise DeviceError(f"flashing {target} failed: {_describe_os_error(exc)}; "
                          f"run `flash --verify --target {target}` to see what it holds") from None
    say(f"flash: done: profile {content.profile} is current on {target} (slot {slot_id})")
    return slot_id


def check_signed(plan: FlashPlan, trusted: Ed25519PublicKey, say: Say) -> None:
    """Refuse a build whose manifest the trusted key did not sign. The manifest holds every file's sha256 (load_dist checked them), so its signature covers them all."""
    manifest = plan.dist_dir / MANIFEST_NAME
    signature = signature_path(manifest)
    try:
        verify_bytes(plan.manifest_bytes, signature.read_bytes() if signature.exists() else None, trusted,
                     what=str(manifest))
    except SignatureRefused as exc:
        raise SignatureRefused(f"{exc}; nothing was written") from None
    say(f"flash: {MANIFEST_NAME} is signed by the trusted key and every file matches it")


@_no_stray_os_errors
def rollback(target: Path, *, run_commands: bool = True, say: Say = _print) -> str:
    """Make `previous` current again (and the replaced version `previous`); return its slot id."""
    check_target(target, writable=True)
    layout = Layout(target)
    state = read_state(layout)
    back = state.previous
    if back is None or back == state.current:
        raise DeviceError(f"there is no previous version on {target} to roll back to")
    problems = check_slot(layout.slot(back))
    if problems:
        raise CorruptSlot(_corrupt(target, PREVIOUS, back, problems) + "; not rolling back")
    content = read_content(layout.slot(back))
    _require_runnable(content, run_commands)
    current_ok = state.current is not None and not check_slot(layout.slot(state.current))
    forward = state.current if current_ok else None
    writer = DeviceWriter.from_env()
    try:
        with locked(layout):
            if read_state(layout) != state:
                raise DeviceError(f"{target} changed while the rollback was being prepared; run it again")
            # current first: a cut between the two switches leaves both on the version rolled back to.
            writer.set_link(layout, CURRENT, back)
            writer.set_link(layout, PREVIOUS, forward)
            say(f"flash: rollback: current -> slots/{back}"
                + (f", previous -> slots/{forward}" if forward else f" (slot {state.current} was corrupted)"))
            if run_commands:
                try:
                    _run_checks(layout, content, say)
                except CheckFailed as exc:
                    if not forward:
                        raise CheckFailed(f"{exc}; slot {back} stays current (the other one is corrupted)") from None
                    writer.set_link(layout, CURRENT, forward)
                    writer.set_link(layout, PREVIOUS, back)
                    raise CheckFailed(f"{exc}; switched back to slot {forward}") from None
            fresh = read_state(layout)
            _remove(writer, layout, [*fresh.leftovers, *(layout.slot(s) for s in fresh.orphans)], say)
    except OSError as exc:
        raise DeviceError(f"rolling back {target} failed: {_describe_os_error(exc)}; "
                          f"run `flash --verify --target {target}` to see what it holds") from None
    say(f"flash: done: profile {content.profile} (slot {back}) is current on {target}")
    return back


@_no_stray_os_errors
def verify(target: Path, *, run_commands: bool = True, say: Say = _print) -> str:
    """Check the current (and previous) slot against their manifests and run current's commands."""
    check_target(target, writable=False)
    layout = Layout(target)
    state = read_state(layout)
    if state.current is None:
        raise DeviceError(f"nothing is flashed on {target} (no {layout.link(CURRENT)})")
    problems = check_slot(layout.slot(state.current))
    if problems:
        raise CorruptSlot(_corrupt(target, CURRENT, state.current, problems) + _repair_hint(target, state))
    content = read_content(layout.slot(state.current))
    say(f"flash: verify: current slot {state.current} (profile {content.profile}): "
        f"{count(len(content.payload), 'file')} match their sha256")
    if state.previous and state.previous != state.current:
        problems = check_slot(layout.slot(state.previous))
        if problems:
            raise CorruptSlot(_corrupt(target, PREVIOUS, state.previous, problems)
                              + "; --rollback would refuse it, flash again to replace it")
        say(f"flash: verify: previous slot {state.previous} is intact")
    for path in [*state.leftovers, *(layout.slot(s) for s in state.orphans)]:
        say(f"flash: verify: {path.relative_to(layout.root)} is left over (the next flash removes it)")
    if run_commands:
        _require_runnable(content, run_commands)
        _run_checks(layout, content, say)
    return state.current


def _install(writer: DeviceWriter, plan: FlashPlan, layout: Layout, slot_id: str, state: DeviceState,
             say: Say) -> None:
    """Write the slot under its incoming name, verify it from the device, rename it into place."""
    content = plan.content
    incoming = layout.incoming(slot_id)
    say(f"flash: writing {count(len(content.payload), 'file')} and {count(len(content.links), 'link')} "
        f"to {incoming.relative_to(layout.root)}")
    try:
        writer.mkdir(incoming)
        for folder in content.dirs:
            writer.mkdir(incoming / folder)
        for entry in content.payload:
            writer.copy_file(plan.dist_dir / entry.path, incoming / entry.path, plan.modes[entry.path])
        for link in content.links:
            writer.symlink(link.target, incoming / link.path)
        writer.write_bytes(plan.manifest_bytes, incoming / MANIFEST_NAME)
        for folder in reversed(content.dirs):
            writer.fsync_dir(incoming / folder)
        writer.fsync_dir(incoming)
        writer.fsync_dir(layout.slots)
        problems = check_slot(incoming)
        if problems:
            raise CorruptSlot(f"the new slot on {layout.target} does not read back as written "
                              f"({problems[0]}); the device may be failing"
                              + _unchanged(state))
        writer.rename(incoming, layout.slot(slot_id))
        writer.fsync_dir(layout.slots)
    except OSError as exc:
        with suppress(OSError):
            writer.remove_tree(incoming, layout.root)
        if is_out_of_space(exc):
            raise NoSpace(f"{layout.target} ran out of space while writing {exc.filename}; "
                          f"the new slot was removed" + _unchanged(state)) from None
        raise DeviceError(f"writing to {layout.target} failed: {_describe_os_error(exc)}; "
                          f"the new slot was removed" + _unchanged(state)) from None
    except CorruptSlot:
        with suppress(OSError):
            writer.remove_tree(incoming, layout.root)
        raise
    say(f"flash: {count(len(content.payload), 'file')} read back from the device match their sha256; "
        f"slot {slot_id} is complete")


def _check_or_switch_back(writer: DeviceWriter, layout: Layout, content: Manifest, slot_id: str,
                          state: DeviceState, old_current: str | None, say: Say) -> None:
    try:
        _run_checks(layout, content, say)
    except CheckFailed as exc:
        if not old_current:
            raise CheckFailed(f"{exc}; there is no intact earlier version on {layout.target} to switch "
                              f"back to, so slot {slot_id} stays current") from None
        # current first: a cut between the two switches leaves both on the old version.
        writer.set_link(layout, CURRENT, old_current)
        writer.set_link(layout, PREVIOUS, state.previous)
        writer.remove_tree(layout.slot(slot_id), layout.root)
        writer.fsync_dir(layout.slots)
        raise CheckFailed(f"{exc}; switched back to slot {old_current} and removed the new version") from None


def _run_checks(layout: Layout, content: Manifest, say: Say) -> None:
    """Run each check through the `current` link, so the switch itself is what gets tested."""
    base = layout.link(CURRENT)
    env = {k: v for k, v in os.environ.items() if k != KILL_AT_ENV}
    for check in checks_for(content):
        argv = [str(base / check.argv[0]), *check.argv[1:]]
        try:
            ran = proc.capture(argv, env=env, timeout=CHECK_TIMEOUT, separate_stderr=True)
        except OSError as exc:
            raise CheckFailed(f"`{check.label}` cannot run from the device: {exc.strerror}") from None
        if ran.code is None:
            raise CheckFailed(f"`{check.label}` run from the device did not finish in {CHECK_TIMEOUT:.0f} s") from None
        output = (ran.output.strip() or ran.errors.strip()).splitlines()
        first = output[0] if output else "(no output)"
        problem = check_problem(check, ran.code, ran.output + ran.errors)
        if problem:
            raise CheckFailed(f"`{check.label}` run from the device {problem}")
        say(f"flash: ran {CURRENT}/{check.label}: {first}")


def _check_current(layout: Layout, state: DeviceState, *, force: bool, say: Say) -> bool:
    """Whether an intact current slot exists; a corrupted one is refused unless forced."""
    if state.current is None:
        return False
    problems = check_slot(layout.slot(state.current))
    if not problems:
        return True
    message = _corrupt(layout.target, CURRENT, state.current, problems)
    if not force:
        raise CorruptSlot(message + _repair_hint(layout.target, state))
    say(f"flash: warning: {message}; --force: replacing it (it is not kept for --rollback)")
    return False


def _corrupt(target: Path, name: str, slot_id: str, problems: list[str]) -> str:
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return f"{name} slot {slot_id} on {target} is corrupted: {problems[0]}{more}"


def _repair_hint(target: Path, state: DeviceState) -> str:
    hint = "; flash again with --force to replace it"
    if state.previous and state.previous != state.current:
        hint += f", or go back to slot {state.previous} with `flash --rollback --target {target}`"
    return hint


def _describe_os_error(exc: OSError) -> str:
    return f"{exc.strerror} ({exc.filename})" if exc.filename else str(exc.strerror or exc)


def _unchanged(state: DeviceState) -> str:
    return f", slot {state.current} stays current" if state.current else ", nothing is current"


def _require_runnable(content: Manifest, run_commands: bool) -> None:
    host = host_architecture()
    if run_commands and ALIASES.get(content.target, content.target) != host:
        raise ConfigError(f"profile {content.profile} is built for {content.target} and this machine is "
                          f"{host}, so its commands cannot be run here; pass --no-run")


def _remove(writer: DeviceWriter, layout: Layout, paths: Iterable[Path], say: Say) -> None:
    paths = list(paths)
    for path in paths:
        say(f"flash: removing {path.relative_to(layout.root)}")
        writer.remove_tree(path, layout.root)
    if paths:
        if layout.slots.is_dir():
            writer.fsync_dir(layout.slots)
        writer.fsync_dir(layout.root)


def _describe(plan: FlashPlan, layout: Layout, state: DeviceState, slot_id: str, garbage: list[Path], *,
              current_ok: bool, say: Say) -> None:
    """The dry-run listing: every change the flash would make, in order."""
    for path in garbage:
        say(f"  remove {path.relative_to(layout.root)}")
    incoming = layout.incoming(slot_id).relative_to(layout.root)
    for entry in plan.content.payload:
        say(f"  write  {incoming}/{entry.path}  {format_bytes(entry.size)}")
    for link in plan.content.links:
        say(f"  link   {incoming}/{link.path} -> {link.target}")
    say(f"  write  {incoming}/{MANIFEST_NAME}  {format_bytes(len(plan.manifest_bytes))}")
    say(f"  rename {incoming} -> slots/{slot_id}")
    if current_ok:
        say(f"  link   previous -> slots/{state.current}")
    say(f"  link   current -> slots/{slot_id}")
