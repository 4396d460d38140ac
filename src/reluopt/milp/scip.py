"""SCIP backend (optional, the ``scip`` extra): a MilpModel as a pyscipopt model.

Used by ``solve_mip(..., solver="scip")`` and, with a quadratic objective added, by the l2
Lipschitz MIQCQP. Rows are added one sparse row at a time (pyscipopt has no CSR import).
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..errors import SolverError
from .formulation import MilpModel
from .highs import ERROR, SolveOutput


def import_scip(what: str = "this model"):
    try:
        import pyscipopt
    except ImportError:
        raise SolverError(f"{what} needs SCIP: install the 'scip' extra (pip install reluopt[scip])") from None
    return pyscipopt


def scip_model(model: MilpModel, what: str = "this model"):
    """``(pyscipopt.Model, columns)`` holding the rows and column bounds of ``model`` (no objective)."""
    pyscipopt = import_scip(what)
    m = pyscipopt.Model()
    m.hideOutput()
    lb = np.where(np.isfinite(model.col_lower), model.col_lower, -m.infinity())
    ub = np.where(np.isfinite(model.col_upper), model.col_upper, m.infinity())
    integral = model.integrality > 0
    binary = integral & (lb >= 0) & (ub <= 1)
    xs = [m.addVar(lb=float(lb[j]), ub=float(ub[j]), vtype="B" if binary[j] else ("I" if integral[j] else "C"))
          for j in range(model.n_cols)]
    A = model.A.tocsr()
    for i in range(A.shape[0]):
        s, e = A.indptr[i], A.indptr[i + 1]
        expr = pyscipopt.quicksum(float(v) * xs[j] for j, v in zip(A.indices[s:e], A.data[s:e], strict=True))
        lo, hi = model.row_lower[i], model.row_upper[i]
        if np.isfinite(lo) and np.isfinite(hi) and lo == hi:
            m.addCons(expr == float(lo))
        else:
            if np.isfinite(lo):
                m.addCons(expr >= float(lo))
            if np.isfinite(hi):
                m.addCons(expr <= float(hi))
    return m, xs


def solve_scip(model: MilpModel, *, time_limit: float | None = None, threads: int = 1,
               mip_rel_gap: float = 1e-6, mip_abs_gap: float = 1e-9,
               mip_start: np.ndarray | None = None) -> SolveOutput:
    """Maximise ``model`` with SCIP (``threads`` is accepted for symmetry; SCIP uses one)."""
    start = time.perf_counter()
    pyscipopt = import_scip("solver='scip'")
    m, xs = scip_model(model, "solver='scip'")
    m.setObjective(pyscipopt.quicksum(float(c) * xs[j] for j, c in enumerate(model.cost) if c != 0.0)
                   + float(model.offset), "maximize")
    m.setParam("limits/gap", float(mip_rel_gap))
    m.setParam("limits/absgap", float(mip_abs_gap))
    if time_limit is not None and math.isfinite(time_limit):
        m.setParam("limits/time", max(float(time_limit), 0.1))
    if mip_start is not None:
        sol = m.createSol()
        for j, v in enumerate(np.asarray(mip_start, dtype=np.float64)):
            m.setSolVal(sol, xs[j], float(v))
        m.addSol(sol, free=True)
    try:
        m.optimize()
    except Exception as exc:  # noqa: BLE001 - pyscipopt raises plain Exception ("error in LP solver!")
        return SolveOutput(ERROR, None, None, None, time.perf_counter() - start,
                           message=f"SCIP failed: {str(exc).strip() or type(exc).__name__}")
    raw = m.getStatus()
    status = _STATUS.get(raw)
    values = objective = None
    if m.getNSols() > 0:
        sol = m.getBestSol()
        values = np.array([m.getSolVal(sol, v) for v in xs])
        objective = float(m.getSolObjVal(sol))
    if status is None:   # unknown or error status: the dual bound means nothing
        return SolveOutput(ERROR, values, objective, None, time.perf_counter() - start,
                           message=f"SCIP ended with status {raw!r}")
    bound = None if status in ("infeasible", "unbounded") else float(m.getDualbound())
    if bound is not None and not math.isfinite(bound):
        bound = None
    return SolveOutput(status, values, objective, bound, time.perf_counter() - start, int(m.getNNodes()))


#: SCIP statuses after which its dual bound is valid, mapped to reluopt's solver statuses.
#: (``TRUSTED_SCIP_STATUSES`` lists them for callers that read SCIP directly.)
_STATUS = {"optimal": "optimal", "gaplimit": "optimal", "timelimit": "time_limit", "infeasible": "infeasible",
           "userinterrupt": "interrupted", "unbounded": "unbounded", "nodelimit": "node_limit",
           "totalnodelimit": "node_limit", "stallnodelimit": "node_limit", "memlimit": "memory_limit",
           "sollimit": "solution_limit", "bestsollimit": "solution_limit", "restartlimit": "node_limit"}

TRUSTED_SCIP_STATUSES = frozenset(_STATUS)
