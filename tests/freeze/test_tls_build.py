"""min-tls on the size runtime with OpenSSL built for an MQTT client (issue 20): every declared TLS
scenario passed in its smoke test against the real mosquitto's listeners, and the manifest names the
OpenSSL it carries (the build is the session's, shared with the other build tests)."""

from __future__ import annotations

import pytest

from tls_checks import tls_manifest_checked

from build.runtime.tls import LINKING


@pytest.mark.integration
def test_min_tls_passes_every_tls_scenario_with_the_trimmed_openssl(built):
    result = built("min-tls")
    openssl = tls_manifest_checked(result.dist_dir)["toolchain"]["openssl"]
    assert openssl["linking"] == LINKING
    assert "no-engine" in openssl["options"]


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
