"""bloat's own paths are checked where they enter: one line and a usage exit, before any analysis."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bloat(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "build.report.command", *argv],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("argv, message", [
    (["--html", "{tmp}", "{tmp}/artifact"], "--html {tmp}: is a folder; give the page's file name"),
    (["--symbols", "--debug-file", "{tmp}/missing", "{tmp}/artifact"],
     "--debug-file {tmp}/missing: No such file or directory"),
    (["--units", "{tmp}/artifact"], "bloat needs an artifact, a dist folder or a report.json (or --diff OLD NEW); "
                                    "--units took '{tmp}/artifact' as its ROW: name the artifact first"),
    (["--diff", "{tmp}/artifact", "{tmp}/artifact", "--filter", "x"],
     "bloat --diff does not take --filter or --html"),
])
def test_a_bad_path_or_option_is_one_usage_line(tmp_path: Path, argv: list[str], message: str) -> None:
    (tmp_path / "artifact").write_bytes(b"\x7fELF" + bytes(60))
    ran = bloat(*(a.format(tmp=tmp_path) for a in argv))
    assert ran.returncode == 2, ran.stderr
    assert len(ran.stderr.splitlines()) == 1, ran.stderr
    assert ran.stderr.startswith(f"slimfreeze: error: {message.format(tmp=tmp_path)}"), ran.stderr
    assert not list(tmp_path.glob(".*.tmp"))
