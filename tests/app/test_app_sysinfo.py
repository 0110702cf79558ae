"""The device reading: plain JSON values that relate to each other sensibly."""

from __future__ import annotations

import json
import os
from pathlib import Path

from app import sysinfo


def test_reading_is_plain_json_with_consistent_values(tmp_path: Path) -> None:
    r = sysinfo.reading(str(tmp_path))
    assert json.loads(json.dumps(r)) == r
    assert r["disk_path"] == str(tmp_path)
    assert len(r["load"]) == 3 and all(x >= 0 for x in r["load"])
    assert 0 < r["mem_available_kb"] <= r["mem_total_kb"]
    assert r["uptime_s"] > 0
    st = os.statvfs(tmp_path)
    assert r["disk_total_bytes"] == st.f_blocks * st.f_frsize
    assert 0 <= r["disk_free_bytes"] <= r["disk_total_bytes"]


def test_missing_path_gives_none_not_an_error(tmp_path: Path) -> None:
    r = sysinfo.reading(str(tmp_path / "does-not-exist"))
    assert (r["disk_total_bytes"], r["disk_free_bytes"]) == (None, None)
    assert r["mem_total_kb"] is not None
