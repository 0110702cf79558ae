"""bloat on a file or report it may not read: one line, no traceback (file permissions applied
even when the tests run as root)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from processes import without_dac_override

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("content", [b"\x7fELF" + bytes(60), b'{"schema": "x"}'])
def test_bloat_on_an_unreadable_file_is_one_line(tmp_path: Path, content: bytes) -> None:
    target = tmp_path / "artifact"
    target.write_bytes(content)
    target.chmod(0)
    ran = subprocess.run([*without_dac_override(), sys.executable, "-m", "build.report.command", str(target)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 1, ran.stderr
    assert "Traceback" not in ran.stderr
    assert ran.stderr.splitlines() == [f"slimfreeze: error: {target}: cannot read it (Permission denied)"]
