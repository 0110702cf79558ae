"""Reader: the constants blob inside a Nuitka-compiled executable (Nuitka 4.3:
nuitka/tools/data_composer/DataComposer.py).

The blob is a sequence of parts, `name NUL, u32 size, part`: ".bytecode" (modules shipped as
bytecode rather than compiled), "" (constants shared by all modules), ".files", then one part
per compiled module with that module's constants. Every part is `u16 count, values..., end tag`.
In ".bytecode" each value is a length-prefixed bytes value: `tag, varint length, marshalled code`,
whose co_filename names the module (read by build.analysis.marshal_scan, never by marshal.loads).
Compiled C code has no such table: it stays in the executable's text and is only attributed as
a whole (a guess).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from build.analysis.leb128 import uleb128
from build.analysis.marshal_scan import code_filename

_NAME = re.compile(rb"(?:\.bytecode|\.files|[A-Za-z_][A-Za-z0-9_.]*)?\Z")
COMPILED_MARKERS = (b"__compiled__", b"Nuitka")


@dataclass(frozen=True, kw_only=True)
class Part:
    name: str
    header: tuple[int, int]  # name, NUL and size field
    body: tuple[int, int]


@dataclass(frozen=True, kw_only=True)
class BytecodeModule:
    module: str
    span: tuple[int, int]  # its tag, length and marshalled code


@dataclass(frozen=True, kw_only=True)
class ConstantsBlob:
    start: int
    end: int
    parts: tuple[Part, ...]
    bytecode: tuple[BytecodeModule, ...]


def looks_compiled(data: bytes) -> bool:
    return data[:4] == b"\x7fELF" and all(m in data for m in COMPILED_MARKERS)


def find_blob(data: bytes) -> ConstantsBlob | None:
    """The constants blob, found by its ".bytecode" part (or, failing that, by "__main__")."""
    best: tuple[Part, ...] = ()
    for anchor in (b".bytecode\0", b"__main__\0"):
        for match in re.finditer(re.escape(anchor), data):
            parts = _chain(data, match.start())
            if len(parts) > len(best) and any(p.name in (".bytecode", "__main__") for p in parts):
                best = parts
        if best:
            break
    if not best:
        return None
    bytecode = next((p for p in best if p.name == ".bytecode"), None)
    modules = _bytecode_modules(data, bytecode) if bytecode else ()
    return ConstantsBlob(start=best[0].header[0], end=best[-1].body[1], parts=best, bytecode=modules)


def _chain(data: bytes, pos: int) -> tuple[Part, ...]:
    """Parts from `pos` while they look like parts: a plausible name, a size that fits, and the
    same end tag as the first part."""
    parts: list[Part] = []
    end_tag = None
    while True:
        nul = data.find(b"\0", pos, pos + 512)
        if nul < 0 or not _NAME.match(data[pos:nul]):
            break
        body = nul + 5
        if body > len(data):
            break
        (size,) = struct.unpack_from("<I", data, nul + 1)
        if size < 3 or body + size > len(data):
            break
        tag = data[body + size - 1]
        if end_tag is not None and tag != end_tag:
            break
        name = data[pos:nul].decode("ascii")
        if parts and not _in_order(parts[-1].name, name):
            break
        end_tag = tag
        parts.append(Part(name=name, header=(pos, body), body=(body, body + size)))
        pos = body + size
    return tuple(parts)


def _const_file(name: str) -> str:
    # The data composer writes parts in the sorted order of their .const file names.
    return {".bytecode": "__bytecode", "": "__constants", ".files": "__files"}.get(name, f"module.{name}") + ".const"


def _in_order(previous: str, name: str) -> bool:
    return _const_file(previous) < _const_file(name)


def _bytecode_modules(data: bytes, part: Part) -> tuple[BytecodeModule, ...]:
    start, end = part.body
    (count,) = struct.unpack_from("<H", data, start)
    pos = start + 2
    modules = []
    try:
        for index in range(count):
            begin = pos
            pos += 1  # the value's type tag
            length, pos = uleb128(data, pos)
            if pos + length > end:
                return ()
            blob = data[pos:pos + length]
            pos += length
            modules.append(BytecodeModule(module=_module_name(blob, index), span=(begin, pos)))
    except IndexError:
        return ()
    return tuple(modules)


def _module_name(blob: bytes, index: int) -> str:
    # Never marshal.loads: these are anybody's bytes. The span keeps its true size either way.
    filename = code_filename(blob)
    if filename is None:
        return f"[bytecode #{index}]"
    name = filename.rsplit(".", 1)[0].replace("\\", "/").strip("/").replace("/", ".")
    return name.removesuffix(".__init__") or f"[bytecode #{index}]"
