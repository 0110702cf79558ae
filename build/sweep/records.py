"""A sweep's data: records, ranking, merging runners' sweeps, the CI matrix, and the strict reader
of sweep.json. Pure, and free of anything above the ground floor, so the report pages read it too."""

from __future__ import annotations

import math
import platform
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from build.errors import ArtifactError
from build.paths import is_plain_name

SCHEMA = "slimfreeze.sweep/1"
SWEEP_NAME = "sweep.json"
REPORT_NAME = "report.json"
SOURCE = "source"
# The figures measured for every artifact and for the source baseline.
FIGURES = ("startup_ms", "first_ack_ms", "pss_kb_total", "rss_kb_total", "unpack_bytes", "worker_processes",
           "pss_kb_supervisor", "rss_kb_supervisor")
# The supervisor's workers: one of each long-running command, in one process tree.
RECORD_KEYS = ("profile", "ok", "error", "rank", "device_bytes", "artifact_bytes", "image_bytes", "image_format",
               "build_seconds", *FIGURES, "backend", "layout", "tls", "multicall", "target", "emulated", "note",
               "run_id", "source")


def empty_record(profile: str, **known: Any) -> dict[str, Any]:
    """A record with every key; `ok` is false unless `known` says otherwise."""
    record: dict[str, Any] = dict.fromkeys(RECORD_KEYS)
    record.update({"profile": profile, "ok": False, **known})
    return record


def profile_facts(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The strategy columns of a record, from a resolved profile (manifest or config)."""
    return {"backend": resolved.get("backend"), "layout": resolved.get("layout"), "tls": resolved.get("tls"),
            "multicall": resolved.get("multicall"), "target": resolved.get("target")}


def sizes_from_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """artifact, image and on-device bytes: the image is what goes on flash when there is one."""
    artifact = manifest.get("total_bytes")
    if artifact is None:  # older manifests: the files' sizes (build.manifest checked both)
        artifact = sum(entry["size"] for entry in manifest["files"])
    image = manifest.get("image") or {}
    size = image.get("size")
    image_format = " ".join(str(image[k]) for k in ("format", "compressor") if image.get(k)) or None
    return {"artifact_bytes": artifact, "image_bytes": size, "image_format": image_format if size is not None else None,
            "device_bytes": size if size is not None else artifact}


def source_figures(source: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: (source or {}).get(key) for key in FIGURES}


def rank(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Working variants by bytes on the device (then name), numbered from 1; failed ones after
    them by name, without a rank (pure)."""
    records = [dict(r) for r in records]
    working = sorted((r for r in records if r["ok"]), key=lambda r: (r["device_bytes"], r["profile"]))
    failed = sorted((r for r in records if not r["ok"]), key=lambda r: r["profile"])
    for number, record in enumerate(working, 1):
        record["rank"] = number
    for record in failed:
        record["rank"] = None
    return working + failed


def make_sweep(records: Iterable[Mapping[str, Any]], *, source: Mapping[str, Any] | None,
               settings: Mapping[str, Any], run_id: str, created: str) -> dict[str, Any]:
    run = {"run_id": run_id, "created": created, "python": platform.python_version(),
           "machine": platform.machine(), "source": dict(source) if source else None}
    return {"schema": SCHEMA, "created": created, "settings": dict(settings), "source": run["source"],
            "runs": [run], "profiles": rank(records)}


def merge(sweeps: Sequence[Mapping[str, Any]], *, created: str) -> dict[str, Any]:
    """One sweep from several runners' (pure). A profile found more than once keeps its working
    record over a failed one, then the newer run's. The top-level source baseline is the first
    run's; each record keeps the source figures measured beside it."""
    runs = sorted((run for sweep in sweeps for run in sweep.get("runs", [])), key=lambda r: (r["created"], r["run_id"]))
    created_of = {run["run_id"]: run["created"] for run in runs}
    chosen: dict[str, dict[str, Any]] = {}
    for sweep in sweeps:
        for record in sweep.get("profiles", []):
            key = (bool(record["ok"]), created_of.get(record.get("run_id"), ""))
            have = chosen.get(record["profile"])
            if have is None or key > (bool(have["ok"]), created_of.get(have.get("run_id"), "")):
                chosen[record["profile"]] = dict(record)
    settings = next((dict(s["settings"]) for s in sweeps if s.get("settings")), {})
    return {"schema": SCHEMA, "created": created, "settings": settings,
            "source": runs[0].get("source") if runs else None, "runs": runs, "profiles": rank(chosen.values())}


def matrix(profile_names: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """A GitHub Actions matrix with one job per profile (pure)."""
    return {"include": [{"profile": name} for name in profile_names]}


def check_sweep(data: Any, where: Path) -> dict[str, Any]:
    """`data` if it is a sweep.json this version reads: every field the ranking, merging, table and
    page use has its type checked here, once, so a damaged or hand-edited file is one clear error."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        schema = data.get("schema") if isinstance(data, dict) else None
        raise ArtifactError(f"{where}: unknown sweep schema {schema!r} (expected {SCHEMA})")

    def fail(what: str) -> ArtifactError:
        return ArtifactError(f"{where}: {what}")

    records, runs = data.get("profiles"), data.get("runs")
    if not isinstance(records, list) or not all(isinstance(r, dict) and {"profile", "ok", "device_bytes"} <= set(r)
                                                for r in records):
        raise fail("'profiles' is not a list of sweep records")
    if not isinstance(runs, list) or not all(isinstance(r, dict) and {"run_id", "created"} <= set(r) for r in runs):
        raise fail("'runs' is not a list of runs")
    _check_fields(data, {"created": _TEXT, "settings": _OBJECT}, "", fail)
    _check_baseline(data.get("source"), "source", fail)
    for index, run in enumerate(runs):
        where_run = f"runs[{index}]"
        _check_fields(run, {"run_id": _TEXT, "created": _TEXT, "python": _TEXT, "machine": _TEXT}, where_run, fail)
        if run["run_id"] is None or run["created"] is None:
            raise fail(f"{where_run}: 'run_id' and 'created' must be strings")
        _check_baseline(run.get("source"), f"{where_run}.source", fail)
    for index, record in enumerate(records):
        # profile names become folder names when runners' results are merged: nothing like "../x"
        if not is_plain_name(record["profile"]):
            raise fail(f"{record['profile']!r} is not a profile name")
        where_record = f"profiles[{index}] ({record['profile']})"
        _check_fields(record, _RECORD_TYPES, where_record, fail)
        if record["ok"] is None or (record["ok"] and record["device_bytes"] is None):
            raise fail(f"{where_record}: 'ok' must be true or false, and a working profile needs 'device_bytes'")
        _check_baseline(record.get("source"), f"{where_record}.source", fail)
    return data


# What each field may hold (None is always allowed: not measured, or not applicable).
_TEXT, _FLAG, _COUNT, _NUMBER, _OBJECT = "a string", "true or false", "a whole number >= 0", "a number >= 0", "an object"
_RECORD_TYPES = {"ok": _FLAG, "error": _TEXT, "rank": _COUNT, "device_bytes": _COUNT, "artifact_bytes": _COUNT,
                 "image_bytes": _COUNT, "image_format": _TEXT, "build_seconds": _NUMBER, "backend": _TEXT,
                 "layout": _TEXT, "tls": _FLAG, "multicall": _FLAG, "run_id": _TEXT, "source": _OBJECT,
                 **dict.fromkeys(FIGURES, _NUMBER)}
_BASELINE_TYPES = {"ok": _FLAG, "error": _TEXT, "profile": _TEXT, **dict.fromkeys(FIGURES, _NUMBER)}


def _is(value: Any, kind: str) -> bool:
    if value is None:
        return True
    if kind == _TEXT:
        return isinstance(value, str)
    if kind == _FLAG:
        return isinstance(value, bool)
    if kind == _OBJECT:
        return isinstance(value, dict)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if kind == _COUNT:
        return isinstance(value, int) and value >= 0
    return math.isfinite(value) and value >= 0


def _check_fields(doc: Mapping[str, Any], types: Mapping[str, str], where: str, fail: Any) -> None:
    for key, kind in types.items():
        if not _is(doc.get(key), kind):
            raise fail(f"{where + ': ' if where else ''}{key!r} must be {kind} or null, not {doc.get(key)!r:.60}")


def _check_baseline(source: Any, where: str, fail: Any) -> None:
    if source is None:
        return
    if not isinstance(source, dict):
        raise fail(f"{where} must be an object or null")
    _check_fields(source, _BASELINE_TYPES, where, fail)
    if not isinstance(source.get("ok"), bool):
        raise fail(f"{where}: 'ok' must be true or false")


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def sweep_ok(sweep: Mapping[str, Any]) -> bool:
    runs_ok = all((run.get("source") or {}).get("ok", False) for run in sweep.get("runs", []))
    return runs_ok and all(r["ok"] for r in sweep["profiles"])


def strategy(record: Mapping[str, Any]) -> str:
    """"pyinstaller onedir multicall no-tls, squashfs xz image" (pure)."""
    multicall = {True: "multicall", False: "per-command"}.get(record.get("multicall"))
    tls = {True: "tls", False: "no-tls"}.get(record.get("tls"))
    text = " ".join(str(x) for x in (record.get("backend"), record.get("layout"), multicall, tls, record.get("target"))
                    if x)
    return f"{text}, {record['image_format']} image" if record.get("image_format") else text
