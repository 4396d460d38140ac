"""Linear expressions and constraints over a network's outputs ``y[i]`` and inputs ``x[i]``.

The text forms that objectives (``'2*y[0] - y[1] + 0.1*x[3]'``) and constraints (``'y[0] >= 0.5'``)
take on the command line and in ``Problem.build``: a small recursive-descent reader that accepts only
linear expressions and reports the column where reading failed, and the inverse, ``format_linear``.
The same reader reads a general model's expressions over its own names (``reluopt.Model``:
``'2*units + 0.5*x[1] - y1[0] <= 3'``, ``parse_model_expression`` / ``parse_model_constraint``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .errors import ParseError, ProblemError

#: Shorthand names: ``y0``, ``y_0``, ``Y_0`` for output 0; ``x0``, ``x_0``, ``X_0`` for input 0.
_SHORTHAND = re.compile(r"([xXyY])_?(\d+)")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPECTED = "expected a number, y[i] (an output), x[i] (an input), a name or '('"


@dataclass(frozen=True)
class LinearExpr:
    """A parsed linear expression ``y_coef . y + x_coef . x + const``.

    Attributes
    ----------
    y, x : np.ndarray
        Coefficients of the outputs and of the inputs.
    const : float
        The constant term.
    """

    y: np.ndarray
    x: np.ndarray
    const: float = 0.0

    @property
    def constant(self) -> bool:
        """True when the expression names no output and no input (all coefficients zero)."""
        return not (np.any(self.y) or np.any(self.x))

    def _combine(self, other: LinearExpr, s: float) -> LinearExpr:
        return LinearExpr(self.y + s * other.y, self.x + s * other.x, self.const + s * other.const)

    def scaled(self, k: float) -> LinearExpr:
        """The expression times ``k``.

        Parameters
        ----------
        k : float
            The factor.

        Returns
        -------
        LinearExpr
            ``k * self`` (zeros are +0.0).
        """
        return LinearExpr(k * self.y + 0.0, k * self.x + 0.0, k * self.const + 0.0)   # + 0.0: no -0.0


class _Reader:
    """Recursive-descent reader of linear expressions over ``y[i]``, ``x[i]`` and names.

    Grammar: ``expr := term (('+'|'-') term)*``, ``term := unary (('*'|'/') unary)*``,
    ``unary := ('+'|'-') unary | NUMBER | VAR | '(' expr ')'``. A product needs a constant
    on one side and a division a constant divisor, so everything read is linear. Errors
    give the 1-based column in ``full`` (the whole constraint when reading one side).
    """

    def __init__(self, text: str, n_inputs: int, n_outputs: int, input_names=None, output_names=None,
                 full: str | None = None, offset: int = 0) -> None:
        self.text, self.full, self.offset = text, text if full is None else full, offset
        self.n_in, self.n_out = n_inputs, n_outputs
        self.input_names = tuple(input_names or ())
        self.output_names = tuple(output_names or ())
        self.tokens = self._tokenize()
        self.i = 0

    # -- errors
    def fail(self, pos: int, why: str, cls=ParseError):
        at = self.offset + pos
        rest = self.full[at:].strip()
        where = f"at {rest[:20]!r}" if rest else "at the end"
        raise cls(f"cannot read {self.full!r} at column {at + 1} ({where}): {why}")

    # -- tokens: (kind, text, position); kind in num, name, op, end
    def _tokenize(self) -> list[tuple[str, str, int]]:
        s, pos, out = self.text, 0, []
        while pos < len(s):
            ch = s[pos]
            if ch.isspace():
                pos += 1
                continue
            if s.startswith("**", pos) or ch == "^":
                self.fail(pos, "powers are not linear; only sums of constant multiples of outputs and inputs are")
            m = _NUMBER.match(s, pos)
            if m:
                out.append(("num", m.group(), pos))
                pos = m.end()
                continue
            m = _IDENT.match(s, pos)
            if m:
                out.append(("name", m.group(), pos))
                pos = m.end()
                continue
            if ch in "+-*/()[]":
                out.append(("op", ch, pos))
                pos += 1
                continue
            if ch in "<>=":
                self.fail(pos, "a comparison belongs in a constraint 'LHS <= RHS' or 'LHS >= RHS', "
                          "with one comparison")
            self.fail(pos, f"unexpected character {ch!r}")
        out.append(("end", "", len(s)))
        return out

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        if tok[0] != "end":
            self.i += 1
        return tok

    def is_op(self, chars: str) -> bool:
        kind, text, _ = self.peek()
        return kind == "op" and text in chars

    # -- grammar
    def read(self) -> LinearExpr:
        value = self.expr()
        kind, text, pos = self.peek()
        if kind != "end":
            why = "unmatched ')'" if text == ")" else f"unexpected {text!r}"
            self.fail(pos, why)
        return value

    def expr(self) -> LinearExpr:
        value = self.term()
        while self.is_op("+-"):
            _, op, _ = self.take()
            value = value._combine(self.term(), 1.0 if op == "+" else -1.0)
        return value

    def term(self) -> LinearExpr:
        value = self.unary()
        while True:
            kind, text, pos = self.peek()
            if kind == "op" and text == "*":
                self.take()
                other = self.unary()
                if value.constant:
                    value = other.scaled(value.const)
                elif other.constant:
                    value = value.scaled(other.const)
                else:
                    self.fail(pos, "a product of two terms with outputs or inputs is not linear")
            elif kind == "op" and text == "/":
                self.take()
                other = self.unary()
                if not other.constant:
                    self.fail(pos, "dividing by an output or an input is not linear")
                if other.const == 0.0:
                    self.fail(pos, "division by zero")
                value = value.scaled(1.0 / other.const)
            elif kind in ("num", "name") or (kind == "op" and text == "("):
                self.fail(pos, f"missing '*' before {text!r} (write a product as '0.5*x[1]')")
            else:
                return value

    def unary(self) -> LinearExpr:
        if self.is_op("+-"):
            _, op, _ = self.take()
            value = self.unary()
            return value if op == "+" else value.scaled(-1.0)
        return self.primary()

    def primary(self) -> LinearExpr:
        kind, text, pos = self.take()
        if kind == "num":
            v = float(text)
            if not np.isfinite(v):
                self.fail(pos, f"number {text} is too large")
            return self._const(v)
        if kind == "op" and text == "(":
            value = self.expr()
            if not self.is_op(")"):
                self.fail(self.peek()[2], "missing ')'")
            self.take()
            return value
        if kind == "name":
            return self._variable(text, pos)
        if kind == "end":
            self.fail(pos, _EXPECTED)
        self.fail(pos, f"unexpected {text!r}; {_EXPECTED}")
        raise AssertionError  # unreachable

    def _const(self, v: float) -> LinearExpr:
        return LinearExpr(np.zeros(self.n_out), np.zeros(self.n_in), v)

    def _unit(self, kind: str, k: int, pos: int) -> LinearExpr:
        n = self.n_out if kind == "y" else self.n_in
        what = "output" if kind == "y" else "input"
        if n == 0:
            self.fail(pos, f"{kind}[{k}]: only outputs y[i] can appear in this expression")
        if not 0 <= k < n:
            self.fail(pos, f"{what} {kind}[{k}] does not exist: the network has {n} {what}s (0..{n - 1})",
                      ProblemError)
        e = self._const(0.0)
        (e.y if kind == "y" else e.x)[k] = 1.0
        return e

    def _index(self, word: str) -> int:
        """Read ``[k]`` after the name ``word`` (the reader is at ``[``): the whole number ``k``."""
        self.take()
        kind, text, ipos = self.take()
        if kind != "num" or not text.isdigit():
            self.fail(ipos, f"the index of {word}[...] must be a whole number")
        if not self.is_op("]"):
            self.fail(self.peek()[2], "missing ']'")
        self.take()
        return int(text)

    def _variable(self, word: str, pos: int) -> LinearExpr:
        if self.is_op("["):
            if word not in ("x", "y", "X", "Y"):
                self.fail(pos, f"unknown vector {word!r}: use y[i] for output i and x[i] for input i")
            return self._unit(word.lower(), self._index(word), pos)
        hits = [("y", k) for k, name in enumerate(self.output_names) if name == word]
        hits += [("x", k) for k, name in enumerate(self.input_names) if name == word]
        m = _SHORTHAND.fullmatch(word)
        if m and (m.group(1).lower(), int(m.group(2))) not in hits:
            hits.append((m.group(1).lower(), int(m.group(2))))
        if len(hits) > 1:
            meaning = " and ".join(f"{k}[{i}]" for k, i in hits)
            self.fail(pos, f"{word!r} is ambiguous (it could be {meaning}); write y[i] or x[i]")
        if not hits:
            names = [*self.output_names, *self.input_names]
            known = f"; this network's names are {', '.join(names)}" if names else \
                "; this network has no input or output names"
            self.fail(pos, f"unknown name {word!r}: use y[i] for output i and x[i] for input i, and numbers "
                      f"for coefficients{known}")
        return self._unit(hits[0][0], hits[0][1], pos)


def parse_expression(text: str, n_inputs: int, n_outputs: int, *, input_names=None,
                     output_names=None) -> LinearExpr:
    """Read a linear expression of outputs ``y[i]`` and inputs ``x[i]`` (or their names).

    ``'2*y[0] - y[1]/2 + 0.1*x[3] + 1'``, ``'y[0]*2'``, ``'-(y[0] - y[1])'``, ``'3e-2 * x[0]'``
    are accepted; products need ``*`` and a constant on one side. Errors are ``ParseError``
    (``ProblemError`` for an index out of range) naming the column where reading failed.

    Parameters
    ----------
    text : str
        The expression.
    n_inputs, n_outputs : int
        The network's sizes (indices are checked against them).
    input_names, output_names : sequence of str, optional
        Names that may stand for ``x[i]`` and ``y[i]``.

    Returns
    -------
    LinearExpr
        The coefficients and the constant.
    """
    if not str(text).strip():
        raise ParseError("empty expression")
    return _Reader(str(text), n_inputs, n_outputs, input_names, output_names).read()


def parse_linear_expression(text: str, n_outputs: int) -> tuple[np.ndarray, float]:
    """Parse ``'2*y[0] - y[3] + 0.5'`` (outputs only).

    Parameters
    ----------
    text : str
        The expression.
    n_outputs : int
        The number of outputs.

    Returns
    -------
    tuple
        ``(coefficients, constant)``.
    """
    expr = parse_expression(text, 0, n_outputs)
    return expr.y, expr.const


def parse_constraint(text: str, n_inputs: int, n_outputs: int, *, input_names=None,
                     output_names=None) -> tuple[np.ndarray, np.ndarray, float]:
    """Read a linear constraint such as ``'y[0] - 2*x[1] >= 0.5'``.

    Parameters
    ----------
    text : str
        ``LHS <= RHS`` or ``LHS >= RHS`` (one comparison, not strict).
    n_inputs, n_outputs : int
        The network's sizes.
    input_names, output_names : sequence of str, optional
        Names that may stand for ``x[i]`` and ``y[i]``.

    Returns
    -------
    tuple
        ``(a_y, a_x, e)`` meaning ``a_y . y + a_x . x <= e``.

    Raises
    ------
    ParseError
        Not one non-strict comparison of two linear sides naming a variable.
    """
    diff, _ = _compare(str(text), lambda part, offset: _Reader(part, n_inputs, n_outputs, input_names,
                                                               output_names, str(text), offset), False)
    if diff.constant:
        raise ParseError(f"constraint {text!r} does not involve any output y[i] or input x[i]")
    return diff.y, diff.x, -diff.const


def _compare(text: str, reader, allow_equal: bool) -> tuple[LinearExpr, bool]:
    """``lhs - rhs`` (negated for ``>=``) of a constraint ``LHS op RHS`` and whether op is ``==``."""
    ops = list(re.finditer(r"<=|>=|=<|=>|==|<|>|=", text))
    form = ("must have the form 'LHS <= RHS', 'LHS >= RHS' or 'LHS == RHS'" if allow_equal
            else "must have the form 'LHS <= RHS' or 'LHS >= RHS'")
    if not ops:
        raise ParseError(f"constraint {text!r} {form}")
    if len(ops) > 1:
        raise ParseError(f"cannot read {text!r} at column {ops[1].start() + 1}: one comparison per constraint "
                         "(give '0 <= x[0] <= 1' as two constraints)")
    op = ops[0]
    allowed = ("<=", ">=", "=<", "=>") + (("==",) if allow_equal else ())
    if op.group() not in allowed:
        raise ParseError(f"constraint {text!r} {form} (strict '<', '>' and '=' are not supported)")
    sides = []
    for part, offset in ((text[:op.start()], 0), (text[op.end():], op.end())):
        if not part.strip():
            raise ParseError(f"constraint {text!r} {form}: the {'left' if offset == 0 else 'right'} side is empty")
        sides.append(reader(part, offset).read())
    diff = sides[0]._combine(sides[1], -1.0)     # lhs - rhs <= 0
    if op.group() in (">=", "=>"):
        diff = diff.scaled(-1.0)
    return diff, op.group() == "=="


class _ModelReader(_Reader):
    """The reader over a general model's named variables (``units``, ``x[1]``, ``y1[0]``).

    ``names`` maps each name to ``(first column, size, scalar)``; the expression's ``x`` holds
    the coefficients of the model's columns and ``y`` is empty. An unknown name or an index out
    of range is a ``ProblemError`` naming it and its column in the text.
    """

    def __init__(self, text: str, names: dict, n_cols: int, full: str | None = None, offset: int = 0) -> None:
        self.names = names
        super().__init__(text, n_cols, 0, full=full, offset=offset)

    def _variable(self, word: str, pos: int) -> LinearExpr:
        if word not in self.names:
            known = ", ".join(sorted(self.names)) or "none yet"
            self.fail(pos, f"unknown variable {word!r} (the model's variables and network outputs: {known})",
                      ProblemError)
        start, size, scalar = self.names[word]
        if self.is_op("["):
            k = self._index(word)
            if scalar or not 0 <= k < size:
                what = "a scalar: write it without an index" if scalar else f"has {size} entries (0..{size - 1})"
                self.fail(pos, f"{word}[{k}] does not exist: {word} is {what}" if scalar else
                          f"{word}[{k}] does not exist: {word} {what}", ProblemError)
        elif size == 1:
            k = 0
        else:
            self.fail(pos, f"{word} is a vector of {size} entries: write {word}[i]", ProblemError)
        e = self._const(0.0)
        e.x[start + k] = 1.0
        return e


def parse_model_expression(text: str, names: dict, n_cols: int) -> LinearExpr:
    """Read a linear expression over a general model's named variables, e.g. ``'2*units - y1[0]'``.

    Parameters
    ----------
    text : str
        The expression.
    names : dict
        ``name -> (first column, size, scalar)`` of every variable and network output.
    n_cols : int
        The model's column count.

    Returns
    -------
    LinearExpr
        ``x`` holds the column coefficients, ``const`` the constant.
    """
    if not str(text).strip():
        raise ParseError("empty expression")
    return _ModelReader(str(text), names, n_cols).read()


def parse_model_constraint(text: str, names: dict, n_cols: int) -> tuple[np.ndarray, float, bool]:
    """Read ``'2*units + 0.5*x[1] - y1[0] <= 3'`` (``<=``, ``>=`` or ``==``) over a model's names.

    Parameters
    ----------
    text : str
        The constraint.
    names : dict
        ``name -> (first column, size, scalar)``.
    n_cols : int
        The model's column count.

    Returns
    -------
    tuple
        ``(a, e, equal)``: ``a . v <= e``, or ``a . v == e`` when ``equal``.
    """
    text = str(text)
    diff, equal = _compare(text, lambda part, offset: _ModelReader(part, names, n_cols, text, offset), True)
    if diff.constant:
        raise ParseError(f"constraint {text!r} does not involve any variable")
    return diff.x, -diff.const, equal


def parse_output_constraint(text: str, n_outputs: int) -> tuple[np.ndarray, float]:
    """Parse ``'y[3] <= 0.34'`` or ``'y[0] - y[1] >= 0'`` (outputs only).

    Parameters
    ----------
    text : str
        The constraint.
    n_outputs : int
        The number of outputs.

    Returns
    -------
    tuple
        A row ``(a, e)`` meaning ``a . y <= e``.
    """
    a, _, e = parse_constraint(text, 0, n_outputs)
    return a, e


def format_linear(c, d: float = 0.0, x=None) -> str:
    """Write ``'2*y[0] - y[3] + 0.5'`` from coefficients and a constant (the parser's inverse).

    Parameters
    ----------
    c : array_like
        Output coefficients.
    d : float
        The constant.
    x : array_like, optional
        Input coefficients.

    Returns
    -------
    str
        The expression (``'0'`` when everything is zero).
    """
    text = ""
    terms = [("y", k, float(c[k])) for k in np.nonzero(c)[0]]
    if x is not None:
        terms += [("x", k, float(x[k])) for k in np.nonzero(x)[0]]
    for name, k, v in terms:
        sign = "-" if v < 0 else "+"
        mag = "" if abs(v) == 1.0 else f"{abs(v):g}*"
        text += f" {sign} {mag}{name}[{k}]" if text else f"{'-' if v < 0 else ''}{mag}{name}[{k}]"
    if d:
        text += f" {'-' if d < 0 else '+'} {abs(d):g}"
    return text or "0"
