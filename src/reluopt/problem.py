"""Problem: a Network, an input Domain, an Objective and optional output constraints.

Internally every method maximises ``c_max . y + d_max`` (``Problem.max_form``); a
minimisation is the maximisation of the negated objective, and results are reported back
in the user's sense.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .errors import ProblemError
from .expressions import LinearExpr as LinearExpr  # re-exported: the parser lived here
from .expressions import format_linear, parse_constraint, parse_expression
from .expressions import parse_linear_expression as parse_linear_expression
from .expressions import parse_output_constraint as parse_output_constraint
from .network import Network
from .objectives import LeastSquares, MaxMin, Objective

#: Tolerance for output constraints and ``A x <= b`` when checking a returned point.
FEASIBILITY_TOL = 1e-6


def _vector(v, n: int, what: str) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    arr = arr.reshape(-1)
    if arr.shape[0] != n:
        raise ProblemError(f"{what} has length {arr.shape[0]}, expected {n}")
    return arr


@dataclass(frozen=True)
class Domain:
    """The input set: a box ``lb <= x <= ub`` and optionally ``A x <= b``."""

    lb: np.ndarray
    ub: np.ndarray
    A: np.ndarray | None = None
    b: np.ndarray | None = None

    def __post_init__(self) -> None:
        lb = np.asarray(self.lb, dtype=np.float64).reshape(-1)
        ub = np.asarray(self.ub, dtype=np.float64).reshape(-1)
        if lb.shape != ub.shape:
            raise ProblemError(f"box bounds have lengths {lb.shape[0]} (lb) and {ub.shape[0]} (ub)")
        if lb.shape[0] == 0:
            raise ProblemError("box is empty (no input dimensions)")
        if np.any(np.isnan(lb)) or np.any(np.isnan(ub)):
            i = int(np.argwhere(np.isnan(lb) | np.isnan(ub))[0][0])
            raise ProblemError(f"box bound of input {i} is NaN")
        bad = np.nonzero(lb > ub)[0]
        if bad.size:
            i = int(bad[0])
            raise ProblemError(f"box is empty: lb[{i}] = {lb[i]} > ub[{i}] = {ub[i]}")
        object.__setattr__(self, "lb", lb)
        object.__setattr__(self, "ub", ub)
        if (self.A is None) != (self.b is None):
            raise ProblemError("give both A and b for linear input constraints A x <= b")
        if self.A is not None:
            A = np.atleast_2d(np.asarray(self.A, dtype=np.float64))
            b = np.asarray(self.b, dtype=np.float64).reshape(-1)
            if A.shape[1] != lb.shape[0]:
                raise ProblemError(
                    f"input constraint matrix A has shape {A.shape}; expected "
                    f"{lb.shape[0]} columns (one per input)"
                )
            if A.shape[0] != b.shape[0]:
                raise ProblemError(f"A has {A.shape[0]} rows but b has {b.shape[0]} entries")
            if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
                raise ProblemError("input constraints A x <= b contain a non-finite value")
            object.__setattr__(self, "A", A)
            object.__setattr__(self, "b", b)

    @property
    def dim(self) -> int:
        return self.lb.shape[0]

    @property
    def bounded(self) -> bool:
        return bool(np.all(np.isfinite(self.lb)) and np.all(np.isfinite(self.ub)))

    def require_bounded(self, who: str) -> None:
        if not self.bounded:
            i = int(np.argwhere(~(np.isfinite(self.lb) & np.isfinite(self.ub)))[0][0])
            raise ProblemError(
                f"{who} needs a bounded box, but input {i} has bounds "
                f"[{self.lb[i]}, {self.ub[i]}]"
            )

    def contains(self, x, tol: float = FEASIBILITY_TOL) -> np.ndarray:
        """Boolean per row of ``x`` (n, d): inside the box and ``A x <= b`` up to ``tol``."""
        x = np.atleast_2d(x)
        ok = np.all((x >= self.lb - tol) & (x <= self.ub + tol), axis=1)
        if self.A is not None and self.b is not None:     # both or neither
            ok &= np.all(x @ self.A.T <= self.b + tol, axis=1)
        return ok

    def center(self) -> np.ndarray:
        return 0.5 * (self.lb + self.ub)


def _unit(k: int, m: int) -> np.ndarray:
    if not (0 <= k < m):
        raise ProblemError(f"output index {k} does not exist: the network has {m} outputs (0..{m - 1})")
    c = np.zeros(m)
    c[k] = 1.0
    return c


@dataclass(frozen=True)
class OutputConstraints:
    """Linear constraints ``C y <= e`` on the network outputs."""

    C: np.ndarray
    e: np.ndarray
    labels: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return self.C.shape[0]


def input_form_network(network: Network, D, domain: Domain) -> Network:
    """``network`` with ``k`` extra outputs ``D @ x`` (``D`` is ``k x n``), exact on ``domain``.

    Each form is carried through the hidden layers by one neuron ``s (D_j x - L_j)``, where
    ``L_j`` is a little below the form's minimum over the box, so the neuron is always active
    (stable: it adds no binary and no branching) and ReLU (or a clipped ReLU, since ``s``
    keeps the carrier below half of the smallest cap) passes it unchanged. This is how an
    objective or an output constraint with input terms becomes one in the outputs only,
    which every method handles.
    """
    D = np.atleast_2d(np.asarray(D, dtype=np.float64))
    k = D.shape[0]
    if not domain.bounded:
        domain.require_bounded("an objective or output constraint with input terms x[i]")
    from .network import Layer

    lo = np.sum(np.minimum(D * domain.lb, D * domain.ub), axis=1)
    hi = np.sum(np.maximum(D * domain.lb, D * domain.ub), axis=1)
    size = np.abs(D) @ np.maximum(np.abs(domain.lb), np.abs(domain.ub))
    shift = lo - 1e-9 * (1.0 + size)       # margin for round-off: the carrier stays > 0
    # every hidden activation is the identity on [0, top]: keep the carrier below half the top
    tops = [top for layer in network.layers[:-1] if np.isfinite(top := layer.act.identity_window()[1])]
    scale = np.ones(k) if not tops else 0.5 * min(tops) / (hi - shift)
    layers = list(network.layers)
    if len(layers) == 1:
        out = layers[0]
        return _renamed(network, [Layer(np.vstack([out.W, D]), np.concatenate([out.b, np.zeros(k)]), "identity")])
    new = []
    for i, layer in enumerate(layers):
        W, b = layer.W, layer.b
        if i == 0:
            W2 = np.vstack([W, scale[:, None] * D])
            b2 = np.concatenate([b, -scale * shift])
        else:
            W2 = np.zeros((W.shape[0] + k, W.shape[1] + k))
            W2[: W.shape[0], : W.shape[1]] = W
            last = i == len(layers) - 1
            W2[W.shape[0]:, W.shape[1]:] = np.diag(1.0 / scale) if last else np.eye(k)
            b2 = np.concatenate([b, shift if last else np.zeros(k)])
        new.append(replace(layer, W=W2, b=b2))
    return _renamed(network, new)


def _renamed(network: Network, layers) -> Network:
    k = layers[-1].n_out - network.output_dim
    out_names = None
    if network.output_names is not None:
        out_names = (*network.output_names, *(f"input form {j}" for j in range(k)))
    return Network(tuple(layers), network.input_names, out_names, network.source,
                   {**network.meta, "input_forms": k})


@dataclass(frozen=True)
class Problem:
    """Optimise a linear function of a network's outputs over an input domain."""

    network: Network
    domain: Domain
    objective: Objective | LeastSquares | MaxMin
    constraints: OutputConstraints | None = None
    name: str = ""
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        net = self.network
        if self.domain.dim != net.input_dim:
            raise ProblemError(
                f"box has {self.domain.dim} dimensions but the network has {net.input_dim} inputs"
            )
        if self.objective.n_outputs() != net.output_dim:
            n = self.objective.n_outputs()
            raise ProblemError(
                f"least-squares objective reads {n} outputs but the network has {net.output_dim}"
                if isinstance(self.objective, LeastSquares) else
                f"objective has {n} coefficients but the network has {net.output_dim} outputs"
            )
        if self.constraints is not None:
            C = np.atleast_2d(np.asarray(self.constraints.C, dtype=np.float64))
            e = np.asarray(self.constraints.e, dtype=np.float64).reshape(-1)
            if C.shape[0] == 0:
                object.__setattr__(self, "constraints", None)
                return
            if C.shape[1] != net.output_dim or C.shape[0] != e.shape[0]:
                raise ProblemError(
                    f"output constraints C has shape {C.shape} and e has {e.shape[0]} entries; "
                    f"expected {net.output_dim} columns and one e per row"
                )
            if not (np.all(np.isfinite(C)) and np.all(np.isfinite(e))):
                raise ProblemError("output constraints contain a non-finite value")
            object.__setattr__(
                self, "constraints", OutputConstraints(C, e, self.constraints.labels)
            )

    # ----------------------------------------------------------------- builders
    @classmethod
    def build(
        cls,
        network: Network,
        lb,
        ub,
        *,
        maximize: int | str | None = None,
        minimize: int | str | None = None,
        c=None,
        d: float = 0.0,
        sense: str = "max",
        constraints: Sequence[str] | None = None,
        A=None,
        b=None,
        name: str = "",
    ) -> Problem:
        """The usual way to state a problem: a network, a box, an objective, constraints.

        Outputs and inputs may also be called by the network's names. Input terms next to outputs are
        exact (one always-active neuron per layer carries them: ``input_form_network``); they need a bounded box.

        Parameters
        ----------
        network : Network
        lb, ub : float or array_like
            The input box: scalars or one bound per input.
        maximize, minimize, c : int, str or array_like, optional
            Exactly one: an output index, a linear expression such as ``'y[0] - 2*y[1]'`` or
            ``'3*y[0] - 0.5*x[1]'`` (not a constant), or a coefficient vector ``c`` with ``sense``.
        d : float
            A constant added to the objective.
        sense : {'max', 'min'}
        constraints : sequence of str, optional
            Such as ``'y[3] <= 0.34'``, ``'y[0] >= y[2]'`` or ``'x[0] + x[1] <= 1'`` (inputs only: joins ``A x <= b``).
        A, b : array_like, optional
            Linear input constraints ``A x <= b``.
        name : str

        Returns
        -------
        Problem
        """
        n, m = network.input_dim, network.output_dim
        names = {"input_names": network.input_names, "output_names": network.output_names}
        given = sum(v is not None for v in (maximize, minimize, c))
        if given != 1:
            raise ProblemError("give exactly one of maximize=k, minimize=k or c=vector")
        obj_x = np.zeros(n)
        if maximize is not None or minimize is not None:
            target, sense = (maximize, "max") if maximize is not None else (minimize, "min")
            key = "maximize" if sense == "max" else "minimize"
            if isinstance(target, str) and target.strip().lstrip("-").isdigit():
                target = int(target)
            if isinstance(target, str):
                expr = parse_expression(target, n, m, **names)
                if expr.constant:
                    raise ProblemError(f"{key}={target!r} is a constant: the objective must name an output "
                                       "y[i] (or an input x[i]); for output K give the index K")
                obj_y, obj_x, const = expr.y, expr.x, expr.const
            elif isinstance(target, int | np.integer) and not isinstance(target, bool):
                obj_y, const = _unit(int(target), m), 0.0
            else:
                raise ProblemError(f"{key}={target!r}: give an output index (an int) or an expression such "
                                   "as 'y[0] - y[1]'")
            objective = Objective(obj_y, d + const, sense)
        else:
            objective = Objective(_vector(c, m, "objective c"), d, sense)
            if not np.any(objective.c):
                raise ProblemError("objective vector c is all zeros: the objective is a constant")
        out_rows, in_rows, mixed = [], [], []
        for text in constraints or ():
            a_y, a_x, e = parse_constraint(text, n, m, **names)
            if not np.any(a_y):
                in_rows.append((a_x, e))
            elif not np.any(a_x):
                out_rows.append((a_y, e, text))
            else:
                mixed.append((a_y, a_x, e, text))
        if in_rows:
            A_in = np.array([r[0] for r in in_rows])
            b_in = np.array([r[1] for r in in_rows])
            if (A is None) != (b is None):
                raise ProblemError("give both A and b for linear input constraints A x <= b")
            A = A_in if A is None else np.vstack([np.atleast_2d(np.asarray(A, dtype=np.float64)), A_in])
            b = b_in if b is None else np.concatenate([np.asarray(b, dtype=np.float64).reshape(-1), b_in])
        domain = Domain(_vector(lb, n, "lb"), _vector(ub, n, "ub"), A, b)
        forms = ([obj_x] if np.any(obj_x) else []) + [r[1] for r in mixed]
        meta: dict = {}
        if forms:
            D = np.array(forms)
            meta = {"base_network": network, "input_forms": D}
            network = input_form_network(network, D, domain)
            k = len(forms)
            pad = np.zeros(k)
            c_aug = np.concatenate([objective.c, pad])
            if np.any(obj_x):
                c_aug[m] = 1.0
            objective = Objective(c_aug, objective.d, objective.sense)
            out_rows = [(np.concatenate([a_y, pad]), e, text) for a_y, e, text in out_rows]
            first = 1 if np.any(obj_x) else 0
            for j, (a_y, _, e, text) in enumerate(mixed):
                row = np.concatenate([a_y, pad])
                row[m + first + j] = 1.0
                out_rows.append((row, e, text))
        cons = None
        if out_rows:
            cons = OutputConstraints(np.array([r[0] for r in out_rows]), np.array([r[1] for r in out_rows]),
                                     tuple(r[2] for r in out_rows))
        return cls(network, domain, objective, cons, name, meta)

    # ----------------------------------------------------------------- views
    @property
    def user_network(self) -> Network:
        """The network as given: without the extra outputs that carry input terms (if any)."""
        return self.meta.get("base_network", self.network)

    def outputs(self, x) -> np.ndarray:
        """The user network's outputs ``y(x)`` (the extra input-term outputs left out)."""
        return self.user_network.forward(x)

    @property
    def sense(self) -> str:
        return self.objective.sense

    def max_form(self) -> tuple[np.ndarray, float]:
        """``(c, d)`` such that the problem is ``max c . y + d``."""
        c, d = self.objective.linear_form()     # a ProblemError for least squares
        s = self.objective.sign
        return s * c, s * d

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The objective as ``max min_r (C_r . y + e_r)``, whatever its kind.

        Returns
        -------
        C : ndarray, shape (r, m)
        e : ndarray, shape (r,)
            One row for a linear objective (negated for a minimisation), the rows of a
            ``MaxMin``. A least-squares objective raises ``ProblemError``.
        """
        if isinstance(self.objective, MaxMin):
            return self.objective.C, self.objective.e
        c, d = self.max_form()
        return c[None, :], np.array([d])

    def evaluate(self, x) -> tuple[np.ndarray, np.ndarray]:
        """User-sense objective values and constraint violations of points, one forward pass.

        Parameters
        ----------
        x : array_like, shape (n, d)

        Returns
        -------
        values : ndarray, shape (n,)
            As ``objective_values``.
        violation : ndarray, shape (n,)
            As ``constraint_violation`` (<= 0 is feasible).
        """
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        y = self.network.forward(x)
        return self.objective.values(y), self._violation(x, y)

    def objective_values(self, x) -> np.ndarray:
        """User-sense objective ``c . y(x) + d`` per row of ``x`` (forward pass)."""
        return self.objective.values(self.network.forward(np.atleast_2d(x)))

    def _violation(self, x: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        viol = np.maximum(np.max(self.domain.lb - x, axis=1), np.max(x - self.domain.ub, axis=1))
        if self.domain.A is not None:
            viol = np.maximum(viol, np.max(x @ self.domain.A.T - self.domain.b, axis=1))
        if self.constraints is not None:
            y = self.network.forward(x) if y is None else y
            viol = np.maximum(viol, np.max(y @ self.constraints.C.T - self.constraints.e, axis=1))
        return viol

    def objective_gradient(self, x) -> np.ndarray:
        """Gradient of the user-sense objective w.r.t. ``x``, per row of ``x`` (n, d)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        return self.objective.input_gradient(self.network, x)

    def constraint_violation(self, x) -> np.ndarray:
        """Largest violation of ``A x <= b``, the box and ``C y <= e`` per row (<= 0 is fine)."""
        return self._violation(np.atleast_2d(np.asarray(x, dtype=np.float64)), None)

    def is_feasible(self, x, tol: float = FEASIBILITY_TOL) -> np.ndarray:
        return self.constraint_violation(x) <= tol

    def better(self, a: float, b: float) -> bool:
        """Is user-sense value ``a`` strictly better than ``b``?"""
        return a > b if self.sense == "max" else a < b

    def with_box(self, lb, ub) -> Problem:
        d = self.domain
        domain = Domain(lb, ub, d.A, d.b)
        net = self.network
        if "input_forms" in self.meta:   # the carriers' shift depends on the box
            net = input_form_network(self.meta["base_network"], self.meta["input_forms"], domain)
        return Problem(net, domain, self.objective, self.constraints, self.name, self.meta)

    def describe(self) -> str:
        obj = self.objective
        if isinstance(obj, LeastSquares):
            return (f"min 1/2||A y + a - t||^2 ({obj.t.shape[0]} measurements) over a "
                    f"{self.domain.dim}-d box of {self.network.describe()}")
        if isinstance(obj, MaxMin):
            return (f"max min of {obj.C.shape[0]} output rows over a {self.domain.dim}-d box of "
                    f"{self.user_network.describe()}")
        m = self.user_network.output_dim
        c, x = obj.c[:m], None
        if "input_forms" in self.meta:
            x = obj.c[m:] @ self.meta["input_forms"]
        what = format_linear(c, obj.d, x)
        cons = f", {self.constraints.count} output constraint(s)" if self.constraints else ""
        if self.domain.A is not None:
            cons += f", {self.domain.A.shape[0]} input constraint(s)"
        return f"{obj.sense} {what} over a {self.domain.dim}-d box of {self.user_network.describe()}{cons}"
