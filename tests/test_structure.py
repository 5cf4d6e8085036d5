"""The package's shape: no import cycle among gpuvec modules, compiled code only behind the dispatchers."""

from __future__ import annotations

import ast
import pathlib

import gpuvec

PKG = pathlib.Path(gpuvec.__file__).parent


def import_graph():
    """Module -> the gpuvec modules it imports anywhere in its body (module level or inside functions)."""
    graph = {}
    for path in PKG.glob("*.py"):
        name = "gpuvec" if path.stem == "__init__" else f"gpuvec.{path.stem}"
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name.startswith("gpuvec")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gpuvec"):
                for a in node.names:  # "from gpuvec import random" imports the module gpuvec.random
                    sub = f"{node.module}.{a.name}"
                    edges.add(sub if (PKG / f"{a.name}.py").exists() and node.module == "gpuvec" else node.module)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_among_gpuvec_modules():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()))


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_compiled_modules_are_imported_only_by_their_dispatcher():
    graph = import_graph()
    dispatcher = {
        "gpuvec._rays_numba": {"gpuvec.rays"},
        "gpuvec._rays_cuda": {"gpuvec.rays"},
        "gpuvec._rotations_cuda": {"gpuvec.rotations"},
        "gpuvec._mixture_numba": {"gpuvec._mixture_em", "gpuvec._mixture_init"},
    }
    for mod, allowed in dispatcher.items():
        importers = {m for m, edges in graph.items() if mod in edges}
        assert importers and importers <= allowed, (mod, importers)
