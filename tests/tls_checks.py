"""What every TLS build's manifest must show (issue 20): each declared TLS scenario ran and passed,
and the OpenSSL it carries is the trimmed one, built by every step of the recipe."""

from __future__ import annotations

import json
from pathlib import Path

from build.application import load_application
from build.runtime.openssl import SIZE_STEPS

ROOT = Path(__file__).resolve().parent.parent


def tls_manifest_checked(dist_dir: Path) -> dict:
    """The build's manifest, once its TLS scenarios and OpenSSL facts are asserted."""
    manifest = json.loads((dist_dir / "manifest.json").read_text())
    checks = {c["name"]: c["passed"] for c in manifest["smoke"]["checks"]}
    app = load_application(ROOT / "pyproject.toml")
    declared = [f"telemetry {s.name}" for s in app.commands["telemetry"].scenarios if s.tls is True]
    # TLS 1.3, TLS 1.2, RSA, mutual TLS and the three refusals, at least; each one run and passed.
    assert len(declared) >= 8
    assert {name: checks.get(name) for name in declared} == {name: True for name in declared}
    openssl = manifest["toolchain"]["openssl"]
    assert openssl["steps"] == list(SIZE_STEPS) and openssl["source"].startswith("openssl ")
    return manifest
