"""Gurobi backend: a MilpModel handed over as one sparse matrix (optional, where licensed).

Gurobi is optional (the ``gurobi`` extra); the pip wheel carries a size-limited licence
(2000 variables and constraints), so only small models run without a full licence. The
model is handed over as one sparse matrix; ranged rows become two one-sided rows.
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp

from ..errors import SolverError
from .formulation import MilpModel
from .highs import ERROR, SolveOutput


def solve_gurobi(model: MilpModel, *, time_limit: float | None = None, threads: int = 1,
                 mip_rel_gap: float = 1e-6, mip_abs_gap: float = 1e-9, squares=None,
                 mip_start: np.ndarray | None = None) -> SolveOutput:
    """Maximise ``model`` with Gurobi; raises SolverError when Gurobi is missing or refuses.

    ``squares``: columns whose sum of squares replaces the linear objective (the l2 MIQCQP,
    nonconvex since it maximises a convex function: Gurobi's NonConvex=2).
    """
    try:
        import gurobipy as gp
    except ImportError:
        raise SolverError("Gurobi is not installed: install the 'gurobi' extra (pip install reluopt[gurobi])") from None
    start = time.perf_counter()
    A = sp.csr_matrix(model.A)
    lo, hi = model.row_lower, model.row_upper
    eq = np.isfinite(lo) & np.isfinite(hi) & (lo == hi)
    up = np.isfinite(hi) & ~eq
    dn = np.isfinite(lo) & ~eq
    blocks = [(A[eq], "=", lo[eq]), (A[up], "<", hi[up]), (A[dn], ">", lo[dn])]
    try:
        env = gp.Env(params={"OutputFlag": 0})
        m = gp.Model(env=env)
        vtype = np.where(model.integrality > 0, gp.GRB.BINARY, gp.GRB.CONTINUOUS)
        vtype = np.where((model.integrality > 0) & ((model.col_lower < 0) | (model.col_upper > 1)),
                         gp.GRB.INTEGER, vtype)
        x = m.addMVar(model.n_cols, lb=np.where(np.isfinite(model.col_lower), model.col_lower, -gp.GRB.INFINITY),
                      ub=np.where(np.isfinite(model.col_upper), model.col_upper, gp.GRB.INFINITY),
                      vtype=vtype)
        for M, sense, rhs in blocks:
            if M.shape[0]:
                m.addMConstr(M, x, sense, rhs)
        if squares is None:
            m.setObjective(model.cost @ x + model.offset, gp.GRB.MAXIMIZE)
        else:
            g = x[np.asarray(squares, dtype=np.int64)]
            m.setObjective(g @ g, gp.GRB.MAXIMIZE)
            m.Params.NonConvex = 2
        if mip_start is not None:
            x.Start = np.asarray(mip_start, dtype=np.float64)
        m.Params.Threads = threads
        m.Params.MIPGap = mip_rel_gap
        m.Params.MIPGapAbs = mip_abs_gap
        if time_limit is not None and math.isfinite(time_limit):
            m.Params.TimeLimit = max(float(time_limit), 1e-3)
        m.optimize()
    except gp.GurobiError as exc:
        raise SolverError(f"Gurobi refused the model ({model.n_cols} columns, {A.shape[0]} rows): {exc}") from None
    status = {gp.GRB.OPTIMAL: "optimal", gp.GRB.TIME_LIMIT: "time_limit", gp.GRB.INFEASIBLE: "infeasible",
              gp.GRB.INTERRUPTED: "interrupted", gp.GRB.NODE_LIMIT: "node_limit"}.get(m.Status, ERROR)
    values = np.asarray(x.X, dtype=np.float64) if m.SolCount > 0 else None
    objective = float(m.ObjVal) if m.SolCount > 0 else None
    trusted = (gp.GRB.OPTIMAL, gp.GRB.TIME_LIMIT, gp.GRB.INTERRUPTED, gp.GRB.NODE_LIMIT)
    bound = float(m.ObjBound) if m.Status in trusted and math.isfinite(m.ObjBound) else None
    nodes = int(m.NodeCount)
    message = "" if status != ERROR else f"Gurobi ended with status code {m.Status} (e.g. 12: numeric trouble)"
    m.dispose()
    env.dispose()
    return SolveOutput(status, values, objective, bound, time.perf_counter() - start, nodes, message)
