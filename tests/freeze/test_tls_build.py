"""min-tls on the size runtime with OpenSSL built for an MQTT client (issue 20): every declared TLS
scenario passed in its smoke test against the real mosquitto's listeners, and the manifest names the
OpenSSL it carries (the build is the session's, shared with the other build tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from build.application import load_application
from build.runtime.openssl import SIZE_STEPS
from build.runtime.tls import LINKING

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_min_tls_passes_every_tls_scenario_with_the_trimmed_openssl(built):
    result = built("min-tls")
    manifest = json.loads((result.dist_dir / "manifest.json").read_text())
    checks = {c["name"]: c["passed"] for c in manifest["smoke"]["checks"]}
    app = load_application(ROOT / "pyproject.toml")
    declared = [f"telemetry {s.name}" for s in app.commands["telemetry"].scenarios if s.tls is True]
    # TLS 1.3, TLS 1.2, RSA, mutual TLS and the three refusals, at least; each one run and passed.
    assert len(declared) >= 8
    assert {name: checks.get(name) for name in declared} == {name: True for name in declared}
    openssl = manifest["toolchain"]["openssl"]
    assert openssl["steps"] == list(SIZE_STEPS) and openssl["linking"] == LINKING
    assert "no-engine" in openssl["options"] and openssl["source"].startswith("openssl ")


@pytest.mark.integration
def test_bloat_units_break_the_static_openssl_down_by_its_source_files(built, capsys):
    """`bloat --units _ssl` on min-tls: OpenSSL's bytes inside _ssl, named by OpenSSL's own source
    paths (crypto/ec/..., ssl/...) from the unstripped copy the TLS runtime keeps, not by a path of
    the build machine."""
    from build.report import command as bloat

    result = built("min-tls")
    assert bloat.main([str(result.dist_dir), "--units", "_ssl", "-n", "0"]) == 0
    out = capsys.readouterr().out
    assert "Units from DWARF" in out and "_ssl.cpython-311-" in out
    units = out.split()
    assert {"crypto/ec/curve25519.c", "crypto/objects/obj_dat.c", "ssl/statem/statem_clnt.c", "Modules/_ssl.c"} <= set(units)
    sources = [u for u in units if u.endswith((".c", ".h", ".s", ".S"))]
    assert len(sources) > 100 and not [u for u in sources if u.startswith(("/", "../"))]
    # The assembler's P-256 (and its 150 KB table) is gone.
    assert not [u for u in units if "ecp_nistz256" in u] and "crypto/ec/ecp_mont.c" in units
