"""The layout of build/ (ARCHITECTURE.md): no import cycle between modules, function-level imports
included, and imports run one way between the sub-packages (command -> stage -> ground floor)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "build"

# Bottom to top. A module may import its own layer and those below, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("build", "build.apt_sources", "build.deb822", "build.elfid", "build.errors", "build.jsonshape", "build.locks",
     "build.log", "build.paths", "build.proc", "build.project", "build.sizes", "build.toolchain"),
    ("build.application", "build.config", "build.manifest"),
    ("build.testbed", "build.targets", "build.runtime", "build.update"),
    ("build.analysis",),
    ("build.sweep.records",),  # the sweep's data, read by the report pages
    ("build.report",),
    ("build.freeze",),
    ("build.explore", "build.sweep", "build.flash"),
    ("build.cli",),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """Every build.* module `path` imports, at any depth of the file (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            # `from build.x import y`: y may be a module of its own
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(path, name, known) for name, path in found.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None (depth-first search, pure)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer_of(name: str) -> int:
    """The layer of a module: its own entry, or that of the sub-package holding it. `build` itself
    (its __init__) is no prefix: a module or package nobody listed belongs to no layer."""
    best, level = -1, None
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            within = prefix != "build" and name.startswith(prefix + ".")
            if (name == prefix or within) and len(prefix) > best:
                best, level = len(prefix), index
    if level is None:
        raise AssertionError(f"{name} belongs to no layer: add it to ARCHITECTURE.md and LAYERS")
    return level


def test_the_cycle_finder_finds_a_cycle_through_function_level_imports(tmp_path):
    # The check itself must be able to fail: a cycle hidden in a function is still found.
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from build.b import g\n")
    assert imports_of(a, "build.a", {"build.a", "build.b"}) == {"build.b"}
    assert find_cycle({"build.a": {"build.b"}, "build.b": {"build.a"}}) == ["build.a", "build.b", "build.a"]
    assert find_cycle({"build.a": {"build.b"}, "build.b": set()}) is None


def test_no_import_cycle_between_modules_of_build():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_an_unlisted_module_or_package_belongs_to_no_layer():
    with pytest.raises(AssertionError, match="build.newpackage.core belongs to no layer"):
        layer_of("build.newpackage.core")
    with pytest.raises(AssertionError, match="build.helpers belongs to no layer"):
        layer_of("build.helpers")
    assert layer_of("build.freeze.smoke") == layer_of("build.freeze") and layer_of("build.errors") == 0


def test_every_module_belongs_to_a_layer():
    for name in modules():
        layer_of(name)


@pytest.mark.parametrize("name", sorted(modules()))
def test_imports_run_downward(name):
    edges = graph()[name]
    upward = sorted(target for target in edges if layer_of(target) > layer_of(name))
    assert not upward, f"{name} imports {', '.join(upward)} from a layer above it"


def test_no_logic_module_imports_the_cli():
    importers = sorted(name for name, targets in graph().items() if "build.cli" in targets)
    assert importers == [], importers
