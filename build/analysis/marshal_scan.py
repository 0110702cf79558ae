"""Read marshalled data (a PYZ archive's table of contents, a code object's file name) without
unmarshalling it.

`marshal.loads` is not meant for untrusted data (the Python docs say so), and `bloat` reads
anybody's artifacts. This reader walks the marshal format (CPython's Python/marshal.c) as plain
data: it builds only strings, bytes, numbers and tuples, never a code object, and it stops at a
depth, an object count and the end of the input. Anything it does not recognise is a ValueError,
and the caller then names the bytes by their position instead.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

FLAG_REF = 0x80
MAX_DEPTH = 64
MAX_OBJECTS = 200_000


@dataclass(frozen=True)
class Code:
    """What we keep of a code object: its strings by position, for the caller to pick from."""

    fields: tuple[Any, ...]


class _Reader:
    def __init__(self, data: bytes, layout: Layout) -> None:
        self.data, self.pos = data, 0
        self.refs: list[Any] = []
        self.count = 0
        self.layout = layout

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("marshal data cut short")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def int32(self) -> int:
        return struct.unpack("<i", self.take(4))[0]

    def size(self) -> int:
        n = self.int32()
        if n < 0 or n > len(self.data) - self.pos:
            raise ValueError("marshal size out of range")  # every element takes at least one byte
        return n

    def read(self, depth: int = 0, *, end_of_dict: bool = False) -> Any:
        self.count += 1
        if depth > MAX_DEPTH or self.count > MAX_OBJECTS:
            raise ValueError("marshal data nested too deep or too large")
        code = self.byte()
        flag, kind = code & FLAG_REF, chr(code & ~FLAG_REF)
        slot = None
        if flag:
            slot = len(self.refs)
            self.refs.append(None)
        value = self._value(kind, depth)
        if value is _NULL and not end_of_dict:
            raise ValueError("marshal NULL outside a dict")  # marshal.loads refuses it too
        if slot is not None:
            self.refs[slot] = value
        return value

    def _value(self, kind: str, depth: int) -> Any:
        if kind in "NFTS.0":
            return {"N": None, "F": False, "T": True, "S": StopIteration, ".": Ellipsis, "0": _NULL}[kind]
        if kind == "i":
            return self.int32()
        if kind == "l":
            signed = self.int32()
            digits = abs(signed)
            if digits * 2 > len(self.data) - self.pos:
                raise ValueError("marshal long out of range")
            value = 0
            for shift, (digit,) in enumerate(struct.iter_unpack("<H", self.take(digits * 2))):
                value |= digit << (15 * shift)
            return -value if signed < 0 else value
        if kind == "g":
            return struct.unpack("<d", self.take(8))[0]
        if kind == "y":
            return complex(*struct.unpack("<dd", self.take(16)))
        if kind in "fx":
            texts = [self.take(self.byte()) for _ in range(1 if kind == "f" else 2)]
            return b" ".join(texts).decode("ascii", "replace")
        if kind == "s":
            return self.take(self.size())
        if kind in "tuaA":
            return self.take(self.size()).decode("utf-8", "surrogatepass")
        if kind in "zZ":
            return self.take(self.byte()).decode("latin-1")
        if kind in "([<>":
            return tuple(self.read(depth + 1) for _ in range(self.size()))
        if kind == ")":
            return tuple(self.read(depth + 1) for _ in range(self.byte()))
        if kind == "{":
            items = []
            while (key := self.read(depth + 1, end_of_dict=True)) is not _NULL:
                items.append((key, self.read(depth + 1)))
            return tuple(items)
        if kind == "r":
            index = self.int32()
            if not 0 <= index < len(self.refs):
                raise ValueError("marshal reference out of range")
            return self.refs[index]
        if kind == "c":
            for _ in range(self.layout.longs):
                self.int32()
            fields = tuple(self.read(depth + 1) for _ in range(self.layout.objects))
            self.int32()  # co_firstlineno
            fields += tuple(self.read(depth + 1) for _ in range(self.layout.tables))
            return Code(fields=fields)
        raise ValueError(f"unknown marshal type {kind!r}")


_NULL = object()  # marshal's TYPE_NULL, which ends a dict


@dataclass(frozen=True)
class Layout:
    """A code object's fields in one Python version's marshal format: `longs` int32s, `objects`
    objects (co_filename at `filename`), co_firstlineno, then `tables` objects."""

    longs: int
    objects: int
    filename: int
    tables: int


LAYOUTS = (
    # 3.11+: argcount posonlyargcount kwonlyargcount stacksize flags; code consts names
    # localsplusnames localspluskinds filename name qualname; firstlineno; linetable exceptiontable
    Layout(longs=5, objects=8, filename=5, tables=2),
    # 3.8-3.10: argcount posonlyargcount kwonlyargcount nlocals stacksize flags; code consts names
    # varnames freevars cellvars filename name; firstlineno; linetable (lnotab)
    Layout(longs=6, objects=8, filename=6, tables=1),
)


def code_filename(data: bytes) -> str | None:
    """co_filename of the code object marshalled in `data`, or None if it cannot be read safely."""
    for layout in LAYOUTS:
        reader = _Reader(data, layout)
        try:
            value = reader.read()
        except (ValueError, struct.error, UnicodeDecodeError):
            continue
        if reader.pos != len(data) or not isinstance(value, Code):
            continue  # read as another version's layout: it does not end where the data ends
        filename = value.fields[layout.filename]
        if isinstance(filename, str) and filename:
            return filename
    return None


def read_data(data: bytes) -> Any:
    """The plain value marshalled at the start of `data` (lists, sets and dicts come back as
    tuples; a code object as `Code`); ValueError if it cannot be read safely."""
    try:
        return _Reader(data, LAYOUTS[0]).read()
    except (struct.error, UnicodeDecodeError) as err:
        raise ValueError(f"unreadable marshal data ({err})") from None
