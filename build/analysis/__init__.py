"""Size attribution of frozen artifacts: readers (I/O, plain records) and pure attribution.

Public API: `analyse(path) -> SizeReport`; the model in `build.analysis.model`; pure operations
(group, filter, sort, top-N, diff) in `build.analysis.ops`.
"""

from __future__ import annotations

from build.analysis.analyse import analyse
from build.analysis.model import SCHEMA, Row, Section, SizeReport

__all__ = ["SCHEMA", "Row", "Section", "SizeReport", "analyse"]
