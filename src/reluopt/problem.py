"""Problem: a Network, an input Domain, an Objective and optional output constraints.

``Domain`` (and ``FEASIBILITY_TOL``) live in ``reluopt.domain`` and ``input_form_network`` in
``reluopt.input_forms``; both are re-exported here.

Internally every method maximises ``c_max . y + d_max`` (``Problem.max_form``); a
minimisation is the maximisation of the negated objective, and results are reported back
in the user's sense.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .domain import FEASIBILITY_TOL as FEASIBILITY_TOL  # re-exported: Domain lived here
from .domain import Domain as Domain
from .domain import _vector
from .errors import ProblemError
from .expressions import LinearExpr as LinearExpr  # re-exported: the parser lived here
from .expressions import format_linear, parse_constraint, parse_expression
from .expressions import parse_linear_expression as parse_linear_expression
from .expressions import parse_output_constraint as parse_output_constraint
from .input_forms import input_form_network as input_form_network  # re-exported
from .network import Network
from .objectives import LeastSquares, MaxMin, Objective


def _unit(k: int, m: int) -> np.ndarray:
    if not (0 <= k < m):
        raise ProblemError(f"output index {k} does not exist: the network has {m} outputs (0..{m - 1})")
    c = np.zeros(m)
    c[k] = 1.0
    return c


@dataclass(frozen=True)
class OutputConstraints:
    """Linear constraints ``C y <= e`` on the network outputs.

    Attributes
    ----------
    C : np.ndarray, shape (k, m)
        One constraint per row, over the ``m`` outputs.
    e : np.ndarray, shape (k,)
        The right-hand sides.
    labels : tuple of str
        The constraints as the user wrote them, for reports (may be empty).
    """

    C: np.ndarray
    e: np.ndarray
    labels: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return self.C.shape[0]


@dataclass(frozen=True)
class Problem:
    """Optimise a linear function of a network's outputs over an input domain.

    Usually made by ``Problem.build``, which parses objectives and constraints; the constructor
    checks that the parts fit together.

    Parameters
    ----------
    network : Network
        The network (with extra outputs for input terms, if any).
    domain : Domain
        The input set.
    objective : Objective, LeastSquares or MaxMin
        What to optimise, over the network's outputs.
    constraints : OutputConstraints, optional
        ``C y <= e``; an empty one becomes None.
    name : str
        For reports.
    meta : dict
        Extra information (e.g. ``base_network`` and ``input_forms`` for input terms).

    Raises
    ------
    ProblemError
        When the domain, objective or constraints do not match the network's sizes, or a
        constraint is not finite.
    """

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
        """The user network's outputs ``y(x)`` (the extra input-term outputs left out).

        Parameters
        ----------
        x : array_like, shape (n, d) or (d,)
            Input points.

        Returns
        -------
        np.ndarray, shape (n, m)
            One row of outputs per point.
        """
        return self.user_network.forward(x)

    @property
    def sense(self) -> str:
        return self.objective.sense

    def max_form(self) -> tuple[np.ndarray, float]:
        """``(c, d)`` such that the problem is ``max c . y + d``, the form every method solves.

        Returns
        -------
        c : np.ndarray, shape (m,)
            Negated for a minimisation.
        d : float
            The constant, negated likewise.

        Raises
        ------
        ProblemError
            For a least-squares objective (it has no linear form).
        """
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
        """User-sense objective ``c . y(x) + d`` per row of ``x``, by a forward pass.

        Parameters
        ----------
        x : array_like, shape (n, d) or (d,)
            Input points.

        Returns
        -------
        np.ndarray, shape (n,)
            In the user's sense (not negated for a minimisation).
        """
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
        """Gradient of the user-sense objective with respect to the input, for the local searches.

        Parameters
        ----------
        x : array_like, shape (n, d) or (d,)
            Input points.

        Returns
        -------
        np.ndarray, shape (n, d)
            One gradient per point (a subgradient at a ReLU kink).
        """
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        return self.objective.input_gradient(self.network, x)

    def constraint_violation(self, x) -> np.ndarray:
        """Largest violation of the box, ``A x <= b`` and ``C y <= e`` per point, to check feasibility.

        Parameters
        ----------
        x : array_like, shape (n, d) or (d,)
            Input points.

        Returns
        -------
        np.ndarray, shape (n,)
            At most 0 for a feasible point.
        """
        return self._violation(np.atleast_2d(np.asarray(x, dtype=np.float64)), None)

    def is_feasible(self, x, tol: float = FEASIBILITY_TOL) -> np.ndarray:
        """Say which points meet every constraint within ``tol``.

        Parameters
        ----------
        x : array_like, shape (n, d) or (d,)
            Input points.
        tol : float
            Allowed violation.

        Returns
        -------
        np.ndarray of bool, shape (n,)
            ``constraint_violation(x) <= tol``.
        """
        return self.constraint_violation(x) <= tol

    def better(self, a: float, b: float) -> bool:
        """Is user-sense value ``a`` strictly better than ``b`` (larger for max, smaller for min)?

        Parameters
        ----------
        a, b : float
            Objective values in the user's sense.

        Returns
        -------
        bool
        """
        return a > b if self.sense == "max" else a < b

    def with_box(self, lb, ub) -> Problem:
        """The same problem over another box (e.g. a branch of an input split).

        Parameters
        ----------
        lb, ub : array_like, shape (d,)
            The new box; ``A x <= b`` is kept.

        Returns
        -------
        Problem
            With the input-term carriers rebuilt for the new box, if there are any.
        """
        d = self.domain
        domain = Domain(lb, ub, d.A, d.b)
        net = self.network
        if "input_forms" in self.meta:   # the carriers' shift depends on the box
            net = input_form_network(self.meta["base_network"], self.meta["input_forms"], domain)
        return Problem(net, domain, self.objective, self.constraints, self.name, self.meta)

    def describe(self) -> str:
        """One line saying what is optimised over what, for reports and logs.

        Returns
        -------
        str
            E.g. ``max y[0] - y[1] over a 4-d box of ...``.
        """
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
