"""OBBT's worker side: the LP/MIP model of one layer, the certified bound of one LP, and the
loop that bounds a chunk of neurons (run in this process or in a pool's worker).

``reluopt.bounds.obbt`` drives it layer by layer; its module docstring states the soundness
argument (row duals and weak duality for the LPs, padded dual bounds for the MIPs).
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

from ..milp.formulation import build_network_model
from ..network import Layer, Network
from ..problem import Domain
from ..result import StopFlag, catch_interrupts, interrupt_requested, interruptible
from .core import LayerBounds, outward

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
    """A sound lower bound of ``min cost . v`` over the model's LP relaxation, from any row multipliers.

    By weak duality, rounded outward, so that an LP solve that stopped early (or a stale dual)
    still certifies a bound.

    Parameters
    ----------
    model : MilpModel
        The relaxation (rows ``row_lower <= A v <= row_upper``, column bounds).
    cost : np.ndarray, shape (n_cols,)
        The objective to minimise.
    row_dual : np.ndarray, shape (n_rows,)
        Any row multipliers (signs that give no bound are zeroed).
    At, absAt : scipy.sparse.csr_matrix, optional
        ``A^T`` and ``|A|^T``, precomputed when called many times.

    Returns
    -------
    float
        The bound; ``-inf`` when none follows (a reduced cost meets an infinite column bound).
    """
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
    if task.mip and not model.integrality.any():
        # no binary: the LP pass was exact already, and HiGHS would solve an LP and report no MIP
        # dual bound (mip_dual_bound stays 0), which must never be read as a bound
        stats["no_binaries"] = n
        return _ChunkResult(task.neurons, lows, highs, stats)
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
