"""VNN-LIB properties (the subset VNN-COMP uses) as boxes and linear unsafe sets.

A VNN-LIB file declares inputs ``X_i`` and outputs ``Y_j`` and asserts a formula whose
models are the *counterexamples*. We read the formula into disjunctive normal form and
group its terms by their input box, because bounds (CROWN, MIP big-M) are computed per box:

    Property.boxes = (InputBox(lb, ub, disjuncts=(Disjunct(C, e), ...)), ...)

meaning the unsafe set is the union over boxes and their disjuncts of
``{x in [lb, ub] : C y(x) <= e}``. The decision maximises, per disjunct, the *margin*
``min_j (e_j - C_j y)``: a point with margin >= 0 (``> 0`` on strict atoms) is a
counterexample; a certified upper bound < 0 on every (box, disjunct) proves the property.

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import numpy as np

from ..errors import ParseError, ProblemError, UnsupportedError

#: Safety cap on the DNF size (products of top-level disjunctions).
MAX_TERMS = 100_000

_TOKEN = re.compile(r"[()]|;[^\n]*|[^\s();]+")
_VAR = re.compile(r"^([XY])_(\d+)$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_OPS = ("<=", ">=", "<", ">", "=")


# ----------------------------------------------------------------------------- result types
@dataclass(frozen=True)
class Disjunct:
    """One conjunction of output atoms: unsafe where ``C y <= e`` (``< e`` where strict)."""

    C: np.ndarray            # (k, m)
    e: np.ndarray            # (k,)
    strict: np.ndarray       # (k,) bool
    lines: tuple[int, ...] = ()

    def margins(self, y: np.ndarray) -> np.ndarray:
        """Per-point min margin ``min_j (e_j - C_j y)`` for y of shape (n, m); +inf if no atom."""
        y = np.atleast_2d(y)
        if self.C.shape[0] == 0:
            return np.full(y.shape[0], np.inf)
        return np.min(self.e[None, :] - y @ self.C.T, axis=1)

    def holds(self, y: np.ndarray) -> np.ndarray:
        """Exact VNN-LIB semantics per point: every atom satisfied (no tolerance)."""
        y = np.atleast_2d(y)
        if self.C.shape[0] == 0:
            return np.ones(y.shape[0], dtype=bool)
        m = self.e[None, :] - y @ self.C.T
        ok = np.where(self.strict[None, :], m > 0, m >= 0)
        return np.all(ok, axis=1)


@dataclass(frozen=True)
class InputBox:
    """An input box and the output disjuncts that are unsafe on it."""

    lb: np.ndarray
    ub: np.ndarray
    disjuncts: tuple[Disjunct, ...]


@dataclass
class Property:
    """A parsed VNN-LIB property: the union of ``box x disjunct`` unsafe sets."""

    n_inputs: int
    n_outputs: int
    boxes: tuple[InputBox, ...]
    source: str = ""
    #: line where each X_i / Y_j is first declared or used (for binding errors)
    var_lines: dict = field(default_factory=dict)

    @property
    def n_pairs(self) -> int:
        return sum(len(b.disjuncts) for b in self.boxes)

    def check(self, network) -> Property:
        """Bind to a network: input/output counts must fit. Pads C with zero columns when
        the property names fewer outputs than the network has. Returns the bound property."""
        where = f"{self.source}: " if self.source else ""
        d, m = network.input_dim, network.output_dim
        if self.n_inputs > d:
            line = self.var_lines.get(("X", d), "?")
            raise ProblemError(
                f"{where}line {line}: X_{d} is beyond the network's inputs (it has {d} inputs, "
                f"X_0..X_{d - 1}); the property uses {self.n_inputs}")
        if self.n_inputs < d:
            raise ProblemError(
                f"{where}the property declares {self.n_inputs} inputs (X_0..X_{self.n_inputs - 1})"
                f" but the network has {d}; X_{self.n_inputs} has no bounds")
        if self.n_outputs > m:
            line = self.var_lines.get(("Y", m), "?")
            raise ProblemError(
                f"{where}line {line}: Y_{m} is beyond the network's outputs (it has {m} outputs, "
                f"Y_0..Y_{m - 1})")
        if self.n_outputs == m:
            return self
        pad = m - self.n_outputs
        boxes = tuple(
            InputBox(b.lb, b.ub, tuple(
                Disjunct(np.hstack([dj.C, np.zeros((dj.C.shape[0], pad))]), dj.e, dj.strict, dj.lines)
                for dj in b.disjuncts))
            for b in self.boxes)
        return Property(self.n_inputs, m, boxes, self.source, self.var_lines)

    def is_counterexample(self, x: np.ndarray, y: np.ndarray) -> bool:
        """True when ``x`` lies in some box and ``y`` satisfies one of its disjuncts exactly."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64).reshape(1, -1)
        for box in self.boxes:
            if np.all(x >= box.lb) and np.all(x <= box.ub):
                if any(dj.holds(y)[0] for dj in box.disjuncts):
                    return True
        return False


# ----------------------------------------------------------------------------- s-expressions
class VnnlibTimeout(ParseError):
    """Reading a VNN-LIB file ran out of its ``time_limit`` (the property was not read)."""


class _Clock:
    """The parse's time limit, checked every ``every`` steps (``perf_counter`` is not free)."""

    __slots__ = ("deadline", "limit", "label", "count", "every")

    def __init__(self, label: str, time_limit: float | None, start: float | None = None, every: int = 2048):
        if time_limit is not None and not time_limit >= 0:     # also rejects NaN
            raise ProblemError(f"{label}time limit must be a non-negative number of seconds, got {time_limit}")
        self.label = label
        self.limit = time_limit
        begin = time.perf_counter() if start is None else start
        self.deadline = None if time_limit is None or math.isinf(time_limit) else begin + time_limit
        self.count = 0
        self.every = every

    def tick(self, line: int, steps: int = 1) -> None:
        self.count += steps
        if self.count >= self.every:
            self.count = 0
            self.check(line)

    def check(self, line: int) -> None:
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise VnnlibTimeout(f"{self.label}the time limit of {self.limit:g} s ran out while parsing "
                                f"(at line {line}); the property was not read")


class _Tok:
    """One atom (a number, a variable, an operator) and where it is."""

    __slots__ = ("text", "line", "col")

    def __init__(self, text: str, line: int, col: int):
        self.text = text
        self.line = line
        self.col = col

    def __repr__(self) -> str:
        return f"_Tok({self.text!r}, {self.line}, {self.col})"


class _List(list):
    """A parenthesised list remembering where it opened."""

    __slots__ = ("line", "col")

    def __init__(self, line: int, col: int):
        super().__init__()
        self.line = line
        self.col = col


def _err(label: str, line: int, col: int | None, msg: str) -> ParseError:
    pos = f"line {line}" + (f", column {col}" if col is not None else "")
    return ParseError(f"{label}{pos}: {msg}")


def _read_sexprs(text: str, label: str, clock: _Clock | None = None) -> Iterator[_List]:
    """Yield each top-level list as soon as it closes (no recursion, no token list: the text is
    scanned line by line, so a token's line and column come for free). Unbalanced parentheses
    are reported where they open/close; repeated atoms share one string."""
    clock = clock or _Clock(label, None)
    stack: list[_List] = []
    names: dict[str, str] = {}
    finditer = _TOKEN.finditer
    n = len(text)
    pos, line, count = 0, 1, 0
    while True:
        end = text.find("\n", pos)
        last = end < 0
        if last:
            end = n
        for m in finditer(text, pos, end):
            tok = m.group()
            c = tok[0]
            if c == "(":
                stack.append(_List(line, m.start() - pos + 1))
            elif c == ")":
                if not stack:
                    raise _err(label, line, m.start() - pos + 1, "unbalanced parenthesis: ')' has no matching '('")
                done = stack.pop()
                if stack:
                    stack[-1].append(done)
                else:
                    yield done
            elif c != ";":
                if not stack:
                    raise _err(label, line, m.start() - pos + 1, f"unexpected {tok!r} outside parentheses")
                stack[-1].append(_Tok(names.setdefault(tok, tok), line, m.start() - pos + 1))
            count += 1
            if count >= 4096:
                count = 0
                clock.check(line)
        if last:
            break
        pos = end + 1
        line += 1
    if stack:
        s = stack[-1]
        raise _err(label, s.line, s.col, "unbalanced parenthesis: '(' is never closed")


def _where(node) -> tuple[int, int]:
    return (node.line, node.col)


def _show(node, limit: int = 60) -> str:
    """``node`` as text, cut after ``limit`` characters (iterative: nodes may nest deeply)."""
    parts: list[str] = []
    size = 0
    stack: list = [node]
    while stack and size <= limit:
        item = stack.pop()
        if isinstance(item, str):          # a closing parenthesis or a separator
            text = item
        elif isinstance(item, _Tok):
            text = item.text
        else:
            text = "("
            stack.append(")")
            for k in range(len(item) - 1, -1, -1):
                stack.append(item[k])
                if k:
                    stack.append(" ")
        parts.append(text)
        size += len(text)
    s = "".join(parts)
    return s if len(s) <= limit and not stack else s[: limit - 3] + "..."


# ----------------------------------------------------------------------------- parser
class _Parser:
    def __init__(self, label: str, clock: _Clock | None = None):
        self.label = label
        self.clock = clock or _Clock(label, None)
        self.declared: dict[tuple[str, int], int] = {}
        self.var_lines: dict[tuple[str, int], int] = {}

    def error(self, node, msg: str) -> ParseError:
        line, col = _where(node)
        return _err(self.label, line, col, msg)

    def _fold(self, root, leaf, combine):
        """Evaluate a tree bottom-up with an explicit stack (files may nest 100k deep).

        ``leaf(node)`` returns ``(True, value)`` for a node it evaluates itself, or
        ``(False, None)`` for a list whose arguments ``node[1:]`` are evaluated first and then
        passed to ``combine(node, values)``."""
        done, value = leaf(root)
        if done:
            return value
        tick = self.clock.tick
        stack: list[tuple[_List, list]] = [(root, [])]
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
    def declare(self, node: _List) -> None:
        if len(node) != 3 or not all(isinstance(t, _Tok) for t in node[1:]):
            raise self.error(node, f"malformed declaration {_show(node)}; expected (declare-const X_0 Real)")
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
        if isinstance(node, _Tok):
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
        if not node or not isinstance(node[0], _Tok):
            raise self.error(node, f"cannot read the term {_show(node)}")
        return False, None

    def _linear_combine(self, node: _List, args: list[dict]) -> dict:
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
                raise self.error(node, f"non-linear term {_show(node)}: a product of variables")
            k = float(math.prod(a.get(None, 0.0) for a in const))
            return _scale(var[0], k) if var else {None: k}
        if op == "/" and len(args) == 2:
            if not set(args[1]) <= {None}:
                raise self.error(node, f"non-linear term {_show(node)}: division by a variable")
            den = args[1].get(None, 0.0)
            if den == 0:
                raise self.error(node, f"division by zero in {_show(node)}")
            return _scale(args[0], 1.0 / den)
        raise self.error(node, f"cannot read the term {_show(node)} (supported: numbers, X_i, Y_j, "
                               "+, -, * and / by a constant)")

    # --- formulas -> DNF: list of terms, each a list of atoms
    def dnf(self, node) -> list[list]:
        return self._fold(node, self._dnf_leaf, self._dnf_combine)

    def _dnf_leaf(self, node) -> tuple[bool, list[list] | None]:
        if isinstance(node, _Tok) or not node or not isinstance(node[0], _Tok):
            raise self.error(node, f"expected a comparison, 'and' or 'or', got {_show(node)}")
        head = node[0].text
        if head == "and":
            return False, None
        if head == "or":
            if len(node) < 2:
                raise self.error(node, "empty 'or'")
            return False, None
        if head in _OPS:
            if len(node) != 3:
                raise self.error(node, f"comparison {_show(node)} needs exactly two operands")
            lhs, rhs = self.linear(node[1]), self.linear(node[2])
            diff = _add([lhs, _scale(rhs, -1.0)])       # lhs - rhs  (op)  0
            atoms = []
            if head in ("<=", "<", "="):
                atoms.append(_Atom(diff, head == "<", node.line, node))
            if head in (">=", ">", "="):
                atoms.append(_Atom(_scale(diff, -1.0), head == ">", node.line, node))
            return True, [atoms]
        raise self.error(node, f"unsupported construct {head!r} in {_show(node)}")

    def _dnf_combine(self, node: _List, parts: list[list[list]]) -> list[list]:
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
    """Parse VNN-LIB text (``source`` names the file in error messages).

    ``time_limit``: seconds; when they run out, ``VnnlibTimeout`` (a ``ParseError``) is raised
    instead of parsing on (a 50 MB property can take minutes). Nesting depth is not limited:
    the parser keeps its own stack."""
    label = f"{source}: " if source else ""
    clock = _Clock(label, time_limit, _start)
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


def _parse(text: str, label: str, source: str, clock: _Clock) -> Property:
    p = _Parser(label, clock)
    terms: list[list[list]] = []
    for node in _read_sexprs(text, label, clock):
        if not node or not isinstance(node[0], _Tok):
            raise p.error(node, f"expected declare-const or assert, got {_show(node)}")
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
    dnf = p._product(terms, _List(1, 1)) if terms else [[]]
    boxes = _group(dnf, n, m, p, label, clock)
    return Property(n, m, boxes, source, dict(p.var_lines))


def _group(dnf: list[list[_Atom]], n: int, m: int, p: _Parser, label: str,
           clock: _Clock | None = None) -> tuple[InputBox, ...]:
    """Split each DNF term into its input box and output disjunct; group by box."""
    groups: dict[bytes, tuple[np.ndarray, np.ndarray, list[Disjunct]]] = {}
    first_empty: ParseError | None = None
    clock = clock or _Clock(label, None)
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
                raise UnsupportedError(f"{label}line {atom.line}: atom {_show(atom.node)} mixes "
                                       "inputs and outputs; only boxes on X and linear atoms on Y")
            if kinds == {"X"}:
                if len(coefs) > 1:
                    raise UnsupportedError(
                        f"{label}line {atom.line}: atom {_show(atom.node)} constrains several "
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
    """Read a ``.vnnlib`` file (plain text; ``.gz`` is decompressed).

    ``time_limit``: seconds for reading and parsing; past them ``VnnlibTimeout`` is raised."""
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
    """The VNN-COMP 2021 witness text: ``sat`` then ``((X_0 v)\\n (X_1 v) ... (Y_0 v))``."""
    items = [f"(X_{i} {float(v)!r})" for i, v in enumerate(np.ravel(x))]
    items += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(np.ravel(y))]
    return "sat\n(" + "\n ".join(items) + ")\n"
