"""Asking another interpreter (`bloat --python PATH`) about itself: one short program through
build.proc (own session, a timeout), its answer as JSON; None if it cannot run or answer."""

from __future__ import annotations

import json
from typing import Any

from build import proc

TIMEOUT = 30.0


def ask(python: str, code: str) -> Any | None:
    """`code` printed one JSON document; isolated mode (-I) so the user's site and PYTHON* do not leak in."""
    try:
        ran = proc.capture([python, "-I", "-c", code], timeout=TIMEOUT, separate_stderr=True)
    except OSError:
        return None
    if ran.code != 0:
        return None
    try:
        return json.loads(ran.output)
    except ValueError:
        return None
