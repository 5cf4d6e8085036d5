"""The package's shape: one folder per algorithm over a small core, no import cycle, compiled code only behind
each algorithm's dispatcher, and modules, classes and functions of a readable size."""

from __future__ import annotations

import ast
import pathlib

import pytest

import gpuvec

PKG = pathlib.Path(gpuvec.__file__).parent
ALGORITHMS = ("mixture", "random", "rays", "rotations")
# The file names that play the same role in every algorithm's folder.
ROLES = {"__init__.py", "_dispatch.py", "_numpy.py", "_xp.py", "_numba.py", "_cuda.py", "_dask.py"}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, pathlib.Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    """Module -> the gpuvec modules it imports anywhere in its body (module level or inside functions).

    ``from gpuvec.rays import _numba`` imports the module gpuvec.rays._numba (and runs gpuvec.rays first);
    ``from gpuvec.rays._rules import Window`` imports gpuvec.rays._rules.
    """
    mods = modules()
    graph = {}
    for name, path in mods.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom) and node.module in mods:
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    edges.add(sub if sub in mods else node.module)
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


def test_the_graph_sees_every_subpackage():
    graph = import_graph()
    assert {"gpuvec.rays._numba", "gpuvec.mixture._dask", "gpuvec._core.backend", "gpuvec.tools.cli"} <= set(graph)
    assert "gpuvec.rays._numba" in graph["gpuvec.rays._dispatch"]  # a lazy import inside a function counts


def test_no_import_cycle_among_gpuvec_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def import_time_graph() -> dict[str, set[str]]:
    """Module -> the gpuvec modules its module-level imports run: ``from gpuvec.mixture import _fit`` runs
    the package ``gpuvec.mixture`` (its ``__init__``) as well as ``gpuvec.mixture._fit``."""
    mods = modules()
    graph = {}
    for name, path in mods.items():
        edges = set()
        for node in ast.parse(path.read_text()).body:
            subs = [x for x in ast.walk(node) if isinstance(x, (ast.Import, ast.ImportFrom))]
            for x in subs if isinstance(node, (ast.If, ast.Try)) else [node]:
                if isinstance(x, ast.ImportFrom) and x.module in mods:
                    edges |= {x.module} | {f"{x.module}.{a.name}" for a in x.names if f"{x.module}.{a.name}" in mods}
                elif isinstance(x, ast.Import):
                    edges |= {a.name for a in x.names if a.name in mods}
        graph[name] = edges - {name, "gpuvec"}
    return graph


def test_no_import_cycle_at_import_time():
    """A submodule that imports a sibling as ``from gpuvec.pkg import sibling`` runs the package it belongs
    to: ``import gpuvec.pkg.sibling as sibling`` does not."""
    cycle = find_cycle(import_time_graph())
    assert cycle is None, " -> ".join(cycle)


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_one_folder_per_algorithm_over_a_small_core():
    assert sorted(p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()) == sorted(
        ("_core", "tools") + ALGORITHMS
    )
    top = sorted(p.name for p in PKG.glob("*.py"))
    assert len(top) <= 6, top


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_implementation_files_have_the_same_names_in_every_algorithm(algorithm):
    names = {p.name for p in (PKG / algorithm).glob("*.py")}
    assert "__init__.py" in names and "_dask.py" in names
    if {"_numba.py", "_cuda.py"} & names:  # more than one implementation: one module chooses
        assert "_dispatch.py" in names
    # the other files hold rules shared by every implementation of the algorithm, named for what they hold
    assert names & ROLES >= {"__init__.py", "_dask.py"}


def test_compiled_modules_are_imported_only_by_their_dispatcher():
    graph = import_graph()
    compiled = [m for m in graph if m.rsplit(".", 1)[-1] in ("_numba", "_cuda")]
    assert len(compiled) >= 4
    for mod in compiled:
        dispatcher = mod.rsplit(".", 1)[0] + "._dispatch"
        importers = {m for m, edges in graph.items() if mod in edges}
        assert importers == {dispatcher}, (mod, importers)


def test_cupy_is_imported_only_by_the_backend_and_the_cuda_kernels():
    strays = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] in ("cupy", "cupyx") for n in names):
                strays.append(name)
    assert sorted(set(strays) - {"gpuvec._core.backend"}) == sorted(m for m in modules() if m.endswith("._cuda")), (
        strays
    )


def _code_lines(node) -> int:
    """Lines of a function without its docstring."""
    lines = node.end_lineno - node.lineno + 1
    body = node.body
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


def test_modules_classes_and_functions_stay_readable():
    too_long = []
    for name, path in modules().items():
        text = path.read_text()
        if len(text.splitlines()) > 700:
            too_long.append(f"module {name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 500:
                too_long.append(f"class {name}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _code_lines(node) > 80:
                too_long.append(f"function {name}.{node.name}: {_code_lines(node)} lines of code")
    assert too_long == []


def test_size_check_sees_a_long_function():
    source = "def f():\n    '''doc\n    more'''\n" + "    x = 1\n" * 81
    (node,) = ast.parse(source).body
    assert _code_lines(node) == 82
