"""exclude_unused never names what PyInstaller's bootstrap itself imports: the freezer's own list
(PyInstaller.compat.PY3_BASE_MODULES), not a copy of it that drifts."""

from __future__ import annotations

from PyInstaller.compat import PY3_BASE_MODULES

from build.freeze.trace import LOCALE_CODECS, unused_from


def test_no_module_the_bootstrap_imports_is_ever_called_unused() -> None:
    # A graph that holds every base module (and a codec no locale asks for), a trace that saw none.
    base = sorted(PY3_BASE_MODULES - {"encodings"})
    graph = {name: "SourceModule" for name in [*base, *LOCALE_CODECS, "encodings.cp1258", "mystery"]}
    graph["encodings"] = "Package"
    unused = unused_from(graph, traced=frozenset({"encodings"}))
    assert unused == ["encodings.cp1258", "mystery"]
