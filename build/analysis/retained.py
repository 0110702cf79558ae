"""The freezer's import graph as a graph: reachability, shortest import chains, retained sizes (pure).

A graph is what `build.freeze.trace.import_graph` returns: {"root": entry script, "nodes": {name: {"kind",
"file"}}, "edges": [[importer, imported], ...]}. Retained size is twiggy's dominators idea: a
module retains every module the entry script reaches only through it, so leaving it out (with its
submodules, as an `exclude` does) would drop all of them. Bytes come from the size report's rows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

from build.analysis.model import Retained, Row

Graph = Mapping[str, Any]

# Nodes the freezer does not bundle: excluded, not found, or compiled into the interpreter.
NOT_BUNDLED = frozenset({"ExcludedModule", "MissingModule", "BuiltinModule", "InvalidSourceModule",
                         "InvalidCompiledModule", "RuntimeModule", "AliasNode"})
PACKAGE_KINDS = frozenset({"Package", "NamespacePackage", "ExtensionPackage"})
# Row kinds whose `module` is a dotted module name (constants: Nuitka's per-module constants blob).
MODULE_ROW_KINDS = frozenset({"module", "extension", "constants"})
CHAIN_LIMIT = 100  # --all still stops here: shortest chains can be exponentially many

NOTE = ("Retained sizes count the modules of the freezer's import graph only. Shared libraries that "
        "only a removed extension module needs (libz for zlib, libcrypto for _hashlib, ...) are not "
        "counted: the Python import graph does not show them.")


def covered(name: str, names: Collection[str]) -> bool:
    """`name` is one of `names` or a submodule of one."""
    parts = name.split(".")
    return any(".".join(parts[:i]) in names for i in range(1, len(parts) + 1))


def successors(graph: Graph) -> dict[str, tuple[str, ...]]:
    out: dict[str, set[str]] = {}
    for importer, imported in graph["edges"]:
        out.setdefault(importer, set()).add(imported)
    return {name: tuple(sorted(targets)) for name, targets in out.items()}


def predecessors(graph: Graph) -> dict[str, tuple[str, ...]]:
    out: dict[str, set[str]] = {}
    for importer, imported in graph["edges"]:
        out.setdefault(imported, set()).add(importer)
    return {name: tuple(sorted(sources)) for name, sources in out.items()}


def reachable(succ: Mapping[str, Sequence[str]], root: str,
              blocked: Callable[[str], bool] = lambda name: False) -> set[str]:
    """Every node reachable from `root` without entering a blocked one."""
    seen = {root}
    queue = deque([root])
    while queue:
        for nxt in succ.get(queue.popleft(), ()):
            if nxt not in seen and not blocked(nxt):
                seen.add(nxt)
                queue.append(nxt)
    return seen


def exclude_from_graph(graph: Graph, names: Iterable[str]) -> dict[str, Any]:
    """The graph as the freezer makes it with `names` excluded: each covered node becomes an
    ExcludedModule that imports nothing, and what only it imported drops out of the graph."""
    names = frozenset(names)
    nodes = {n: ({"kind": "ExcludedModule", "file": None} if covered(n, names) else dict(node))
             for n, node in graph["nodes"].items()}
    edges = [[a, b] for a, b in graph["edges"] if not covered(a, names)]
    keep = reachable(successors({"edges": edges}), graph["root"])
    return {"root": graph["root"], "nodes": {n: node for n, node in nodes.items() if n in keep},
            "edges": sorted([a, b] for a, b in edges if a in keep and b in keep)}


def module_of_row(row: Row) -> str | None:
    """The dotted module a row's bytes belong to, or None (libraries, buckets, data, scripts)."""
    if row.kind in MODULE_ROW_KINDS:
        return row.module
    if row.kind == "data" and row.module.endswith(".pyc") and "/" in row.module:
        # Loose bytecode (archive = false): "paho/mqtt/client.pyc", "paho/__init__.pyc".
        dotted = row.module.removesuffix(".pyc").replace("/", ".")
        return dotted.removesuffix(".__init__")
    return None


def module_sizes(rows: Iterable[Row]) -> dict[str, tuple[int, int]]:
    """(stored, raw) per module, summed over every row of it (a onedir's executables may each
    carry their own copy)."""
    sizes: dict[str, tuple[int, int]] = {}
    for row in rows:
        name = module_of_row(row)
        if name is not None:
            stored, raw = sizes.get(name, (0, 0))
            sizes[name] = (stored + row.stored, raw + row.raw)
    return sizes


def _is_app(name: str, app: str) -> bool:
    return name == app or name.startswith(app + ".")


def top_level_imports(graph: Graph, app: str = "app") -> list[str]:
    """The modules the application's own modules import directly (not app.*), and every top-level
    package in the graph reachable from the entry script."""
    live = reachable(successors(graph), graph["root"])
    nodes = graph["nodes"]
    direct = {b for a, b in graph["edges"]
              if a in live and _is_app(a, app) and not _is_app(b, app) and b in live}
    packages = {n.split(".")[0] for n in live if n != graph["root"]}
    packages = {p for p in packages if nodes.get(p, {}).get("kind") in PACKAGE_KINDS and not _is_app(p, app)}
    return sorted((direct | packages) - {graph["root"]})


def retained_sizes(graph: Graph, rows: Iterable[Row], *, app: str = "app") -> tuple[Retained, ...]:
    """For each top-level import: the bytes of the modules reachable from the entry only through it
    (it and its submodules included), largest first. Imports with no bytes of their own are left out."""
    sizes = module_sizes(rows)
    succ = successors(graph)
    root = graph["root"]
    everything = reachable(succ, root)
    out = []
    for name in top_level_imports(graph, app):
        prefix = name + "."
        without = reachable(succ, root, lambda n: n == name or n.startswith(prefix))
        modules = tuple(sorted(m for m in everything - without if m in sizes))
        stored = sum(sizes[m][0] for m in modules)
        if stored or any(sizes[m][1] for m in modules):
            out.append(Retained(name=name, stored=stored, raw=sum(sizes[m][1] for m in modules), modules=modules))
    return tuple(sorted(out, key=lambda r: (-r.stored, r.name)))


def shortest_chains(graph: Graph, target: str, *, limit: int | None = 3) -> tuple[list[tuple[str, ...]], int]:
    """The shortest import chains from the entry script to `target` (twiggy's `paths`), in name order,
    at most `limit` (None: up to CHAIN_LIMIT), and how many shortest chains there are in all.

    BFS over reversed edges from the target gives each node's distance to it; a shortest chain then
    steps from the root to a successor one step closer each time, so every chain is simple."""
    preds = predecessors(graph)
    succ = successors(graph)
    root = graph["root"]
    distance = {target: 0}
    queue = deque([target])
    while queue and root not in distance:
        node = queue.popleft()
        for prev in preds.get(node, ()):
            if prev not in distance:
                distance[prev] = distance[node] + 1
                queue.append(prev)
    if root not in distance:
        return [], 0
    closer = {n: [s for s in succ.get(n, ()) if distance.get(s) == d - 1] for n, d in distance.items() if d}
    count: dict[str, int] = {target: 1}
    for n in sorted(closer, key=distance.__getitem__):  # nearest first: successors are counted already
        count[n] = sum(count[s] for s in closer[n])

    def walk(node: str, chain: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        if node == target:
            yield chain
            return
        for nxt in closer[node]:
            yield from walk(nxt, (*chain, nxt))

    cap = CHAIN_LIMIT if limit is None else min(limit, CHAIN_LIMIT)
    chains = []
    for chain in walk(root, (root,)):
        if len(chains) == cap:
            break
        chains.append(chain)
    return chains, count[root]
