"""The `flash` sub-command: argparse wiring for build.flash.install.

    python build.py flash --profile P --target DIR [--dry-run] [--no-run] [--force] [--dist DIR]
    python build.py flash --rollback --target DIR [--no-run]
    python build.py flash --verify --target DIR [--no-run]

build/cli.py calls `add_parser(subparsers)`, adds its project options (--project, --dist, ...) and
runs `run(args)`, which raises SlimfreezeError for the user's errors (main() prints them as one
line). `python -m build.flash.command flash ...` runs the sub-command without loading the rest of the
CLI, with the same options and error handling; the tests' subprocess flashes use it.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from build.errors import ConfigError, SlimfreezeError
from build.flash.install import FlashRequest, flash, rollback, verify
from build.flash.patch import flash_patch, read_checked_patch
from build.flash.remote import SshTarget, flash_patch_ssh, flash_ssh, parse_target, rollback_ssh, verify_ssh
from build.project import Project


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "flash",
        help="install a built profile onto a device (or roll back, or verify it)",
        description="Install dist/<profile> into a device root (a mounted device filesystem or a folder "
                    "standing for one) as a new slot beside the running version, verify it, switch to it "
                    "atomically and run its commands; the replaced version is kept for --rollback.",
    )
    parser.add_argument("--target", required=True, metavar="DIR|ssh://[user@]host[:port]/path",
                        help="the device root: a mounted folder, or a device reached with the OpenSSH client")
    parser.add_argument("--ssh-config", type=Path, metavar="FILE",
                        help="for an ssh:// target: the ssh_config to use (ssh -F), e.g. its identity and known_hosts")
    parser.add_argument("--profile", metavar="P", help="the profile whose build is flashed")
    parser.add_argument("--patch", type=Path, metavar="FILE",
                        help="update from a patch (`build.py delta`) applied to the device's slot holding its base; "
                             "the result must match the new build's sha256 before the switch")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--rollback", action="store_true", help="make the previous version current again")
    action.add_argument("--verify", action="store_true",
                        help="check the current and previous versions against their sha256 and run current")
    action.add_argument("--dry-run", action="store_true",
                        help="print what would be written and the space it takes; write nothing")
    parser.add_argument("--arch", metavar="ARCH",
                        help="the device's architecture (x86_64, aarch64, armv7), when its root has no dynamic "
                             "loader to tell; an artifact built for another one is refused")
    parser.add_argument("--no-run", action="store_true",
                        help="do not run the commands from the device (for a foreign architecture)")
    parser.add_argument("--trusted-key", type=Path, metavar="PUB.pem",
                        help="flash only a build (or patch) signed by this Ed25519 public key; an unsigned, "
                             "changed or otherwise signed one is refused before anything is written")
    parser.add_argument("--force", action="store_true",
                        help="flash even though the current version on the device is corrupted")
    return parser


def run(args: argparse.Namespace) -> int:
    run_commands = not args.no_run
    remote = parse_target(args.target)
    if remote is not None:
        return _run_remote(args, remote)
    args.target = Path(args.target)
    if args.rollback or args.verify:
        if args.profile is not None or args.force or args.patch is not None:
            option = "--rollback" if args.rollback else "--verify"
            raise ConfigError(f"{option} works on what the device holds; it takes no --profile, --patch or --force")
        if args.rollback:
            rollback(args.target, run_commands=run_commands)
        else:
            verify(args.target, run_commands=run_commands)
        return 0
    if bool(args.profile) == bool(args.patch):
        raise ConfigError("flash needs one of --profile P or --patch FILE (or --rollback / --verify)")
    if args.patch:
        if args.dry_run or args.force:
            raise ConfigError("--patch applies to an intact slot; it takes no --dry-run or --force")
        flash_patch(args.patch, FlashRequest(dist_root=Path(), profile="", target=args.target, arch=args.arch,
                                             run_commands=run_commands, trusted_key=args.trusted_key))
        return 0
    flash(FlashRequest(dist_root=_dist_root(args), profile=args.profile, target=args.target, arch=args.arch,
                       run_commands=run_commands, dry_run=args.dry_run, force=args.force,
                       trusted_key=args.trusted_key))
    return 0


def _run_remote(args: argparse.Namespace, remote: SshTarget) -> int:
    """The same actions over SSH: flash a build or a patch, roll back, verify."""
    say = functools.partial(print, flush=True)
    if args.rollback:
        rollback_ssh(remote, ssh_config=args.ssh_config, run_commands=not args.no_run, say=say)
        return 0
    if args.verify:
        verify_ssh(remote, ssh_config=args.ssh_config, run_commands=not args.no_run, say=say)
        return 0
    if bool(args.profile) == bool(args.patch):
        raise ConfigError("flash needs one of --profile P or --patch FILE (or --verify)")
    if args.patch:
        request = FlashRequest(dist_root=Path(), profile="", target=Path(remote.path), run_commands=not args.no_run,
                               trusted_key=args.trusted_key)
        flash_patch_ssh(read_checked_patch(args.patch, args.trusted_key), request, remote,
                        ssh_config=args.ssh_config, say=say)
        return 0
    flash_ssh(FlashRequest(dist_root=_dist_root(args), profile=args.profile, target=Path(remote.path), arch=args.arch,
                           run_commands=not args.no_run, dry_run=args.dry_run, force=args.force,
                           trusted_key=args.trusted_key), remote, ssh_config=args.ssh_config, say=say)
    return 0


def _dist_root(args: argparse.Namespace) -> Path:
    """--dist if given (no project needed to flash a downloaded build), else <project>/dist."""
    if args.dist is not None:
        return args.dist
    return Project.at(args.project).dist_root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slimfreeze")
    flash_parser = add_parser(parser.add_subparsers(dest="command", required=True))
    # build/cli.py adds its project options to every sub-command; these are the two flash reads.
    flash_parser.add_argument("--project", type=Path, default=Path.cwd(), help="project folder (default: .)")
    flash_parser.add_argument("--dist", type=Path, help="artifacts folder (default: <project>/dist)")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except SlimfreezeError as exc:
        print(f"slimfreeze: error: {exc}", file=sys.stderr)
        return exc.return_code


if __name__ == "__main__":
    raise SystemExit(main())
