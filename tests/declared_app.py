"""A small declared application for unit tests that resolve profiles without this project's app."""

from __future__ import annotations

import copy
from typing import Any

MINI_APP: dict[str, Any] = {
    "program": "tool",
    "entry": "tool.cli:main",
    "commands": {
        "greet": {"summary": "say hello", "modules": ["tool.greet"],
                  "scenarios": [{"name": "greets", "output": ["hello"]}]},
        "serve": {"summary": "run until stopped", "modules": ["tool.serve"],
                  "scenarios": [{"name": "serves", "stop": "SIGTERM",
                                 "ready": [{"topic": "t/{device}/status", "payload": "up"}]}]},
        "boss": {"summary": "run the others", "modules": ["tool.boss"], "supervisor": True,
                 "scenarios": [{"name": "runs-serve", "needs": ["serve"], "args": ["serve"]}]},
    },
}


def with_app(tool: dict[str, Any], app: dict[str, Any] | None = None) -> dict[str, Any]:
    """`tool` (a [tool.slimfreeze] table) with MINI_APP (or `app`) declared, unless it has one."""
    return {"app": copy.deepcopy(app or MINI_APP), **tool}
