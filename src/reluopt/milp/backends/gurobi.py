"""Gurobi backend: a MilpModel handed over as one sparse matrix (optional, where licensed).

Gurobi is optional (the ``gurobi`` extra); the pip wheel carries a size-limited licence
(2000 variables and constraints), so only small models run without a full licence. The
model is handed over as one sparse matrix; ranged rows become two one-sided rows.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from ...errors import SolverError
from ..formulation import MilpModel
from .base import ERROR, ImprovementCallback, ProgressCallback, SolveOutput, StopCallback, finite_or_inf

#: Gurobi error codes that ask the user to act (no licence, a model beyond the size-limited one).
_LICENCE_ERRORS = (10009, 10010)


def import_gurobi():
    """The ``gurobipy`` module, or a SolverError naming the extra to install.

    Returns
    -------
    module
        ``gurobipy``.
    """
    try:
        import gurobipy
    except ImportError:
        raise SolverError("Gurobi is not installed: install the 'gurobi' extra (pip install reluopt[gurobi])") from None
    return gurobipy


def solve_gurobi(model: MilpModel, *, time_limit: float | None = None, threads: int = 1,
                 mip_rel_gap: float = 1e-6, mip_abs_gap: float = 1e-9, squares=None,
                 mip_start: np.ndarray | None = None, should_stop: StopCallback | None = None,
                 on_progress: ProgressCallback | None = None,
                 on_improvement: ImprovementCallback | None = None) -> SolveOutput:
    """Maximise ``model`` with Gurobi; raises SolverError when Gurobi is missing or refuses.

    Parameters
    ----------
    model : MilpModel
        The model.
    time_limit, threads, mip_rel_gap, mip_abs_gap, mip_start, should_stop, on_progress, on_improvement
        As in `Backend.solve`.
    squares : array_like of int, optional
        Columns whose sum of squares replaces the linear objective (the l2 MIQCQP, nonconvex
        since it maximises a convex function: Gurobi's NonConvex=2).

    Returns
    -------
    SolveOutput
        The status-checked outcome.
    """
    inst = GurobiInstance(model, threads=threads, squares=squares)
    try:
        return inst.solve(time_limit=time_limit, mip_rel_gap=mip_rel_gap, mip_abs_gap=mip_abs_gap,
                          mip_start=mip_start, should_stop=should_stop, on_progress=on_progress,
                          on_improvement=on_improvement)
    finally:
        inst.close()


class GurobiInstance:
    """A MilpModel loaded into one Gurobi model (``gurobi``, columns ``columns``, an MVar).

    Parameters
    ----------
    model : MilpModel
        The model.
    relax : bool, optional
        Load its LP relaxation.
    threads : int, optional
        Gurobi threads.
    squares : array_like of int, optional
        Columns whose sum of squares is the objective (see `solve_gurobi`).
    """

    def __init__(self, model: MilpModel, *, relax: bool = False, threads: int = 1, squares=None) -> None:
        gp = self._gp = import_gurobi()
        self.model = model
        A = sp.csr_matrix(model.A)
        lo, hi = model.row_lower, model.row_upper
        eq = np.isfinite(lo) & np.isfinite(hi) & (lo == hi)
        up = np.isfinite(hi) & ~eq
        dn = np.isfinite(lo) & ~eq
        blocks = [(A[eq], "=", lo[eq]), (A[up], "<", hi[up]), (A[dn], ">", lo[dn])]
        self.env: Any = None
        self.gurobi: Any = None
        try:
            self.env = gp.Env(params={"OutputFlag": 0})
            m = self.gurobi = gp.Model(env=self.env)
            integral = (model.integrality > 0) & (not relax)
            vtype = np.where(integral, gp.GRB.BINARY, gp.GRB.CONTINUOUS)
            vtype = np.where(integral & ((model.col_lower < 0) | (model.col_upper > 1)), gp.GRB.INTEGER, vtype)
            x = self.columns = m.addMVar(
                model.n_cols, lb=np.where(np.isfinite(model.col_lower), model.col_lower, -gp.GRB.INFINITY),
                ub=np.where(np.isfinite(model.col_upper), model.col_upper, gp.GRB.INFINITY), vtype=vtype)
            for M, sense, rhs in blocks:
                if M.shape[0]:
                    m.addMConstr(M, x, sense, rhs)
            if squares is None:
                m.setObjective(model.cost @ x + model.offset, gp.GRB.MAXIMIZE)
            else:
                g = x[np.asarray(squares, dtype=np.int64)]
                m.setObjective(g @ g, gp.GRB.MAXIMIZE)
                m.Params.NonConvex = 2
            m.Params.Threads = threads
        except gp.GurobiError as exc:
            self.close()
            raise SolverError(f"Gurobi refused the model ({model.n_cols} columns, {A.shape[0]} rows): {exc}") from None

    def close(self) -> None:
        """Free the model and its environment."""
        for obj in (self.gurobi, self.env):
            if obj is not None:
                obj.dispose()
        self.gurobi = self.env = None

    def _optimize(self, callback) -> None:
        """Gurobi's solve (one place, so that a test can make it fail)."""
        self.gurobi.optimize(callback)

    def solve(self, *, time_limit: float | None = None, mip_rel_gap: float = 1e-4, mip_abs_gap: float = 1e-6,
              mip_start: np.ndarray | None = None, should_stop: StopCallback | None = None,
              on_progress: ProgressCallback | None = None,
              on_improvement: ImprovementCallback | None = None) -> SolveOutput:
        """See `SolverInstance.solve`.

        A licence refusal raises SolverError; any other failure of the run is status ``error``.
        """
        gp, m, x = self._gp, self.gurobi, self.columns
        GRB = gp.GRB
        start = time.perf_counter()
        if mip_start is not None:
            x.Start = np.asarray(mip_start, dtype=np.float64)
        m.Params.MIPGap = mip_rel_gap
        m.Params.MIPGapAbs = mip_abs_gap
        m.Params.TimeLimit = (GRB.INFINITY if time_limit is None or not math.isfinite(time_limit)
                              else max(float(time_limit), 1e-3))

        def callback(model, where) -> None:
            try:
                if where == GRB.Callback.MIP and on_progress is not None:
                    on_progress(finite_or_inf(model.cbGet(GRB.Callback.MIP_OBJBST), GRB.INFINITY),
                                finite_or_inf(model.cbGet(GRB.Callback.MIP_OBJBND), GRB.INFINITY),
                                int(model.cbGet(GRB.Callback.MIP_NODCNT)))
                elif where == GRB.Callback.MIPSOL and on_improvement is not None:
                    on_improvement(float(model.cbGet(GRB.Callback.MIPSOL_OBJ)),
                                   np.asarray(model.cbGetSolution(x), dtype=np.float64))
            except Exception:  # noqa: BLE001 - a user callback must not end the run
                pass
            if should_stop is not None and should_stop():
                model.terminate()

        watched = should_stop is not None or on_progress is not None or on_improvement is not None
        try:
            self._optimize(callback if watched else None)
            if m.Status == GRB.INF_OR_UNBD:   # settle which one (presolve's dual reductions leave it open)
                m.Params.DualReductions = 0
                if time_limit is not None and math.isfinite(time_limit):
                    m.Params.TimeLimit = max(float(time_limit) - (time.perf_counter() - start), 1e-3)
                self._optimize(callback if watched else None)
                m.Params.DualReductions = 1
        except gp.GurobiError as exc:
            if getattr(exc, "errno", None) in _LICENCE_ERRORS:
                raise SolverError(f"Gurobi refused the model ({self.model.n_cols} columns, "
                                  f"{self.model.n_rows} rows): {exc}") from None
            return SolveOutput(ERROR, None, None, None, time.perf_counter() - start, message=f"Gurobi failed: {exc}")
        except Exception as exc:  # noqa: BLE001 - a failed run is an error, never a bound
            return SolveOutput(ERROR, None, None, None, time.perf_counter() - start,
                               message=f"Gurobi failed: {type(exc).__name__}: {exc}")
        status = _STATUS.get(m.Status, ERROR)
        values = np.asarray(x.X, dtype=np.float64) if m.SolCount > 0 else None
        objective = float(m.ObjVal) if m.SolCount > 0 else None
        bound = None
        if m.Status in _BOUND_STATUSES:
            bound = finite_or_inf(m.ObjBound, GRB.INFINITY)
            bound = bound if math.isfinite(bound) else None
        nodes = int(m.NodeCount) if m.IsMIP else 0
        message = "" if status != ERROR else f"Gurobi ended with status code {m.Status} (e.g. 12: numeric trouble)"
        return SolveOutput(status, values, objective, bound, time.perf_counter() - start, nodes, message)


#: Gurobi status codes mapped to reluopt's solver statuses; any other is an error.
_STATUS = {2: "optimal", 3: "infeasible", 4: "infeasible_or_unbounded", 5: "unbounded", 7: "iteration_limit",
           8: "node_limit", 9: "time_limit", 10: "solution_limit", 11: "interrupted"}
#: Statuses after which Gurobi's ObjBound is a valid dual bound (OPTIMAL, ITERATION_LIMIT,
#: NODE_LIMIT, TIME_LIMIT, SOLUTION_LIMIT, INTERRUPTED).
_BOUND_STATUSES = frozenset({2, 7, 8, 9, 10, 11})


class GurobiBackend:
    """Gurobi behind the ``Backend`` interface (see ``base.Backend``)."""

    name = "gurobi"
    extra: str | None = "gurobi"

    def build(self, model: MilpModel, *, relax: bool = False, threads: int = 1) -> GurobiInstance:
        """See `Backend.build`.

        Call the instance's ``close`` when done.
        """
        return GurobiInstance(model, relax=relax, threads=threads)

    def solve(self, model: MilpModel, *, relax: bool = False, threads: int = 1, time_limit: float | None = None,
              mip_rel_gap: float = 1e-4, mip_abs_gap: float = 1e-6, mip_start: np.ndarray | None = None,
              should_stop: StopCallback | None = None, on_progress: ProgressCallback | None = None,
              on_improvement: ImprovementCallback | None = None) -> SolveOutput:
        """See `Backend.solve`.

        The instance is freed afterwards.
        """
        inst = self.build(model, relax=relax, threads=threads)
        try:
            return inst.solve(time_limit=time_limit, mip_rel_gap=mip_rel_gap, mip_abs_gap=mip_abs_gap,
                              mip_start=mip_start, should_stop=should_stop, on_progress=on_progress,
                              on_improvement=on_improvement)
        finally:
            inst.close()
