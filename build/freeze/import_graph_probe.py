"""Compute PyInstaller's module graph for an entry script and write it as JSON (run in a subprocess:
PyInstaller keeps global state).

    python import_graph_probe.py REQUEST.json OUT.json

REQUEST: {"entry": path, "paths": [...], "hidden": [...], "excludes": [...], "workpath": dir}
OUT: {"root": name, "nodes": {name: {"kind": ..., "file": path|null}}, "edges": [[importer, imported], ...],
      "runtime_hooks": {module: [what the runtime hook PyInstaller adds for it imports], ...}}
"""

import json
import os
import sys


def main():
    request_path, out_path = sys.argv[1:]
    with open(request_path, encoding="utf-8") as stream:
        request = json.load(stream)
    from PyInstaller.config import CONF

    os.makedirs(request["workpath"], exist_ok=True)
    CONF.update(workpath=request["workpath"], spec="slimfreeze", specpath=request["workpath"], code_cache={},
                hiddenimports=[], warnfile=os.path.join(request["workpath"], "warn.txt"), optimize=0)
    from PyInstaller.depend.analysis import initialize_modgraph

    graph = initialize_modgraph(excludes=tuple(request["excludes"]))
    graph.path = request["paths"] + graph.path
    root = graph.add_script(request["entry"])
    graph.add_hiddenimports(request["hidden"])
    nodes, edges = {}, []
    for node in graph.iter_graph(start=root):
        name = node.identifier
        nodes[name] = {"kind": type(node).__name__, "file": getattr(node, "filename", None)}
        for imported in graph.outgoing(node):
            edges.append([name, imported.identifier])
    # Hidden imports hang off the graph's top, not the script: attach them to the script.
    for name in request["hidden"]:
        node = graph.find_node(name)
        if node is not None:
            edges.append([root.identifier, name])
            for sub in graph.iter_graph(start=node):
                nodes.setdefault(sub.identifier, {"kind": type(sub).__name__, "file": getattr(sub, "filename", None)})
                for imported in graph.outgoing(sub):
                    edges.append([sub.identifier, imported.identifier])
    # The runtime hooks PyInstaller adds for a module of the graph (pyi_rth_inspect for inspect,
    # ...) run at every start of a program that bundles that module, before the app: what they
    # import is needed whatever the app does. (As Analysis.analyze_runtime_hooks finds them.)
    hooks = {}
    for name in sorted(nodes):
        for path in graph._available_rthooks.get(name, ()):
            hook = graph.add_script(path)
            hooks.setdefault(name, set()).update(n.identifier for n in graph.outgoing(hook))
            for sub in graph.iter_graph(start=hook):
                nodes.setdefault(sub.identifier, {"kind": type(sub).__name__, "file": getattr(sub, "filename", None)})
                edges.extend([sub.identifier, imported.identifier] for imported in graph.outgoing(sub))
    result = {"root": root.identifier, "nodes": nodes, "edges": sorted({tuple(e) for e in edges}),
              "runtime_hooks": {name: sorted(imported) for name, imported in hooks.items()}}
    with open(out_path + ".tmp", "w", encoding="utf-8") as stream:
        json.dump(result, stream)
    os.replace(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main()
