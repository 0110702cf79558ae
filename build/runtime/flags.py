"""The size runtime's compiler, linker and configure flags as data, and the cache key (pure).

Each step is one named, measured choice (figures: benchmarks/runtime.py and issue 11's closing
note); `SIZE_STEPS` lists those kept, in the order they were measured, each on top of the ones
before. Most make libpython smaller; the last three make the memory of `run`'s forked workers smaller
(their figures are PSS). A step that saved nothing, or broke the smoke test, is in `TRIED` with the
reason, so nobody measures it again without knowing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from build.runtime import edits as source_edits

# The runtime's source: Debian's package for the minor version slimfreeze runs on.
SOURCE_PACKAGE = "python3.11"
# Bump when the build recipe changes in a way the flags do not show (install layout, stripping).
RECIPE = 2  # 2: unstripped copies kept under lib/debug/.build-id


@dataclass(frozen=True, kw_only=True)
class FlagStep:
    """One measured choice: what it adds to CFLAGS, LDFLAGS and configure's options."""

    name: str
    why: str
    cflags: tuple[str, ...] = ()
    ldflags: tuple[str, ...] = ()
    configure: tuple[str, ...] = ()
    # Edits to the source tree before configure (build/runtime/compile.py applies them by name).
    edits: tuple[str, ...] = ()
    # The architectures it works on (None: all); elsewhere it is left out, never passed unused.
    arches: tuple[str, ...] | None = None
    # Configure options of the steps before that this one takes back.
    drops: tuple[str, ...] = ()
    # Whether it changes only the relink with the export list (no recompile: build/runtime/compile.py).
    link_only: bool = False


@dataclass(frozen=True, kw_only=True)
class FlagSet:
    """Steps merged into what configure is given."""

    steps: tuple[str, ...]
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...]
    configure: tuple[str, ...]
    edits: tuple[str, ...] = ()

    def describe(self) -> list[str]:
        """Every flag once, for the manifest: configure options, then CFLAGS, then LDFLAGS."""
        return [*self.configure, *(f"CFLAGS {f}" for f in self.cflags), *(f"LDFLAGS {f}" for f in self.ldflags),
                *(f"source edit {e}" for e in self.edits), *(["export list"] if "exports" in self.steps else [])]


BASE = FlagStep(
    name="Os",
    why="optimise for size; no docstrings; no test modules (the issue's first measurement)",
    cflags=("-Os",),
    # LDFLAGS too: with LTO the link is where code is generated.
    ldflags=("-Os",),
    # --with-ensurepip=no: `make install` puts no pip in the runtime; the freezer's venv gets its own.
    configure=("--enable-shared", "--without-doc-strings", "--disable-test-modules", "--with-ensurepip=no"),
    # Debian's security backport makes pyexpat.c include an internal header, which setup.py's build
    # of it does not allow; without pyexpat, pip (and anything reading XML) fails.
    edits=("pyexpat-core-module",),
)
O2 = FlagStep(
    name="O2",
    why="the balanced recipe's base: optimise for speed as Debian does (-O2), with the size base's "
        "configure options and edits (no test modules, no pip)",
    cflags=("-O2",),
    ldflags=("-O2",),
    configure=BASE.configure,
    edits=BASE.edits,
)
LTO = FlagStep(
    name="lto",
    why="link-time optimisation across the whole of libpython: inlines and drops what no caller needs",
    configure=("--with-lto",),
)
RELR = FlagStep(
    name="relr",
    why="pack the relative relocations (DT_RELR, glibc >= 2.36): deep-frozen code objects and type "
        "tables are pointers, each one a 24-byte .rela.dyn entry otherwise",
    ldflags=("-Wl,-z,pack-relative-relocs",),
    # bookworm's binutils (2.40) packs relocations for x86 only: its aarch64 and arm linkers print
    # "-z pack-relative-relocs ignored".
    arches=("x86_64",),
)
BSYMBOLIC = FlagStep(
    name="bsymbolic",
    why="bind libpython's references to its own symbols at link time: no symbol relocations, no PLT "
        "calls inside libpython (safe: its users are extension modules and a dlsym()ing bootloader; an "
        "executable linked against it with copy relocations would not be)",
    ldflags=("-Wl,-Bsymbolic",),
)
NO_UNWIND = FlagStep(
    name="no-unwind-tables",
    why="no .eh_frame for C code that never throws (pthread_exit still ends a thread: glibc's forced "
        "unwind stops at the first frame without tables and jumps to the thread's start)",
    cflags=("-fno-asynchronous-unwind-tables", "-fno-unwind-tables"),
    # At the link too: LTO generates the code there, and without them it emits the tables anyway.
    ldflags=("-fno-asynchronous-unwind-tables", "-fno-unwind-tables"),
)
FROZEN = FlagStep(
    name="frozen-import-only",
    why="deep-freeze only the import system into libpython; os, site, codecs, io, ... (about 600 KB of "
        "static code objects) load from the frozen app's archive, which carries them anyway",
    edits=("frozen-import-only",),
)
EXPORTS = FlagStep(
    name="exports",
    why="relink libpython exporting only what the bundled extension modules and the bootloader import "
        "(build/runtime/exports.py), so LTO drops the rest of the C API",
    link_only=True,
)
BORROWED_CODE = FlagStep(
    name="frames-borrow-code",
    why="memory, not bytes: a call's frame borrows its function's code object instead of taking a "
        "reference, so a worker forked by `run` does not write to (copy) the page of every code object it "
        "calls (3 workers under `run`, flash-min: 22,055 -> 21,493 kB PSS)",
    edits=("frames-borrow-code",),
)
NO_QUICKENING = FlagStep(
    name="no-quickening",
    why="memory, not bytes: never rewrite a code object's bytecode in place (3.11's specialising "
        "interpreter), so the code a forked worker runs stays shared (with frames-borrow-code: 21,493 -> "
        "19,806 kB PSS; alone it saved nothing, the reference counts copied the pages anyway); the price "
        "is pure-Python speed, see benchmarks/runtime.py",
    edits=("no-quickening",),
)
SMALL_TYPE_CACHE = FlagStep(
    name="small-type-cache",
    why="memory, and bytes too: a method cache of 512 entries instead of 4,096 (12 KiB instead of 96), which "
        "every process fills with its own lookups and the references they hold (3 workers under `run`, "
        "flash-min, without the OS's files: 19,150 -> 18,500 kB PSS; loops no slower within 2 %). 3.11's "
        "runtime state is statically initialised, so the cache sits in libpython's data twice (_PyRuntime and "
        "the `initial` copy it is reset from): 172,032 bytes less stripped, of zeros (xz -9e: the same; issue 18, "
        "benchmarks/runtime.py --speed --without small-type-cache: no speed difference above the noise)",
    edits=("small-type-cache",),
)
TEXT_SIGNATURES = FlagStep(
    name="text-signatures",
    why="stock behaviour: keep each builtin's text signature (the `name(...)\\n--\\n\\n` head of its "
        "docstring) and drop only the prose, so inspect.signature(len) works and so does "
        "@dataclass(init=False), which 3.11.2 builds on inspect.signature(object)",
    drops=("--without-doc-strings",),
    edits=("text-signatures",),
)
PUBLIC_API = FlagStep(
    name="public-api",
    why="stock behaviour: export CPython's public C API besides what the bundled modules import (the "
        "stable ABI of Misc/stable_abi.toml and every PyAPI_FUNC/PyAPI_DATA without a leading underscore "
        "in Include/), so code reaching it through ctypes.pythonapi finds it",
    link_only=True,
)
GC_SECTIONS = FlagStep(
    name="gc-sections",
    why="one section per function and datum, so the linker drops those nothing references",
    cflags=("-ffunction-sections", "-fdata-sections"),
    ldflags=("-Wl,--gc-sections",),
)

STEPS: tuple[FlagStep, ...] = (BASE, O2, LTO, RELR, BSYMBOLIC, NO_UNWIND, FROZEN, EXPORTS, BORROWED_CODE, NO_QUICKENING,
                               SMALL_TYPE_CACHE, TEXT_SIGNATURES, PUBLIC_API, GC_SECTIONS)
# The steps the size runtime uses, in the order they were measured (each on top of those before).
SIZE_STEPS: tuple[str, ...] = ("Os", "lto", "relr", "bsymbolic", "no-unwind-tables", "frozen-import-only", "exports",
                              "frames-borrow-code", "no-quickening", "small-type-cache", "text-signatures",
                              "public-api")
# A recipe between speed and size (issue 18): -O2 and the specialising interpreter (quickening on),
# with every byte-saving step that costs no speed; measured by benchmarks/runtime.py --speed.
BALANCED_STEPS: tuple[str, ...] = ("O2", "lto", "relr", "bsymbolic", "no-unwind-tables", "frozen-import-only", "exports",
                                  "frames-borrow-code", "small-type-cache", "text-signatures", "public-api")
RECIPES: Mapping[str, tuple[str, ...]] = {"size": SIZE_STEPS, "balanced": BALANCED_STEPS}
# Steps measured and left out, with why.
TRIED: Mapping[str, str] = {
    "gc-sections": "no byte less once LTO runs (stripped libpython identical with and without): LTO "
                   "already drops what nothing references; without LTO it saved nothing either",
}

# What configure is always given as OPT: no -O3/-g from CPython's own (our -Os must win; the runtime
# is stripped anyway).
OPT = "-DNDEBUG -fwrapv"


def step_named(name: str) -> FlagStep:
    for step in STEPS:
        if step.name == name:
            return step
    raise KeyError(name)


def merge(steps: Iterable[FlagStep]) -> FlagSet:
    """The steps' flags in order, each flag once."""
    steps = tuple(steps)

    def once(values: Iterable[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(values))

    dropped = {f for s in steps for f in s.drops}
    return FlagSet(steps=tuple(s.name for s in steps),
                   cflags=once(f for s in steps for f in s.cflags),
                   ldflags=once(f for s in steps for f in s.ldflags),
                   configure=once(f for s in steps for f in s.configure if f not in dropped),
                   edits=once(f for s in steps for f in s.edits))


def compiled_part(flags: FlagSet) -> FlagSet:
    """The flag set without its link-only steps: what the compiled build tree depends on."""
    return replace(flags, steps=tuple(s for s in flags.steps if not step_named(s).link_only))


def applies(step: FlagStep, target: str) -> bool:
    return step.arches is None or target in step.arches


def size_flags(target: str, recipe: str = "size") -> FlagSet:
    """The steps of `recipe` (RECIPES) that work on `target`."""
    return merge(step for step in map(step_named, RECIPES[recipe]) if applies(step, target))


def cache_key(*, source_version: str, flags: FlagSet, target: str, extra: Mapping[str, str] | None = None) -> str:
    """A short hash of everything that determines the built runtime: its folder name under work/.cache/runtime/."""
    data = {"recipe": RECIPE, "package": SOURCE_PACKAGE, "source": source_version, "target": target,
            "opt": OPT, "steps": list(flags.steps), "cflags": list(flags.cflags), "ldflags": list(flags.ldflags),
            "configure": list(flags.configure), "edits": list(flags.edits),
            # The text of the module that makes every edit, in data and in code: a corrected edit must
            # not reuse a runtime built with the old one, and nobody has to remember to bump RECIPE.
            "edits_module": source_edits.DIGEST if flags.edits else None,
            "extra": dict(sorted((extra or {}).items()))}
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    return f"{SOURCE_PACKAGE}-{target}-{digest}"
