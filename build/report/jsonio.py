"""report.json: the SizeReport as versioned, deterministic JSON, and back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from build.analysis.elf_sections import OLD_GROUPS
from build.analysis.model import (
    SCHEMA,
    CommandCost,
    SCHEMA_1,
    Link,
    NativeFile,
    Retained,
    Row,
    Section,
    SizeReport,
)
from build.analysis.ops import Diff, sort_rows
from build.analysis.symbols import Breakdown, Part
from build.errors import ArtifactError

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


def _native_from_dict(d: dict[str, Any]) -> NativeFile:
    units = tuple(Part(name=str(u[0]), kind=str(u[1]), unit=str(u[2]), size=_int(u[3]), code=_int(u[4]))
                  for u in d["units"])
    symbols = tuple(Part(name=str(p[0]), kind=str(p[1]), unit=str(p[2]), size=_int(p[3]), code=_int(p[4]))
                    for p in d["symbols"])
    return NativeFile(row=str(d["row"]), size=_int(d["size"]),
                      breakdown=Breakdown(source=str(d["source"]), units_from=str(d["units_from"]),
                                          code_bytes=_int(d["code_bytes"]), code_in_units=_int(d["code_in_units"]),
                                          symbols=symbols, units=units))


def dumps(report: SizeReport) -> str:
    return json.dumps(report_to_dict(report), indent=1, ensure_ascii=False) + "\n"


def report_from_dict(data: Any, *, source: str) -> SizeReport:
    """Validate and rebuild a report; ArtifactError for anything that is not schema 1."""
    if not isinstance(data, dict):
        raise ArtifactError(f"{source}: not a slimfreeze size report (expected a JSON object)")
    schema = data.get("schema")
    if schema not in (SCHEMA, SCHEMA_1):
        raise ArtifactError(f"{source}: unknown report schema {schema!r}; this slimfreeze reads {SCHEMA!r} "
                            f"and {SCHEMA_1!r}")
    # Schema 1 had four section groups (text, rodata, data, other); the same bytes, renamed.
    group = (lambda name: OLD_GROUPS.get(name, name)) if schema == SCHEMA_1 else (lambda name: name)
    try:
        rows = tuple(Row(name=str(r["name"]), kind=str(r["kind"]), stored=_int(r["stored"]), raw=_int(r["raw"]),
                         module=str(r["module"]), package=str(r["package"]), distribution=str(r["distribution"]),
                         guess=bool(r["guess"]), estimate=bool(r["estimate"]),
                         children=tuple(Section(name=group(str(c["name"])), stored=_int(c["stored"]), raw=_int(c["raw"]),
                                                estimate=bool(c.get("estimate", False)))
                                        for c in r.get("children") or ()))
                     for r in data["rows"])
        report = SizeReport(artifact=str(data["artifact"]), format=str(data["format"]),
                            total_stored=_int(data["total_stored"]), total_raw=_int(data["total_raw"]),
                            rows=rows, files=_int(data.get("files", 1)),
                            notes=tuple(str(n) for n in data.get("notes") or ()),
                            links=tuple(Link(path=str(x["path"]), target=str(x["target"]))
                                        for x in data.get("links") or ()),
                            manifest=data.get("manifest") if isinstance(data.get("manifest"), dict) else None,
                            retained=_retained(data.get("retained")),
                            commands=_commands(data.get("commands")),
                            native=tuple(_native_from_dict(n) for n in data.get("native") or ()),
                            architecture=str(data["architecture"]) if data.get("architecture") else None)
    except (KeyError, TypeError, ValueError) as err:
        raise ArtifactError(f"{source}: malformed size report ({type(err).__name__}: {err})") from None
    if sum(r.stored for r in report.rows) != report.total_stored:
        raise ArtifactError(f"{source}: malformed size report (its rows do not add up to its total)")
    return report


def _commands(value: Any) -> tuple[CommandCost, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise TypeError(f"commands: expected a list, got {type(value).__name__}")
    out = []
    for c in value:
        rows = c["own_rows"]
        if not isinstance(rows, list) or not all(isinstance(r, str) for r in rows):
            raise TypeError("commands: own_rows must be a list of row names")
        out.append(CommandCost(command=str(c["command"]), loaded=_int(c["loaded"]), own=_int(c["own"]),
                               own_rows=tuple(rows)))
    return tuple(out)


def _retained(value: Any) -> tuple[Retained, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise TypeError(f"retained: expected a list, got {type(value).__name__}")
    out = []
    for r in value:
        modules = r["modules"]
        if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
            raise TypeError("retained: modules must be a list of names")
        out.append(Retained(name=str(r["name"]), stored=_int(r["stored"]), raw=_int(r["raw"]), modules=tuple(modules)))
    return tuple(out)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a byte count, got {value!r}")
    return value


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
