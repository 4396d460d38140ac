"""HiGHS backend: pass a MilpModel in one call, solve with a time limit and a MIP start."""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import highspy
import numpy as np

from .formulation import MilpModel

_INF = highspy.kHighsInf
_first_instance = True


@contextlib.contextmanager
def _silenced_stdout_fd():
    """Send file descriptor 1 to /dev/null (C-level prints), restoring it afterwards."""
    fd = 1                      # the C library writes to descriptor 1, whatever sys.stdout is
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    try:
        saved = os.dup(fd)
    except OSError:             # no descriptor 1 at all: nothing can be printed there
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).fflush(None)
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


#: Threads every Highs instance of reluopt uses unless a caller sets the option itself.
DEFAULT_THREADS = 1

#: Thread count of HiGHS's process-wide task scheduler as reluopt last set it (None: not yet).
_scheduler_threads: int | None = None
#: Runs abandoned after a stop request (see ``_run_watched``) that may still be stopping.
_abandoned: list[threading.Thread] = []


def _use_scheduler(threads: int) -> None:
    """Make HiGHS's global scheduler match ``threads``.

    HiGHS starts one task scheduler per process, sized by the first ``run()``; a later run
    asking for another thread count fails with ``kError`` and leaves no solution. That
    error once passed as a bound of 0, so every run goes through here: the scheduler is
    reset whenever the requested count changes, whatever ran before in the process.
    """
    global _scheduler_threads
    if _scheduler_threads != threads:
        while _abandoned:   # never reset the scheduler under a run that is still stopping
            _abandoned.pop().join()
        highspy.Highs.resetGlobalScheduler(True)
        _scheduler_threads = threads


class CheckedHighs(highspy.Highs):
    """A Highs instance whose ``run()`` follows reluopt's thread policy.

    The caller still checks the returned status (see ``run_ok``); a scheduler clash left by
    code outside reluopt (a user's own Highs in the same process) is repaired by one retry.
    """

    def run(self):  # noqa: D102 - same contract as highspy.Highs.run
        global _scheduler_threads
        threads = int(self.getOptionValue("threads")[1])  # (status, value)
        _use_scheduler(threads)
        status = super().run()
        if status == highspy.HighsStatus.kError and self.getModelStatus() == highspy.HighsModelStatus.kNotset:
            _scheduler_threads = None
            _use_scheduler(threads)
            status = super().run()
        return status


def new_highs(threads: int = DEFAULT_THREADS) -> highspy.Highs:
    """A silent Highs instance following reluopt's thread policy (``threads`` per run).

    highspy 1.16 prints its banner to stdout when the process's first instance is
    constructed, before ``output_flag`` can be set; that line would corrupt ``--json -``
    output, so the first construction runs with stdout silenced.
    """
    global _first_instance
    if _first_instance:
        _first_instance = False
        with _silenced_stdout_fd():
            h = CheckedHighs()
    else:
        h = CheckedHighs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", int(threads))
    return h


#: Model statuses after which HiGHS's reported solution and bounds mean what they say.
TRUSTED_MODEL_STATUSES = frozenset({
    highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kInfeasible,
    highspy.HighsModelStatus.kUnboundedOrInfeasible, highspy.HighsModelStatus.kUnbounded,
    highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt,
    highspy.HighsModelStatus.kHighsInterrupt, highspy.HighsModelStatus.kIterationLimit,
    highspy.HighsModelStatus.kSolutionLimit,
    highspy.HighsModelStatus.kObjectiveBound, highspy.HighsModelStatus.kObjectiveTarget,
})


def run_ok(h: highspy.Highs) -> tuple[bool, str]:
    """Run ``h`` and say whether its outcome can be trusted: ``(ok, message)``.

    Not ok when ``run()`` returns ``kError`` or the model status is an error or unknown
    (solve, presolve or postsolve error, not set, ...). Callers turn a failed run into an
    error or an open node, never into a bound.
    """
    run_status = h.run()
    model_status = h.getModelStatus()
    if run_status == highspy.HighsStatus.kError or model_status not in TRUSTED_MODEL_STATUSES:
        return False, f"HiGHS run returned {run_status.name} with model status {h.modelStatusToString(model_status)!r}"
    return True, ""


#: Status of a solver run whose outcome cannot be trusted; it never yields a bound.
ERROR = "error"


@dataclass
class SolveOutput:
    """Raw solver outcome in the model's ``max`` sense."""

    status: str                     # optimal | infeasible | time_limit | interrupted | unbounded | error
    values: np.ndarray | None       # full column vector of the best solution, if any
    objective: float | None         # objective of ``values`` (as the solver computed it)
    bound: float | None             # solver's dual (upper) bound
    seconds: float
    nodes: int = 0
    message: str = ""


def to_highs(model: MilpModel, relax: bool = False, threads: int = DEFAULT_THREADS) -> highspy.Highs:
    """Build a Highs instance holding ``model`` (built from its CSC arrays in one call)."""
    h = new_highs(threads)
    lp = highspy.HighsLp()
    n, m = model.n_cols, model.n_rows
    lp.num_col_ = n
    lp.num_row_ = m
    lp.col_cost_ = model.cost
    lp.col_lower_ = np.where(np.isfinite(model.col_lower), model.col_lower, -_INF)
    lp.col_upper_ = np.where(np.isfinite(model.col_upper), model.col_upper, _INF)
    lp.row_lower_ = np.where(np.isfinite(model.row_lower), model.row_lower, -_INF)
    lp.row_upper_ = np.where(np.isfinite(model.row_upper), model.row_upper, _INF)
    lp.offset_ = model.offset
    lp.sense_ = highspy.ObjSense.kMaximize
    csc = model.A.tocsc()
    csc.sort_indices()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = n
    lp.a_matrix_.num_row_ = m
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data
    if not relax and model.integrality.any():
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if v else highspy.HighsVarType.kContinuous
            for v in model.integrality
        ]
    h.passModel(lp)
    return h


_STATUS = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible_or_unbounded",
    highspy.HighsModelStatus.kUnbounded: "unbounded",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
    highspy.HighsModelStatus.kInterrupt: "interrupted",
    highspy.HighsModelStatus.kHighsInterrupt: "interrupted",
    highspy.HighsModelStatus.kIterationLimit: "iteration_limit",
    highspy.HighsModelStatus.kSolutionLimit: "solution_limit",
}


#: Seconds HiGHS gets, once ``should_stop()`` is true, to reach its own next interrupt poll
#: before ``solve_highs`` returns without its result (see ``_run_watched``).
STOP_GRACE = 0.5


class _Gate:
    """Open while the caller still wants a run's callbacks; closed under ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = True


def _run_watched(h: highspy.Highs, should_stop: Callable[[], bool], gate: _Gate) -> tuple[bool, str] | None:
    """``run_ok(h)`` in a helper thread while this thread polls ``should_stop()`` (and takes
    Ctrl-C: Python runs signal handlers in the main thread only, never inside ``run()``).

    HiGHS polls its interrupt callback only between the phases of a MIP solve (its
    ``checkLimits``): presolve and the root LP relaxation, which the MIP solves with an LP
    solver of its own that never calls the user's simplex callback, run without a poll (15 s
    of root LP on mnistfc's 784-256-256-10 net). When ``should_stop()`` is true and HiGHS has
    not stopped within ``STOP_GRACE`` seconds, return None: the caller goes on without this
    run's result, and the run, muted by ``gate``, stops at its next poll in the background.
    Only for a Highs instance nobody else touches afterwards.
    """
    box: dict = {}

    def target() -> None:
        try:
            box["out"] = run_ok(h)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["exc"] = exc

    thread = threading.Thread(target=target, name="reluopt-highs", daemon=True)
    thread.start()
    stop_at = None
    try:
        while thread.is_alive():
            thread.join(0.05)
            if stop_at is None and thread.is_alive() and should_stop():
                stop_at = time.perf_counter()
            if stop_at is not None and time.perf_counter() - stop_at >= STOP_GRACE:
                with gate.lock:
                    if thread.is_alive():
                        gate.open = False
                        _abandoned.append(thread)
                        return None
    except BaseException:
        with gate.lock:      # e.g. KeyboardInterrupt without a handler: mute and stop the run
            gate.open = False
        raise
    if "exc" in box:
        raise box["exc"]
    return box["out"]


def solve_highs(
    model: MilpModel,
    *,
    time_limit: float | None = None,
    mip_start: np.ndarray | None = None,
    threads: int = 1,
    mip_rel_gap: float = 1e-4,
    mip_abs_gap: float = 1e-6,
    relax: bool = False,
    on_improvement: Callable[[float, np.ndarray], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[float, float, int], None] | None = None,
    highs: highspy.Highs | None = None,
) -> SolveOutput:
    """Solve ``model`` (or its LP relaxation with ``relax=True``) with HiGHS.

    ``on_improvement(objective, values)`` is called on every improving MIP solution;
    ``should_stop()`` is polled by the solver to interrupt (Ctrl-C, outer time limit) and,
    when ``highs`` is None, every 0.05 s while the solver runs in a helper thread: a run that
    does not stop within ``STOP_GRACE`` s is abandoned (status ``interrupted``, no values, no
    bound; see ``_run_watched``);
    ``on_progress(primal, dual, nodes)`` is called at the same polls with the solver's
    current primal and dual bounds (model sense: max).
    """
    start = time.perf_counter()
    h = highs if highs is not None else to_highs(model, relax=relax, threads=threads)
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    h.setOptionValue("mip_abs_gap", float(mip_abs_gap))
    if time_limit is not None and math.isfinite(time_limit):
        h.setOptionValue("time_limit", max(float(time_limit), 1e-3))
    if mip_start is not None and not relax:
        sol = highspy.HighsSolution()
        sol.col_value = list(np.asarray(mip_start, dtype=np.float64))
        sol.value_valid = True
        h.setSolution(sol)
    gate = _Gate()   # closed when the run is abandoned (see _run_watched): callbacks go quiet
    if on_improvement is not None:
        def _improving(e):
            with gate.lock:
                if not gate.open:
                    return
                try:
                    vals = np.array(e.data_out.mip_solution)
                    on_improvement(float(e.data_out.objective_function_value), vals)
                except Exception:  # never let a user callback kill the solve
                    pass
        h.cbMipImprovingSolution.subscribe(_improving)
    if should_stop is not None or on_progress is not None:
        def _interrupt(e):
            with gate.lock:
                if not gate.open:
                    e.interrupt()
                    return
                if on_progress is not None and e.callback_type == highspy.cb.HighsCallbackType.kCallbackMipInterrupt:
                    try:
                        out = e.data_out
                        on_progress(float(out.mip_primal_bound), float(out.mip_dual_bound), int(out.mip_node_count))
                    except Exception:
                        pass
                if should_stop is not None and should_stop():
                    e.interrupt()
        h.cbMipInterrupt.subscribe(_interrupt)
        h.cbSimplexInterrupt.subscribe(_interrupt)
        h.cbIpmInterrupt.subscribe(_interrupt)
    if should_stop is not None and highs is None:
        ran = _run_watched(h, should_stop, gate)
        if ran is None:
            return SolveOutput("interrupted", None, None, None, time.perf_counter() - start,
                               message="stopped before HiGHS reached its next interrupt poll; run abandoned")
        ok, message = ran
    else:
        ok, message = run_ok(h)
    info = h.getInfo()
    values = None
    objective = None
    if info.primal_solution_status == 2:  # kSolutionStatusFeasible: forward-checked by the caller
        values = np.array(h.getSolution().col_value)
        objective = float(info.objective_function_value)
    if not ok:
        return SolveOutput(ERROR, values, objective, None, time.perf_counter() - start, message=message)
    status = _STATUS.get(h.getModelStatus(), str(h.getModelStatus()).split(".")[-1])
    bound = None
    nodes = 0
    if model.integrality.any() and not relax:
        db = float(info.mip_dual_bound)
        if math.isfinite(db) and abs(db) < _INF:
            bound = db
        nodes = int(info.mip_node_count)
    elif status == "optimal":
        bound = objective
    if status == "optimal" and bound is None:
        return SolveOutput(ERROR, values, objective, None, time.perf_counter() - start,
                           message="HiGHS reported optimal without a dual bound")
    return SolveOutput(status, values, objective, bound, time.perf_counter() - start, nodes)
