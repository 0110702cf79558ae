"""`python build.py delta OLD NEW`: a signed patch from one released build to the next;
`python build.py rauc DIST`: a signed RAUC bundle of a build's image.

OLD and NEW are dist folders (dist/<profile>/, or a downloaded release's). The patch is written
beside NEW's folder (or at --output) and signed when a key is configured (--signing-key, or
SLIMFREEZE_SIGNING_KEY). `flash --patch FILE` applies it to a device's slot holding OLD.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from build import log
from build.errors import ConfigError
from build.manifest import MANIFEST_NAME, load_manifest, sha256_of
from build.project import project_from
from build.sizes import format_bytes
from build.update.delta import carried, make_patch, read_patch
from build.update.rauc import make_bundle
from build.update.signing import KEY_ENV, configured_key, sign_file

TOP = 10  # files listed by the command (the JSON in size_reports/ lists them all)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "delta", help="make a signed patch from a released build (OLD) to a new one (NEW)",
        description="Write a patch that rebuilds NEW's dist folder from OLD's on a device: unchanged files "
                    "are copied, changed ones (the image too) are zstd --patch-from deltas. It names the "
                    "sha256 of both ends; `flash --patch` applies it to the slot holding OLD.")
    parser.add_argument("old", type=Path, metavar="OLD", help="the released build's dist folder")
    parser.add_argument("new", type=Path, metavar="NEW", help="the new build's dist folder")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="the patch file (default: beside NEW, named after both ends)")
    parser.add_argument("--signing-key", type=Path, metavar="KEY.pem",
                        help=f"sign the patch with this Ed25519 key (default: ${KEY_ENV}, if set)")
    bundle = subparsers.add_parser(
        "rauc", help="a signed RAUC bundle (verity format) of a build's flash image",
        description="Write a RAUC bundle holding DIST's image, signed with an RSA or ECDSA certificate and key "
                    "(RAUC's CMS signatures do not take Ed25519); `rauc info --keyring CA.pem` verifies it.")
    bundle.add_argument("dist", type=Path, metavar="DIST", help="a build's dist folder with an image")
    bundle.add_argument("--cert", type=Path, required=True, metavar="CERT.pem")
    bundle.add_argument("--key", type=Path, required=True, metavar="KEY.pem")
    bundle.add_argument("--compatible", help="the device's RAUC compatible string (default: slimfreeze-<profile>)")
    bundle.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: beside DIST, <profile>.raucb")
    bundle.set_defaults(handler=run_rauc)
    return parser


def run_rauc(args: argparse.Namespace) -> int:
    if not (args.dist / MANIFEST_NAME).is_file():
        raise ConfigError(f"{args.dist} is not a dist folder (no {MANIFEST_NAME})")
    out = args.output or args.dist.parent / f"{args.dist.resolve().name}.raucb"
    if out.is_dir() or not out.parent.is_dir():
        raise ConfigError(f"--output {out}: give a file name in an existing folder")
    make_bundle(args.dist, out, cert=args.cert, key=args.key, compatible=args.compatible,
                project_root=project_from(args).root)
    log.info(f"rauc: {out} {format_bytes(out.stat().st_size)}; check it with `rauc info --keyring CA.pem {out}`")
    return 0


def run(args: argparse.Namespace) -> int:
    for name, folder in (("OLD", args.old), ("NEW", args.new)):
        if not (folder / MANIFEST_NAME).is_file():
            raise ConfigError(f"{name} {folder} is not a dist folder (no {MANIFEST_NAME}); "
                              f"give a build's dist/<profile> folder")
    root = project_from(args).root
    key = configured_key(root, {KEY_ENV: str(args.signing_key)}) if args.signing_key else configured_key(root)
    old_sha, new_sha = sha256_of(args.old / MANIFEST_NAME), sha256_of(args.new / MANIFEST_NAME)
    if old_sha == new_sha:
        raise ConfigError("OLD and NEW are the same build; there is nothing to patch")
    old12, new12 = old_sha[:12], new_sha[:12]
    out = args.output or args.new.parent / f"{args.new.resolve().name}-{old12}-{new12}.patch"
    if out.is_dir() or not out.parent.is_dir():
        raise ConfigError(f"--output {out}: give a file name in an existing folder")
    with tempfile.TemporaryDirectory(prefix="slimfreeze-delta-") as work:
        make_patch(args.old, args.new, out, work=Path(work))
    patch = read_patch(out)  # what a device will read: check it before it ships
    new = load_manifest(args.new)
    image = new.image
    signed = f", signed by key {key.key_id[:16]} ({sign_file(out, key).name})" if key else ", unsigned"
    log.info(f"delta: {out} {format_bytes(out.stat().st_size)} from {patch.old.describe()} to "
             f"{patch.new.describe()}{signed}")
    rows = carried(patch, new)
    unchanged = sum(1 for r in rows if r["how"] == "unchanged")
    for row in rows[:TOP]:
        if row["how"] != "unchanged":
            new_bytes = "" if row["new_bytes"] is None else f" of {format_bytes(row['new_bytes'])}"
            log.info(f"delta:   {row['path']}: {row['how']}, {format_bytes(row['patch_bytes'])} in the patch{new_bytes}")
    log.info(f"delta: {unchanged} file(s) unchanged, copied on the device")
    if image is not None:
        log.info(f"delta: the new image {image.path} is {format_bytes(image.size)}; the patch is "
                 f"{out.stat().st_size / image.size:.1%} of it")
    # size_reports/<profile>/: what the patch carries, by file, beside the build's own report.
    reports = project_from(args).reports_root / new.profile
    if reports.is_dir():
        record = reports / f"patch-{old12}-{new12}.json"
        doc = {"schema": "slimfreeze.patch-report/1", "patch": out.name, "patch_bytes": out.stat().st_size,
               "old": vars(patch.old), "new": vars(patch.new), "image_bytes": image.size if image else None,
               "files": rows}
        record.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        log.info(f"delta: what it carries, by file: {record}")
    return 0
