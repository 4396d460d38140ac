"""Every public function, class and method of ``reluopt`` has a numpy-style docstring (issue 13 item 8).

An AST walk over ``src/reluopt`` (nothing is imported). Public: a module whose path has no part
starting with ``_`` (``__init__.py`` counts as public), a top-level function or class whose name does
not start with ``_``, and the methods of a public class whose names do not start with ``_``.

Rules:

* every public function, class and method has a docstring;
* a function or method with parameters (besides ``self``/``cls``) has a ``Parameters`` section that
  names each of them (``*args, **kwargs`` may share an entry) and no parameter it does not have;
* a function or method annotated to return something other than ``None`` (or with a
  ``return <value>``) has a ``Returns`` or ``Yields`` section;
* a class whose ``__init__`` or dataclass/NamedTuple fields take arguments has a ``Parameters`` or
  ``Attributes`` section.

Exempt: properties, dunder methods, ``@overload`` stubs, and methods that override a documented
method of a base class in the package (``help`` shows the base's docstring), or whose docstring says
"See `Base.method`" for a documented method of the package.

``NOT_YET`` lists the files still to be converted, each with its owner: a listed file that passes
fails the test (drop the entry), so the list only shrinks.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "reluopt"

#: Files (relative to src/reluopt) not converted yet, with who converts them. Only shrinks.
NOT_YET: dict[str, str] = {}

_PROPERTY_DECORATORS = {"property", "cached_property", "setter", "getter", "deleter"}
_SEE = re.compile(r"See\s+`+([\w.]+)`+")


# ----------------------------------------------------------------------------- docstring sections
def sections(doc: str) -> dict[str, list[str]]:
    """``section title -> its entry names`` of a numpy-style docstring (a title line underlined
    with dashes; an entry is a line at the section's base indentation, ``name : type`` or ``name``;
    ``a, b : int`` names both, and stars are dropped: ``*args, **kwargs`` names ``args``, ``kwargs``)."""
    lines = doc.expandtabs().splitlines()
    heads = [i for i in range(len(lines) - 1)
             if lines[i].strip() and set(lines[i + 1].strip()) == {"-"}
             and len(lines[i + 1].strip()) >= 3]
    out: dict[str, list[str]] = {}
    for k, i in enumerate(heads):
        end = heads[k + 1] if k + 1 < len(heads) else len(lines)
        body = [line for line in lines[i + 2:end] if line.strip()]
        base = min((len(line) - len(line.lstrip()) for line in body), default=0)
        names: list[str] = []
        for line in body:
            if len(line) - len(line.lstrip()) == base:
                head = line.strip().split(" : ")[0].rstrip(":")
                names += [n.strip().lstrip("*") for n in head.split(",") if n.strip()]
        out[lines[i].strip()] = names
    return out


# ----------------------------------------------------------------------------- the walk
@dataclass
class Cls:
    node: ast.ClassDef
    bases: list[str]
    documented: set[str]          # methods with a docstring


def _name(expr: ast.expr) -> str:
    if isinstance(expr, ast.Call):
        expr = expr.func
    if isinstance(expr, ast.Subscript):
        expr = expr.value
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return expr.id if isinstance(expr, ast.Name) else ""


def _top_level(body: list[ast.stmt]):
    """Module-level definitions, also those inside module-level ``if``/``try`` blocks."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node
        elif isinstance(node, ast.If):
            yield from _top_level(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            yield from _top_level(node.body + node.orelse + node.finalbody
                                  + [s for h in node.handlers for s in h.body])


def is_public_module(rel: str) -> bool:
    parts = rel.split("/")
    return not any(p.startswith("_") for p in parts if p != "__init__.py")


def class_index(trees: dict[str, ast.Module]) -> dict[str, list[Cls]]:
    """Every class of the package by name (names may repeat across modules)."""
    index: dict[str, list[Cls]] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                documented = {f.name for f in node.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                              and ast.get_docstring(f)}
                index.setdefault(node.name, []).append(Cls(node, [_name(b) for b in node.bases], documented))
    return index


def _inherits_documented(cls_name: str, method: str, index: dict[str, list[Cls]]) -> bool:
    seen: set[str] = set()
    todo = [b for c in index.get(cls_name, []) for b in c.bases]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for c in index.get(name, []):
            if method in c.documented:
                return True
            todo += c.bases
    return False


def _refers_to_documented(doc: str, index: dict[str, list[Cls]]) -> bool:
    for ref in _SEE.findall(doc):
        cls_name, _, method = ref.rpartition(".")
        if any(method in c.documented for c in index.get(cls_name.rpartition(".")[2], [])):
            return True
    return False


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
    return [n for n in names if n not in ("self", "cls") and not n.startswith("_")]   # _x: private


def _own_nodes(fn: ast.AST):
    """The nodes of a function body, not descending into nested functions, classes or lambdas."""
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))


def _returns_value(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    ann = fn.returns
    if ann is not None:
        if isinstance(ann, ast.Constant) and ann.value in (None, "None"):
            return False
        if _name(ann) in ("NoReturn", "Never"):
            return False
        return True
    return any((isinstance(n, ast.Return) and n.value is not None
                and not (isinstance(n.value, ast.Constant) and n.value.value is None))
               or isinstance(n, ast.Yield | ast.YieldFrom) for n in _own_nodes(fn))


def check_function(fn: ast.FunctionDef | ast.AsyncFunctionDef, where: str) -> list[str]:
    """What the docstring of ``fn`` is missing (``where``: ``file:line:name`` for the messages)."""
    doc = ast.get_docstring(fn)
    if not doc:
        return [f"{where}: no docstring"]
    secs = sections(doc)
    out = []
    params = _params(fn)
    if params:
        if "Parameters" not in secs:
            out.append(f"{where}: no Parameters section (parameters: {', '.join(params)})")
        else:
            named = secs["Parameters"]
            missing = [p for p in params if p not in named]
            extra = [n for n in named if n not in params]
            if missing:
                out.append(f"{where}: Parameters does not name {', '.join(missing)}")
            if extra:
                out.append(f"{where}: Parameters names {', '.join(extra)}, which are not parameters")
    if _returns_value(fn) and "Returns" not in secs and "Yields" not in secs:
        out.append(f"{where}: no Returns (or Yields) section")
    return out


def _takes_arguments(cls: ast.ClassDef) -> bool:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__init__" and _params(node):
            return True
    fields = any(_name(d) == "dataclass" for d in cls.decorator_list) or \
        any(_name(b) == "NamedTuple" for b in cls.bases)
    return fields and any(isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
                          and _name(n.annotation) != "ClassVar" for n in cls.body)


def check_class(cls: ast.ClassDef, where: str, index: dict[str, list[Cls]]) -> list[str]:
    doc = ast.get_docstring(cls)
    if not doc:
        out = [f"{where}: no docstring"]
    elif _takes_arguments(cls) and not {"Parameters", "Attributes"} & set(sections(doc)):
        out = [f"{where}: no Parameters or Attributes section (the class takes arguments)"]
    else:
        out = []
    for fn in cls.body:
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) or fn.name.startswith("_"):
            continue
        if {_name(d) for d in fn.decorator_list} & (_PROPERTY_DECORATORS | {"overload"}):
            continue
        if _inherits_documented(cls.name, fn.name, index):
            continue
        doc = ast.get_docstring(fn)
        if doc and _refers_to_documented(doc, index):
            continue
        out += check_function(fn, f"{where.split(':')[0]}:{fn.lineno}:{cls.name}.{fn.name}")
    return out


def check_module(rel: str, tree: ast.Module, index: dict[str, list[Cls]]) -> list[str]:
    out = []
    for node in _top_level(tree.body):
        if node.name.startswith("_") or any(_name(d) == "overload" for d in node.decorator_list):
            continue
        where = f"{rel}:{node.lineno}:{node.name}"
        if isinstance(node, ast.ClassDef):
            out += check_class(node, where, index)
        else:
            out += check_function(node, where)
    return out


def package_trees() -> dict[str, ast.Module]:
    return {p.relative_to(PACKAGE).as_posix(): ast.parse(p.read_text(), str(p))
            for p in sorted(PACKAGE.rglob("*.py"))}


def problems() -> dict[str, list[str]]:
    """``file -> its missing docstring parts`` for the public modules of the package."""
    trees = package_trees()
    index = class_index(trees)
    return {rel: check_module(rel, tree, index) for rel, tree in trees.items() if is_public_module(rel)}


# ----------------------------------------------------------------------------- the tests
def test_public_functions_and_classes_have_numpy_docstrings():
    found = problems()
    failing = [msg for rel, msgs in found.items() if rel not in NOT_YET for msg in msgs]
    assert not failing, (f"{len(failing)} docstring problems (numpy style: a summary line, then Parameters / "
                         "Returns sections; see tests/test_docstrings.py):\n" + "\n".join(failing))


def test_the_not_yet_list_only_shrinks():
    found = problems()
    gone = [rel for rel in NOT_YET if rel not in found]
    assert not gone, f"files in NOT_YET that no longer exist (drop them): {gone}"
    done = [rel for rel in NOT_YET if not found[rel]]
    assert not done, f"files in NOT_YET whose docstrings are complete now (drop them from NOT_YET): {done}"


# ----------------------------------------------------------------------------- the checker itself
def _check(source: str) -> list[str]:
    tree = ast.parse(source)
    return check_module("m.py", tree, class_index({"m.py": tree}))


def test_the_section_parser():
    doc = ("Summary.\n\nParameters\n----------\nx, y : float\n    The point.\n*args, **kwargs\n"
           "    Passed on.\n\nReturns\n-------\nfloat\n    The value.\n")
    assert sections(doc) == {"Parameters": ["x", "y", "args", "kwargs"], "Returns": ["float"]}


def test_the_checker_finds_what_is_missing():
    good = ('def f(x, *, y=1) -> int:\n    """Sum.\n\n    Parameters\n    ----------\n    x : int\n'
            '        One.\n    y : int\n        Two.\n\n    Returns\n    -------\n    int\n        The sum."""\n'
            '    return x + y\n')
    assert _check(good) == []
    assert _check("def f():\n    pass\n") == ["m.py:1:f: no docstring"]
    assert _check('def _f(x):\n    return x\n') == []
    assert _check('def f(x):\n    """F."""\n') == ["m.py:1:f: no Parameters section (parameters: x)"]
    assert _check('def f():\n    """F."""\n    return 1\n') == ["m.py:1:f: no Returns (or Yields) section"]
    assert _check('def f() -> None:\n    """F."""\n    return\n') == []
    missing = _check('def f(x, y):\n    """F.\n\n    Parameters\n    ----------\n    x : int\n'
                     '    z : int\n    """\n')
    assert missing == ["m.py:1:f: Parameters does not name y", "m.py:1:f: Parameters names z, which are not parameters"]


def test_the_checker_on_classes():
    src = ('class A:\n    """A."""\n\n    def m(self):\n        """M."""\n        return 1\n\n'
           '    @property\n    def p(self):\n        return 1\n\n    def __len__(self):\n        return 1\n\n'
           'class B(A):\n    """B."""\n\n    def m(self):\n        return 2\n\n'
           '    def n(self, x):\n        """See `A.m`."""\n\n'
           '@dataclass\nclass C:\n    """C."""\n\n    x: int\n    k: ClassVar[int] = 1\n')
    assert _check(src) == ["m.py:4:A.m: no Returns (or Yields) section",
                           "m.py:25:C: no Parameters or Attributes section (the class takes arguments)"]
