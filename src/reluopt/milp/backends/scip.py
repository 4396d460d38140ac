"""SCIP back-end (optional, the ``scip`` extra): a MilpModel as a pyscipopt model.

Used by ``solve_mip(..., solver="scip")`` and, with a quadratic objective added, by the l2
Lipschitz MIQCQP. Rows are added one sparse row at a time (pyscipopt has no CSR import).
Progress and incumbents go through a SCIP event handler (presolve rounds, LP solves, solved
nodes, best solutions). SCIP runs without the GIL while a helper thread polls the stop
request every ``STOP_POLL`` s and calls ``interruptSolve`` (SCIP checks it inside presolve
and between LPs too, where no event fires).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np

from ...errors import SolverError
from ..formulation import MilpModel
from .base import ERROR, ImprovementCallback, ProgressCallback, SolveOutput, StopCallback, finite_or_inf


def import_scip(what: str = "this model"):
    """The ``pyscipopt`` module, or a SolverError naming the extra to install.

    Parameters
    ----------
    what : str, optional
        What needs SCIP, for the error message.

    Returns
    -------
    module
        ``pyscipopt``.
    """
    try:
        import pyscipopt
    except ImportError:
        raise SolverError(f"{what} needs SCIP: install the 'scip' extra (pip install reluopt[scip])") from None
    return pyscipopt


def scip_model(model: MilpModel, what: str = "this model"):
    """A SCIP model holding the rows and column bounds of ``model`` (no objective).

    Parameters
    ----------
    model : MilpModel
        The model.
    what : str, optional
        What needs SCIP, for the error message when it is missing.

    Returns
    -------
    scip : pyscipopt.Model
        The SCIP model.
    columns : list of pyscipopt.Variable
        One variable per column of ``model``.
    """
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
               mip_start: np.ndarray | None = None, should_stop: StopCallback | None = None,
               on_progress: ProgressCallback | None = None,
               on_improvement: ImprovementCallback | None = None) -> SolveOutput:
    """Maximise ``model`` with SCIP (``threads`` is accepted for symmetry; SCIP uses one).

    Parameters
    ----------
    model : MilpModel
        The model.
    time_limit, threads, mip_rel_gap, mip_abs_gap, mip_start, should_stop, on_progress, on_improvement
        As in `Backend.solve`.

    Returns
    -------
    SolveOutput
        The status-checked outcome.
    """
    return ScipBackend().solve(model, time_limit=time_limit, threads=threads, mip_rel_gap=mip_rel_gap,
                               mip_abs_gap=mip_abs_gap, mip_start=mip_start, should_stop=should_stop,
                               on_progress=on_progress, on_improvement=on_improvement)


#: Seconds between two polls of ``should_stop`` while SCIP runs.
STOP_POLL = 0.05


def _watcher(pyscipopt: Any):
    """An event handler class reporting progress and incumbents, and interrupting on request."""
    events = (pyscipopt.SCIP_EVENTTYPE.PRESOLVEROUND | pyscipopt.SCIP_EVENTTYPE.LPSOLVED
              | pyscipopt.SCIP_EVENTTYPE.NODESOLVED | pyscipopt.SCIP_EVENTTYPE.BESTSOLFOUND)

    class Watcher(pyscipopt.Eventhdlr):
        def __init__(self, instance: ScipInstance) -> None:
            super().__init__()
            self.instance = instance
            self.should_stop: StopCallback | None = None
            self.on_progress: ProgressCallback | None = None
            self.on_improvement: ImprovementCallback | None = None

        def eventinit(self):
            self.model.catchEvent(events, self)

        def eventexit(self):
            self.model.dropEvent(events, self)

        def eventexec(self, event):
            m = self.model
            try:
                if self.on_improvement is not None and event.getType() == pyscipopt.SCIP_EVENTTYPE.BESTSOLFOUND:
                    sol = m.getBestSol()
                    values = np.array([m.getSolVal(sol, v) for v in self.instance.columns])
                    self.on_improvement(float(m.getSolObjVal(sol)), values)
                if self.on_progress is not None:
                    inf = m.infinity()
                    self.on_progress(finite_or_inf(m.getPrimalbound(), inf), finite_or_inf(m.getDualbound(), inf),
                                     int(m.getNNodes()))
            except Exception:  # noqa: BLE001 - a user callback must not end the run
                pass
            if self.should_stop is not None and self.should_stop():
                m.interruptSolve()
            return {}

    return Watcher


class ScipInstance:
    """A MilpModel loaded into one SCIP model (``scip``, columns ``columns``).

    Parameters
    ----------
    model : MilpModel
        The model.
    relax : bool, optional
        Load its LP relaxation.
    threads : int, optional
        Accepted for symmetry; SCIP uses one thread.
    """

    def __init__(self, model: MilpModel, *, relax: bool = False, threads: int = 1) -> None:
        self._pyscipopt = import_scip("solver='scip'")
        self.model = model
        m, xs = scip_model(model, "solver='scip'")
        if relax:
            for x in xs:
                if x.vtype() != "CONTINUOUS":
                    m.chgVarType(x, "C")
        m.setObjective(self._pyscipopt.quicksum(float(c) * xs[j] for j, c in enumerate(model.cost) if c != 0.0)
                       + float(model.offset), "maximize")
        self.scip, self.columns = m, xs
        self._watcher = _watcher(self._pyscipopt)(self)
        m.includeEventhdlr(self._watcher, "reluopt-watch", "progress, incumbents and stop requests")
        self._solved = False

    def _optimize(self) -> None:
        """SCIP's solve (one place, so that a test can make it fail); other Python threads
        (the stop poll) run meanwhile."""
        self.scip.optimizeNogil()

    def _watch(self, should_stop: StopCallback, done: threading.Event) -> None:
        """Poll ``should_stop`` until ``done``; interrupt SCIP when it is true."""
        while not done.wait(STOP_POLL):
            try:
                if should_stop():
                    self.scip.interruptSolve()
                    return
            except Exception:  # noqa: BLE001 - a stage where SCIP takes no interrupt: it is ending
                return

    def solve(self, *, time_limit: float | None = None, mip_rel_gap: float = 1e-4, mip_abs_gap: float = 1e-6,
              mip_start: np.ndarray | None = None, should_stop: StopCallback | None = None,
              on_progress: ProgressCallback | None = None,
              on_improvement: ImprovementCallback | None = None) -> SolveOutput:
        """See `SolverInstance.solve`.

        Ctrl-C is caught by SCIP itself (status ``interrupted``).
        """
        start = time.perf_counter()
        m, xs = self.scip, self.columns
        if self._solved:
            m.freeTransform()
        self._solved = True
        m.setParam("limits/gap", float(mip_rel_gap))
        m.setParam("limits/absgap", float(mip_abs_gap))
        limit = 1e20 if time_limit is None or not math.isfinite(time_limit) else max(float(time_limit), 0.1)
        m.setParam("limits/time", limit)
        if mip_start is not None:
            sol = m.createSol()
            for j, v in enumerate(np.asarray(mip_start, dtype=np.float64)):
                m.setSolVal(sol, xs[j], float(v))
            m.addSol(sol, free=True)
        w = self._watcher
        w.should_stop, w.on_progress, w.on_improvement = should_stop, on_progress, on_improvement
        done = threading.Event()
        poll = None
        if should_stop is not None:
            poll = threading.Thread(target=self._watch, args=(should_stop, done), name="reluopt-scip", daemon=True)
            poll.start()
        try:
            self._optimize()
        except Exception as exc:  # noqa: BLE001 - pyscipopt raises plain Exception ("error in LP solver!")
            return SolveOutput(ERROR, None, None, None, time.perf_counter() - start,
                               message=f"SCIP failed: {str(exc).strip() or type(exc).__name__}")
        finally:
            done.set()
            if poll is not None:
                poll.join()
            w.should_stop = w.on_progress = w.on_improvement = None
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
        if bound is not None and (not math.isfinite(bound) or abs(bound) >= m.infinity()):
            bound = None
        return SolveOutput(status, values, objective, bound, time.perf_counter() - start, int(m.getNNodes()))


class ScipBackend:
    """SCIP behind the ``Backend`` interface (see ``base.Backend``)."""

    name = "scip"
    extra: str | None = "scip"

    def build(self, model: MilpModel, *, relax: bool = False, threads: int = 1) -> ScipInstance:
        """See `Backend.build`.

        SCIP solves with one thread.
        """
        return ScipInstance(model, relax=relax, threads=threads)

    def solve(self, model: MilpModel, *, relax: bool = False, threads: int = 1, time_limit: float | None = None,
              mip_rel_gap: float = 1e-4, mip_abs_gap: float = 1e-6, mip_start: np.ndarray | None = None,
              should_stop: StopCallback | None = None, on_progress: ProgressCallback | None = None,
              on_improvement: ImprovementCallback | None = None) -> SolveOutput:
        """See `Backend.solve`."""
        return self.build(model, relax=relax, threads=threads).solve(
            time_limit=time_limit, mip_rel_gap=mip_rel_gap, mip_abs_gap=mip_abs_gap, mip_start=mip_start,
            should_stop=should_stop, on_progress=on_progress, on_improvement=on_improvement)


#: SCIP statuses after which its dual bound is valid, mapped to reluopt's solver statuses.
#: (``TRUSTED_SCIP_STATUSES`` lists them for callers that read SCIP directly.)
_STATUS = {"optimal": "optimal", "gaplimit": "optimal", "timelimit": "time_limit", "infeasible": "infeasible",
           "userinterrupt": "interrupted", "unbounded": "unbounded", "nodelimit": "node_limit",
           "totalnodelimit": "node_limit", "stallnodelimit": "node_limit", "memlimit": "memory_limit",
           "sollimit": "solution_limit", "bestsollimit": "solution_limit", "restartlimit": "node_limit"}

TRUSTED_SCIP_STATUSES = frozenset(_STATUS)
