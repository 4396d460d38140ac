"""HiGHS back-end (always installed): a MilpModel passed in one call, solved with a time
limit, gaps, a MIP start, stop and progress callbacks (``HighsBackend``, ``HighsInstance``).

Also the HiGHS fast paths' tools, used directly by the region LPs and OBBT, which re-solve one
instance thousands of times: ``to_highs``, ``set_run_time_limit``, ``subscribe_stop``, and
(re-exported from ``highs_policy``, where the thread policy and the silenced banner live)
``new_highs`` and ``run_ok``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import highspy
import numpy as np

from ..formulation import MilpModel
from .base import ERROR, ImprovementCallback, ProgressCallback, SolveOutput, StopCallback, finite_or_inf
from .highs_policy import (  # re-exported: the fast paths import them from here
    DEFAULT_THREADS,
    TRUSTED_MODEL_STATUSES,
    CheckedHighs,
    _abandoned,
    _silenced_stdout_fd,
    new_highs,
    run_ok,
)

__all__ = ["DEFAULT_THREADS", "STOP_GRACE", "TRUSTED_MODEL_STATUSES", "CheckedHighs", "HighsBackend", "HighsInstance",
           "_silenced_stdout_fd", "column_names", "model_status", "new_highs", "run_ok", "set_run_time_limit",
           "solve_highs", "subscribe_stop", "to_highs", "write_model"]

_INF = highspy.kHighsInf


def to_highs(model: MilpModel, relax: bool = False, threads: int = DEFAULT_THREADS) -> highspy.Highs:
    """Build a Highs instance holding ``model`` (built from its CSC arrays in one call).

    Parameters
    ----------
    model, relax, threads
        As in `Backend.build`.

    Returns
    -------
    highspy.Highs
    """
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


def column_names(model: MilpModel) -> list[str]:
    """A name per column by its role, valid in MPS and LP files: ``x_0`` (input), ``y_1`` (output),
    ``h0_3`` (neuron 3 of hidden layer 0 after its activation), ``z0_3`` / ``w0_3`` (its binaries),
    ``v_j`` (others).

    Parameters
    ----------
    model : MilpModel

    Returns
    -------
    list of str
    """
    names = [f"v_{j}" for j in range(model.n_cols)]
    groups = [("x_", model.x_cols), ("y_", model.y_cols)]
    groups += [(f"h{l}_", c) for l, c in enumerate(model.h_cols)]
    groups += [(f"z{l}_", c) for l, c in enumerate(model.z_cols)] + [(f"w{l}_", c) for l, c in enumerate(model.z2_cols)]
    for tag, cols in groups:
        for i, j in enumerate(cols):
            if j >= 0:
                names[int(j)] = f"{tag}{i}"
    return names


def write_model(model: MilpModel, path, sense: str = "max") -> None:
    """Write ``model`` as an MPS or LP file (by the extension), so that any solver can take it.

    The model is stored as ``max`` (the form every method solves); ``sense='min'`` writes the
    user's minimisation instead (costs and offset negated back). Columns are named by role
    (`column_names`).

    Parameters
    ----------
    model : MilpModel
        The model (with its objective).
    path : str or os.PathLike
        Ends in ``.mps`` or ``.lp``.
    sense : {'max', 'min'}, optional
        The objective sense to write.

    Raises
    ------
    ProblemError
        An unknown extension, or HiGHS could not write the file.
    """
    from ...errors import ProblemError

    path = str(path)
    if not path.lower().endswith((".mps", ".lp")):
        raise ProblemError(f"cannot write the model to {path!r}: the file must end in .mps or .lp")
    h = to_highs(model)
    for j, name in enumerate(column_names(model)):
        h.passColName(j, name)
    for i in range(model.n_rows):
        h.passRowName(i, f"r{i}")
    if sense == "min":
        h.changeObjectiveSense(highspy.ObjSense.kMinimize)
        h.changeColsCost(model.n_cols, np.arange(model.n_cols, dtype=np.int32), -np.asarray(model.cost))
        h.changeObjectiveOffset(-float(model.offset))
    if h.writeModel(path) == highspy.HighsStatus.kError:
        raise ProblemError(f"HiGHS could not write the model to {path!r}")


_STATUS = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible_or_unbounded",
    highspy.HighsModelStatus.kUnbounded: "unbounded",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
    highspy.HighsModelStatus.kInterrupt: "interrupted",
    highspy.HighsModelStatus.kHighsInterrupt: "interrupted",  # type: ignore[attr-defined]  # not in the stubs
    highspy.HighsModelStatus.kIterationLimit: "iteration_limit",
    highspy.HighsModelStatus.kSolutionLimit: "solution_limit",
}


_MIP_INTERRUPT = highspy.cb.HighsCallbackType.kCallbackMipInterrupt

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


def model_status(h: highspy.Highs) -> str:
    """Name the model status of ``h``'s last run in the back-ends' common words (``SolveOutput.status``).

    Parameters
    ----------
    h : highspy.Highs
        An instance that has run.

    Returns
    -------
    str
        ``optimal``, ``infeasible``, ``time_limit``, ...; HiGHS's own name for any other status.
    """
    status = h.getModelStatus()
    return _STATUS.get(status, str(status).split(".")[-1])


def set_run_time_limit(h: highspy.Highs, seconds: float | None, mip: bool) -> None:
    """Let the next ``run()`` of ``h`` take at most ``seconds``, on whichever clock HiGHS uses.

    HiGHS measures an LP's limit on the instance's run clock, which keeps counting over the
    runs of one instance (so the limit is placed after the time already run), a MIP's limit
    on the clock of its own run.

    Parameters
    ----------
    h : highspy.Highs
        The instance.
    seconds : float or None
        The limit (at least 1 ms); None or inf for no limit.
    mip : bool
        Whether the next run solves a MIP (its own clock) or an LP (the instance's clock).
    """
    if seconds is None or not math.isfinite(seconds):
        h.setOptionValue("time_limit", _INF)
    else:
        limit = max(float(seconds), 1e-3)
        h.setOptionValue("time_limit", limit if mip else h.getRunTime() + limit)


def subscribe_stop(h: highspy.Highs, should_stop: StopCallback) -> Callable[[object], None]:
    """Make every later run of ``h`` stop when ``should_stop()`` turns true, for a reused instance.

    ``should_stop()`` is polled in every simplex, IPM and MIP interrupt callback of ``h``; the
    runs go through ``run_ok``, which trusts an interrupted status.

    Parameters
    ----------
    h : highspy.Highs
        An instance re-solved many times.
    should_stop : callable
        ``() -> bool``.

    Returns
    -------
    callable
        The subscribed function (``poll(event)``).
    """

    def poll(event) -> None:
        if should_stop():
            event.interrupt()

    h.cbSimplexInterrupt.subscribe(poll)
    h.cbIpmInterrupt.subscribe(poll)
    h.cbMipInterrupt.subscribe(poll)
    return poll


class HighsInstance:
    """A MilpModel loaded into one HiGHS instance (``highs``, for fast paths that change
    bounds or costs between solves); ``solve`` may be called again after such changes.

    Callbacks are subscribed for one ``solve`` and unsubscribed after it. A run abandoned
    after a stop request (see ``_run_watched``) leaves the instance unusable: later solves
    return status ``error``.

    Parameters
    ----------
    model, relax, threads
        As in `Backend.build`.
    highs : highspy.Highs, optional
        An instance already holding ``model``, to reuse.
    """

    def __init__(self, model: MilpModel, *, relax: bool = False, threads: int = DEFAULT_THREADS,
                 highs: highspy.Highs | None = None) -> None:
        self.model = model
        self.relax = relax
        self.threads = int(threads)
        self.mip = bool(model.integrality.any()) and not relax
        self.highs = highs if highs is not None else to_highs(model, relax=relax, threads=threads)
        self.abandoned = False

    def solve(self, *, time_limit: float | None = None, mip_rel_gap: float = 1e-4, mip_abs_gap: float = 1e-6,
              mip_start: np.ndarray | None = None, should_stop: StopCallback | None = None,
              on_progress: ProgressCallback | None = None, on_improvement: ImprovementCallback | None = None,
              watch: bool = False) -> SolveOutput:
        """Maximise (see ``solve_highs``); ``time_limit`` counts from this call.

        Parameters
        ----------
        time_limit, mip_rel_gap, mip_abs_gap, mip_start, should_stop, on_progress, on_improvement
            As in `SolverInstance.solve`.
        watch : bool, optional
            Run in a helper thread while this thread polls ``should_stop`` (and takes Ctrl-C),
            abandoning a run that does not stop within ``STOP_GRACE``.

        Returns
        -------
        SolveOutput
        """
        start = time.perf_counter()
        if self.abandoned:
            return SolveOutput(ERROR, None, None, None, 0.0, message="HiGHS instance abandoned by an earlier stop")
        h = self.highs
        h.setOptionValue("threads", self.threads)
        h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
        h.setOptionValue("mip_abs_gap", float(mip_abs_gap))
        set_run_time_limit(h, time_limit, self.mip)
        if mip_start is not None and not self.relax:
            sol = highspy.HighsSolution()
            sol.col_value = list(np.asarray(mip_start, dtype=np.float64))
            sol.value_valid = True
            h.setSolution(sol)
        gate = _Gate()   # closed when the run is abandoned (see _run_watched): callbacks go quiet
        subscribed = []
        if on_improvement is not None:
            def _improving(e):
                with gate.lock:
                    if not gate.open:
                        return
                    try:
                        vals = np.array(e.data_out.mip_solution)
                        on_improvement(float(e.data_out.objective_function_value), vals)
                    except Exception:  # noqa: BLE001 - never let a user callback kill the solve
                        pass
            subscribed.append((h.cbMipImprovingSolution, _improving))
        if should_stop is not None or on_progress is not None:
            def _interrupt(e):
                with gate.lock:
                    if not gate.open:
                        e.interrupt()
                        return
                    if on_progress is not None and e.callback_type == _MIP_INTERRUPT:
                        try:
                            out = e.data_out
                            on_progress(finite_or_inf(out.mip_primal_bound, _INF),
                                        finite_or_inf(out.mip_dual_bound, _INF), int(out.mip_node_count))
                        except Exception:  # noqa: BLE001
                            pass
                    if should_stop is not None and should_stop():
                        e.interrupt()
            subscribed += [(h.cbMipInterrupt, _interrupt), (h.cbSimplexInterrupt, _interrupt),
                           (h.cbIpmInterrupt, _interrupt)]
        for event, fn in subscribed:
            event.subscribe(fn)
        try:
            if watch and should_stop is not None:
                ran = _run_watched(h, should_stop, gate)
                if ran is None:
                    self.abandoned = True
                    subscribed = []   # the abandoned run still calls them (muted by the gate)
                    return SolveOutput("interrupted", None, None, None, time.perf_counter() - start,
                                       message="stopped before HiGHS reached its next interrupt poll; run abandoned")
                ok, message = ran
            else:
                ok, message = run_ok(h)
        except Exception as exc:  # noqa: BLE001 - a failed run is an error, never a bound
            return SolveOutput(ERROR, None, None, None, time.perf_counter() - start,
                               message=f"HiGHS run raised {type(exc).__name__}: {exc}")
        finally:
            for event, fn in subscribed:
                event.unsubscribe(fn)
        return self._output(ok, message, time.perf_counter() - start)

    def _output(self, ok: bool, message: str, seconds: float) -> SolveOutput:
        h = self.highs
        info = h.getInfo()
        values = None
        objective = None
        if info.primal_solution_status == 2:  # kSolutionStatusFeasible: forward-checked by the caller
            values = np.array(h.getSolution().col_value)
            objective = float(info.objective_function_value)
        if not ok:
            return SolveOutput(ERROR, values, objective, None, seconds, message=message)
        status = model_status(h)
        bound = None
        nodes = 0
        if self.mip:
            db = float(info.mip_dual_bound)
            if math.isfinite(db) and abs(db) < _INF:
                bound = db
            nodes = int(info.mip_node_count)
        elif status == "optimal":
            bound = objective
        if status == "optimal" and bound is None:
            return SolveOutput(ERROR, values, objective, None, seconds,
                               message="HiGHS reported optimal without a dual bound")
        return SolveOutput(status, values, objective, bound, seconds, nodes)


class HighsBackend:
    """HiGHS behind the ``Backend`` interface (see ``base.Backend``)."""

    name = "highs"
    extra: str | None = None

    def build(self, model: MilpModel, *, relax: bool = False, threads: int = DEFAULT_THREADS) -> HighsInstance:
        """See `Backend.build`."""
        return HighsInstance(model, relax=relax, threads=threads)

    def solve(self, model: MilpModel, *, relax: bool = False, threads: int = DEFAULT_THREADS,
              time_limit: float | None = None, mip_rel_gap: float = 1e-4, mip_abs_gap: float = 1e-6,
              mip_start: np.ndarray | None = None, should_stop: StopCallback | None = None,
              on_progress: ProgressCallback | None = None,
              on_improvement: ImprovementCallback | None = None) -> SolveOutput:
        """See `Backend.solve`."""
        return solve_highs(model, relax=relax, threads=threads, time_limit=time_limit, mip_rel_gap=mip_rel_gap,
                           mip_abs_gap=mip_abs_gap, mip_start=mip_start, should_stop=should_stop,
                           on_progress=on_progress, on_improvement=on_improvement)


def solve_highs(
    model: MilpModel,
    *,
    time_limit: float | None = None,
    mip_start: np.ndarray | None = None,
    threads: int = 1,
    mip_rel_gap: float = 1e-4,
    mip_abs_gap: float = 1e-6,
    relax: bool = False,
    on_improvement: ImprovementCallback | None = None,
    should_stop: StopCallback | None = None,
    on_progress: ProgressCallback | None = None,
    highs: highspy.Highs | None = None,
) -> SolveOutput:
    """Solve ``model`` (or its LP relaxation with ``relax=True``) with HiGHS.

    Parameters
    ----------
    model, time_limit, mip_start, threads, mip_rel_gap, mip_abs_gap, relax, on_improvement
        As in `Backend.solve`; ``time_limit`` counts from this call.
    should_stop : StopCallback, optional
        Polled by the solver to interrupt (Ctrl-C, outer time limit) and, when ``highs`` is
        None, every 0.05 s while the solver runs in a helper thread: a run that does not stop
        within ``STOP_GRACE`` s is abandoned (status ``interrupted``, no values, no bound).
    on_progress : ProgressCallback, optional
        Called at the same polls with the solver's current primal and dual bounds (max sense).
    highs : highspy.Highs, optional
        An instance built from ``model`` to reuse (run in this thread).

    Returns
    -------
    SolveOutput
    """
    inst = HighsInstance(model, relax=relax, threads=threads, highs=highs)
    return inst.solve(time_limit=time_limit, mip_rel_gap=mip_rel_gap, mip_abs_gap=mip_abs_gap, mip_start=mip_start,
                      should_stop=should_stop, on_progress=on_progress, on_improvement=on_improvement,
                      watch=highs is None)
