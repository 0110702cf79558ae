"""Every edit the size runtime makes to CPython's source tree before configure, as pure functions of text.

All of them live in this one module, so the cache key carries its text (`DIGEST`): changing an edit,
in data or in code, builds another runtime, with no version to bump by hand (the class of bug
d762c5a fixed for the data alone). build/runtime/compile.py applies them by name;
build/runtime/guards.py checks the edited tree for what they rely on.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path


class EditError(ValueError):
    """A file is not the one an edit was written for."""


# Edits to CPython's C source, each a list of (file, text found exactly once, its replacement).
SOURCE_EDITS: dict[str, tuple[tuple[str, str, str], ...]] = {
    # A frame borrows its function's code object: the frame holds the function, the function holds
    # the code. Without it every call writes the code object's reference count, and a worker forked
    # by `run` copies the page of every code object it calls. Assigning __code__ keeps the old code
    # alive (a leak of one object per assignment), so a running frame never loses the code it runs.
    "frames-borrow-code": (
        ("Include/internal/pycore_frame.h", "frame->f_code = (PyCodeObject *)Py_NewRef(func->func_code);",
         "frame->f_code = (PyCodeObject *)func->func_code;"),
        ("Python/frame.c", "    Py_DECREF(frame->f_func);\n    Py_DECREF(frame->f_code);\n",
         "    Py_DECREF(frame->f_func);\n"),
        ("Objects/frameobject.c", "    PyObject_GC_Del(f);\n    Py_XDECREF(co);\n",
         "    PyObject_GC_Del(f);\n    (void)co;\n"),
        ("Objects/funcobject.c", "    Py_INCREF(value);\n    Py_XSETREF(op->func_code, value);\n",
         "    Py_INCREF(value);\n    op->func_code = value;\n"),
        # A generator made by a call from C (f(*a, **k), contextmanager) hands its frame over and
        # gives the entry frame new references for _PyFrame_Clear to release: no longer the code's.
        ("Python/ceval.c", "            Py_INCREF(frame->f_func);\n            Py_INCREF(frame->f_code);\n",
         "            Py_INCREF(frame->f_func);\n"),
    ),
    # The type attribute (method) cache: 2**9 entries instead of 2**12.
    "small-type-cache": (
        ("Include/internal/pycore_typeobject.h", "#define MCACHE_SIZE_EXP 12\n", "#define MCACHE_SIZE_EXP 9\n"),
    ),
    # The warm-up counter never reaches zero, so no code object is quickened (rewritten in place).
    "no-quickening": (
        ("Include/internal/pycore_code.h", "    if (code->co_warmup != 0) {\n        code->co_warmup++;",
         "    if (0) {\n        code->co_warmup++;"),
    ),
}


def source_edited(edit: str, relative: str, text: str) -> str:
    """`text` (the file `relative` of CPython's tree) with the edit's replacements for it."""
    for file, old, new in SOURCE_EDITS[edit]:
        if file == relative:
            if text.count(old) != 1:
                raise EditError(f"{relative} is not the one this edit was written for")
            text = text.replace(old, new)
    return text


# --- frozen-import-only: Tools/scripts/freeze_modules.py ------------------------------------

# Markers in Tools/scripts/freeze_modules.py (CPython 3.11) around what `frozen-import-only` removes.
_FROZEN_FROM = "    ('stdlib - startup, without site (python -S)', ["
_FROZEN_TO = "    (TESTS_SECTION, ["
_EMPTY_SECTION = ("        if not lines[0]:", "        if lines and not lines[0]:")


def frozen_import_only(script: str) -> str:
    """freeze_modules.py with only the import system (and the tiny test modules) left to freeze."""
    start, end = script.find(_FROZEN_FROM), script.find(_FROZEN_TO)
    if start < 0 or end < start or _EMPTY_SECTION[0] not in script:
        raise EditError("Tools/scripts/freeze_modules.py is not the one this edit was written for")
    return (script[:start] + script[end:]).replace(*_EMPTY_SECTION)


# --- pyexpat-core-module: Modules/pyexpat.c --------------------------------------------------

_CORE_MODULE = "#ifndef Py_BUILD_CORE_BUILTIN\n#  define Py_BUILD_CORE_MODULE 1\n#endif\n"


def pyexpat_core_module(text: str) -> str:
    """pyexpat.c declaring itself a core module, as CPython 3.12's does (idempotent)."""
    return text if "Py_BUILD_CORE_MODULE" in text else _CORE_MODULE + text


# --- the cross build's configure -------------------------------------------------------------

_SYSCONFIGDATA_UPSTREAM = "_PYTHON_SYSCONFIGDATA_NAME=_sysconfigdata_$(ABIFLAGS)_$(MACHDEP)_$(MULTIARCH)"
_SYSCONFIGDATA_DEBIAN = "_PYTHON_SYSCONFIGDATA_NAME=_sysconfigdata_$(ABIFLAGS)_$(MULTIARCH)"


def sysconfigdata_edit(configure: str) -> str:
    """configure naming the build's sysconfig data as Debian's patched sysconfig.py and Makefile do
    (`_sysconfigdata__aarch64-linux-gnu`, no `linux_`): Debian patches both but not configure's
    cross-build line, so `make install` looks for a file the cross build never wrote."""
    if _SYSCONFIGDATA_UPSTREAM not in configure:
        if _SYSCONFIGDATA_DEBIAN in configure:
            return configure
        raise EditError("configure has no _PYTHON_SYSCONFIGDATA_NAME line to edit")
    return configure.replace(_SYSCONFIGDATA_UPSTREAM, _SYSCONFIGDATA_DEBIAN)


# --- text-signatures: every docstring cut to its signature ------------------------------------

# The folders whose C files carry the docstrings of what libpython and its modules define.
DOC_FOLDERS = ("Modules", "Objects", "Python", "Parser")
_DOC_MACRO = re.compile(r"\bPyDoc_STR(VAR)?\(")
# What CPython's own parser of an internal docstring accepts as a signature (Objects/typeobject.c:
# find_signature and skip_signature): `name(` at the start, `)\n--\n\n` before any blank line.
_SIGNATURE_START = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\(")
_SIGNATURE_END = ")\n--\n\n"
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "\\": "\\", "'": "'",
            '"': '"', "?": "?"}


def signature_part(doc: str) -> str:
    """The part of an internal docstring CPython turns into `__text_signature__` ('' if none)."""
    if not _SIGNATURE_START.match(doc):
        return ""
    end, blank = doc.find(_SIGNATURE_END), doc.find("\n\n")
    if end < 0 or 0 <= blank < end:
        return ""
    return doc[:end + len(_SIGNATURE_END)]


def _unescape(body: str) -> str:
    """The characters of a C string literal's body."""
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt == "\n":  # a line splice
            i += 2
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "01234567":
            digits = re.match(r"[0-7]{1,3}", body[i + 1:]).group()  # type: ignore[union-attr]
            out.append(chr(int(digits, 8)))
            i += 1 + len(digits)
        elif nxt == "x":
            digits = re.match(r"[0-9a-fA-F]+", body[i + 2:]).group()  # type: ignore[union-attr]
            out.append(chr(int(digits, 16)))
            i += 2 + len(digits)
        else:
            raise EditError(f"unknown escape \\{nxt} in a docstring")
    return "".join(out)


def c_literal(text: str) -> str:
    """`text` as one C string literal (ASCII; anything else octal-escaped)."""
    out = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif " " <= c <= "~":
            out.append(c)
        else:
            out.extend(f"\\{b:03o}" for b in c.encode())
    return '"' + "".join(out) + '"'


def _argument_end(text: str, start: int) -> tuple[int, list[tuple[int, int]], bool]:
    """From `start` (just inside a macro's parenthesis): the index of its closing parenthesis, the
    spans of the string literals on the way at depth 0, and whether anything but literals,
    whitespace and comments came between them."""
    depth, i, literals, other = 0, start, [], False
    while i < len(text):
        c = text[i]
        if c == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if depth == 0:
                literals.append((i, j + 1))
            i = j + 1
            continue
        if text.startswith("/*", i):
            i = text.index("*/", i) + 2
            continue
        if text.startswith("//", i):
            i = text.index("\n", i)
            continue
        if c == "'":
            j = i + 1
            while text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            other = True
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                return i, literals, other
            depth -= 1
        if not c.isspace():
            other = True
        i += 1
    raise EditError("a PyDoc_STR macro without its closing parenthesis")


def text_signatures_only(text: str) -> tuple[str, int]:
    """C source with every docstring cut to its signature, and how many signatures were kept.
    A docstring given straight to PyDoc_STR/PyDoc_STRVAR loses its prose (all of it when it has no
    signature, as with --without-doc-strings); so does any other run of adjacent literals that starts
    with a signature (slot wrappers, math's functions: docstrings passed through a macro's argument).
    `inspect.signature` of builtins keeps working, which dataclasses (3.11.2) relies on."""
    text = _cut_macro_arguments(text)
    out, pos, kept = [], 0, 0
    for first, last, doc in _literal_runs(text):
        signature = signature_part(doc)
        if not signature:
            continue
        kept += 1
        if signature != doc:
            out.append(text[pos:first])
            out.append(c_literal(signature))
            pos = last
    out.append(text[pos:])
    return "".join(out), kept


_TOKEN = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|/\*.*?\*/|//[^\n]*', re.S)


def _literal_runs(text: str):
    """(start, end, decoded text) of every run of adjacent string literals (only blanks, comments and
    line splices between them)."""
    run: list[tuple[int, int]] = []
    for token in _TOKEN.finditer(text):
        if not token.group().startswith('"'):
            continue  # a comment or a character literal: never part of a run's text
        if run and not _only_literals_and_space(text[run[-1][1]:token.start()]):
            yield _decoded(text, run)
            run = []
        run.append(token.span())
    if run:
        yield _decoded(text, run)


def _decoded(text: str, run: list[tuple[int, int]]) -> tuple[int, int, str]:
    return run[0][0], run[-1][1], "".join(_unescape(text[a + 1:b - 1]) for a, b in run)


def _cut_macro_arguments(text: str) -> str:
    """Every literal docstring given straight to PyDoc_STR/PyDoc_STRVAR cut to its signature."""
    out, pos = [], 0
    for match in _DOC_MACRO.finditer(text):
        if match.start() < pos:
            continue
        start = match.end()
        if match.group(1):  # PyDoc_STRVAR(name, docstring): skip the name
            comma = text.index(",", start)
            if not re.fullmatch(r"\s*\w+\s*", text[start:comma]):
                continue  # the macro used inside another macro's definition
            start = comma + 1
        end, literals, other = _argument_end(text, start)
        if not literals:
            continue  # PyDoc_STR(DOC) inside a macro: its callers' literals are cut as runs
        doc, previous = "", start
        for a, b in literals:
            if not _only_literals_and_space(text[previous:a]):
                break  # a macro or a directive in between: only the literal prefix counts
            doc += _unescape(text[a + 1:b - 1])
            previous = b
        out.append(text[pos:start])
        out.append(" " + c_literal(signature_part(doc)))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _only_literals_and_space(segment: str) -> bool:
    stripped = re.sub(r'"(?:\\.|[^"\\])*"|/\*.*?\*/|//[^\n]*|\\\n', "", segment, flags=re.S)
    return not stripped.strip()


def text_signatures_tree(tree: Path) -> int:
    """Apply `text_signatures_only` to every C file of `tree`'s DOC_FOLDERS; the signatures kept."""
    kept = 0
    for folder in DOC_FOLDERS:
        for path in sorted((tree / folder).rglob("*")):
            if path.suffix not in (".c", ".h") or not path.is_file() or path.is_symlink():
                continue
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
            edited, count = text_signatures_only(text)
            kept += count
            if edited != text:
                path.write_text(edited, encoding="utf-8", errors="surrogateescape")
    return kept


# Edits made in code, by name: the file each rewrites and how.
FILE_EDITS = {
    "frozen-import-only": ("Tools/scripts/freeze_modules.py", frozen_import_only),
    "pyexpat-core-module": ("Modules/pyexpat.c", pyexpat_core_module),
    # Not a flag step: every cross build needs it (build/runtime/cross.py).
    "cross-sysconfigdata": ("configure", sysconfigdata_edit),
}


def apply(tree: Path, edit: str) -> None:
    """Make the edit named `edit` in the source tree `tree` (EditError when a file is not the one it
    was written for, or the name is unknown)."""
    if edit in SOURCE_EDITS:
        for relative in dict.fromkeys(file for file, _old, _new in SOURCE_EDITS[edit]):
            path = tree / relative
            path.write_text(source_edited(edit, relative, path.read_text()))
    elif edit in FILE_EDITS:
        relative, function = FILE_EDITS[edit]
        path = tree / relative
        path.write_text(function(path.read_text()))
    elif edit == "text-signatures":
        if text_signatures_tree(tree) == 0:
            raise EditError("no docstring in the tree has a text signature to keep")
    else:
        raise EditError(f"unknown source edit {edit!r}")


# The text of this module: every edit above, in data and in code, for the cache key.
DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
