"""report.json: the SizeReport as versioned, deterministic JSON, and back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from build.analysis.elf_sections import OLD_GROUPS
from build.analysis.model import (
    SCHEMA,
    SCHEMA_1,
    CommandCost,
    Link,
    NativeFile,
    Retained,
    Row,
    Section,
    SizeReport,
)
from build.analysis.ops import Diff, sort_rows
from build.analysis.symbols import Breakdown, Part
from build import jsonshape
from build.errors import ArtifactError
from build.jsonshape import COUNT, FLAG, OBJECT, TEXT, Kind, list_of, shape

DIFF_SCHEMA = "slimfreeze.size-diff/1"


def report_to_dict(report: SizeReport) -> dict[str, Any]:
    # "retained" is optional (schema 1 readers ignore keys they do not know): absent when the
    # report was made without an import graph, so such reports stay byte for byte as before.
    data = {
        "schema": SCHEMA,
        "artifact": report.artifact,
        "format": report.format,
        "architecture": report.architecture,
        "total_stored": report.total_stored,
        "total_raw": report.total_raw,
        "files": report.files,
        "notes": list(report.notes),
        "links": [{"path": link.path, "target": link.target} for link in report.links],
        "rows": [_row_to_dict(r) for r in sort_rows(report.rows)],
        "manifest": report.manifest,
    }
    if report.native:
        data["native"] = [_native_to_dict(n) for n in report.native]
    if report.commands is not None:
        data["commands"] = [{"command": c.command, "loaded": c.loaded, "own": c.own, "own_rows": list(c.own_rows)}
                            for c in report.commands]
    if report.retained is not None:
        data["retained"] = [{"name": r.name, "stored": r.stored, "raw": r.raw, "modules": list(r.modules)}
                            for r in sorted(report.retained, key=lambda r: (-r.stored, r.name))]
    return data


def _row_to_dict(row: Row) -> dict[str, Any]:
    return {"name": row.name, "kind": row.kind, "stored": row.stored, "raw": row.raw, "module": row.module,
            "package": row.package, "distribution": row.distribution, "guess": row.guess,
            "estimate": row.estimate,
            "children": [{"name": c.name, "stored": c.stored, "raw": c.raw, "estimate": c.estimate}
                         for c in row.children]}


# Functions kept per native file in report.json (the rest are summed in "symbols_rest"); units are all kept.
JSON_SYMBOLS = 200


def _native_to_dict(n: NativeFile) -> dict[str, Any]:
    b = n.breakdown
    kept, rest = b.symbols[:JSON_SYMBOLS], b.symbols[JSON_SYMBOLS:]
    return {"row": n.row, "size": n.size, "source": b.source, "units_from": b.units_from,
            "code_bytes": b.code_bytes, "code_in_units": b.code_in_units,
            "units": [[u.name, u.kind, u.unit, u.size, u.code] for u in b.units],
            "symbols": [[p.name, p.kind, p.unit, p.size, p.code] for p in kept],
            "symbols_rest": [len(rest), sum(p.size for p in rest)]}


def _part(value: Any) -> bool:
    """[name, kind, unit, size, code]: one function or unit of a native file."""
    return (isinstance(value, list) and len(value) == 5 and all(isinstance(v, str) for v in value[:3])
            and all(_count(v) for v in value[3:]))


_count = COUNT.test
PART = Kind("a [name, kind, unit, size, code] list", _part)
# The one definition of what report_to_dict writes, checked before anything is rebuilt from it.
SECTION_FIELDS = {"name": TEXT.needed(), "stored": COUNT.needed(), "raw": COUNT.needed(), "estimate": FLAG}
ROW_FIELDS = {"name": TEXT.needed(), "kind": TEXT.needed(), "stored": COUNT.needed(), "raw": COUNT.needed(),
              "module": TEXT.needed(), "package": TEXT.needed(), "distribution": TEXT.needed(),
              "guess": FLAG.needed(), "estimate": FLAG.needed(), "children": list_of(shape(SECTION_FIELDS))}
NATIVE_FIELDS = {"row": TEXT.needed(), "size": COUNT.needed(), "source": TEXT.needed(), "units_from": TEXT.needed(),
                 "code_bytes": COUNT.needed(), "code_in_units": COUNT.needed(), "units": list_of(PART).needed(),
                 "symbols": list_of(PART).needed()}
RETAINED_FIELDS = {"name": TEXT.needed(), "stored": COUNT.needed(), "raw": COUNT.needed(),
                   "modules": list_of(TEXT).needed()}
COMMAND_FIELDS = {"command": TEXT.needed(), "loaded": COUNT.needed(), "own": COUNT.needed(),
                  "own_rows": list_of(TEXT).needed()}
REPORT_FIELDS = {"artifact": TEXT.needed(), "format": TEXT.needed(), "architecture": TEXT,
                 "total_stored": COUNT.needed(), "total_raw": COUNT.needed(), "files": COUNT, "notes": list_of(TEXT),
                 "links": list_of(shape({"path": TEXT.needed(), "target": TEXT.needed()})),
                 "rows": list_of(shape(ROW_FIELDS)).needed(), "manifest": OBJECT,
                 "native": list_of(shape(NATIVE_FIELDS)), "retained": list_of(shape(RETAINED_FIELDS)),
                 "commands": list_of(shape(COMMAND_FIELDS))}


def _parts(items: list[list[Any]]) -> tuple[Part, ...]:
    return tuple(Part(name=name, kind=kind, unit=unit, size=size, code=code) for name, kind, unit, size, code in items)


def _native_from_dict(d: dict[str, Any]) -> NativeFile:
    return NativeFile(row=d["row"], size=d["size"],
                      breakdown=Breakdown(source=d["source"], units_from=d["units_from"], code_bytes=d["code_bytes"],
                                          code_in_units=d["code_in_units"], symbols=_parts(d["symbols"]),
                                          units=_parts(d["units"])))


def dumps(report: SizeReport) -> str:
    return json.dumps(report_to_dict(report), indent=1, ensure_ascii=False) + "\n"


def report_from_dict(data: Any, *, source: str) -> SizeReport:
    """Validate and rebuild a report; ArtifactError for anything that is not schema 1 or 2."""
    if not isinstance(data, dict):
        raise ArtifactError(f"{source}: not a slimfreeze size report (expected a JSON object)")
    schema = data.get("schema")
    if schema not in (SCHEMA, SCHEMA_1):
        raise ArtifactError(f"{source}: unknown report schema {schema!r}; this slimfreeze reads {SCHEMA!r} "
                            f"and {SCHEMA_1!r}")

    def fail(what: str) -> ArtifactError:
        return ArtifactError(f"{source}: malformed size report ({what})")

    jsonshape.check(data, REPORT_FIELDS, "", fail)
    # Schema 1 had four section groups (text, rodata, data, other); the same bytes, renamed.
    group = (lambda name: OLD_GROUPS.get(name, name)) if schema == SCHEMA_1 else (lambda name: name)
    rows = tuple(Row(name=r["name"], kind=r["kind"], stored=r["stored"], raw=r["raw"], module=r["module"],
                     package=r["package"], distribution=r["distribution"], guess=r["guess"], estimate=r["estimate"],
                     children=tuple(Section(name=group(c["name"]), stored=c["stored"], raw=c["raw"],
                                            estimate=bool(c.get("estimate")))
                                    for c in r.get("children") or ()))
                 for r in data["rows"])
    retained = data.get("retained")
    report = SizeReport(artifact=data["artifact"], format=data["format"], total_stored=data["total_stored"],
                        total_raw=data["total_raw"], rows=rows, files=data.get("files", 1),
                        notes=tuple(data.get("notes") or ()),
                        links=tuple(Link(path=x["path"], target=x["target"]) for x in data.get("links") or ()),
                        manifest=data.get("manifest"),
                        retained=None if retained is None else tuple(
                            Retained(name=r["name"], stored=r["stored"], raw=r["raw"], modules=tuple(r["modules"]))
                            for r in retained),
                        native=tuple(_native_from_dict(n) for n in data.get("native") or ()),
                        architecture=data.get("architecture") or None,
                        commands=None if data.get("commands") is None else tuple(
                            CommandCost(command=c["command"], loaded=c["loaded"], own=c["own"],
                                        own_rows=tuple(c["own_rows"])) for c in data["commands"]))
    if sum(r.stored for r in report.rows) != report.total_stored:
        raise ArtifactError(f"{source}: malformed size report (its rows do not add up to its total)")
    return report


def load(path: Path) -> SizeReport:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{path}: cannot read it ({err})") from None
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{path}: not a size report (invalid JSON: {err.msg} at line {err.lineno})") from None
    return report_from_dict(data, source=str(path))


def diff_to_dict(diff: Diff) -> dict[str, Any]:
    return {
        "schema": DIFF_SCHEMA,
        "old": {"artifact": diff.old_name, "total_stored": diff.old_total},
        "new": {"artifact": diff.new_name, "total_stored": diff.new_total},
        "delta": diff.delta,
        "level": diff.level,
        "unchanged": diff.unchanged,
        "changes": [{"name": c.name, "distribution": c.distribution, "change": c.kind, "old": c.old, "new": c.new,
                     "delta": c.delta} for c in diff.changes],
    }


def diff_dumps(diff: Diff) -> str:
    return json.dumps(diff_to_dict(diff), indent=1, ensure_ascii=False) + "\n"
