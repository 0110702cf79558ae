"""Readings of the device from /proc and os.statvfs, for `telemetry` and `control status`.

Each value is None when the system does not provide it (not Linux, /proc not mounted), so a
reading never fails as a whole.
"""

import os

# /proc files are read as utf-8: that codec is loaded at start-up, "ascii" would import another module.


def reading(disk_path: str = "/") -> dict[str, object]:
    """A dict of plain JSON values describing the device now."""
    load = _loadavg()
    mem = _meminfo()
    disk = _disk(disk_path)
    return {
        "load": load,
        "mem_total_kb": mem.get("MemTotal"),
        "mem_available_kb": mem.get("MemAvailable", mem.get("MemFree")),
        "uptime_s": _uptime(),
        "disk_path": disk_path,
        "disk_total_bytes": disk[0],
        "disk_free_bytes": disk[1],
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _meminfo() -> dict[str, int]:
    values = {}
    try:
        with open("/proc/meminfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, rest = line.partition(":")
                fields = rest.split()
                if key in ("MemTotal", "MemAvailable", "MemFree") and fields and fields[0].isdigit():
                    values[key] = int(fields[0])
    except OSError:
        pass
    return values


def _uptime() -> float | None:
    try:
        with open("/proc/uptime", encoding="utf-8") as f:
            return round(float(f.read().split()[0]), 2)
    except (OSError, ValueError, IndexError):
        return None


def _disk(path: str) -> tuple[int | None, int | None]:
    """(total bytes, bytes free for unprivileged users) of the file system holding `path`."""
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):
        return None, None
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
