"""The general model: named variables, networks fed by them, linear constraints, a linear objective.

Every quantity of a model is a column: each entry of a decision variable (continuous or
integer, with bounds) and each output of a network. A network's inputs are affine functions of
the columns that exist when it is added (variables, outputs of networks added before it, or
constants), so the networks are in evaluation order: chained networks feed on earlier outputs.
Constraints and the objective are linear in the columns and are written in the text syntax of
``Problem.build`` extended to the model's names (``'2*units + 0.5*x[1] - y1[0] <= 3'``).

The decision is the vector of the variables' entries (``Model.n_vars``, in creation order);
the outputs are functions of it, recomputed by forward passes (``Model.evaluate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..domain import FEASIBILITY_TOL
from ..embed.core import as_network
from ..errors import ProblemError
from ..expressions import parse_model_constraint, parse_model_expression
from .variables import Feed, Var, _pad


@dataclass
class Model:
    """A general optimisation model over trained networks, solved by reluopt's own methods.

    Build it with ``add_var``, ``add_network``, ``add_constraint`` and ``maximize`` /
    ``minimize``; solve it with ``solve`` (``mip``, ``auto`` or ``bab``).

    Parameters
    ----------
    name : str, optional
        For reports.
    """

    name: str = ""
    blocks: list[Var] = field(default_factory=list)
    col_lb: list[float] = field(default_factory=list)
    col_ub: list[float] = field(default_factory=list)
    col_integer: list[bool] = field(default_factory=list)
    feeds: list[Feed] = field(default_factory=list)
    constraints: list[tuple[np.ndarray, float, str]] = field(default_factory=list)
    objective: tuple[np.ndarray, float, str] | None = None
    sense: str = "max"

    # ------------------------------------------------------------------ building
    @property
    def n_cols(self) -> int:
        """Columns: variable entries and network outputs."""
        return len(self.col_lb)

    @property
    def names(self) -> dict:
        """``name -> (first column, size, scalar)`` of every variable and network output."""
        return {b.name: (b.start, b.size, b.scalar) for b in self.blocks}

    @property
    def variables(self) -> list[Var]:
        """The decision variables, in creation order."""
        return [b for b in self.blocks if b.kind == "var"]

    @property
    def var_cols(self) -> np.ndarray:
        """The columns of the decision variables' entries (the decision vector's order)."""
        cols = [b.columns for b in self.variables]
        return np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)

    @property
    def n_vars(self) -> int:
        """Entries of the decision vector."""
        return int(self.var_cols.size)

    def _new_block(self, name: str, size: int, scalar: bool, kind: str) -> Var:
        if not isinstance(name, str) or not name.isidentifier():
            raise ProblemError(f"name {name!r} is not usable in expressions: use letters, digits and '_'")
        if name in self.names:
            raise ProblemError(f"the model already has a variable or network output called {name!r}")
        block = Var(name, self.n_cols, size, scalar, kind)
        self.blocks.append(block)
        return block

    def add_var(self, name: str, lb=-np.inf, ub=np.inf, *, shape: int | None = None, integer: bool = False) -> Var:
        """Add a decision variable (a scalar, or a vector of ``shape`` entries).

        Parameters
        ----------
        name : str
            Its name in expressions (``units``; a vector's entries are ``x[0]``, ``x[1]``...).
        lb, ub : float or array_like, optional
            Bounds (default none; a variable that feeds a network needs finite ones).
        shape : int, optional
            Entry count of a vector; None for a scalar (the length of ``lb`` or ``ub`` when they
            are vectors).
        integer : bool, optional
            Integer-valued.

        Returns
        -------
        Var
        """
        lo, hi = np.asarray(lb, dtype=np.float64), np.asarray(ub, dtype=np.float64)
        scalar = shape is None and lo.ndim == 0 and hi.ndim == 0
        size = 1 if scalar else int(shape if shape is not None else max(lo.size if lo.ndim else 1,
                                                                          hi.size if hi.ndim else 1))
        try:
            lo, hi = np.broadcast_to(lo, (size,)).copy(), np.broadcast_to(hi, (size,)).copy()
        except ValueError:
            raise ProblemError(f"variable {name!r}: bounds of shapes {lo.shape} and {hi.shape} do not fit "
                               f"{size} entries") from None
        if size < 1 or np.isnan(lo).any() or np.isnan(hi).any() or (lo > hi).any():
            raise ProblemError(f"variable {name!r} has an empty or invalid range: lb {lo}, ub {hi}")
        if integer:
            lo, hi = np.ceil(lo), np.floor(hi)
            if (lo > hi).any():
                raise ProblemError(f"integer variable {name!r} has no integer value in its range")
        block = self._new_block(name, size, scalar, "var")
        self.col_lb += lo.tolist()
        self.col_ub += hi.tolist()
        self.col_integer += [bool(integer)] * size
        return block

    def add_network(self, network, inputs, *, name: str | None = None, trust_pickle: bool = False) -> Var:
        """Add ``outputs = network(inputs)``; the outputs are new columns named ``name[i]``.

        Parameters
        ----------
        network : Network, str or object
            Anything ``reluopt.load`` accepts.
        inputs : str, Var, number or sequence of them
            One affine expression per network input: texts (``'2*units'``, ``'y1[0]'``),
            variables (a vector stands for its entries) or numbers (fixed features). A text
            that is a vector's name stands for its entries too.
        name : str, optional
            The outputs' name (default ``y0``, ``y1``, ... by network count).
        trust_pickle : bool, optional
            Passed to ``reluopt.load``.

        Returns
        -------
        Var
            The outputs.
        """
        net = as_network(network, trust_pickle=trust_pickle)
        name = f"y{len(self.feeds)}" if name is None else name
        items = [inputs] if isinstance(inputs, str | Var) or np.ndim(inputs) == 0 else list(inputs)
        texts: list = []
        for item in items:
            block = item if isinstance(item, Var) else self._block_named(item)
            texts += block.entries() if block is not None else [item]
        if len(texts) != net.input_dim:
            raise ProblemError(f"network {name!r} has {net.input_dim} inputs but {len(texts)} input expression(s) "
                               f"were given ({', '.join(str(t) for t in texts[:6])}{'...' if len(texts) > 6 else ''})")
        n = self.n_cols
        F, f = np.zeros((net.input_dim, n)), np.zeros(net.input_dim)
        for i, t in enumerate(texts):
            if isinstance(t, str):
                expr = self._parse(t, f"input {i} of network {name!r}")
                F[i], f[i] = expr.x, expr.const
            else:
                try:
                    f[i] = float(t)
                except (TypeError, ValueError):
                    raise ProblemError(f"input {i} of network {name!r}: {t!r} is not an expression, a variable "
                                       "or a number") from None
                if not np.isfinite(f[i]):
                    raise ProblemError(f"input {i} of network {name!r} is the non-finite constant {t!r}")
        out = self._new_block(name, net.output_dim, False, "output")
        self.col_lb += [-np.inf] * net.output_dim
        self.col_ub += [np.inf] * net.output_dim
        self.col_integer += [False] * net.output_dim
        self.feeds.append(Feed(net, F, f, out))
        return out

    def _block_named(self, item) -> Var | None:
        if isinstance(item, str):
            for b in self.blocks:
                if b.name == item.strip() and not b.scalar:
                    return b
        return None

    def _parse(self, text: str, where: str):
        try:
            return parse_model_expression(text, self.names, self.n_cols)
        except ProblemError as exc:
            raise ProblemError(f"{where}: {exc}") from None

    def add_constraint(self, text: str) -> None:
        """Add a linear constraint ``'LHS <= RHS'`` (or ``>=``, ``==``) over variables and outputs.

        Parameters
        ----------
        text : str
            E.g. ``'2*units + 0.5*x[1] - y1[0] <= 3'``.
        """
        a, e, equal = parse_model_constraint(text, self.names, self.n_cols)   # errors quote the text
        if not np.isfinite(e):
            raise ProblemError(f"constraint {text!r} has a non-finite right-hand side")
        self.constraints.append((a, float(e), text))
        if equal:
            self.constraints.append((-a, -float(e), text))

    def maximize(self, text: str) -> None:
        """Set the objective: maximise a linear expression.

        Parameters
        ----------
        text : str
            E.g. ``'y1[0] - 0.1*units'``.
        """
        self._set_objective(text, "max")

    def minimize(self, text: str) -> None:
        """Set the objective: minimise a linear expression.

        Parameters
        ----------
        text : str
            E.g. ``'y[0] + 0.5*x[0]'``.
        """
        self._set_objective(text, "min")

    def _set_objective(self, text: str, sense: str) -> None:
        expr = self._parse(text, "the objective")
        self.objective, self.sense = (expr.x, float(expr.const), str(text)), sense

    # ------------------------------------------------------------------ arrays
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The columns' own bounds (outputs: none).

        Returns
        -------
        lb, ub : numpy.ndarray
        """
        return np.array(self.col_lb, dtype=np.float64), np.array(self.col_ub, dtype=np.float64)

    def integer_mask(self) -> np.ndarray:
        """Which columns are integer.

        Returns
        -------
        numpy.ndarray of bool
        """
        return np.array(self.col_integer, dtype=bool)

    def objective_vector(self) -> tuple[np.ndarray, float]:
        """``(c, d)`` of the objective ``c . v + d`` over all columns (user sense).

        Returns
        -------
        c : numpy.ndarray
        d : float
        """
        if self.objective is None:
            raise ProblemError("the model has no objective: call maximize(...) or minimize(...)")
        return _pad(self.objective[0], self.n_cols), self.objective[1]

    def constraint_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """``(A, e)`` of the linear constraints ``A v <= e`` over all columns.

        Returns
        -------
        A : numpy.ndarray
        e : numpy.ndarray
        """
        if not self.constraints:
            return np.zeros((0, self.n_cols)), np.zeros(0)
        return (np.array([_pad(a, self.n_cols) for a, _, _ in self.constraints]),
                np.array([e for _, e, _ in self.constraints]))

    # ------------------------------------------------------------------ evaluation
    def columns_of(self, u) -> np.ndarray:
        """Every column's value at decisions ``u``: the outputs by forward passes, in order.

        Parameters
        ----------
        u : array_like, shape (n, n_vars) or (n_vars,)

        Returns
        -------
        numpy.ndarray, shape (n, n_cols)
        """
        u = np.atleast_2d(np.asarray(u, dtype=np.float64))
        if u.shape[1] != self.n_vars:
            raise ProblemError(f"a decision has {self.n_vars} entries, got {u.shape[1]}")
        v = np.zeros((u.shape[0], self.n_cols))
        v[:, self.var_cols] = u
        for feed in self.feeds:
            x = v @ feed.rows(self.n_cols).T + feed.f
            v[:, feed.out.columns] = feed.network.forward(x)
        return v

    def evaluate(self, u) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Objective values, constraint violations and all columns at decisions ``u``.

        The violation counts the linear constraints, the variables' bounds and integrality.

        Parameters
        ----------
        u : array_like, shape (n, n_vars) or (n_vars,)

        Returns
        -------
        values, violation : numpy.ndarray, shape (n,)
        columns : numpy.ndarray, shape (n, n_cols)
        """
        v = self.columns_of(u)
        c, d = self.objective_vector()
        values = v @ c + d
        lb, ub = self.bounds()
        viol = np.maximum(np.max(lb - v, axis=1, initial=-np.inf), np.max(v - ub, axis=1, initial=-np.inf))
        viol = np.maximum(viol, 0.0) if self.n_cols else np.zeros(v.shape[0])
        integer = self.integer_mask()
        if integer.any():
            viol = np.maximum(viol, np.max(np.abs(v[:, integer] - np.round(v[:, integer])), axis=1))
        A, e = self.constraint_rows()
        if A.shape[0]:
            viol = np.maximum(viol, np.max(v @ A.T - e, axis=1))
        return values, viol, v

    def is_feasible(self, u, tol: float = FEASIBILITY_TOL) -> np.ndarray:
        """Which decisions meet every constraint within ``tol``.

        Parameters
        ----------
        u : array_like
        tol : float

        Returns
        -------
        numpy.ndarray of bool
        """
        return self.evaluate(u)[1] <= tol

    # ------------------------------------------------------------------ solving
    def solve(self, method: str = "auto", *, solver: str = "highs", time_limit: float | None = None,
              bounds: str = "crown", seed: int = 0, progress=None, **options):
        """Solve the model with reluopt's own methods; the result is forward-checked and certified.

        Parameters
        ----------
        method : {'auto', 'mip', 'bab'}
            'mip': one MILP with reluopt's bounds per network; 'auto': heuristics (samples, region
            LPs) then that MILP from their best point; 'bab': branch and bound over the variables
            that feed networks (at most ``BAB_MAX_DIM`` continuous ones).
        solver : {'highs', 'scip', 'gurobi'}
            The MILP solver of 'mip' and 'auto'.
        time_limit : float, optional
            Seconds; the best point and bound so far are returned when it is reached.
        bounds : str, optional
            Neuron bounds per network ('crown' default; 'lp-obbt' also uses the linear constraints).
        seed : int, optional
        progress : callable, optional
            Receives progress dicts.
        **options
            Method options (``abs_gap``, ``rel_gap``, ``threads``, ``start_samples``, ...).

        Returns
        -------
        ModelResult
            ``values`` (every variable), ``outputs`` (every network's, by forward passes),
            ``violation``, ``value``, ``bound``, ``status``.
        """
        from ..certificate import check_option_names, option_names

        if method in ("mip", "auto"):
            from .mip import solve_model_mip

            check_option_names(method, options, option_names(solve_model_mip) or ())
            return solve_model_mip(self, method=method, solver=solver, time_limit=time_limit, bounds=bounds,
                                   seed=seed, progress=progress, **options)
        if method == "bab":
            from .bab import solve_model_bab

            check_option_names(method, options, option_names(solve_model_bab) or ())
            if solver != "highs":
                options["solver"] = solver
            return solve_model_bab(self, time_limit=time_limit, bounds=bounds, seed=seed, progress=progress,
                                   **options)
        raise ProblemError(f"unknown method {method!r} for a general model; choose from auto, mip, bab")

    @classmethod
    def from_problem(cls, problem) -> Model:
        """The model of a ``Problem`` (its special case): inputs ``x``, outputs ``y``, the same optimum.

        Parameters
        ----------
        problem : Problem
            With a linear objective.

        Returns
        -------
        Model
        """
        from ..objectives import Objective

        if not isinstance(problem.objective, Objective):
            raise ProblemError("only a Problem with a linear objective has a general model "
                               f"(this one is {type(problem.objective).__name__})")
        net = problem.user_network
        m_out = net.output_dim
        D = problem.meta.get("input_forms", np.zeros((0, net.input_dim)))
        model = cls(name=problem.name)
        dom = problem.domain
        model.add_var("x", dom.lb, dom.ub, shape=net.input_dim)
        y = model.add_network(net, "x", name="y")
        n = model.n_cols

        def row(c_aug: np.ndarray) -> np.ndarray:
            """Coefficients over (x, y) of a row over the augmented outputs (input forms substituted)."""
            a = np.zeros(n)
            a[y.columns] = c_aug[:m_out]
            a[: net.input_dim] = c_aug[m_out:] @ D if D.shape[0] else 0.0
            return a

        if dom.A is not None:
            for a_x, b in zip(dom.A, dom.b, strict=True):
                model.constraints.append((np.concatenate([a_x, np.zeros(m_out)]), float(b), "A x <= b"))
        if problem.constraints is not None:
            labels = problem.constraints.labels or ("C y <= e",) * problem.constraints.count
            for c_row, e, label in zip(problem.constraints.C, problem.constraints.e, labels, strict=False):
                model.constraints.append((row(c_row), float(e), label))
        obj = problem.objective
        model.objective, model.sense = (row(obj.c), float(obj.d), problem.describe()), obj.sense
        return model

    def describe(self) -> str:
        """One line: what the model holds.

        Returns
        -------
        str
        """
        ints = int(self.integer_mask()[self.var_cols].sum()) if self.n_vars else 0
        return (f"{self.sense} over {self.n_vars} variable entries ({ints} integer), {len(self.feeds)} network(s), "
                f"{len(self.constraints)} constraint row(s)")
