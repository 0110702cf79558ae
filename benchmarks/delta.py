"""Benchmark: update bytes against image bytes for flash images laid out different ways (issue 19).

    .venv/bin/python benchmarks/delta.py [--base DIST --one-line DIST --dependency DIST] [--keep]

Three builds of `flash-min`: the base (this checkout's HEAD), the same with one line changed in an
app module (the greeting in app/commands/hello.py) and the same with paho-mqtt 2.1.0 instead of
2.2.0 (its pin in pyproject.toml; the size runtime's venv gets it from the package index). Each is
built by `build.py --profile flash-min` in its own clone under work/bench-delta/ (each a commit of
its own, so its SOURCE_DATE_EPOCH differs as a release's would), unless its dist folder is given.

Each layout then packs the three builds' folders again with mksquashfs and measures the image and
the `zstd --patch-from` delta from the base image (xdelta3 beside it on the first and last rows),
against the targets: a one-line change <= 16 KiB, the dependency change <= 25 % of the image, the
image <= 3 % over 1,310,720 B (flash-min's image before this work). Last, the whole patch
`build.py delta` writes (every changed file, the image, the manifest) for the shipped layout.
A benchmark, not a test: it prints, it asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from build.config import load_profiles  # noqa: E402
from build.freeze.image import mksquashfs_command, sort_lines  # noqa: E402
from build.paths import remove_tree  # noqa: E402
from build.update.delta import make_patch  # noqa: E402

BEFORE = 1_310_720  # flash-min's image when issue 19 was filed
TARGET_ONE_LINE = 16 * 1024
TARGET_DEPENDENCY = 0.25
TARGET_GROWTH = 0.03
GREETING_FILE = "app/commands/hello.py"


@dataclass(frozen=True)
class Layout:
    name: str
    block: int
    extra: tuple[str, ...] = ()
    app_last: bool = False  # -sort: the app's code after the runtime's (build/freeze/image.py's order)
    fixed_time: bool = False  # every timestamp 0 instead of the commit's


LAYOUTS = (
    Layout("1 MiB blocks (before)", 1 << 20),
    Layout("1 MiB, timestamps 0", 1 << 20, fixed_time=True),
    Layout("1 MiB, no fragments", 1 << 20, ("-no-fragments",)),
    Layout("1 MiB, app code last *", 1 << 20, app_last=True),
    Layout("256 KiB blocks", 256 << 10),
    Layout("128 KiB blocks", 128 << 10),
    Layout("128 KiB, app code last", 128 << 10, app_last=True),
    Layout("64 KiB blocks", 64 << 10),
    Layout("64 KiB, app code last", 64 << 10, app_last=True),
    Layout("32 KiB blocks", 32 << 10),
)


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, text=True, capture_output=True, **kwargs)


def make_release(work: Path, name: str, edit) -> Path:
    """A clone of HEAD with `edit` applied and committed, `flash-min` built in it: its dist folder."""
    clone = work / name
    remove_tree(clone, (ROOT / "work",))
    run(["git", "clone", "-q", str(ROOT), str(clone)])
    (clone / "work").mkdir()
    (clone / "work" / ".cache").symlink_to((ROOT / "work" / ".cache").resolve())
    if edit is not None:
        edit(clone)
        run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qam", name], cwd=clone)
    print(f"building flash-min in {clone} ...", flush=True)
    built = subprocess.run([sys.executable, "build.py", "--profile", "flash-min"], cwd=clone, text=True,
                           capture_output=True)
    if built.returncode != 0:
        raise SystemExit(f"the {name} build failed:\n{built.stdout[-2000:]}\n{built.stderr[-2000:]}")
    return clone / "dist" / "flash-min"


def one_line(clone: Path) -> None:
    path = clone / GREETING_FILE
    text = path.read_text()
    changed = text.replace("Hello from", "Hello again from", 1)
    if changed == text:
        raise SystemExit(f"{GREETING_FILE} has no 'Hello from' to change; update the benchmark's edit")
    path.write_text(changed)


def dependency(clone: Path) -> None:
    path = clone / "pyproject.toml"
    text = path.read_text()
    path.write_text(text.replace('"paho-mqtt==2.2.0"', '"paho-mqtt==2.1.0"', 1))


def tree_of(dist: Path, out: Path) -> Path:
    """The folder the image is made of: the dist folder without its image, manifest and signatures."""
    manifest = json.loads((dist / "manifest.json").read_text())
    skip = {"manifest.json", manifest["image"]["path"]}
    shutil.copytree(dist, out, symlinks=True,
                    ignore=lambda folder, names: [n for n in names if n in skip or n.endswith(".sig")])
    return out


def pack(tree: Path, image: Path, layout: Layout, epoch: int, work: Path) -> int:
    profile = load_profiles(ROOT / "pyproject.toml")["flash-min"]
    profile = dataclasses.replace(profile, image_block_size=layout.block)
    sort = None
    if layout.app_last:
        sort = work / "sort.txt"
        sort.write_text("".join(f"{line}\n" for line in sort_lines(tree)))
    run([*mksquashfs_command(tree, image, profile, epoch=0 if layout.fixed_time else epoch, sort_file=sort),
         *layout.extra])
    return image.stat().st_size


def zstd_delta(old: Path, new: Path, work: Path) -> int:
    out = work / "delta.zst"
    run(["zstd", "-q", "-f", "-19", f"--patch-from={old}", str(new), "-o", str(out)])
    return out.stat().st_size


def xdelta(old: Path, new: Path, work: Path) -> int:
    out = work / "delta.xd3"
    run(["xdelta3", "-q", "-f", "-9", "-e", "-s", str(old), str(new), str(out)])
    return out.stat().st_size


def ok(value: bool) -> str:
    return "yes" if value else "NO"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path)
    parser.add_argument("--one-line", type=Path)
    parser.add_argument("--dependency", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep work/bench-delta/ (the clones and builds)")
    args = parser.parse_args()
    work = ROOT / "work" / "bench-delta"
    work.mkdir(parents=True, exist_ok=True)
    dists = {
        "base": args.base or make_release(work, "base", None),
        "one-line": args.one_line or make_release(work, "one-line", one_line),
        "dependency": args.dependency or make_release(work, "dependency", dependency),
    }
    epochs = {k: json.loads((d / "manifest.json").read_text())["reproducible"]["source_date_epoch"]
              for k, d in dists.items()}
    with tempfile.TemporaryDirectory(prefix="bench-delta-") as tmp:
        scratch = Path(tmp)
        trees = {k: tree_of(d, scratch / f"tree-{k}") for k, d in dists.items()}
        header = (f"{'layout':<26} {'image B':>10} {'vs before':>9} {'one-line patch B':>16} {'<=16KiB':>7} "
                  f"{'dependency patch B':>18} {'% image':>7} {'<=25%':>5} {'<=+3%':>5}")
        print(header)
        print("-" * len(header))
        for index, layout in enumerate(LAYOUTS):
            images = {}
            for name, tree in trees.items():
                images[name] = scratch / f"{name}.squashfs"
                pack(tree, images[name], layout, epochs[name], scratch)
            size = images["base"].stat().st_size
            one = zstd_delta(images["base"], images["one-line"], scratch)
            dep = zstd_delta(images["base"], images["dependency"], scratch)
            dep_share = dep / images["dependency"].stat().st_size
            growth = size / BEFORE - 1
            print(f"{layout.name:<26} {size:>10,} {growth:>+9.1%} {one:>16,} {ok(one <= TARGET_ONE_LINE):>7} "
                  f"{dep:>18,} {dep_share:>7.1%} {ok(dep_share <= TARGET_DEPENDENCY):>5} "
                  f"{ok(growth <= TARGET_GROWTH):>5}")
            if index in (0, len(LAYOUTS) - 1):
                print(f"{'  the same by xdelta3':<26} {'':>10} {'':>9} {xdelta(images['base'], images['one-line'], scratch):>16,} "
                      f"{'':>7} {xdelta(images['base'], images['dependency'], scratch):>18,}")
        print("* what build/freeze/image.py ships (flash-min's image_block_size stays 1 MiB)")
        print()
        print("build.py delta (every changed file, the image and the manifest), as built:")
        for name in ("one-line", "dependency"):
            patch = make_patch(dists["base"], dists[name], scratch / f"{name}.patch", work=scratch)
            image = json.loads((dists[name] / "manifest.json").read_text())["image"]["size"]
            print(f"  base -> {name:<11} patch {patch.stat().st_size:>9,} B, image {image:>9,} B "
                  f"({patch.stat().st_size / image:.1%} of the image)")
    if not args.keep and not (args.base or args.one_line or args.dependency):
        remove_tree(work, (ROOT / "work",))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
