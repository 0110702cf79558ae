"""`flash --target ssh://user@host[:port]/path`: the same slots, checks and atomic switch as on a
mounted root (build.flash.device), done through the OpenSSH client with POSIX tools on the device
(sh, tar, sha256sum, df, ln, GNU or busybox mv -T, sync).

Each remote step is one `ssh` command, so a connection cut at any step leaves the device as that
step found it or as it left it: the new slot is written under `.incoming-<id>` (never pointed at),
checked with sha256sum against the manifest, renamed, and only then linked; a link is switched by
renaming a new link over it (`mv -T`), which is atomic. A cut before the switch leaves the old
version current; a cut after it leaves the new, checked one.

Host keys are the OpenSSH client's business: an unknown or changed key is refused by ssh
(BatchMode, StrictHostKeyChecking) and reported in one line. `--ssh-config FILE` passes `-F FILE`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shlex
import signal
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from build import proc
from build.errors import ConfigError
from build.flash.device import (
    CURRENT,
    INCOMING_PREFIX,
    PREVIOUS,
    ROOT_NAME,
    SLOTS_NAME,
    CheckFailed,
    CorruptSlot,
    DeviceError,
    NoSpace,
    kill_step,
    new_slot_id,
)
from build.flash.arch import check_fits, normalise
from build.flash.install import FlashRequest, Say, check_problem, check_signed, checks_for
from build.flash.plan import MANIFEST_NAME, FlashPlan, Manifest, count, load_dist, space_needed
from build.manifest import parse_manifest
from build.sizes import format_bytes
from build.toolchain import ALIASES, ARCHITECTURES
from build.update.delta import MANIFEST_BLOB, Patch, PatchRefused, patched_manifest
from build.update.signing import load_public_key

SSH_TIMEOUT = 300.0
CONNECT_TIMEOUT = 10
UNREACHABLE = 255  # ssh's own exit status for a connection or authentication failure
_SLOT = re.compile(r"[^./][^/]*")
_MARK = "@@slimfreeze-check"


@dataclass(frozen=True)
class SshTarget:
    user: str | None
    host: str
    port: int | None
    path: str  # absolute, on the device

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"ssh://{user}{self.host}{port}{self.path}"


def parse_target(text: str) -> SshTarget | None:
    """An ssh:// target, None for a local path; a malformed ssh:// target is a ConfigError."""
    if not text.startswith("ssh://"):
        return None
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    path = parts.path
    if not parts.hostname or port == -1 or not path.startswith("/") or ".." in PurePosixPath(path).parts \
            or parts.query or parts.fragment or "\0" in text:
        raise ConfigError(f"--target {text}: expected ssh://[user@]host[:port]/absolute/path")
    return SshTarget(user=parts.username, host=parts.hostname, port=port, path=str(PurePosixPath(path)))


class Remote:
    """Runs shell scripts on the device, one `ssh` per step (each a counted step for the kill hook)."""

    def __init__(self, target: SshTarget, ssh_config: Path | None) -> None:
        self.target = target
        self.ssh_config = ssh_config
        self.steps = 0
        self._kill_at = kill_step()  # the test hook: SIGKILL before step n, as DeviceWriter does

    def argv(self, script: str) -> list[str]:
        options = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}", "-o", "StrictHostKeyChecking=yes"]
        if self.ssh_config:
            options[:0] = ["-F", str(self.ssh_config)]
        if self.target.port:
            options += ["-p", str(self.target.port)]
        if self.target.user:
            options += ["-l", self.target.user]
        return ["ssh", *options, "--", self.target.host, f"sh -c {shlex.quote(script)}"]

    def run(self, script: str, *, stdin: bytes = b"", check: bool = True) -> proc.Captured:
        self.steps += 1
        if self.steps == self._kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        ran = proc.capture(self.argv(script), stdin=stdin, timeout=SSH_TIMEOUT, separate_stderr=True)
        if ran.code is None:
            raise DeviceError(f"{self.target.host} did not answer within {SSH_TIMEOUT:.0f} s; "
                              f"run `flash --verify --target {self.target}` to see what it holds")
        if ran.code == UNREACHABLE:
            raise DeviceError(f"cannot reach {self.target}: {_ssh_reason(ran.errors)}")
        if check and ran.code != 0:
            last = (ran.errors.strip() or ran.output.strip() or f"exit status {ran.code}").splitlines()[-1]
            raise DeviceError(f"on {self.target.host}: {last}")
        return ran


def _ssh_reason(errors: str) -> str:
    text = errors.strip()
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        return "its host key changed since it was recorded (known_hosts); if the device was reinstalled, " \
               "remove the old key with ssh-keygen -R, else someone may be intercepting the connection"
    if "Host key verification failed" in text:
        return "its host key is not known (add it to known_hosts first)"
    lines = [line for line in text.splitlines() if line and not line.startswith("Warning:")]
    return lines[-1] if lines else "ssh failed"


@dataclass(frozen=True)
class RemoteState:
    current: str | None
    previous: str | None
    slots: tuple[str, ...]
    incoming: tuple[str, ...]
    free: int
    block: int
    machine: str  # uname -m on the device


def _q(path: str) -> str:
    return shlex.quote(path)


def read_remote_state(remote: Remote) -> RemoteState:
    root = f"{remote.target.path}/{ROOT_NAME}"
    script = f"""
set -e
[ -d {_q(remote.target.path)} ] || {{ echo "target {remote.target.path} is not a directory" >&2; exit 3; }}
[ -w {_q(remote.target.path)} ] || {{ echo "target {remote.target.path} is not writable by this user" >&2; exit 3; }}
echo "current=$(readlink {_q(root + '/' + CURRENT)} || true)"
echo "previous=$(readlink {_q(root + '/' + PREVIOUS)} || true)"
if [ -d {_q(root + '/' + SLOTS_NAME)} ]; then
  cd {_q(root + '/' + SLOTS_NAME)}
  for s in .[!.]* *; do [ -e "$s" ] && echo "slot=$s"; done
fi
echo "free=$(df -Pk {_q(remote.target.path)} | awk 'NR==2 {{print $4}}')"
echo "block=$(stat -f -c %S {_q(remote.target.path)})"
echo "machine=$(uname -m)"
"""
    ran = remote.run(script)
    values: dict[str, list[str]] = {}
    for line in ran.output.splitlines():
        key, _, value = line.partition("=")
        values.setdefault(key, []).append(value)

    def link(name: str) -> str | None:
        target = (values.get(name) or [""])[0]
        if not target:
            return None
        prefix = f"{SLOTS_NAME}/"
        if not target.startswith(prefix) or not _SLOT.fullmatch(target[len(prefix):]):
            raise DeviceError(f"{remote.target}: {ROOT_NAME}/{name} points to {target!r}, not a slimfreeze slot")
        return target[len(prefix):]

    names = values.get("slot", [])
    try:
        free, block = int(values["free"][0]) * 1024, int(values["block"][0])
    except (KeyError, ValueError, IndexError):
        raise DeviceError(f"{remote.target}: could not read the free space (df, stat)") from None
    return RemoteState(current=link("current"), previous=link("previous"),
                       slots=tuple(n for n in names if _SLOT.fullmatch(n)),
                       incoming=tuple(n for n in names if not _SLOT.fullmatch(n)), free=free, block=block,
                       machine=(values.get("machine") or [""])[0])


def remote_manifest(remote: Remote, slot: str) -> Manifest:
    path = f"{remote.target.path}/{ROOT_NAME}/{SLOTS_NAME}/{slot}/{MANIFEST_NAME}"
    ran = remote.run(f"cat {_q(path)}")
    return parse_manifest(ran.output.encode(), origin=f"{remote.target.host}:{path}")


def check_remote_slot(remote: Remote, folder: str, manifest: Manifest) -> list[str]:
    """Problems of a slot on the device against `manifest` (sha256sum run there; empty when intact)."""
    listing = "".join(f"{e.sha256}  {e.path}\n" for e in manifest.payload)
    links = "".join(f'[ "$(readlink {_q(link.path)})" = {_q(link.target)} ] || echo "link {link.path} is wrong"\n'
                    for link in manifest.links)
    script = f"cd {_q(folder)} || exit 3\nsha256sum -c --quiet - 2>&1 | sed 's/^/file /'\n"
    ran = remote.run(script, stdin=listing.encode(), check=False)
    problems = [line for line in ran.output.splitlines() if line.strip()]
    if links:
        ran = remote.run(f"cd {_q(folder)} || exit 3\n{links}", check=False)
        problems += [line for line in ran.output.splitlines() if line.strip()]
    return problems


def _slot_tar(plan: FlashPlan) -> bytes:
    """The new slot as a tar stream: files with their modes, links, manifest.json."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in plan.content.dirs:
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for entry in plan.content.payload:
            info = tarfile.TarInfo(entry.path)
            info.size, info.mode = entry.size, plan.modes[entry.path]
            with (plan.dist_dir / entry.path).open("rb") as stream:
                tar.addfile(info, stream)
        for link in plan.content.links:
            info = tarfile.TarInfo(link.path)
            info.type, info.linkname = tarfile.SYMTYPE, link.target
            tar.addfile(info)
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size, info.mode = len(plan.manifest_bytes), 0o644
        tar.addfile(info, io.BytesIO(plan.manifest_bytes))
    return buffer.getvalue()


def _set_link(remote: Remote, name: str, slot: str | None) -> None:
    root = f"{remote.target.path}/{ROOT_NAME}"
    if slot is None:
        remote.run(f"rm -f {_q(root + '/' + name)} && sync")
        return
    temp = f"{root}/.{name}.tmp"
    remote.run(f"rm -f {_q(temp)} && ln -s {_q(SLOTS_NAME + '/' + slot)} {_q(temp)} && "
               f"mv -T {_q(temp)} {_q(root + '/' + name)} && sync")


def _run_checks(remote: Remote, content: Manifest, say: Say) -> None:
    """Every check of build.flash.install.checks_for, through the `current` link, in one ssh command."""
    base = f"{remote.target.path}/{ROOT_NAME}/{CURRENT}"
    checks = checks_for(content)
    script = "".join(
        f"out=$({' '.join(_q(a) for a in [f'{base}/{check.argv[0]}', *check.argv[1:]])} 2>&1 </dev/null); "
        f"rc=$?; echo '{_MARK} {n}' $rc; printf '%s\\n' \"$out\"\n" for n, check in enumerate(checks))
    ran = remote.run(script, check=False)
    results: dict[int, tuple[int, list[str]]] = {}
    current: list[str] = []
    for line in ran.output.splitlines():
        if line.startswith(_MARK + " "):
            _, n, rc = line.split()
            current = []
            results[int(n)] = (int(rc), current)
        else:
            current.append(line)
    for n, check in enumerate(checks):
        if n not in results:
            raise CheckFailed(f"`{check.label}` did not run on {remote.target.host}")
        rc, output = results[n]
        problem = check_problem(check, rc, "\n".join(output))
        output = [line for line in output if line.strip()]
        if problem:
            raise CheckFailed(f"`{check.label}` run on {remote.target.host} {problem}")
        say(f"flash: ran {CURRENT}/{check.label} on {remote.target.host}: {output[0] if output else '(no output)'}")


def flash_ssh(request: FlashRequest, target: SshTarget, *, ssh_config: Path | None, say: Say) -> str | None:
    """flash() for a device reached over SSH; returns the new slot id (None for a dry run)."""
    proc.require_tools("ssh")
    plan = load_dist(request.dist_root, request.profile)
    if request.trusted_key is not None:
        check_signed(plan, load_public_key(request.trusted_key), say)
    content = plan.content
    remote = Remote(target, ssh_config)
    state = read_remote_state(remote)
    device_arch = request.arch or ALIASES.get(state.machine, state.machine)
    if device_arch in ARCHITECTURES or request.arch:
        check_fits(content.target, content.profile, normalise(device_arch), str(target))
    current_ok = False
    if state.current:
        problems = check_remote_slot(remote, _slot_path(remote, state.current), remote_manifest(remote, state.current))
        if problems and not request.force:
            raise CorruptSlot(f"current slot {state.current} on {target} is corrupted: {problems[0]}; "
                              f"flash again with --force to replace it")
        current_ok = not problems
    need = space_needed(content, manifest_size=len(plan.manifest_bytes), block_size=state.block)
    say(f"flash: profile {content.profile} ({count(len(content.payload), 'file')}, "
        f"{format_bytes(content.payload_bytes)}) from {plan.dist_dir} to {target}")
    say(f"flash: needs {format_bytes(need)} on the device; {format_bytes(state.free)} free")
    if need > state.free:
        raise NoSpace(f"not enough space on {target}: the new version needs {need:,} bytes, {state.free:,} bytes "
                      f"are free; nothing was written" + (f", slot {state.current} stays current" if state.current else ""))
    slot_id = new_slot_id(plan.manifest_sha256, state.slots)
    if request.dry_run:
        say("flash: dry run: it fits; nothing was written")
        return None
    root = f"{target.path}/{ROOT_NAME}"
    keep = {state.current, state.previous} if current_ok else {state.previous}
    garbage = [*state.incoming, *(s for s in state.slots if s not in keep)]
    remote.run(f"mkdir -p {_q(root + '/' + SLOTS_NAME)}"
               + "".join(f" && rm -rf {_q(_slot_path(remote, g))}" for g in garbage) + " && sync")
    incoming = f"{root}/{SLOTS_NAME}/{INCOMING_PREFIX}{slot_id}"
    say(f"flash: writing {count(len(content.payload), 'file')} to {INCOMING_PREFIX}{slot_id} over ssh")
    ran = remote.run(f"mkdir {_q(incoming)} && tar -x -f - -C {_q(incoming)} && sync", stdin=_slot_tar(plan),
                     check=False)
    if ran.code != 0:
        remote.run(f"rm -rf {_q(incoming)}", check=False)
        reason = (ran.errors.strip() or "tar failed").splitlines()[-1]
        full = "No space left" in ran.errors
        error = NoSpace if full else DeviceError
        raise error(f"writing to {target} failed ({reason}); the new slot was removed"
                    + (f", slot {state.current} stays current" if state.current else ""))
    return _complete(remote, state, content, slot_id, current_ok=current_ok, run_commands=request.run_commands,
                     say=say)


def _complete(remote: Remote, state: RemoteState, content: Manifest, slot_id: str, *, current_ok: bool,
              run_commands: bool, say: Say) -> str:
    """From a written .incoming slot: check it, rename it, switch, run its commands (switch back if
    they fail)."""
    target = remote.target
    incoming = f"{target.path}/{ROOT_NAME}/{SLOTS_NAME}/{INCOMING_PREFIX}{slot_id}"
    problems = check_remote_slot(remote, incoming, content)
    if problems:
        remote.run(f"rm -rf {_q(incoming)}", check=False)
        raise CorruptSlot(f"the new slot on {target} does not match the new build ({problems[0]}); "
                          f"nothing was switched" + (f", slot {state.current} stays current" if state.current else ""))
    remote.run(f"mv {_q(incoming)} {_q(_slot_path(remote, slot_id))} && sync")
    say(f"flash: {count(len(content.payload), 'file')} on {target.host} match their sha256; slot {slot_id} is complete")
    old_current = state.current if current_ok else None
    if old_current and old_current != state.previous:
        _set_link(remote, PREVIOUS, old_current)
    _set_link(remote, CURRENT, slot_id)
    say(f"flash: current -> slots/{slot_id}" + (f", previous -> slots/{old_current}" if old_current else ""))
    if run_commands:
        try:
            _run_checks(remote, content, say)
        except CheckFailed as exc:
            if not old_current:
                raise CheckFailed(f"{exc}; there is no earlier version to switch back to") from None
            _set_link(remote, CURRENT, old_current)
            _set_link(remote, PREVIOUS, state.previous)
            remote.run(f"rm -rf {_q(_slot_path(remote, slot_id))} && sync", check=False)
            raise CheckFailed(f"{exc}; switched back to slot {old_current} and removed the new version") from None
    say(f"flash: done: profile {content.profile} is current on {target} (slot {slot_id})")
    return slot_id


def flash_patch_ssh(patch: Patch, request: FlashRequest, target: SshTarget, *, ssh_config: Path | None,
                    say: Say) -> str:
    """Apply a (checked) patch on the device: its blobs are sent, the new slot is assembled there
    from the slot holding the patch's base with the device's zstd, checked with sha256sum, then
    switched to as a full flash is."""
    proc.require_tools("ssh", "zstd")
    remote = Remote(target, ssh_config)
    state = read_remote_state(remote)
    base, base_manifest = None, b""
    for slot in (state.current, state.previous):
        if slot:
            data = remote.run(f"cat {_q(_slot_path(remote, slot) + '/' + MANIFEST_NAME)}", check=False).output.encode()
            if hashlib.sha256(data).hexdigest() == patch.old.manifest_sha256:
                base, base_manifest = slot, data
                break
    if base is None:
        holds = f"its current slot is {state.current}" if state.current else "nothing is flashed on it"
        raise PatchRefused(f"{target} does not hold the patch's base {patch.old.describe()} ({holds}); "
                           f"flash the full build of {patch.new.profile} instead; nothing was written")
    old = parse_manifest(base_manifest, origin=f"{target.host}: slot {base}")
    problems = check_remote_slot(remote, _slot_path(remote, base), old)
    if problems:
        raise PatchRefused(f"the patch's base, slot {base} on {target}, is corrupted ({problems[0]}); "
                           f"flash the full build instead; nothing was written")
    with tempfile.TemporaryDirectory(prefix="slimfreeze-patch-") as tmp:
        (Path(tmp) / "old.json").write_bytes(base_manifest)
        manifest_bytes = patched_manifest(patch, Path(tmp) / "old.json", Path(tmp))
    content = parse_manifest(manifest_bytes, origin="the patched manifest.json")
    if remote.run("command -v zstd >/dev/null", check=False).code != 0:
        raise PatchRefused(f"{target} has no zstd to apply the patch with; flash the full build instead; "
                           f"nothing was written")
    current_ok = base == state.current or (state.current is not None and not check_remote_slot(
        remote, _slot_path(remote, state.current), remote_manifest(remote, state.current)))
    slot_id = new_slot_id(hashlib.sha256(manifest_bytes).hexdigest(), state.slots)
    incoming = f"{_slot_path(remote, INCOMING_PREFIX + slot_id)}"
    blobs = f"{incoming}.blobs"
    keep = {state.current, state.previous} if current_ok else {state.previous}
    garbage = [*state.incoming, *(s for s in state.slots if s not in keep)]
    remote.run(" && ".join([*(f"rm -rf {_q(_slot_path(remote, g))}" for g in garbage), "true"]))
    members = [(name, data) for name, data in patch.blobs.items() if name != MANIFEST_BLOB]
    members.append((MANIFEST_NAME, manifest_bytes))
    say(f"flash: patch from {patch.old.describe()} to {patch.new.describe()}: sending "
        f"{format_bytes(sum(len(d) for _, d in members))} to {target.host}, applied to slot {base}")
    remote.run(f"mkdir {_q(blobs)} && tar -x -f - -C {_q(blobs)} && sync", stdin=_tar(members))
    ran = remote.run(_assemble_script(patch, content, _slot_path(remote, base), incoming, blobs), check=False)
    remote.run(f"rm -rf {_q(blobs)}", check=False)
    if ran.code != 0:
        remote.run(f"rm -rf {_q(incoming)}", check=False)
        reason = (ran.errors.strip() or "zstd failed").splitlines()[-1]
        raise PatchRefused(f"the patch does not apply to slot {base} on {target} ({reason}); the new slot was "
                           f"removed" + (f", slot {state.current} stays current" if state.current else ""))
    return _complete(remote, state, content, slot_id, current_ok=current_ok, run_commands=request.run_commands,
                     say=say)


def _assemble_script(patch: Patch, content: Manifest, base: str, incoming: str, blobs: str) -> str:
    """The shell script that builds the new slot from the base slot and the sent blobs."""
    listed = {e.path: e for e in patch.entries}
    lines = ["set -e", f"mkdir {_q(incoming)}", *(f"mkdir {_q(incoming + '/' + d)}" for d in content.dirs)]
    for wanted in content.payload:
        dest = _q(f"{incoming}/{wanted.path}")
        entry = listed.get(wanted.path)
        if entry is None:
            lines.append(f"cp -p {_q(base + '/' + wanted.path)} {dest}")
            continue
        if entry.how == "copy":
            lines.append(f"cp {_q(base + '/' + (entry.base or ''))} {dest}")
        else:
            against = f"--patch-from={_q(base + '/' + entry.base)} " if entry.base else ""
            lines.append(f"zstd -q -d {against}{_q(blobs + '/' + (entry.blob or ''))} -o {dest}")
        lines.append(f"chmod {entry.mode:o} {dest}")
    lines += [f"ln -s {_q(link.target)} {_q(incoming + '/' + link.path)}" for link in content.links]
    lines += [f"cp {_q(blobs + '/' + MANIFEST_NAME)} {_q(incoming + '/' + MANIFEST_NAME)}", "sync"]
    return "\n".join(lines) + "\n"


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def rollback_ssh(target: SshTarget, *, ssh_config: Path | None, run_commands: bool, say: Say) -> str:
    """Make `previous` current again on the device (and the replaced version `previous`)."""
    proc.require_tools("ssh")
    remote = Remote(target, ssh_config)
    state = read_remote_state(remote)
    back = state.previous
    if back is None or back == state.current:
        raise DeviceError(f"there is no previous version on {target} to roll back to")
    content = remote_manifest(remote, back)
    problems = check_remote_slot(remote, _slot_path(remote, back), content)
    if problems:
        raise CorruptSlot(f"previous slot {back} on {target} is corrupted: {problems[0]}; not rolling back")
    forward = state.current if state.current and not check_remote_slot(
        remote, _slot_path(remote, state.current), remote_manifest(remote, state.current)) else None
    # current first: a cut between the two switches leaves both on the version rolled back to.
    _set_link(remote, CURRENT, back)
    _set_link(remote, PREVIOUS, forward)
    say(f"flash: rollback: current -> slots/{back}" + (f", previous -> slots/{forward}" if forward else ""))
    if run_commands:
        try:
            _run_checks(remote, content, say)
        except CheckFailed as exc:
            if not forward:
                raise CheckFailed(f"{exc}; slot {back} stays current (the other one is corrupted)") from None
            _set_link(remote, CURRENT, forward)
            _set_link(remote, PREVIOUS, back)
            raise CheckFailed(f"{exc}; switched back to slot {forward}") from None
    say(f"flash: done: profile {content.profile} (slot {back}) is current on {target}")
    return back


def verify_ssh(target: SshTarget, *, ssh_config: Path | None, run_commands: bool, say: Say) -> str:
    proc.require_tools("ssh")
    remote = Remote(target, ssh_config)
    state = read_remote_state(remote)
    if state.current is None:
        raise DeviceError(f"nothing is flashed on {target}")
    content = remote_manifest(remote, state.current)
    problems = check_remote_slot(remote, _slot_path(remote, state.current), content)
    if problems:
        raise CorruptSlot(f"current slot {state.current} on {target} is corrupted: {problems[0]}")
    say(f"flash: verify: current slot {state.current} (profile {content.profile}) on {target.host}: "
        f"{count(len(content.payload), 'file')} match their sha256")
    if run_commands:
        _run_checks(remote, content, say)
    return state.current


def _slot_path(remote: Remote, slot: str) -> str:
    return f"{remote.target.path}/{ROOT_NAME}/{SLOTS_NAME}/{slot}"
