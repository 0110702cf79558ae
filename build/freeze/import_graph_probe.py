"""Compute PyInstaller's module graph for an entry script and write it as JSON (run in a subprocess:
PyInstaller keeps global state).

    python import_graph_probe.py REQUEST.json OUT.json

REQUEST: {"entry": path, "paths": [...], "hidden": [...], "excludes": [...], "workpath": dir}
OUT: {"root": name, "nodes": {name: {"kind": ..., "file": path|null}}, "edges": [[importer, imported], ...]}
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
    result = {"root": root.identifier, "nodes": nodes, "edges": sorted({tuple(e) for e in edges})}
    with open(out_path + ".tmp", "w", encoding="utf-8") as stream:
        json.dump(result, stream)
    os.replace(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main()
