"""A sweep's data: records, ranking, merging runners' sweeps, the CI matrix, and the strict reader
of sweep.json. Pure, and free of anything above the ground floor, so the report pages read it too."""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from build import jsonshape
from build.errors import ArtifactError
from build.jsonshape import COUNT, FLAG, NUMBER, OBJECT, TEXT, list_of, shape
from build.paths import is_plain_name

SCHEMA = "slimfreeze.sweep/1"
SWEEP_NAME = "sweep.json"
REPORT_NAME = "report.json"
SOURCE = "source"
# The figures measured for every artifact and for the source baseline.
FIGURES = ("startup_ms", "first_ack_ms", "pss_kb_total", "rss_kb_total", "unpack_bytes", "worker_processes",
           "pss_kb_supervisor", "rss_kb_supervisor")
# The one definition of sweep.json: what each field may hold (null always allowed unless needed:
# not measured, or not applicable). The writer makes records with exactly RECORD_FIELDS' keys.
FIGURE_FIELDS = dict.fromkeys(FIGURES, NUMBER)
# The run's baseline: the app from source measured on its own, with whether that worked.
BASELINE = shape({"profile": TEXT, "ok": FLAG.needed(), "error": TEXT, **FIGURE_FIELDS})
RECORD_FIELDS = {
    "profile": TEXT.needed(), "ok": FLAG.needed(), "error": TEXT, "rank": COUNT, "device_bytes": COUNT,
    "artifact_bytes": COUNT, "image_bytes": COUNT, "image_format": TEXT, "build_seconds": NUMBER, **FIGURE_FIELDS,
    "backend": TEXT, "layout": TEXT, "tls": FLAG, "multicall": FLAG, "target": TEXT, "runtime": TEXT, "emulated": FLAG,
    "note": TEXT,
    "run_id": TEXT,
    # The source's figures measured beside this artifact, in turns with it (source_figures).
    "source": shape(FIGURE_FIELDS),
}
RECORD_KEYS = tuple(RECORD_FIELDS)
RUN_FIELDS = {"run_id": TEXT.needed(), "created": TEXT.needed(), "python": TEXT, "machine": TEXT, "source": BASELINE}
SWEEP_FIELDS = {"created": TEXT, "settings": OBJECT, "source": BASELINE, "runs": list_of(shape(RUN_FIELDS)).needed(),
                "profiles": list_of(OBJECT).needed()}


def empty_record(profile: str, **known: Any) -> dict[str, Any]:
    """A record with every key; `ok` is false unless `known` says otherwise."""
    record: dict[str, Any] = dict.fromkeys(RECORD_KEYS)
    record.update({"profile": profile, "ok": False, **known})
    return record


def profile_facts(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The strategy columns of a record, from a resolved profile (manifest or config)."""
    return {"backend": resolved.get("backend"), "layout": resolved.get("layout"), "tls": resolved.get("tls"),
            "multicall": resolved.get("multicall"), "target": resolved.get("target"),
            "runtime": resolved.get("runtime")}


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
    """A record's `source`: the baseline's figures (all null when it was not measured)."""
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
    page use has its type checked here, against the one definition the writer fills (SWEEP_FIELDS,
    RECORD_FIELDS), so a damaged or hand-edited file is one clear error."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        schema = data.get("schema") if isinstance(data, dict) else None
        raise ArtifactError(f"{where}: unknown sweep schema {schema!r} (expected {SCHEMA})")

    def fail(what: str) -> ArtifactError:
        return ArtifactError(f"{where}: {what}")

    jsonshape.check(data, SWEEP_FIELDS, "", fail)
    for index, record in enumerate(data["profiles"]):
        # profile names become folder names when runners' results are merged: nothing like "../x"
        if not is_plain_name(record.get("profile")):
            raise fail(f"profiles[{index}]: {record.get('profile')!r} is not a profile name")
        where_record = f"profiles[{index}] ({record['profile']})"
        jsonshape.check(record, RECORD_FIELDS, where_record, fail)
        if record["ok"] and record["device_bytes"] is None:
            raise fail(f"{where_record}: a working profile needs 'device_bytes'")
    return data


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def sweep_ok(sweep: Mapping[str, Any]) -> bool:
    runs_ok = all((run.get("source") or {}).get("ok", False) for run in sweep.get("runs", []))
    return runs_ok and all(r["ok"] for r in sweep["profiles"])


def strategy(record: Mapping[str, Any]) -> str:
    """"pyinstaller onedir multicall no-tls x86_64 size runtime, squashfs xz image" (pure)."""
    multicall = {True: "multicall", False: "per-command"}.get(record.get("multicall"))
    tls = {True: "tls", False: "no-tls"}.get(record.get("tls"))
    runtime = f"{record['runtime']} runtime" if record.get("runtime") else None  # older sweeps: not recorded
    text = " ".join(str(x) for x in (record.get("backend"), record.get("layout"), multicall, tls, record.get("target"),
                                     runtime) if x)
    return f"{text}, {record['image_format']} image" if record.get("image_format") else text
