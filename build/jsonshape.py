"""The one checker of a JSON document's field types (pure).

manifest.json, sweep.json and report.json each declare their fields once, as a table of `Kind`s,
and are read through `check`: a writer and its reader then share one definition, and a damaged
or hand-edited file is one clear error naming the field, never a traceback further on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from build.errors import ArtifactError

Fail = Callable[[str], ArtifactError]


@dataclass(frozen=True)
class Kind:
    """What one field may hold: `test` on a present value; None (null) passes unless `required`.
    `fields` makes it an object whose own fields are checked the same way; `items` a list of them."""

    name: str
    test: Callable[[Any], bool]
    required: bool = False
    fields: Mapping[str, Kind] | None = field(default=None, compare=False)
    items: Kind | None = None

    def needed(self) -> Kind:
        """The same kind, where null (or absent) is an error."""
        return Kind(self.name, self.test, True, self.fields, self.items)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value >= 0)


TEXT = Kind("a string", lambda v: isinstance(v, str))
FLAG = Kind("true or false", lambda v: isinstance(v, bool))
COUNT = Kind("a whole number >= 0", _count)
NUMBER = Kind("a number >= 0", _number)
OBJECT = Kind("an object", lambda v: isinstance(v, dict))


def shape(fields: Mapping[str, Kind]) -> Kind:
    """An object whose fields are `fields` (others are allowed: older readers ignore new keys)."""
    return Kind("an object", lambda v: isinstance(v, dict), fields=fields)


def list_of(item: Kind) -> Kind:
    return Kind(f"a list of {item.name.removeprefix('a ').removeprefix('an ')}s" if item.fields is None
                else "a list of objects", lambda v: isinstance(v, list), items=item)


def check(doc: Mapping[str, Any], fields: Mapping[str, Kind], where: str, fail: Fail) -> None:
    """Raise `fail("<where>: 'key' must be <kind> ...")` for the first field of `doc` that is not
    of its kind; nested objects and lists are named by their path (`profiles[0].source`)."""
    for key, kind in fields.items():
        _check_value(doc.get(key), kind, f"{where}: {key!r}" if where else repr(key),
                     f"{where}.{key}" if where else key, fail)


def _check_value(value: Any, kind: Kind, label: str, path: str, fail: Fail) -> None:
    if value is None:
        if kind.required:
            raise fail(f"{label} must be {kind.name}")
        return
    if not kind.test(value):
        raise fail(f"{label} must be {kind.name}{'' if kind.required else ' or null'}, not {value!r:.60}")
    if kind.fields is not None:
        check(value, kind.fields, path, fail)
    if kind.items is not None:
        for index, item in enumerate(value):
            _check_value(item, kind.items.needed(), f"{path}[{index}]", f"{path}[{index}]", fail)
