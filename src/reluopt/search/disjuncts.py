"""Input splitting for a *disjunction* on one box: one search tree shared by all disjuncts.

A VNN-LIB property such as ACAS Xu's "Y_0 is minimal" is unsafe where *some* ``Y_j <= Y_0``:
a disjunction of K conjunctions over the same input box. Running branch and bound once per
disjunct rebuilds the same tree K times; here every node carries the set of disjuncts still
open on it, a node is bounded for all of them in one batched CROWN pass (the bound of a
disjunct is the smallest bound of its atoms' margins), a disjunct closes on a node when that
bound is < 0, and the node is dropped when every disjunct is closed on it. The property is
unsat on the box when no node is left. A strategy of the shared engine (``search.engine``).

Soundness: CROWN bounds with outward rounding; a node too small to split is never closed by
assumption: it keeps the box ``unknown``. Counterexamples are reported through ``on_points``
and confirmed by the caller with a forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..bounds.crown import backsubstitute
from ..bounds.node import best_output_bounds, node_bounds
from ..network import Network
from ..parallel import blas_threads
from .boxes import midpoint_children, stack_prior, stored_prior, tie_break
from .cluster import active
from .distributed import Spec, run_search
from .engine import Limits, Search
from .tree import FROZEN, Node


class Conjunction(Protocol):
    """A conjunction of atoms ``C y <= e`` (a VNN-LIB disjunct): its margins are ``e - C y``."""

    @property
    def C(self) -> np.ndarray: ...

    @property
    def e(self) -> np.ndarray: ...


@dataclass
class SplitOutcome:
    """What the shared tree proved.

    Parameters
    ----------
    status : str
        ``unsat`` (every disjunct closed on every piece) or ``unknown``.
    upper : ndarray, shape (K,)
        Certified upper bound of each disjunct's smallest margin over the box.
    nodes : int
        Boxes bounded.
    frozen : int
        Boxes that reached the minimum width undecided.
    """

    status: str
    upper: np.ndarray
    nodes: int
    frozen: int


@dataclass
class DisjunctNode(Node):
    """A box with the bound of each disjunct on it and which are still open.

    Parameters
    ----------
    margins : ndarray, shape (K,)
        Certified upper bound of each disjunct's smallest margin on the box.
    open : ndarray of bool, shape (K,)
        Disjuncts not yet proven impossible on the box (``margins >= 0``).
    dim : int
        The dimension its children split.
    """

    margins: np.ndarray = field(default_factory=lambda: np.zeros(0))
    open: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    dim: int = 0


class DisjunctSplit:
    """The shared-tree strategy (see the module docstring).

    Parameters
    ----------
    network : Network
    lb, ub : ndarray, shape (d,)
        The box.
    disjuncts : sequence of Conjunction
        Each with at least one atom.
    on_points : callable
        Receives candidate inputs (n, d); raises to stop the search when one is a counterexample.
    batch_size : int
        Children bounded per batched pass.
    min_width : float
        Boxes narrower than this (relative to the root, in every dimension) are frozen.
    """

    def __init__(self, network: Network, lb: np.ndarray, ub: np.ndarray, disjuncts: Sequence[Conjunction],
                 on_points: Callable[[np.ndarray], None], batch_size: int, min_width: float) -> None:
        self.net = network
        self.K = len(disjuncts)
        self.W = np.vstack([-dj.C for dj in disjuncts])                 # margin rows: W y + off
        self.off = np.concatenate([dj.e for dj in disjuncts])
        self.owner = np.concatenate([np.full(dj.C.shape[0], k) for k, dj in enumerate(disjuncts)])
        self.on_points = on_points
        self.batch = batch_size
        self.root_lo, self.root_hi = lb, ub
        self.root_w = ub - lb
        self.min_width = min_width
        self.closed_max = np.full(self.K, -math.inf)   # bounds of pieces where a disjunct closed
        self.frozen_max = np.full(self.K, -math.inf)
        self.search: Search | None = None

    def _bound(self, lo, hi, prior):
        """Per-box, per-disjunct margin upper bounds (B, K), row bounds and maximisers."""
        assert self.search is not None
        nb = node_bounds(self.net, lo, hi, prior)
        up, xs = best_output_bounds(self.net, nb, self.W, self.off)
        dub = np.stack([up[:, self.owner == k].min(axis=1) for k in range(self.K)], axis=1)
        self.search.nodes += lo.shape[0]
        self.on_points(np.vstack([0.5 * (lo + hi), xs.reshape(-1, lo.shape[1])]))
        return nb, up, dub

    def _nodes(self, lo, hi, nb, up, dub, was_open) -> list[Node]:
        """Record the disjuncts that closed; the boxes with an open disjunct become nodes."""
        assert self.search is not None
        is_open = was_open & (dub >= 0)
        newly = was_open & ~is_open
        if newly.any():
            self.closed_max = np.maximum(self.closed_max, np.where(newly, dub, -np.inf).max(axis=0))
        width = hi - lo
        tiny = np.all(width <= self.min_width * self.root_w, axis=1)
        # smear branching on the binding atom of the worst open disjunct
        worst = np.where(is_open, dub, -np.inf).argmax(axis=1)
        rows = np.where(self.owner[None, :] == worst[:, None], up, np.inf).argmin(axis=1)
        lam, _, _, _ = backsubstitute(self.net, self.net.depth, self.W[rows][:, None, :], nb.lines)
        score = tie_break(np.abs(lam[:, 0, :]) * width, width, self.root_w)
        score[width <= 0] = -1.0
        dims = score.argmax(axis=1)
        out: list[Node] = []
        for i in range(lo.shape[0]):
            if not is_open[i].any():
                continue
            bound = float(dub[i][is_open[i]].max())
            if tiny[i]:
                self.frozen_max = np.maximum(self.frozen_max, np.where(is_open[i], dub[i], -np.inf))
                self.search.frontier.retire(bound, FROZEN)
                continue
            out.append(DisjunctNode(lo[i].copy(), hi[i].copy(), bound, stored_prior(nb.lower, nb.upper, i),
                                    0, dub[i].copy(), is_open[i].copy(), int(dims[i])))
        return out

    # ------------------------------------------------------------------ Strategy
    def roots(self, search: Search) -> list[Node]:
        """Bound the whole box, to start the search.

        Parameters
        ----------
        search : Search
            The search that will run this strategy (kept for ``upper`` and retiring nodes).

        Returns
        -------
        list of Node
            The root node, if a disjunct stays open on the box; else empty.
        """
        self.search = search
        lo, hi = self.root_lo[None].copy(), self.root_hi[None].copy()
        nb, up, dub = self._bound(lo, hi, None)
        return self._nodes(lo, hi, nb, up, dub, np.ones_like(dub, dtype=bool))

    def expand(self, nodes: list[Node], search: Search) -> list[Node]:
        """Split each box at its chosen dimension and bound the children for the open disjuncts.

        See `Strategy.expand`.
        """
        boxes = [n for n in nodes if isinstance(n, DisjunctNode)]
        lo, hi = midpoint_children(np.array([n.lo for n in boxes]), np.array([n.hi for n in boxes]),
                                   np.array([n.dim for n in boxes]))
        parents = [n for n in boxes for _ in range(2)]
        nb, up, dub = self._bound(lo, hi, stack_prior(parents))
        dub = np.minimum(dub, np.array([n.margins for n in parents]))   # a child's max is at most its parent's
        return self._nodes(lo, hi, nb, up, dub, np.array([n.open for n in parents]))

    def threshold(self) -> float:
        """No pruning by value: nodes leave when all their disjuncts close.

        See `Strategy.threshold`.
        """
        return -math.inf

    def stop_status(self, bound: float) -> str | None:
        """Never early: the search ends when no box is open (or ``on_points`` raises).

        See `Strategy.stop_status`.
        """
        return None

    def exhausted_status(self, bound: float) -> str:
        """``unsat`` when every piece closed every disjunct; frozen pieces leave it ``unknown``.

        See `Strategy.exhausted_status`.
        """
        assert self.search is not None
        return "unsat" if not self.search.frontier.counts[FROZEN] else "unknown"

    def batch_size(self, open_nodes: int, nodes_left: float) -> int:
        """Half the batch: each node has two children.

        See `Strategy.batch_size`.
        """
        return max(1, self.batch // 2)

    def on_bound(self, bound: float) -> None:
        """Nothing to record: the caller reads ``SplitOutcome.upper``.

        See `Strategy.on_bound`.
        """

    def progress_info(self) -> dict:
        """No incumbent to report.

        See `Strategy.progress_info`.
        """
        return {}

    def upper(self) -> np.ndarray:
        """Certified upper bound of each disjunct's margin over the whole box, after the search.

        Returns
        -------
        np.ndarray, shape (k,)
            One bound per disjunct, over the closed, frozen and open pieces; a disjunct whose bound
            is below 0 holds nowhere in the box.
        """
        assert self.search is not None
        upper = np.maximum(self.closed_max, self.frozen_max)
        for node in self.search.frontier:
            if isinstance(node, DisjunctNode):
                upper = np.maximum(upper, np.where(node.open, node.margins, -np.inf))
        return upper


def split_disjuncts(network: Network, lb, ub, disjuncts: Sequence[Conjunction], *, deadline: float,
                    on_points: Callable[[np.ndarray], None], batch_size: int = 64, min_width: float = 1e-7,
                    progress: Callable[[dict], None] | None = None) -> SplitOutcome:
    """Decide whether some disjunct holds somewhere in the box, with one shared tree.

    Parameters
    ----------
    network : Network
    lb, ub : array_like, shape (d,)
        The box.
    disjuncts : sequence of Conjunction
        Each with at least one atom ``C y <= e``.
    deadline : float
        ``time.perf_counter()`` value to stop at.
    on_points : callable
        Receives candidate inputs (n, d); it raises to stop the search when one is a
        counterexample (the caller confirms it by a forward pass).
    batch_size : int
    min_width : float
    progress : callable or None
        Receives dicts with ``nodes`` and ``open``.

    Returns
    -------
    SplitOutcome
    """
    lb = np.asarray(lb, dtype=np.float64)
    ub = np.asarray(ub, dtype=np.float64)
    strategy = DisjunctSplit(network, lb, ub, list(disjuncts), on_points, batch_size, min_width)
    search = Search(Limits(deadline=deadline), progress, progress_every=0.25)
    cluster = active()
    with blas_threads(1):   # the GEMMs are small: one BLAS thread is fastest
        if cluster is None:
            status = search.run(strategy, strategy.roots(search))
        else:
            spec = DisjunctSpec(network, lb, ub, list(disjuncts), batch_size, min_width)
            status = run_search(search, strategy, strategy.roots(search), cluster, spec)
    if status != "unsat":
        status = "unknown"
    return SplitOutcome(status, strategy.upper(), search.nodes, search.frontier.counts[FROZEN])


class _Candidates:
    """A worker's ``on_points``: keeps each disjunct's best point and the points where one holds."""

    def __init__(self, network: Network, lb: np.ndarray, ub: np.ndarray, disjuncts: Sequence[Conjunction]) -> None:
        self.net, self.lb, self.ub, self.disjuncts = network, lb, ub, disjuncts
        self.best = np.full(len(disjuncts), -math.inf)
        self.best_x: list[np.ndarray | None] = [None] * len(disjuncts)
        self.hits: list[np.ndarray] = []

    def __call__(self, X: np.ndarray) -> None:
        X = np.clip(np.atleast_2d(X), self.lb, self.ub)
        Y = self.net.forward(X)
        for k, dj in enumerate(self.disjuncts):
            margins = (dj.e[None, :] - Y @ dj.C.T).min(axis=1) if dj.C.shape[0] else np.full(len(X), np.inf)
            i = int(np.argmax(margins))
            if margins[i] > self.best[k]:
                self.best[k], self.best_x[k] = float(margins[i]), X[i].copy()
            if len(self.hits) < 8 and margins[i] >= 0:
                self.hits.append(X[i].copy())

    def points(self) -> np.ndarray | None:
        found = [x for x in self.best_x if x is not None] + self.hits
        return np.array(found) if found else None


@dataclass
class DisjunctSpec(Spec):
    """How a cluster worker rebuilds the disjunct tree (``search.distributed``).

    A worker's candidate points go back to the driver, whose ``on_points`` confirms them by
    its own forward pass; the per-disjunct bounds of retired pieces are merged by maximum.

    Parameters
    ----------
    network : Network
    lb, ub : ndarray
    disjuncts : list of Conjunction
    batch_size : int
    min_width : float
    """

    network: Network
    lb: np.ndarray
    ub: np.ndarray
    disjuncts: list
    batch_size: int
    min_width: float

    def build(self) -> DisjunctSplit:
        """A tree whose ``on_points`` collects candidates. See `Spec.build`."""
        return DisjunctSplit(self.network, self.lb, self.ub, self.disjuncts,
                             _Candidates(self.network, self.lb, self.ub, self.disjuncts), self.batch_size,
                             self.min_width)

    def found(self, strategy) -> bool:
        """A point where a disjunct's margins are all >= 0. See `Spec.found`."""
        return bool(strategy.on_points.hits)

    def export(self, strategy) -> tuple[np.ndarray | None, dict]:
        """Candidate points and the bounds of closed and frozen pieces. See `Spec.export`."""
        return strategy.on_points.points(), {"closed_max": strategy.closed_max, "frozen_max": strategy.frozen_max}

    def merge(self, strategy, points, state: dict) -> None:
        """Bounds merged by maximum, points to the driver's ``on_points``. See `Spec.merge`."""
        strategy.closed_max = np.maximum(strategy.closed_max, state["closed_max"])
        strategy.frozen_max = np.maximum(strategy.frozen_max, state["frozen_max"])
        if points is not None:
            strategy.on_points(points)
