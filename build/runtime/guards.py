"""What the interpreter edits rely on, checked over the edited source tree before anything compiles.

An edit that matched its snippet once can still be unsound: `frames-borrow-code` is safe only if no
other place in the tree takes or drops a frame's reference to its code object, and only the
function's deallocation releases `func_code`. A Debian point release that adds such a place would
compile cleanly. So every place in the tree that takes, releases or sets those references is
counted, per file and function, and must be exactly the audited list below (pure, but for reading
the tree). A tree that differs stops the build in one line naming the place; whoever updates the
list has read that place.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# The folders of CPython's tree whose C code is in libpython or its modules.
FOLDERS = ("Include", "Objects", "Python", "Modules", "Parser")

_REF = r"Py_(?:X?INCREF|X?DECREF|X?NewRef|CLEAR|X?SETREF)"
Site = tuple[str, str]  # (file relative to the tree, enclosing function)


@dataclass(frozen=True, kw_only=True)
class Guard:
    """Where `pattern` may match in the edited tree: exactly `expected` times per (file, function)."""

    edit: str
    what: str  # what a match does, for the one-line error
    pattern: str
    expected: Mapping[Site, int] = field(default_factory=dict)


GUARDS: tuple[Guard, ...] = (
    # frames-borrow-code: the frame's code is borrowed from its function, which the frame holds.
    Guard(edit="frames-borrow-code", what="takes or releases a frame's code reference",
          pattern=_REF + r"\s*\(\s*(?:\([^()]*\)\s*)?[\w.>\[\]-]*\bf_code\b"),
    Guard(edit="frames-borrow-code", what="sets a frame's code",
          pattern=r"(?:->|\.)f_code\s*=(?!=)",
          expected={("Include/internal/pycore_frame.h", "_PyFrame_InitializeSpecials"): 1,
                    ("Objects/frameobject.c", "frame_dealloc"): 1}),
    Guard(edit="frames-borrow-code", what="takes or releases a frame's function (which keeps its code alive)",
          pattern=_REF + r"\s*\(\s*(?:\([^()]*\)\s*)?[\w.>\[\]-]*\bf_func\b",
          expected={("Python/frame.c", "_PyFrame_Clear"): 1, ("Objects/frameobject.c", "frame_dealloc"): 1,
                    ("Python/ceval.c", "_PyEval_EvalFrameDefault"): 1}),
    Guard(edit="frames-borrow-code", what="sets a frame's function",
          pattern=r"(?:->|\.)f_func\s*=(?!=)",
          expected={("Include/internal/pycore_frame.h", "_PyFrame_InitializeSpecials"): 1}),
    Guard(edit="frames-borrow-code", what="releases a function's code",
          pattern=r"Py_(?:X?DECREF|CLEAR|X?SETREF)\s*\(\s*[\w.>\[\]-]*\bfunc_code\b",
          expected={("Objects/funcobject.c", "func_dealloc"): 1}),
    Guard(edit="frames-borrow-code", what="sets a function's code",
          pattern=r"(?:->|\.)func_code\s*=(?!=)",
          expected={("Objects/funcobject.c", "_PyFunction_FromConstructor"): 1,
                    ("Objects/funcobject.c", "PyFunction_NewWithQualName"): 1,
                    ("Objects/funcobject.c", "func_set_code"): 1}),
    # no-quickening: the one caller of _PyCode_Quicken sits in a branch that never runs.
    Guard(edit="no-quickening", what="calls or declares _PyCode_Quicken",
          pattern=r"\b_PyCode_Quicken\s*\(",
          expected={("Include/internal/pycore_code.h", "_PyCode_Warmup"): 1,
                    ("Include/internal/pycore_code.h", "(file scope)"): 1,
                    ("Python/specialize.c", "_PyCode_Quicken"): 1}),
    Guard(edit="no-quickening", what="has the warm-up that quickens never run",
          pattern=r"if \(0\) \{\s*code->co_warmup\+\+;",
          expected={("Include/internal/pycore_code.h", "_PyCode_Warmup"): 1}),
    # small-type-cache: one definition of the cache's size, the small one.
    Guard(edit="small-type-cache", what="defines the method cache's size",
          pattern=r"#\s*define\s+MCACHE_SIZE_EXP\b",
          expected={("Include/internal/pycore_typeobject.h", "(file scope)"): 1}),
    Guard(edit="small-type-cache", what="defines a method cache of 2**9 entries",
          pattern=r"#\s*define\s+MCACHE_SIZE_EXP\s+9\s",
          expected={("Include/internal/pycore_typeobject.h", "(file scope)"): 1}),
)

# A function's local copy of a frame's code (`co = frame->f_code;`), released in that function more
# often than it takes a reference to it: a release of the frame's own reference, under another name.
_ALIAS = re.compile(r"\b(\w+)\s*=\s*(?:\([^()]*\)\s*)?[\w.>\[\]-]*->f_code\s*;")
_FUNCTION = re.compile(r"^(?:[A-Za-z_][\w \t*]*?[\s*])?([A-Za-z_]\w*)\s*\([^;]*$")
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def _without_comments(text: str) -> str:
    """Comments blanked, newlines kept (line numbers stay right)."""
    return _COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)


def _functions(text: str) -> list[tuple[int, int, str]]:
    """(start, end, name) of each function body: from a signature line at column 0 to the next `}`
    at column 0 (CPython's style); everything else is "(file scope)"."""
    found = []
    lines = text.splitlines(keepends=True)
    offset, name, start = 0, None, 0
    for line in lines:
        if name is None:
            match = _FUNCTION.match(line)
            if match and not line.startswith(("#", "typedef", "struct", "}")):
                candidate = match.group(1)
            else:
                candidate = None
            if candidate:
                name, start = candidate, offset
            offset += len(line)
            continue
        if line.startswith("}"):
            found.append((start, offset + len(line), name))
            name = None
        elif line.strip().endswith(";") and not line.startswith((" ", "\t", "{")) and "{" not in text[start:offset]:
            name = None  # a prototype, not a definition
        offset += len(line)
    return found


def _site(functions: list[tuple[int, int, str]], position: int) -> str:
    for start, end, name in functions:
        if start <= position < end:
            return name
    return "(file scope)"


@dataclass(frozen=True, kw_only=True)
class Problem:
    edit: str
    what: str
    site: Site
    expected: int
    found: int

    def line(self) -> str:
        file, function = self.site
        return (f"the source breaks what {self.edit} relies on: {file} ({function}) {self.what} "
                f"{self.found} time(s), audited {self.expected} (build/runtime/guards.py)")


def c_files(tree: Path) -> Iterable[tuple[str, str]]:
    for folder in FOLDERS:
        for path in sorted((tree / folder).rglob("*")):
            if path.suffix in (".c", ".h") and path.is_file():
                yield path.relative_to(tree).as_posix(), path.read_text(encoding="utf-8", errors="replace")


def check_files(files: Iterable[tuple[str, str]], edits: Iterable[str]) -> list[Problem]:
    """Every guard of `edits` over (relative path, text) pairs: the places that differ from the audit."""
    guards = [g for g in GUARDS if g.edit in set(edits)]
    check_aliases = any(g.edit == "frames-borrow-code" for g in guards)
    found: dict[int, Counter[Site]] = {i: Counter() for i in range(len(guards))}
    aliases: Counter[Site] = Counter()
    for relative, raw in files:
        if not any(re.search(g.pattern, raw) for g in guards) and not (check_aliases and "f_code" in raw):
            continue
        text = _without_comments(raw)
        functions = _functions(text)
        for i, guard in enumerate(guards):
            for match in re.finditer(guard.pattern, text):
                found[i][(relative, _site(functions, match.start()))] += 1
        if check_aliases:
            for start, end, name in functions:
                body = text[start:end]
                for var in {m.group(1) for m in _ALIAS.finditer(body)}:
                    released = len(re.findall(rf"Py_(?:X?DECREF|CLEAR|X?SETREF)\s*\(\s*{var}\b", body))
                    taken = len(re.findall(rf"Py_(?:X?INCREF|X?NewRef)\s*\(\s*(?:\([^()]*\)\s*)?{var}\b", body))
                    if released > taken:
                        aliases[(relative, name)] += released - taken
    problems = []
    for i, guard in enumerate(guards):
        for site in sorted(set(found[i]) | set(guard.expected)):
            if found[i][site] != guard.expected.get(site, 0):
                problems.append(Problem(edit=guard.edit, what=guard.what, site=site,
                                        expected=guard.expected.get(site, 0), found=found[i][site]))
    problems += [Problem(edit="frames-borrow-code", what="releases a local copy of a frame's code", site=site,
                         expected=0, found=count) for site, count in sorted(aliases.items())]
    return problems


def check_tree(tree: Path, edits: Iterable[str]) -> list[Problem]:
    return check_files(c_files(tree), edits)
