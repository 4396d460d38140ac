"""The package's shape: every module imports on its own in a fresh interpreter, the import graph
has no cycles, and no source file grows past 500 lines.

The import graph is read from the source (an AST walk). Module-level imports, which run when a
module is imported, must form no cycle at all. Counting the deferred imports inside functions too,
and also between subpackages, the only cycles left are the ones in the allow-lists below, each with
its reason; the lists may only shrink. A new cycle or a new long file fails with the modules or the
file named.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "reluopt"
MAX_LINES = 500

#: Deferred (function-level) import edges ``importer -> imported`` that close a cycle today, with
#: the reason. Module-level imports get no allow-list. Drop an entry once its edge is gone.
ALLOWED_DEFERRED_EDGES: dict[tuple[str, str], str] = {}

#: Subpackage edges (``reluopt.a -> reluopt.b``, a top-level module counting as its own unit) that
#: close a cycle between subpackages today, with the reason.
ALLOWED_PACKAGE_EDGES: dict[tuple[str, str], str] = {}

#: Files over MAX_LINES today, with their size: they may shrink, not grow. Split them and drop the entry.
LONG_FILES: dict[str, int] = {
}


# ----------------------------------------------------------------------------- the module graph
def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, deferred: bool):
    """The import statements of a module that run at import time (the top level and module-level
    ``try``/``if``/``with`` bodies), and with ``deferred`` also those inside functions and classes;
    never those under ``if TYPE_CHECKING``."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            if deferred:
                stack.extend(ast.iter_child_nodes(node))
        elif isinstance(node, ast.stmt | ast.excepthandler | ast.match_case):
            stack.extend(ast.iter_child_nodes(node))


def import_graph(deferred: bool = False) -> dict[str, set[str]]:
    """``module -> the package's modules it imports``: at import time, or with ``deferred`` also
    inside functions."""
    modules = package_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path)), deferred):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                # `from pkg import sub` imports the module pkg.sub when there is one; it depends on
                # pkg itself (its __init__) only for names that are not modules
                subs = [f"{base}.{alias.name}" for alias in node.names]
                targets = subs if all(sub in modules for sub in subs) else [base, *subs]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def _describe(cycle: list[str], graph: dict[str, set[str]]) -> str:
    members = set(cycle)
    edges = [f"{a} -> {b}" for a in cycle for b in sorted(graph[a]) if b in members]
    return "{" + ", ".join(cycle) + "}: " + "; ".join(edges)


def test_the_graph_builder_sees_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges between ``reluopt.<first part>`` units (subpackages and top-level modules), without
    the package root, whose ``__init__`` imports the public API from everywhere."""
    def unit(module: str) -> str:
        return ".".join(module.split(".")[:2])

    out: dict[str, set[str]] = {unit(m): set() for m in graph if m != "reluopt"}
    for a, targets in graph.items():
        for b in targets:
            if "reluopt" not in (a, b) and unit(a) != unit(b):
                out[unit(a)].add(unit(b))
    return out


def _without(graph: dict[str, set[str]], edges) -> dict[str, set[str]]:
    return {a: {b for b in targets if (a, b) not in edges} for a, targets in graph.items()}


def test_the_import_walk_tells_module_level_from_deferred_imports():
    tree = ast.parse("import a\ntry:\n    import b\nexcept ImportError:\n    b = None\n"
                     "if TYPE_CHECKING:\n    import c\ndef f():\n    import d\n")
    names = {alias.name for node in _imports(tree, deferred=False) for alias in node.names}
    assert names == {"a", "b"}
    names = {alias.name for node in _imports(tree, deferred=True) for alias in node.names}
    assert names == {"a", "b", "d"}


def test_the_graph_resolves_relative_imports():
    graph = import_graph()
    assert "reluopt.bounds.core" in graph["reluopt.bounds.crown"]       # from .core import ...
    assert "reluopt.network" in graph["reluopt.bounds.crown"]           # from ..network import ...
    assert "reluopt.bounds.crown" in graph["reluopt.bounds"]             # the package's __init__
    assert "reluopt.parallel" not in graph["reluopt.bounds.obbt"]   # imported inside a function
    assert "reluopt.parallel" in import_graph(deferred=True)["reluopt.bounds.obbt"]


def test_no_import_cycles_at_module_level():
    graph = import_graph()
    cycles = find_cycles(graph)
    assert not cycles, "import cycles among module-level imports:\n" + \
        "\n".join(_describe(c, graph) for c in cycles)


def _stale(graph: dict[str, set[str]], allowed) -> list[tuple[str, str]]:
    return [(a, b) for a, b in allowed if b not in graph.get(a, set())]


def test_no_import_cycles_with_deferred_imports():
    graph = import_graph(deferred=True)
    stale = _stale(graph, ALLOWED_DEFERRED_EDGES)
    assert not stale, f"these allowed edges are gone: drop them from ALLOWED_DEFERRED_EDGES: {stale}"
    graph = _without(graph, ALLOWED_DEFERRED_EDGES)
    cycles = find_cycles(graph)
    assert not cycles, "import cycles (imports inside functions included):\n" + \
        "\n".join(_describe(c, graph) for c in cycles)


def test_no_cycles_between_subpackages():
    graph = package_graph(import_graph(deferred=True))
    stale = _stale(graph, ALLOWED_PACKAGE_EDGES)
    assert not stale, f"these allowed edges are gone: drop them from ALLOWED_PACKAGE_EDGES: {stale}"
    graph = _without(graph, ALLOWED_PACKAGE_EDGES)
    cycles = find_cycles(graph)
    assert not cycles, "cycles between subpackages (imports inside functions included):\n" + \
        "\n".join(_describe(c, graph) for c in cycles)


# ----------------------------------------------------------------------------- fresh imports
#: Runs in a fresh interpreter: pre-import the third-party packages (not reluopt), then import each
#: module in its own forked child, so every module is the entry point of a clean reluopt import.
_IMPORT_EACH = r"""
import importlib, os, sys, traceback
names = sys.argv[1:]
assert not [m for m in sys.modules if m == "reluopt" or m.startswith("reluopt.")], "reluopt already imported"
for dep in ("numpy", "scipy.sparse", "scipy.optimize", "highspy", "onnx"):
    try:
        importlib.import_module(dep)
    except ImportError:
        pass
failed = []
for name in names:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failed.append(name)
print("FAILED:", " ".join(failed))
"""


def test_every_module_imports_on_its_own():
    names = sorted(m for m in package_modules() if not m.endswith(".__main__"))   # __main__ runs the CLI
    if hasattr(sys.modules["os"], "fork"):
        out = subprocess.run([sys.executable, "-c", _IMPORT_EACH, *names], capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, out.stderr
        failed = out.stdout.strip().rpartition("FAILED:")[2].split()
        assert not failed, f"modules that fail to import on their own: {failed}\n{out.stderr[-4000:]}"
    else:   # pragma: no cover - one interpreter per module where there is no fork
        for name in names:
            out = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True,
                                 timeout=120)
            assert out.returncode == 0, f"{name}:\n{out.stderr}"


# ----------------------------------------------------------------------------- file sizes
def _line_counts() -> dict[str, int]:
    return {p.relative_to(PACKAGE).as_posix(): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}


def test_no_file_over_500_lines():
    sizes = _line_counts()
    too_long = {f: n for f, n in sizes.items() if n > MAX_LINES and f not in LONG_FILES}
    assert not too_long, f"files over {MAX_LINES} lines (split them): {too_long}"
    grown = {f: (LONG_FILES[f], sizes[f]) for f in LONG_FILES if f in sizes and sizes[f] > LONG_FILES[f]}
    assert not grown, f"files on the long-file list grew (allowed, now): {grown}"
    done = [f for f in LONG_FILES if sizes.get(f, 0) <= MAX_LINES]
    assert not done, f"within {MAX_LINES} lines now (or gone): drop them from LONG_FILES: {done}"

