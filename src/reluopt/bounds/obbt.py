"""Optimisation-based bound tightening (OBBT): LP- and MIP-based, layer by layer.

For each hidden layer ``k`` in turn, and each neuron of it that is still unstable, minimise
and maximise its pre-activation ``g_k,i`` over the relaxation of the layers before it, built
with the bounds already tightened (plus the domain's ``A x <= b`` and, optionally, an
objective cut-off ``c.y + d >= value`` from an incumbent, which then needs the whole
network in the model). The output layer is tightened last. Tighter bounds make more neurons
stable (the big-M formulation drops their binaries) and shrink the big-M of the others.

One HiGHS model per layer (per chunk of neurons when run in parallel): the pre-activations
``g_k`` are columns of the model, and each LP only changes the objective (two cost entries,
``changeColsCost``) and re-solves with the simplex method from a warm basis. Every neuron
starts from the layer's root basis (a feasible basis found once), and its max LP continues
from its min LP's basis: the result of a neuron therefore does not depend on which other
neurons share its model, so serial, process and Dask runs give bit-identical bounds.

Soundness (the documented choice): the solver's objective value is NOT used. From the
solver's row duals ``y`` (any vector, optimal or not) a valid bound follows by weak duality:
for ``min c.v`` s.t. ``rl <= A v <= ru``, ``cl <= v <= cu``,

    c.v = y.(A v) + r.v  >=  sum_i min(y_i rl_i, y_i ru_i) + sum_j min(r_j cl_j, r_j cu_j),

with ``r = c - A^T y`` recomputed in numpy (entries of ``y`` whose needed side is infinite
are set to 0 first). The sum is widened outward by ``bounds.core.outward`` with the magnitude
of every term, including the rounding of ``r``. An inexact or stopped LP only gives a looser
bound, never a wrong one. The MIP variant (``mode='mip'``) first runs the certified LP pass
on the layer, then one MIP per still-unstable neuron with a time limit; it uses the MIP's
dual bound (sound at a time-out too, up to solver tolerances), widened by
``MIP_TOL * (1 + |bound| + ||w||_1 max|h|)`` since a branch-and-bound dual bound cannot be
recomputed from one dual vector. Results are always intersected with the initial bounds
(CROWN by default), so OBBT is never looser than them.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import scipy.sparse as sp

from ..errors import ProblemError
from ..network import Layer, Network
from ..problem import Domain
from ..result import StopFlag, catch_interrupts, interrupt_handled, interrupt_requested, interruptible
from .core import LayerBounds, outward
from .crown import _layer_bounds
from .ibp import activate_interval, affine_interval

#: Relative padding of MIP dual bounds (HiGHS mip_feasibility_tolerance is 1e-6).
MIP_TOL = 1e-6
_INF = highspy.kHighsInf


@dataclass
class _Task:
    """Everything a worker needs to build the layer model and bound some neurons (picklable)."""

    network: Network
    domain: Domain
    lower: list[np.ndarray]          # current bounds of every hidden layer, 1-D each
    upper: list[np.ndarray]
    out_lower: np.ndarray            # current bounds of the outputs
    out_upper: np.ndarray
    k: int                           # target layer index (network.depth = outputs)
    neurons: np.ndarray
    mip: bool = False
    time_limit: float | None = None
    cutoff: tuple[np.ndarray, float, float] | None = None
    deadline: float | None = None    # wall clock (time.time()) after which no LP starts
    stop_file: str | None = None     # exists once the parent was interrupted (pool workers poll it)


@dataclass
class _ChunkResult:
    neurons: np.ndarray
    lower: np.ndarray                # certified lower bounds (-inf: none)
    upper: np.ndarray
    stats: dict = field(default_factory=dict)


def _unstable(layer: Layer, L: np.ndarray, U: np.ndarray) -> np.ndarray:
    return layer.act.unstable(L, U)


# ----------------------------------------------------------------------------- model
def _layer_model(task: _Task):
    """The MilpModel whose columns ``g`` are the target layer's pre-activations."""
    from ..milp.formulation import build_network_model

    net, k = task.network, task.k
    target = Layer(net.layers[k].W, net.layers[k].b, "identity")
    is_out = k == net.depth
    t_lower = task.out_lower if is_out else task.lower[k]
    t_upper = task.out_upper if is_out else task.upper[k]
    if task.cutoff is None:
        sub = Network((*net.layers[:k], target))
        bounds = LayerBounds([L[None] for L in task.lower[:k]], [U[None] for U in task.upper[:k]],
                             t_lower[None], t_upper[None], "obbt")
        model = build_network_model(sub, task.domain, bounds)
        return model, model.y_cols
    # with a cut-off on the outputs the whole network is in the model
    bounds = LayerBounds([L[None] for L in task.lower], [U[None] for U in task.upper],
                         task.out_lower[None], task.out_upper[None], "obbt")
    model = build_network_model(net, task.domain, bounds)
    if is_out:
        g_cols = model.y_cols
    else:
        prev = model.x_cols if k == 0 else model.h_cols[k - 1]
        keep = prev >= 0
        n = target.n_out
        g_cols = model.add_columns(t_lower, t_upper)
        W = sp.coo_matrix(target.W[:, keep])
        rows = sp.csr_matrix((np.concatenate([-W.data, np.ones(n)]),
                              (np.concatenate([W.row, np.arange(n)]),
                               np.concatenate([prev[keep][W.col], g_cols]))),
                             shape=(n, model.n_cols))
        model.add_rows(rows, target.b, target.b)
    c, d, value = task.cutoff
    row = np.zeros(model.n_cols)
    row[model.y_cols] = c
    model.add_rows(row[None], value - d, np.inf)
    return model, g_cols


# ----------------------------------------------------------------------------- certificate
def dual_lower_bound(model, cost: np.ndarray, row_dual: np.ndarray, At=None, absAt=None) -> float:
    """A sound lower bound of ``min cost.v`` over the model's LP relaxation from any row
    multipliers ``row_dual`` (weak duality, outward rounded). -inf when no bound follows.

    ``At`` / ``absAt``: ``A^T`` and ``|A|^T`` as CSR, precomputed when called many times."""
    y = np.asarray(row_dual, dtype=np.float64).copy()
    rl, ru = model.row_lower, model.row_upper
    y[(y > 0) & ~np.isfinite(rl)] = 0.0
    y[(y < 0) & ~np.isfinite(ru)] = 0.0
    y[~np.isfinite(y)] = 0.0
    row_term = np.where(y > 0, y * np.where(np.isfinite(rl), rl, 0.0),
                        y * np.where(np.isfinite(ru), ru, 0.0))
    if At is None:
        At = model.A.T.tocsr()
    if absAt is None:
        absAt = abs(At)
    r = cost - At @ y
    r_mag = np.abs(cost) + absAt @ np.abs(y)
    cl, cu = model.col_lower, model.col_upper
    pick = np.where(r > 0, cl, cu)
    if np.any(~np.isfinite(pick[r != 0])):
        return -math.inf
    pick = np.where(r != 0, pick, 0.0)
    col_term = r * pick
    scale = np.maximum(np.abs(np.where(np.isfinite(cl), cl, 0.0)),
                       np.abs(np.where(np.isfinite(cu), cu, 0.0)))
    value = float(np.sum(row_term) + np.sum(col_term))
    magnitude = float(np.sum(np.abs(row_term)) + np.sum(np.abs(col_term)) + r_mag @ scale)
    low, _ = outward(np.array(value), np.array(value), np.array(magnitude))
    return float(low)


# ----------------------------------------------------------------------------- worker
#: Model statuses whose MIP dual bound is a valid bound (a MIP stopped early keeps its bound).
_MIP_BOUND_STATUSES = frozenset({highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit,
                                 highspy.HighsModelStatus.kInterrupt})


class _StopFile:
    """The ``interruptible`` target of a parallel run: when Ctrl-C marks it, it also creates
    ``path``, which the workers poll. A SIGINT sent to the parent process alone (``kill -INT``)
    never reaches the workers of a process pool; this file does."""

    def __init__(self) -> None:
        self._interrupted = False
        self.path = os.path.join(tempfile.gettempdir(), f"reluopt-obbt-stop-{os.getpid()}-{uuid.uuid4().hex}")

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    @interrupted.setter
    def interrupted(self, value: bool) -> None:
        if value and not self._interrupted:
            with contextlib.suppress(OSError):
                open(self.path, "w").close()
        self._interrupted = bool(value)

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            os.remove(self.path)


#: Last look at a task's stop file: path -> (time.monotonic(), exists).
_STOP_SEEN: dict[str, tuple[float, bool]] = {}


def _stop_requested(task: _Task) -> bool:
    """Ctrl-C in this process, or the parent's stop file (looked at every 0.1 s at most)."""
    if interrupt_requested():
        return True
    if task.stop_file is None:
        return False
    seen, exists = _STOP_SEEN.get(task.stop_file, (-math.inf, False))
    now = time.monotonic()
    if not exists and now - seen >= 0.1:
        exists = os.path.exists(task.stop_file)
        _STOP_SEEN[task.stop_file] = (now, exists)
    return exists


def _solve_chunk(task: _Task) -> _ChunkResult:
    """Build the layer model once, then min and max every neuron of the chunk.

    Ctrl-C is caught here too: in a pool's worker process (which receives the terminal's
    SIGINT with its parent) the handler stays installed so an idle worker survives it; in
    this process an enclosing ``obbt_bounds`` already marks the flag."""
    if multiprocessing.parent_process() is not None:
        catch_interrupts()
    with interruptible(StopFlag()):
        return _bound_chunk(task)


def _run(h, stats: dict, key: str = "solve_seconds") -> tuple[bool, object]:
    """One ``run()``; ``(ok, model status)`` where ok means neither the run nor the model
    status reports an error (the caller still decides which statuses give a bound)."""
    from ..milp.backends.highs import run_ok

    t1 = time.perf_counter()
    ok, _ = run_ok(h)   # the back-end's status-checked run (the callers take bounds from a few statuses only)
    stats[key] = stats.get(key, 0.0) + time.perf_counter() - t1
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kTimeLimit:
        stats["time_limits"] += 1
    elif status in (highspy.HighsModelStatus.kInterrupt,
                    highspy.HighsModelStatus.kHighsInterrupt):  # type: ignore[attr-defined]  # not in the stubs
        stats["interrupts"] += 1
    if not ok:
        stats["errors"] += 1
    return ok, status


def _bound_chunk(task: _Task) -> _ChunkResult:
    from ..milp.backends.highs import set_run_time_limit, subscribe_stop, to_highs

    t0 = time.perf_counter()
    stats: dict[str, Any] = {"build_seconds": 0.0, "solve_seconds": 0.0, "certify_seconds": 0.0, "solves": 0,
             "iterations": 0, "not_optimal": 0, "time_limits": 0, "interrupts": 0, "errors": 0}
    n = task.neurons.shape[0]
    lows = np.full(n, -np.inf)
    highs = np.full(n, np.inf)

    def remaining() -> float:
        return math.inf if task.deadline is None else task.deadline - time.time()

    def stopped(idx: int) -> bool:
        """No new LP after Ctrl-C or at the deadline; the neurons left keep their bounds."""
        if _stop_requested(task):
            stats["stopped"] = "interrupted"
        elif remaining() <= 0:
            stats["stopped"] = "time_limit"
        else:
            return False
        stats["skipped"] = stats.get("skipped", 0) + n - idx
        return True

    if stopped(0):
        return _ChunkResult(task.neurons, lows, highs, stats)
    model, g_cols = _layer_model(task)
    h = to_highs(model, relax=not task.mip)
    h.changeObjectiveSense(highspy.ObjSense.kMinimize)
    if not task.mip:
        h.setOptionValue("presolve", "off")
        h.setOptionValue("solver", "simplex")

    subscribe_stop(h, lambda: _stop_requested(task))   # inside a long LP / MIP: Ctrl-C stops it

    def set_time_limit() -> None:
        """This run's limit: the time left (and the per-neuron cap); an LP's counts on HiGHS's
        run clock, which keeps counting over the runs of one instance, a MIP's per run."""
        limit = remaining()
        if task.time_limit is not None:
            limit = min(limit, float(task.time_limit))
        set_run_time_limit(h, limit, task.mip)

    stats["build_seconds"] = time.perf_counter() - t0
    root = None
    if not task.mip:
        set_time_limit()
        ok, status = _run(h, stats)
        if not ok or status != highspy.HighsModelStatus.kOptimal:
            stats["root_status"] = str(status).split(".")[-1]
            stopped(0)
            return _ChunkResult(task.neurons, lows, highs, stats)
        root = h.getBasis()
    w_norm = np.abs(task.network.layers[task.k].W).sum(axis=1)
    At = model.A.T.tocsr()
    absAt = abs(At)
    prev_col = None
    for idx, neuron in enumerate(task.neurons):
        if stopped(idx):
            break
        col = int(g_cols[neuron])
        if root is not None:
            h.clearSolver()
            h.setBasis(root)
        for sign in (1.0, -1.0):     # min g, then max g (= -min -g)
            cols = [col] if prev_col is None or prev_col == col else [prev_col, col]
            vals = [sign] if len(cols) == 1 else [0.0, sign]
            h.changeColsCost(len(cols), np.array(cols, np.int32), np.array(vals, np.float64))
            prev_col = col
            set_time_limit()
            ok, status = _run(h, stats)
            stats["solves"] += 1
            info = h.getInfo()
            t2 = time.perf_counter()
            bound = -math.inf
            if task.mip:
                if ok and status in _MIP_BOUND_STATUSES:
                    bound = _mip_bound(info, w_norm[neuron], task)
                elif ok:
                    stats["not_optimal"] += 1
            else:
                stats["iterations"] += max(int(info.simplex_iteration_count), 0)
                sol = h.getSolution()
                if ok and status == highspy.HighsModelStatus.kOptimal and sol.dual_valid:
                    cost = np.zeros(model.n_cols)
                    cost[col] = sign
                    bound = dual_lower_bound(model, cost, np.asarray(sol.row_dual), At, absAt)
                else:
                    # an error, a time limit or an interrupt: the bound stays where it was;
                    # the next LP starts from the root basis, not from this run's leftovers
                    stats["not_optimal"] += 1
                    if root is not None:
                        h.clearSolver()
                        h.setBasis(root)
            stats["certify_seconds"] += time.perf_counter() - t2
            if sign > 0:
                lows[idx] = bound
            else:
                highs[idx] = -bound
    return _ChunkResult(task.neurons, lows, highs, stats)


def _mip_bound(info, w_norm: float, task: _Task) -> float:
    """The MIP's dual (lower) bound, padded for solver tolerances; -inf if there is none."""
    db = float(info.mip_dual_bound)
    if not math.isfinite(db) or abs(db) >= _INF:
        return -math.inf
    k = task.k
    if k == 0:
        hmax = float(np.max(np.maximum(np.abs(task.domain.lb), np.abs(task.domain.ub))))
    else:
        hmax = float(np.max(np.maximum(np.abs(task.lower[k - 1]), np.abs(task.upper[k - 1]))))
    return db - MIP_TOL * (1.0 + abs(db) + w_norm * hmax)


# ----------------------------------------------------------------------------- driver
def _as_domain(network: Network, domain, ub) -> Domain:
    if isinstance(domain, Domain):
        if ub is not None:
            raise ProblemError("give either a Domain or lb, ub to obbt_bounds, not both")
        dom = domain
    else:
        if ub is None:
            raise ProblemError("obbt_bounds needs a Domain or both lb and ub")
        dom = Domain(domain, ub)
    if dom.dim != network.input_dim:
        raise ProblemError(f"domain has {dom.dim} inputs, the network has {network.input_dim}")
    dom.require_bounded("OBBT")
    return dom


def _cutoff(network: Network, objective_cutoff):
    if objective_cutoff is None:
        return None
    try:
        c, d, value = objective_cutoff
    except (TypeError, ValueError):
        raise ProblemError("objective_cutoff must be (c, d, value) meaning c.y + d >= value") from None
    c = np.asarray(c, dtype=np.float64).reshape(-1)
    if c.shape[0] != network.output_dim:
        raise ProblemError(f"objective_cutoff c has {c.shape[0]} entries, the network has "
                           f"{network.output_dim} outputs")
    if not (np.all(np.isfinite(c)) and math.isfinite(d) and math.isfinite(value)):
        raise ProblemError("objective_cutoff must be finite")
    return c, float(d), float(value)


def incumbent_cutoff(problem, x, margin: float = 1e-6) -> tuple[np.ndarray, float, float]:
    """``objective_cutoff`` for ``obbt_bounds`` from a feasible point ``x`` of ``problem``:
    only inputs at least as good as ``x`` (in the max form ``c.y + d``) are kept, relaxed by
    ``margin * (1 + |value|)`` so that ``x`` itself stays feasible under solver tolerances.

    The bounds it gives are valid for the optimisation problem only (every optimum is at
    least as good as ``x``), not for the whole domain."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if not problem.is_feasible(x[None, :])[0]:
        raise ProblemError("incumbent_cutoff needs a feasible point of the problem")
    c, d = problem.max_form()
    value = float(c @ problem.network.forward(x[None, :])[0] + d)
    return c, float(d), value - margin * (1.0 + abs(value))


def obbt_bounds(
    network: Network,
    domain,
    ub=None,
    *,
    initial: LayerBounds | None = None,
    mode: str = "lp",
    time_limit_per_neuron: float | None = None,
    objective_cutoff=None,
    executor=None,
    layers=None,
    chunks_per_worker: int = 2,
    time_limit: float | None = None,
) -> LayerBounds:
    """Tightened pre-activation (and output) bounds over ``domain`` by LP or MIP OBBT.

    ``domain`` is a Domain (box and optional ``A x <= b``) or ``lb`` with ``ub`` next.
    ``initial``: bounds to start from and never loosen (default CROWN). ``mode``: 'lp' or
    'mip' (``time_limit_per_neuron`` caps each MIP, and each LP). ``objective_cutoff=(c, d,
    value)`` adds ``c.y + d >= value`` (only points at least as good as an incumbent).
    ``executor``: see ``reluopt.parallel.get_executor`` (None: serial). ``layers``: indices to
    tighten (hidden layers ``0..depth-1``, ``depth`` = outputs; default all).

    Limits: ``time_limit`` seconds for the whole run: every LP/MIP gets HiGHS's time limit
    from the time left, none starts after it. Ctrl-C stops within about a second (the flag
    is polled between LPs and by HiGHS's interrupt callback inside them). Either way the
    result is sound partial bounds: each neuron keeps its last certified bounds (the initial
    ones if it was not reached), ``stats['stopped']`` is ``'time_limit'`` or
    ``'interrupted'`` (None when complete) and ``stats['skipped']`` counts the neurons not
    reached. After Ctrl-C the later layers are not refreshed; inside an ``interruptible``
    block (a method run) the partial bounds are returned, else ``KeyboardInterrupt`` is
    raised once the workers have stopped. An LP whose run fails or ends other than optimal
    leaves its neuron's bound as it was (``stats['errors']``, ``stats['not_optimal']``).
    Stats: wall time, and summed over workers the model-building, LP/MIP solve and
    certificate times.
    """
    from ..parallel import SerialExecutor, chunk, get_executor
    from .crown import crown_bounds

    if mode not in ("lp", "mip"):
        raise ProblemError(f"OBBT mode must be 'lp' or 'mip', got {mode!r}")
    if time_limit_per_neuron is not None and not time_limit_per_neuron > 0:
        raise ProblemError(f"time_limit_per_neuron must be > 0, got {time_limit_per_neuron}")
    if time_limit is not None and not time_limit > 0:
        raise ProblemError(f"time_limit must be > 0, got {time_limit}")
    dom = _as_domain(network, domain, ub)
    cutoff = _cutoff(network, objective_cutoff)
    start = time.perf_counter()
    deadline = None if time_limit is None or math.isinf(time_limit) else time.time() + float(time_limit)
    depth = network.depth
    todo = set(range(depth + 1)) if layers is None else {int(k) for k in layers}
    bad = [k for k in todo if not 0 <= k <= depth]
    if bad:
        raise ProblemError(f"layers {bad} do not exist: hidden layers are 0..{depth - 1}, "
                           f"{depth} is the output layer")
    handled = interrupt_handled()      # an enclosing method returns its best on Ctrl-C
    ex = get_executor(executor)
    owned = ex is not executor
    serial = isinstance(ex, SerialExecutor)
    flag = StopFlag() if serial else _StopFile()
    with interruptible(flag):
        if initial is None:
            initial = crown_bounds(network, dom.lb, dom.ub)
        if initial.batch != 1:
            raise ProblemError("obbt_bounds needs initial bounds of exactly one box")
        lower = [L[0].copy() for L in initial.lower]
        upper = [U[0].copy() for U in initial.upper]
        out_lower, out_upper = initial.out_lower[0].copy(), initial.out_upper[0].copy()
        lo, hi = dom.lb[None], dom.ub[None]
        per_layer = []
        totals = {"build_seconds": 0.0, "solve_seconds": 0.0, "certify_seconds": 0.0, "solves": 0,
                  "iterations": 0, "not_optimal": 0, "time_limits": 0, "interrupts": 0, "errors": 0,
                  "skipped": 0}
        stopped = None
        try:
            for k in range(depth + 1):
                if interrupt_requested():
                    stopped = "interrupted"
                    break               # the later layers keep their initial bounds
                is_out = k == depth
                L, U = (out_lower, out_upper) if is_out else (lower[k], upper[k])
                if k > 0:
                    # CROWN again with the tightened earlier layers: cheap, and fewer LPs after
                    # (also after the time limit: it costs about one CROWN pass in all)
                    h_lo, h_hi = activate_interval(network.layers[k - 1], lower[k - 1][None],
                                                   upper[k - 1][None])
                    iL, iU = affine_interval(network.layers[k], h_lo, h_hi)
                    cL, cU = _layer_bounds(network, k, lo, hi, [a[None] for a in lower[:k]],
                                           [a[None] for a in upper[:k]], iL, iU)
                    L[:] = np.maximum(L, cL[0])
                    U[:] = np.minimum(U, cU[0])
                if k not in todo or (k == 0 and dom.A is None and cutoff is None):
                    continue   # the first layer's interval bounds are exact over a box
                targets = (np.arange(L.shape[0]) if is_out
                           else np.nonzero(_unstable(network.layers[k], L, U))[0])
                row = {"layer": k, "targets": int(targets.size)}
                passes = [False, True] if mode == "mip" else [False]
                for mip in passes:
                    if mip and not is_out:
                        targets = targets[_unstable(network.layers[k], L[targets], U[targets])]
                    if targets.size == 0:
                        continue
                    if interrupt_requested() or (deadline is not None and time.time() >= deadline):
                        stopped = stopped or ("interrupted" if interrupt_requested() else "time_limit")
                        totals["skipped"] += int(targets.size)
                        row["skipped"] = row.get("skipped", 0) + int(targets.size)
                        continue
                    n_chunks = 1 if ex.workers <= 1 else ex.workers * max(1, int(chunks_per_worker))
                    tasks = [_Task(network, dom, [a.copy() for a in lower], [a.copy() for a in upper],
                                   out_lower.copy(), out_upper.copy(), k,
                                   np.asarray(part), mip, time_limit_per_neuron, cutoff, deadline,
                                   flag.path if isinstance(flag, _StopFile) else None)
                             for part in chunk(list(targets), n_chunks)]
                    try:
                        results = ex.map(_solve_chunk, tasks)
                    except Exception:
                        # Ctrl-C in a worker pool can break the pool: the layer keeps its bounds
                        if not interrupt_requested():
                            raise
                        stopped = "interrupted"
                        totals["skipped"] += int(targets.size)
                        break
                    for res in results:
                        newL = np.maximum(L[res.neurons], res.lower)
                        newU = np.minimum(U[res.neurons], res.upper)
                        ok = newL <= newU   # crossing only if the set is empty: keep the old ones
                        L[res.neurons[ok]] = newL[ok]
                        U[res.neurons[ok]] = newU[ok]
                        for key in totals:
                            totals[key] += res.stats.get(key, 0)
                        if "root_status" in res.stats:
                            row["root_status"] = res.stats["root_status"]
                        if res.stats.get("skipped"):
                            row["skipped"] = row.get("skipped", 0) + res.stats["skipped"]
                        if res.stats.get("stopped") and stopped != "interrupted":
                            stopped = res.stats["stopped"]
                    row["mip_solved" if mip else "lp_solved"] = int(targets.size) - int(row.get("skipped", 0))
                if not is_out:
                    row["unstable_after"] = int(_unstable(network.layers[k], L, U).sum())
                per_layer.append(row)
        finally:
            if owned:
                ex.close()
            if isinstance(flag, _StopFile):     # a parallel run's stop file
                flag.remove()
        if interrupt_requested():   # Ctrl-C, or an enclosing run was told to stop
            stopped = "interrupted"
    if stopped == "interrupted" and not handled:
        raise KeyboardInterrupt   # no caller returns a best-so-far: behave as Ctrl-C does
    method = "mip-obbt" if mode == "mip" else "lp-obbt"
    stats = {**totals, "seconds": time.perf_counter() - start, "executor": ex.name,
             "initial": initial.method, "layers": per_layer, "mode": mode, "stopped": stopped}
    return LayerBounds([a[None] for a in lower], [a[None] for a in upper],
                       out_lower[None], out_upper[None], method, stats)
