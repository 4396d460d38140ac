"""The VNN-LIB reader: a file's formula as input boxes and linear unsafe sets (``Property``).

A VNN-LIB file declares inputs ``X_i`` and outputs ``Y_j`` and asserts a formula whose
models are the *counterexamples*. The reader takes the file's s-expressions (``sexpr``),
puts the formula into disjunctive normal form and groups its terms by their input box,
because bounds (CROWN, MIP big-M) are computed per box; the result is the
``verification.property.Property`` data model (boxes, each with its output disjuncts ``C y <= e``).

Supported: ``declare-const`` of ``X_i`` / ``Y_j`` (type ``Real``); ``assert`` of atoms
``<=``, ``>=``, ``<``, ``>``, ``=`` between linear terms (numbers, variables, ``+``, ``-``,
``*`` by a constant, ``/`` by a constant); ``and`` / ``or`` nested freely; comments after
``;``. Atoms on inputs must bound one variable (a box); atoms on outputs are any linear
inequality. Everything else raises ``ParseError`` (or ``UnsupportedError``) naming the line.

The reader keeps its own stacks (no recursion: a formula may nest 200k deep) and takes a
``time_limit``: a huge file stops with ``VnnlibTimeout`` when the time is spent.
"""

from __future__ import annotations

import gc
import math
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np

from ..errors import ParseError, UnsupportedError
from .property import Disjunct, InputBox, Property
from .sexpr import Clock, SList, Token, parse_error, read_sexprs, show

#: Safety cap on the DNF size (products of top-level disjunctions).
MAX_TERMS = 100_000

_VAR = re.compile(r"^([XY])_(\d+)$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_OPS = ("<=", ">=", "<", ">", "=")


class _Parser:
    """Declarations, linear terms and formulas of one file (the DNF of its assertions)."""

    def __init__(self, label: str, clock: Clock | None = None):
        self.label = label
        self.clock = clock or Clock(label, None)
        self.declared: dict[tuple[str, int], int] = {}
        self.var_lines: dict[tuple[str, int], int] = {}

    def error(self, node, msg: str) -> ParseError:
        return parse_error(self.label, node.line, node.col, msg)

    def _fold(self, root, leaf, combine):
        """Evaluate a tree bottom-up with an explicit stack (files may nest 100k deep).

        ``leaf(node)`` returns ``(True, value)`` for a node it evaluates itself, or
        ``(False, None)`` for a list whose arguments ``node[1:]`` are evaluated first and then
        passed to ``combine(node, values)``."""
        done, value = leaf(root)
        if done:
            return value
        tick = self.clock.tick
        stack: list[tuple[SList, list]] = [(root, [])]
        while True:
            node, values = stack[-1]
            i = len(values) + 1
            if i < len(node):
                child = node[i]
                done, value = leaf(child)
                if done:
                    values.append(value)
                else:
                    stack.append((child, []))
                tick(child.line)
                continue
            stack.pop()
            value = combine(node, values)
            if not stack:
                return value
            stack[-1][1].append(value)

    # --- declarations
    def declare(self, node: SList) -> None:
        if len(node) != 3 or not all(isinstance(t, Token) for t in node[1:]):
            raise self.error(node, f"malformed declaration {show(node)}; expected (declare-const X_0 Real)")
        name, typ = node[1].text, node[2].text
        m = _VAR.match(name)
        if not m:
            raise self.error(node[1], f"variable {name!r}: only inputs X_i and outputs Y_j are supported")
        if typ != "Real":
            raise self.error(node[2], f"variable {name} has type {typ!r}; only Real is supported")
        key = (m.group(1), int(m.group(2)))
        if key in self.declared:
            raise self.error(node[1], f"{name} is declared twice (first on line {self.declared[key]})")
        self.declared[key] = node.line
        self.var_lines.setdefault(key, node.line)

    # --- linear terms: dict {(kind, index): coef} plus a constant under key None
    def linear(self, node) -> dict:
        return self._fold(node, self._linear_leaf, self._linear_combine)

    def _linear_leaf(self, node) -> tuple[bool, dict | None]:
        if isinstance(node, Token):
            t = node.text
            if _NUMBER.match(t):
                return True, {None: float(t)}
            m = _VAR.match(t)
            if m:
                key = (m.group(1), int(m.group(2)))
                if key not in self.declared:
                    raise self.error(node, f"unknown variable {t} (not declared with declare-const)")
                return True, {key: 1.0}
            raise self.error(node, f"unknown variable or constant {t!r}")
        if not node or not isinstance(node[0], Token):
            raise self.error(node, f"cannot read the term {show(node)}")
        return False, None

    def _linear_combine(self, node: SList, args: list[dict]) -> dict:
        op = node[0].text
        if op == "+" and args:
            return _add(args)
        if op == "-" and len(args) == 1:
            return _scale(args[0], -1.0)
        if op == "-" and len(args) >= 2:
            return _add([args[0]] + [_scale(a, -1.0) for a in args[1:]])
        if op == "*" and args:
            const = [a for a in args if set(a) <= {None}]
            var = [a for a in args if not set(a) <= {None}]
            if len(var) > 1:
                raise self.error(node, f"non-linear term {show(node)}: a product of variables")
            k = float(math.prod(a.get(None, 0.0) for a in const))
            return _scale(var[0], k) if var else {None: k}
        if op == "/" and len(args) == 2:
            if not set(args[1]) <= {None}:
                raise self.error(node, f"non-linear term {show(node)}: division by a variable")
            den = args[1].get(None, 0.0)
            if den == 0:
                raise self.error(node, f"division by zero in {show(node)}")
            return _scale(args[0], 1.0 / den)
        raise self.error(node, f"cannot read the term {show(node)} (supported: numbers, X_i, Y_j, "
                               "+, -, * and / by a constant)")

    # --- formulas -> DNF: list of terms, each a list of atoms
    def dnf(self, node) -> list[list]:
        return self._fold(node, self._dnf_leaf, self._dnf_combine)

    def _dnf_leaf(self, node) -> tuple[bool, list[list] | None]:
        if isinstance(node, Token) or not node or not isinstance(node[0], Token):
            raise self.error(node, f"expected a comparison, 'and' or 'or', got {show(node)}")
        head = node[0].text
        if head == "and":
            return False, None
        if head == "or":
            if len(node) < 2:
                raise self.error(node, "empty 'or'")
            return False, None
        if head in _OPS:
            if len(node) != 3:
                raise self.error(node, f"comparison {show(node)} needs exactly two operands")
            lhs, rhs = self.linear(node[1]), self.linear(node[2])
            diff = _add([lhs, _scale(rhs, -1.0)])       # lhs - rhs  (op)  0
            atoms = []
            if head in ("<=", "<", "="):
                atoms.append(_Atom(diff, head == "<", node.line, node))
            if head in (">=", ">", "="):
                atoms.append(_Atom(_scale(diff, -1.0), head == ">", node.line, node))
            return True, [atoms]
        raise self.error(node, f"unsupported construct {head!r} in {show(node)}")

    def _dnf_combine(self, node: SList, parts: list[list[list]]) -> list[list]:
        if node[0].text == "and":
            return self._product(parts, node)
        out = []
        for terms in parts:
            out.extend(terms)
        return out

    def _product(self, parts: list[list[list]], node) -> list[list]:
        """The DNF of a conjunction: one term per choice of a term in every part."""
        if not parts:
            return [[]]
        size = math.prod(len(p) for p in parts)     # exact: np.prod wraps around past 2**63
        if size > MAX_TERMS:
            raise UnsupportedError(
                f"{self.label}line {node.line}: the formula expands to {size} disjuncts "
                f"(more than {MAX_TERMS})")
        if len(parts) == 1:
            return parts[0]
        out = []
        tick = self.clock.tick
        for combo in product(*parts):
            term: list = []
            for t in combo:            # extend, not sum(combo, []): that is quadratic in len(parts)
                term.extend(t)
            out.append(term)
            tick(node.line, 1 + len(term) // 64)
        return out


@dataclass(slots=True)
class _Atom:
    """``sum coef * var + const <= 0`` (``< 0`` when strict)."""

    lin: dict
    strict: bool
    line: int
    node: object


def _add(terms: list[dict]) -> dict:
    out: dict = {}
    for t in terms:
        for k, v in t.items():
            out[k] = out.get(k, 0.0) + v
    return out


def _scale(t: dict, k: float) -> dict:
    return {key: k * v for key, v in t.items()}


def parse_vnnlib(text: str, source: str = "", *, time_limit: float | None = None,
                 _start: float | None = None) -> Property:
    """Read VNN-LIB text into a ``Property``, so that ``verify`` can decide it.

    Nesting depth is not limited: the parser keeps its own stack.

    Parameters
    ----------
    text : str
        VNN-LIB source.
    source : str, optional
        Names the file in error messages.
    time_limit : float, optional
        Seconds; when they run out, ``VnnlibTimeout`` (a ``ParseError``) is raised instead of
        parsing on (a 50 MB property can take minutes). Default: no limit.

    Returns
    -------
    Property
        The unsafe set as input boxes with their output disjuncts.

    Raises
    ------
    ParseError
        Bad syntax, undeclared or missing variables, an input without bounds, an empty box
        (``VnnlibTimeout`` when the time ran out).
    UnsupportedError
        Constructs outside the VNN-COMP subset, or a DNF larger than ``MAX_TERMS``.
    """
    label = f"{source}: " if source else ""
    clock = Clock(label, time_limit, _start)
    clock.check(1)
    with _no_gc():
        return _parse(text, label, source, clock)


@contextmanager
def _no_gc():
    """Pause the cyclic garbage collector: parsing allocates millions of small acyclic objects,
    and the collector's passes over them doubled the time of a 20 MB file."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse(text: str, label: str, source: str, clock: Clock) -> Property:
    p = _Parser(label, clock)
    terms: list[list[list]] = []
    for node in read_sexprs(text, label, clock):
        if not node or not isinstance(node[0], Token):
            raise p.error(node, f"expected declare-const or assert, got {show(node)}")
        head = node[0].text
        if head == "declare-const":
            p.declare(node)
        elif head == "assert":
            if len(node) != 2:
                raise p.error(node, f"assert takes one formula, got {len(node) - 1}")
            terms.append(p.dnf(node[1]))
        elif head in ("set-logic", "check-sat", "get-model", "exit", "set-info", "set-option"):
            continue
        else:
            raise p.error(node, f"unsupported command {head!r}")
    xs = sorted(i for k, i in p.declared if k == "X")
    ys = sorted(i for k, i in p.declared if k == "Y")
    if not xs:
        raise ParseError(f"{label}no input variables X_i are declared")
    if not ys:
        raise ParseError(f"{label}no output variables Y_j are declared")
    for kind, idx in (("X", xs), ("Y", ys)):
        if idx != list(range(len(idx))):
            missing = sorted(set(range(idx[-1] + 1)) - set(idx))[0]
            raise ParseError(f"{label}{kind}_{missing} is not declared but {kind}_{idx[-1]} is "
                             f"(line {p.declared[(kind, idx[-1])]}); indices must be 0..n-1")
    n, m = len(xs), len(ys)
    dnf = p._product(terms, SList(1, 1)) if terms else [[]]
    boxes = _group(dnf, n, m, p, label, clock)
    return Property(n, m, boxes, source, dict(p.var_lines))


def _group(dnf: list[list[_Atom]], n: int, m: int, p: _Parser, label: str,
           clock: Clock | None = None) -> tuple[InputBox, ...]:
    """Split each DNF term into its input box and output disjunct; group by box."""
    groups: dict[bytes, tuple[np.ndarray, np.ndarray, list[Disjunct]]] = {}
    first_empty: ParseError | None = None
    clock = clock or Clock(label, None)
    for term in dnf:
        clock.tick(term[0].line if term else 1, 1 + len(term) // 16)
        lb = np.full(n, -np.inf)
        ub = np.full(n, np.inf)
        lb_line = [0] * n
        ub_line = [0] * n
        rows, rhs, strict, lines = [], [], [], []
        impossible = False
        for atom in term:
            const = atom.lin.get(None, 0.0)
            coefs = {k: v for k, v in atom.lin.items() if k is not None and v != 0.0}
            kinds = {k[0] for k in coefs}
            if not coefs:
                # constant atom: true (drop) or false (the term is empty)
                if const > 0 or (atom.strict and const == 0):
                    impossible = True
                continue
            if kinds == {"X", "Y"}:
                raise UnsupportedError(f"{label}line {atom.line}: atom {show(atom.node)} mixes "
                                       "inputs and outputs; only boxes on X and linear atoms on Y")
            if kinds == {"X"}:
                if len(coefs) > 1:
                    raise UnsupportedError(
                        f"{label}line {atom.line}: atom {show(atom.node)} constrains several "
                        "inputs; only bounds on single inputs (a box) are supported")
                (_, i), a = next(iter(coefs.items()))
                bound = -const / a        # a x + const <= 0
                if a > 0:
                    if bound < ub[i]:
                        ub[i], ub_line[i] = bound, atom.line
                elif bound > lb[i]:
                    lb[i], lb_line[i] = bound, atom.line
                continue
            row = np.zeros(m)
            for (_, j), a in coefs.items():
                row[j] = a
            rows.append(row)
            rhs.append(-const)
            strict.append(atom.strict)
            lines.append(atom.line)
        if impossible:
            continue
        missing = np.nonzero(~(np.isfinite(lb) & np.isfinite(ub)))[0]
        if missing.size:
            i = int(missing[0])
            side = "lower" if not np.isfinite(lb[i]) else "upper"
            raise ParseError(f"{label}line {p.declared[('X', i)]}: X_{i} has no {side} bound "
                             "(every input needs (assert (>= X_i lo)) and (assert (<= X_i hi)))")
        empty = np.nonzero(lb > ub)[0]
        if empty.size:
            i = int(empty[0])
            if first_empty is None:
                first_empty = ParseError(
                    f"{label}line {max(lb_line[i], ub_line[i])}: empty box: X_{i} >= {lb[i]!r} "
                    f"(line {lb_line[i]}) and X_{i} <= {ub[i]!r} (line {ub_line[i]})")
            continue
        dj = Disjunct(np.array(rows).reshape(-1, m) + 0.0, np.array(rhs, dtype=np.float64) + 0.0,
                      np.array(strict, dtype=bool), tuple(lines))
        key = lb.tobytes() + ub.tobytes()
        if key not in groups:
            groups[key] = (lb, ub, [])
        groups[key][2].append(dj)
    if not groups:
        if first_empty is not None:
            raise first_empty
        raise ParseError(f"{label}the unsafe set is empty: every disjunct contains a false atom")
    if first_empty is not None and len(dnf) == 1:
        raise first_empty
    return tuple(InputBox(lb, ub, tuple(djs)) for lb, ub, djs in groups.values())


def load_vnnlib(path, *, time_limit: float | None = None) -> Property:
    """Read a ``.vnnlib`` file (plain text; ``.gz`` is decompressed) into a ``Property``.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    time_limit : float, optional
        Seconds for reading and parsing; past them ``VnnlibTimeout`` is raised.

    Returns
    -------
    Property

    Raises
    ------
    ParseError
        A missing or unreadable file, or any error of ``parse_vnnlib``.
    UnsupportedError
        See ``parse_vnnlib``.
    """
    start = time.perf_counter()
    p = Path(path)
    if not p.exists():
        raise ParseError(f"{p}: no such file")
    try:
        if p.suffix == ".gz":
            import gzip
            import zlib

            try:
                text = gzip.decompress(p.read_bytes()).decode("utf-8")
            except (EOFError, zlib.error) as exc:
                raise OSError(f"corrupt gzip data: {exc}") from None
        else:
            text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParseError(f"{p}: cannot read ({exc})") from None
    return parse_vnnlib(text, str(p), time_limit=time_limit, _start=start)


def format_counterexample(x: np.ndarray, y: np.ndarray) -> str:
    """The VNN-COMP 2021 witness text, which the competition's checkers read back.

    Parameters
    ----------
    x, y : numpy.ndarray
        The counterexample's inputs and its outputs.

    Returns
    -------
    str
        ``sat`` then ``((X_0 v)\\n (X_1 v) ... (Y_0 v))``, values as exact reprs.
    """
    items = [f"(X_{i} {float(v)!r})" for i, v in enumerate(np.ravel(x))]
    items += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(np.ravel(y))]
    return "sat\n(" + "\n ".join(items) + ")\n"
