"""``bab`` on a general model: branch and bound over the variables that feed networks.

A node is a box of the decision variables. Its bound: the LP relaxation of the model's MILP
built over the node's box (``formulate_model`` with the node's column bounds, so every network
gets reluopt's bounds of its inputs over that box), solved, status-checked and widened; an
infeasible LP proves the node empty, any other failure keeps the parent's bound. The LP's
answer (integers rounded) and the box centre are forward-checked by the tracker. Branching:
an integer variable with a fractional LP value at its floor and ceiling, else the widest
(relative to the root) variable that feeds a network, at its midpoint (integers at an integer
point). A node whose networks have no unstable neuron and whose LP answer is integral is
closed by its LP (exact there). The loop, limits and certified bound are the search engine's
(``search.engine``); the gap rules are ``search.gap``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..errors import ProblemError
from ..methods.portfolio import BAB_MAX_DIM
from ..milp.backends import ERROR, get_backend
from ..milp.backends.base import widen
from ..result import ABS_GAP, REL_GAP, interruptible
from ..search.engine import Limits, Search
from ..search.gap import GapStrategy
from ..search.tree import CLOSED, EMPTY, FROZEN, Node
from .formulation import formulate_model, objective_box_bound
from .result import ModelResult, ModelTracker

if TYPE_CHECKING:
    from .core import Model

#: A variable narrower than this fraction of its root width is not split again.
MIN_WIDTH = 1e-7
#: An LP value this close to an integer counts as integral.
INTEGRALITY_TOL = 1e-6


@dataclass
class ModelNode(Node):
    """A box of the decision variables, with its LP answer for branching.

    Parameters
    ----------
    u : numpy.ndarray or None
        The decision part of the node LP's answer (None when the LP failed).
    """

    u: np.ndarray | None = None


@dataclass
class _Gaps:
    abs_gap: float
    rel_gap: float
    stop_above: float | None = None
    stop_below: float | None = None


def network_variables(model: Model) -> np.ndarray:
    """Which decision entries feed a network directly (a nonzero coefficient in some feed).

    Parameters
    ----------
    model : Model

    Returns
    -------
    numpy.ndarray of bool, shape (n_vars,)
    """
    used = np.zeros(model.n_cols, dtype=bool)
    for feed in model.feeds:
        used |= np.any(feed.rows(model.n_cols) != 0, axis=0)
    return used[model.var_cols]


class ModelSplit(GapStrategy):
    """The ``Strategy`` of ``bab`` on a model (see the module's docstring).

    Parameters
    ----------
    model : Model
    tracker : ModelTracker
    bounds : str
        Neuron bound method per node.
    solver : str
        The LP solver's back-end.
    abs_gap, rel_gap : float
    """

    def __init__(self, model: Model, tracker: ModelTracker, bounds: str, solver: str, abs_gap: float,
                 rel_gap: float) -> None:
        self.model = model
        self.anytime = cast(Any, tracker)       # duck-typed: value and improve_bound
        self.tracker = tracker
        self.cfg = _Gaps(abs_gap, rel_gap)
        self.sign = 1.0 if model.sense == "max" else -1.0
        self.search = None
        self.source = "bab"
        self.bounds = bounds
        self.backend = get_backend(solver)
        self.feeding = network_variables(model)
        self.integer = tracker.integer
        self.root_width = np.where(np.isfinite(tracker.ub - tracker.lb), tracker.ub - tracker.lb, np.inf)
        self.lp_failures = 0

    def batch_size(self, open_nodes: int, nodes_left: float) -> int:
        """One node at a time (each is an LP). See `Strategy.batch_size`."""
        return 1

    def bound(self, lo: np.ndarray, hi: np.ndarray, parent: float, depth: int) -> ModelNode | None:
        """The node of box ``[lo, hi]`` with its certified bound, or None when proven empty.

        Parameters
        ----------
        lo, hi : numpy.ndarray
            The decision box.
        parent : float
            The parent's bound (max form), kept when the LP fails.
        depth : int

        Returns
        -------
        ModelNode or None
        """
        model, tr = self.model, self.tracker
        col_lb, col_ub = model.bounds()
        col_lb[model.var_cols], col_ub[model.var_cols] = lo, hi
        mm = formulate_model(model, bounds=self.bounds, col_lb=col_lb, col_ub=col_ub)
        if np.all(np.isfinite(lo) & np.isfinite(hi)):
            tr.offer(0.5 * (lo + hi), "bab: centre")
        bound = min(parent, objective_box_bound(model, mm))
        out = self.backend.solve(mm.milp, relax=True, time_limit=max(min(tr.remaining, 60.0), 0.01))
        if out.status == "infeasible":
            return None
        if out.status in ("unbounded", "infeasible_or_unbounded") and depth == 0:
            raise ProblemError(f"the LP relaxation of the model is {out.status.replace('_', ' ')}: give every "
                               "variable in the objective finite bounds")
        u = None
        if out.status != ERROR and out.status == "optimal" and out.objective is not None and out.values is not None:
            bound = min(bound, widen(out.objective))
            u = out.values[model.var_cols]
            tr.offer(u, "bab: lp")
        else:
            self.lp_failures += 1
        node = ModelNode(lo, hi, bound, None, depth, u)
        if u is not None and mm.stats["binaries"] == 0 and not self._fractional(u).size:
            self.search_frontier().retire(bound, CLOSED)   # the LP is exact on this box
            return ModelNode(lo, hi, -math.inf, None, depth, u)
        return node

    def search_frontier(self):
        """The running search's frontier, where closed nodes leave their bounds.

        Returns
        -------
        Frontier
        """
        assert self.search is not None
        return self.search.frontier

    def _fractional(self, u: np.ndarray) -> np.ndarray:
        frac = np.abs(u - np.round(u))
        return np.nonzero(self.integer & (frac > INTEGRALITY_TOL))[0]

    def children(self, node: ModelNode) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """The two boxes of ``node``'s branch, or None when nothing can be split.

        Parameters
        ----------
        node : ModelNode

        Returns
        -------
        list of (lo, hi) or None
        """
        lo, hi = node.lo, node.hi
        if node.u is not None:
            frac = self._fractional(node.u)
            if frac.size:
                j = int(frac[np.argmax(np.abs(node.u[frac] - np.round(node.u[frac])))])
                return self._split(lo, hi, j, math.floor(node.u[j]), math.floor(node.u[j]) + 1)
        width = (hi - lo) / np.where(self.root_width > 0, self.root_width, 1.0)
        open_ = self.feeding & (hi > lo) & ((width > MIN_WIDTH) | self.integer)
        if not open_.any():
            return None
        j = int(np.argmax(np.where(open_, width, -1.0)))
        mid = 0.5 * (lo[j] + hi[j])
        if self.integer[j]:
            return self._split(lo, hi, j, math.floor(mid), math.floor(mid) + 1)
        return self._split(lo, hi, j, mid, mid)

    @staticmethod
    def _split(lo, hi, j: int, left_top: float, right_bottom: float) -> list[tuple[np.ndarray, np.ndarray]]:
        l_hi, r_lo = hi.copy(), lo.copy()
        l_hi[j], r_lo[j] = min(left_top, hi[j]), max(right_bottom, lo[j])
        return [(lo.copy(), l_hi), (r_lo, hi.copy())]

    def expand(self, nodes: list[Node], search: Search) -> list[Node]:
        """Split each node and bound its children. See `Strategy.expand`."""
        out: list[Node] = []
        for node in nodes:
            node = cast(ModelNode, node)
            boxes = self.children(node)
            if boxes is None:
                search.frontier.retire(node.bound, FROZEN)
                continue
            for lo, hi in boxes:
                if np.any(lo > hi):
                    continue
                search.nodes += 1
                child = self.bound(lo, hi, node.bound, node.depth + 1)
                if child is None:
                    search.frontier.retire(-math.inf, EMPTY)
                elif child.bound > -math.inf:
                    out.append(child)
        return out


def solve_model_bab(model: Model, *, time_limit: float | None = None, seed: int = 0, progress=None,
                    bounds: str = "crown", solver: str = "highs", node_limit: int | None = None,
                    abs_gap: float = ABS_GAP, rel_gap: float = REL_GAP) -> ModelResult:
    """Solve a model by branch and bound over the variables that feed its networks.

    Parameters
    ----------
    model : Model
    time_limit : float, optional
    seed : int, optional
        Unused (the search is deterministic); accepted like the other methods'.
    progress : callable, optional
    bounds : str, optional
        Neuron bounds per node (default 'crown').
    solver : str, optional
        The LP solver ('highs' default).
    node_limit : int, optional
    abs_gap, rel_gap : float, optional

    Returns
    -------
    ModelResult

    Raises
    ------
    ProblemError
        More than ``BAB_MAX_DIM`` continuous variables feed networks, or a variable feeding one is
        unbounded (``formulation.feed_box`` names it).
    """
    tracker = ModelTracker(model, "bab", time_limit, progress)
    feeding = network_variables(model)
    continuous = feeding & ~tracker.integer
    if continuous.sum() > BAB_MAX_DIM:
        raise ProblemError(f"method 'bab' splits the continuous variables that feed networks, and this model has "
                           f"{int(continuous.sum())} (at most {BAB_MAX_DIM}); use method 'mip' or 'auto'")
    strategy = ModelSplit(model, tracker, bounds, solver, abs_gap, rel_gap)
    with interruptible(tracker):
        search = Search(Limits.of(time_limit, node_limit, lambda: tracker.interrupted), progress)
        strategy.search = search
        root = strategy.bound(tracker.lb.copy(), tracker.ub.copy(), math.inf, 0)
        roots: list[Node] = [] if root is None else [root]
        if root is None:
            search.frontier.retire(-math.inf, EMPTY)
        status = search.run(strategy, roots)
    stats = {"nodes": search.nodes, "bounds": bounds, "lp_failures": strategy.lp_failures,
             "retired": dict(search.frontier.counts)}
    return tracker.result(status, abs_gap=abs_gap, rel_gap=rel_gap, **stats)
