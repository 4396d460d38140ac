"""The region LP: the best point of one linear region of the network.

For a fixed phase pattern the network is affine, ``g_l = A_l x + c_l`` and ``y = T x + t``,
so ``max c.(T x + t)`` over the region intersected with the domain (box, ``A x <= b``, and
output constraints ``C (T x + t) <= e``, linear inside the region) is an LP with ``d``
columns and one row per hidden neuron. The local-search methods solve thousands of these,
so ``RegionLP`` keeps ONE highspy model alive and swaps only what a new pattern changes:

* first-layer rows have fixed coefficients ``W_1``; a new pattern changes only their bounds
  (``changeRowsBounds``, one call);
* deeper layers and output-constraint rows depend on the pattern; they are kept as one block
  at the end of the row list and replaced by one ``deleteRows`` and one ``addRows`` call;
* the objective is replaced by one ``changeColsCost`` call.

HiGHS keeps the column basis across these changes (added rows enter basic), so each solve
is a warm-started dual simplex instead of a cold build (see benchmarks/PROFILE_local_search.md
for the measured difference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import highspy
import numpy as np

from ..milp.backends.highs import model_status, new_highs, run_ok, subscribe_stop
from ..network import Network
from ..problem import Problem
from .points import add_dense_rows, highs_inf

#: Default time limit (seconds) of every local-search heuristic when none is given.
DEFAULT_TIME_LIMIT = 10.0


@dataclass
class RegionSolution:
    """Outcome of one region LP, in the problem's max form.

    Attributes
    ----------
    status : str
        ``optimal``, ``infeasible``, ``unbounded``, ``time_limit``, ``interrupted`` or ``error``.
    x, lp_value, tight, pre
        The LP's point (clipped to the box), its predicted max-form objective, and per layer
        the neurons (near) on a wall and the pre-activations at ``x``.
    """

    status: str                       # optimal | infeasible | unbounded | time_limit | interrupted | error
    x: np.ndarray | None = None
    lp_value: float | None = None     # max-form objective predicted by the LP (c.T x + c.t + d)
    tight: list[np.ndarray] | None = None  # per layer: neurons (near) on a wall at x
    pre: list[np.ndarray] | None = None    # per layer: pre-activations at x (region's affine map)


def phase_patterns(net: Network, X: np.ndarray) -> list[np.ndarray]:
    """Phase pattern (int8: 0 off, 1 linear, 2 saturated) per layer for a batch ``X``.

    Parameters
    ----------
    net : Network
    X : numpy.ndarray

    Returns
    -------
    list of numpy.ndarray
    """
    return net.phase_pattern(np.atleast_2d(X))


def pattern_keys(patterns: list[np.ndarray]) -> list[bytes]:
    """A hashable key per row of a batched pattern (packed bits; phases 2 kept apart).

    Parameters
    ----------
    patterns : list of numpy.ndarray

    Returns
    -------
    list of bytes
    """
    flat = np.concatenate(patterns, axis=1)
    if np.any(flat > 1):
        return [row.tobytes() for row in flat.astype(np.int8)]
    packed = np.packbits(flat.astype(bool), axis=1)
    return [row.tobytes() for row in packed]


def _row_bounds(layer, phase: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on ``A x`` that keep ``g = A x + c`` in ``phase``."""
    g_lo, g_hi = layer.act.phase_bounds(phase)
    return g_lo - c, g_hi - c


class RegionLP:
    """A reusable LP over the linear regions of ``problem``'s network (see module doc).

    Parameters
    ----------
    problem : Problem
    reuse : bool, optional
        False builds a fresh model for every solve (the reference for tests and the benchmark).
    warm : bool, optional
        False keeps the model but drops the previous basis (for unrelated regions, as in
        sampling, where the old basis costs more iterations than it saves).
    tight_tol : float, optional
        Relative distance to a kink at which a neuron counts as on a wall.
    should_stop : callable, optional
        Polled inside each LP (Ctrl-C): status ``interrupted``.
    """

    def __init__(self, problem: Problem, *, reuse: bool = True, warm: bool = True,
                 tight_tol: float = 1e-7, should_stop=None) -> None:
        self.problem = problem
        self.should_stop = should_stop   # polled inside each LP (Ctrl-C): status 'interrupted'
        self.net = problem.network
        self.c, self.d0 = problem.max_form()
        self.reuse = reuse
        self.warm = warm
        self.tight_tol = tight_tol
        self.n_solves = 0
        self.iterations = 0
        dom = problem.domain
        self.dim = dom.dim
        self._n_static = 0 if dom.A is None else dom.A.shape[0]
        self._n_first = self.net.layers[0].n_out
        self._block = 0  # rows in the replaceable block
        self._h: highspy.Highs | None = None

    # ----------------------------------------------------------------- model
    def _new_model(self) -> highspy.Highs:
        h = new_highs()
        if self.should_stop is not None:
            subscribe_stop(h, self.should_stop)
        dom = self.problem.domain
        d = self.dim
        h.addVars(d, highs_inf(dom.lb), highs_inf(dom.ub))
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        if dom.A is not None:
            add_dense_rows(h, dom.A, np.full(dom.A.shape[0], -np.inf), dom.b)
        W1 = self.net.layers[0].W
        add_dense_rows(h, W1, np.full(W1.shape[0], -np.inf), np.full(W1.shape[0], np.inf))
        self._block = 0
        return h

    # ----------------------------------------------------------------- solve
    def solve(self, pattern, time_limit: float | None = None) -> RegionSolution:
        """Best point of the region of ``pattern`` (per-layer phases of ONE point).

        Parameters
        ----------
        pattern : list of array_like
        time_limit : float, optional

        Returns
        -------
        RegionSolution
            A failed LP has status ``error``.
        """
        net = self.net
        pattern = [np.asarray(p).reshape(-1).astype(np.int8) for p in pattern]
        pre, (T, t) = net.region_affine(pattern)
        if self._h is None or not self.reuse:
            self._h = self._new_model()
        h = self._h
        # first layer: bounds only
        lo1, hi1 = _row_bounds(net.layers[0], pattern[0], pre[0][1])
        first = np.arange(self._n_static, self._n_static + self._n_first, dtype=np.int32)
        h.changeRowsBounds(first.size, first, highs_inf(lo1), highs_inf(hi1))  # type: ignore[attr-defined]  # not in the stubs
        # the replaceable block: deeper layers and output constraints
        blocks, los, his = [], [], []
        for l in range(1, net.depth):
            A_l, c_l = pre[l]
            lo, hi = _row_bounds(net.layers[l], pattern[l], c_l)
            blocks.append(A_l)
            los.append(lo)
            his.append(hi)
        cons = self.problem.constraints
        if cons is not None:
            blocks.append(cons.C @ T)
            los.append(np.full(cons.C.shape[0], -np.inf))
            his.append(cons.e - cons.C @ t)
        if self._block:
            start = self._n_static + self._n_first
            idx = np.arange(start, start + self._block, dtype=np.int32)
            h.deleteRows(idx.size, idx)
            self._block = 0
        if blocks:
            M = np.vstack(blocks)
            add_dense_rows(h, M, np.concatenate(los), np.concatenate(his))
            self._block = M.shape[0]
        cost = self.c @ T
        h.changeColsCost(self.dim, np.arange(self.dim, dtype=np.int32), cost)
        if time_limit is not None and math.isfinite(time_limit):
            # an LP's limit is on the instance's run clock, which keeps counting over runs
            h.setOptionValue("time_limit", h.getRunTime() + max(float(time_limit), 1e-3))
        else:
            h.setOptionValue("time_limit", highspy.kHighsInf)
        if not self.warm:
            h.clearSolver()  # unrelated regions: the old basis is a poor start
        ok, _ = run_ok(h)   # the HiGHS back-end's status-checked run
        self.n_solves += 1
        status = model_status(h) if ok else "error"
        info = h.getInfo()
        self.iterations += int(info.simplex_iteration_count)
        if status == "optimal":
            x = np.array(h.getSolution().col_value)
            x = np.clip(x, self.problem.domain.lb, self.problem.domain.ub)
            value = float(cost @ x + self.c @ t + self.d0)
            g = [A @ x + c for A, c in pre]
            tight = self._tight(pre, g, x)
            return RegionSolution("optimal", x, value, tight, g)
        if status == "infeasible":
            return RegionSolution("infeasible")
        if status in ("unbounded", "infeasible_or_unbounded"):
            return RegionSolution("unbounded")
        if status in ("time_limit", "interrupted"):
            return RegionSolution(status)
        # numerical trouble: rebuild from scratch next time
        self._h = None
        return RegionSolution("error")

    def solve_point(self, x, time_limit: float | None = None) -> RegionSolution:
        """Region LP of the region containing ``x``.

        Parameters
        ----------
        x : array_like
        time_limit : float, optional

        Returns
        -------
        RegionSolution
        """
        pats = phase_patterns(self.net, np.asarray(x, dtype=np.float64)[None, :])
        return self.solve([p[0] for p in pats], time_limit)

    def _tight(self, pre, g, x) -> list[np.ndarray]:
        scale_x = 1.0 + float(np.max(np.abs(x))) if x.size else 1.0
        out = []
        for layer, (A, c), gl in zip(self.net.layers[:-1], pre, g, strict=True):
            tol = self.tight_tol * (1.0 + np.abs(c) + np.abs(A).sum(axis=1) * scale_x)
            tight = np.zeros(gl.shape, dtype=bool)
            for kink in layer.act.kinks:
                tight |= np.abs(gl - kink) <= tol
            out.append(tight)
        return out
