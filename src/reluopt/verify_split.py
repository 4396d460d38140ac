"""Input splitting for a *disjunction* on one box: one search tree shared by all disjuncts.

A VNN-LIB property such as ACAS Xu's "Y_0 is minimal" is unsafe where *some* ``Y_j <= Y_0``:
a disjunction of K conjunctions over the same input box. Running branch and bound once per
disjunct rebuilds the same tree K times; here every node carries the set of disjuncts still
open on it, a node is bounded for all of them in one batched CROWN pass (the bound of a
disjunct is the smallest bound of its atoms' margins), a disjunct closes on a node when that
bound is < 0, and the node is dropped when every disjunct is closed on it. The property is
unsat on the box when no node is left. Children inherit their parent's neuron bounds.

Soundness: bounds come from ``methods.bab_bounds`` (CROWN with outward rounding); a node too
small to split is never closed by assumption: it keeps the box ``unknown``. Counterexamples
are reported through ``on_points`` and confirmed by the caller with a forward pass.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass

import numpy as np

from .io.vnnlib import Disjunct
from .methods.bab_bounds import backsubstitute, best_output_bounds, down32, node_bounds, up32
from .network import Network


@dataclass
class SplitOutcome:
    """``status`` 'unsat' (every disjunct closed on every piece) or 'unknown'; ``upper`` (K,)
    certified upper bounds of each disjunct's margin; ``nodes`` boxes bounded."""

    status: str
    upper: np.ndarray
    nodes: int
    frozen: int


class _Tree:
    def __init__(self, network: Network, lb, ub, disjuncts: list[Disjunct], on_points, deadline: float,
                 batch_size: int, min_width: float, progress):
        self.net = network
        self.K = len(disjuncts)
        self.W = np.vstack([-dj.C for dj in disjuncts])                 # margin rows: W y + off
        self.off = np.concatenate([dj.e for dj in disjuncts])
        self.owner = np.concatenate([np.full(dj.C.shape[0], k) for k, dj in enumerate(disjuncts)])
        self.on_points, self.deadline = on_points, deadline
        self.batch_size, self.progress = batch_size, progress
        self.root_lo, self.root_hi = lb, ub
        self.root_w = ub - lb
        self.min_width = min_width
        self.heap: list = []
        self.counter = 0
        self.nodes = 0
        self.frozen = 0
        self.closed_max = np.full(self.K, -math.inf)   # bounds of pieces where a disjunct closed
        self.frozen_max = np.full(self.K, -math.inf)
        self._last_report = -math.inf

    def bound(self, lo, hi, prior):
        """Per-box, per-disjunct margin upper bounds (B, K), the linear-bound maximisers and
        the smear score of the binding atom (for branching)."""
        nb = node_bounds(self.net, lo, hi, prior)
        up, xs = best_output_bounds(self.net, nb, self.W, self.off)
        dub = np.stack([up[:, self.owner == k].min(axis=1) for k in range(self.K)], axis=1)
        self.nodes += lo.shape[0]
        return nb, up, dub, xs

    def push(self, lo, hi, nb, up, dub, is_open):
        """Queue the boxes with an open disjunct; record the bounds of those that closed."""
        width = hi - lo
        tiny = np.all(width <= self.min_width * self.root_w, axis=1)
        worst = np.where(is_open, dub, -np.inf).argmax(axis=1)
        rows = np.where(self.owner[None, :] == worst[:, None], up, np.inf).argmin(axis=1)
        lam, _, _, _ = backsubstitute(self.net, self.net.depth, self.W[rows][:, None, :], nb.lines)
        score = np.abs(lam[:, 0, :]) * width
        score += 1e-12 * width / np.maximum(self.root_w, 1e-300) * np.max(score, axis=1, keepdims=True).clip(1e-300)
        score[width <= 0] = -1.0
        dims = score.argmax(axis=1)
        for i in range(lo.shape[0]):
            if not is_open[i].any():
                continue
            if tiny[i]:
                self.frozen += 1
                self.frozen_max = np.maximum(self.frozen_max, np.where(is_open[i], dub[i], -np.inf))
                continue
            prior = ([down32(L[i]) for L in nb.lower], [up32(U[i]) for U in nb.upper])
            node = (lo[i].copy(), hi[i].copy(), prior, dub[i].copy(), is_open[i].copy(), int(dims[i]))
            self.counter += 1
            heapq.heappush(self.heap, (-float(dub[i][is_open[i]].max()), self.counter, node))

    def close(self, dub, was_open, is_open) -> None:
        newly = was_open & ~is_open
        if newly.any():
            self.closed_max = np.maximum(self.closed_max, np.where(newly, dub, -np.inf).max(axis=0))

    def report(self) -> None:
        now = time.perf_counter()
        if self.progress is None or now - self._last_report < 0.25:
            return
        self._last_report = now
        self.progress({"nodes": self.nodes, "open": len(self.heap)})

    def run(self) -> SplitOutcome:
        lo, hi = self.root_lo[None].copy(), self.root_hi[None].copy()
        nb, up, dub, xs = self.bound(lo, hi, None)
        self.on_points(np.vstack([0.5 * (lo + hi), xs.reshape(-1, lo.shape[1])]))
        is_open = dub >= 0
        self.close(dub, np.ones_like(is_open), is_open)
        self.push(lo, hi, nb, up, dub, is_open)
        while self.heap and time.perf_counter() < self.deadline:
            k = min(len(self.heap), max(1, self.batch_size // 2))
            nodes = [heapq.heappop(self.heap)[2] for _ in range(k)]
            lo = np.repeat(np.array([n[0] for n in nodes]), 2, axis=0)
            hi = np.repeat(np.array([n[1] for n in nodes]), 2, axis=0)
            r = np.arange(k)
            dims = np.array([n[5] for n in nodes])
            mid = 0.5 * (lo[2 * r, dims] + hi[2 * r, dims])
            hi[2 * r, dims] = mid
            lo[2 * r + 1, dims] = mid
            prior = ([np.repeat(np.array([n[2][0][j] for n in nodes]), 2, axis=0).astype(np.float64)
                      for j in range(len(nodes[0][2][0]))],
                     [np.repeat(np.array([n[2][1][j] for n in nodes]), 2, axis=0).astype(np.float64)
                      for j in range(len(nodes[0][2][1]))])
            nb, up, dub, xs = self.bound(lo, hi, prior)
            parent_dub = np.repeat(np.array([n[3] for n in nodes]), 2, axis=0)
            was_open = np.repeat(np.array([n[4] for n in nodes]), 2, axis=0)
            dub = np.minimum(dub, parent_dub)          # a child's max is at most its parent's
            self.on_points(np.vstack([0.5 * (lo + hi), xs.reshape(-1, lo.shape[1])]))
            is_open = was_open & (dub >= 0)
            self.close(dub, was_open, is_open)
            self.push(lo, hi, nb, up, dub, is_open)
            self.report()
        upper = np.maximum(self.closed_max, self.frozen_max)
        for _, _, node in self.heap:
            upper = np.maximum(upper, np.where(node[4], node[3], -np.inf))
        status = "unsat" if not self.heap and not self.frozen else "unknown"
        return SplitOutcome(status, upper, self.nodes, self.frozen)


def split_disjuncts(network: Network, lb, ub, disjuncts: list[Disjunct], *, deadline: float, on_points,
                    batch_size: int = 64, min_width: float = 1e-7, progress=None) -> SplitOutcome:
    """Decide ``exists x in [lb, ub], k: disjunct k holds at y(x)`` up to ``deadline``
    (``time.perf_counter()`` value). ``on_points(X)`` receives candidate inputs (it raises to
    stop the search when one is a counterexample). Every disjunct needs at least one atom."""
    lb = np.asarray(lb, dtype=np.float64)
    ub = np.asarray(ub, dtype=np.float64)
    tree = _Tree(network, lb, ub, list(disjuncts), on_points, deadline, batch_size, min_width, progress)
    try:   # the GEMMs are small: one BLAS thread is fastest (and fair on a shared machine)
        from threadpoolctl import threadpool_limits
    except ImportError:
        return tree.run()
    with threadpool_limits(limits=1, user_api="blas"):
        return tree.run()
