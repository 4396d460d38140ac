"""Input splitting for ``max min_j (C_j . y(x) + e_j)`` over a box: the strategy of ``bab``.

* **bounding**: the children of many popped nodes are bounded in one batched CROWN pass, each
  child starting from its parent's neuron bounds; the objective rows are bounded with three
  lower-slope choices of the unstable ReLUs (adaptive, 0, 1), the tightest kept, then
  tightened by Lagrange multipliers (``lagrange``) when there are several rows or constraints.
* **primal side**: the forward value at each child's centre and at the maximisers of its
  linear bounds, a few sign-gradient steps from the best of them, and region LPs from each new
  incumbent (``methods.region``); the incumbent is always a forward-checked point, kept by the
  run's ``Anytime`` tracker.
* **branching** (``BRANCHING``): ``fsb`` scores the split of every dimension by cheap child
  bounds and fully bounds only the chosen two children; ``trial`` bounds all ``2 d`` children;
  ``lambda`` (alias ``smear``), ``gradient`` and ``widest`` are one-shot scores kept for
  comparison; ``auto`` is ``fsb`` for one row (switching to ``trial`` after
  ``AUTO_SWITCH_NODES`` nodes) and ``trial`` for several rows.
* **leaves**: a node with at most ``leaf_unstable`` unstable neurons may be handed to the MIP
  (``leaf``); a box narrower than ``min_width`` (relative) is frozen: its bound stays in the
  certified bound.

The knobs (``Settings``) and the defaults behind them are in ``split_settings`` (re-exported here);
the measurements behind the defaults are in ``benchmarks/results/bab.md``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..activations.relu import ReLU
from ..bounds.crown import backsubstitute
from ..bounds.node import best_output_bounds, node_bounds
from ..errors import ProblemError, SolverError
from ..problem import FEASIBILITY_TOL, Objective, Problem
from ..tracker import Anytime
from .box_leaves import BoxLeaves
from .boxes import midpoint_children, position, relative_widths, splittable, stack_prior, stored_prior, tie_break
from .engine import Search
from .gap import GapStrategy
from .lagrange import tune_multipliers
from .leaf import relaxable
from .relu_bounds import estimate_bounds, lagrangian_bounds
from .split_settings import (  # re-exported: the knobs lived here
    AUTO_SWITCH_NODES,
    BRANCHING,
    BRANCHING_ALIASES,
    GAIN_FLOOR,
    LEAF_AFTER_NODES,
    ROOT_MIP_BINARIES,
    SLOPE_LR,
    SLOPE_MAX_DEPTH,
    Settings,
)
from .tree import EMPTY, Node


@dataclass
class BoxNode(Node):
    """An input box with what its children inherit besides neuron bounds.

    Parameters
    ----------
    lam : ndarray, shape (d,)
        Coefficients of the node's linear bound on its best row (for ``lambda`` branching).
    mult : ndarray or None
        The node's Lagrange multipliers (``lam_j, mu_k, nu_i``).
    alpha : list of ndarray or None
        Per hidden layer (s, n_j) float32: the objective rows' optimised lower slopes (the
        children's warm start; any value in [0, 1] is sound).
    """

    lam: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mult: np.ndarray | None = None
    alpha: list[np.ndarray] | None = None


@dataclass
class _Bounded:
    """Bounds of a batch of boxes (see ``InputSplit._bound``)."""

    ub: np.ndarray
    lam: np.ndarray
    xstars: np.ndarray
    infeasible: np.ndarray
    nb: object
    mult: np.ndarray | None
    alpha: list[np.ndarray] | None = None

    def select(self, idx) -> _Bounded:
        return _Bounded(self.ub[idx], self.lam[idx], self.xstars[idx], self.infeasible[idx],
                        self.nb.select(idx), None if self.mult is None else self.mult[idx],  # type: ignore[attr-defined]
                        None if self.alpha is None else [a[idx] for a in self.alpha])


class InputSplit(BoxLeaves, GapStrategy):
    """Best-first input splitting on a problem with objective rows (a ``Strategy``).

    Parameters
    ----------
    problem : Problem
        Bounded box; objective linear or ``MaxMin`` (``problem.rows()``); optional ``A x <= b``
        and output constraints.
    anytime : Anytime
        The run's tracker: incumbent (user sense), certified bound, history, progress.
    settings : Settings
    seed : int
    region_lp : callable or None
        ``region_lp(problem)`` returns a solver of region LPs (``methods.region.RegionLP``):
        ``.solve(pattern)`` gives the best point of one linear region. Used to polish each new
        incumbent (``settings.region_steps`` LPs); None disables polishing.
    """

    def __init__(self, problem: Problem, anytime: Anytime, settings: Settings, seed: int = 0,
                 region_lp: Callable[[Problem], Any] | None = None) -> None:
        self.problem, self.anytime, self.cfg = problem, anytime, settings
        self.region_lp = region_lp
        self.net = problem.network
        self.sign = problem.objective.sign
        self.source = "bab"
        self.C, self.e = problem.rows()
        self.s = self.C.shape[0]
        cons = problem.constraints
        self.out_C = None if cons is None else cons.C
        self.out_e = None if cons is None else cons.e
        self.k = 0 if cons is None else cons.count
        self.A, self.b = problem.domain.A, problem.domain.b
        self.p = 0 if self.A is None else self.A.shape[0]
        self.root_lo, self.root_hi = problem.domain.lb, problem.domain.ub
        self.root_w = self.root_hi - self.root_lo
        self.rng = np.random.default_rng(seed)
        branching = BRANCHING_ALIASES.get(settings.branching, settings.branching)
        if branching not in BRANCHING:
            raise ProblemError(f"unknown branching rule {settings.branching!r}; choose from {', '.join(BRANCHING)}")
        self.switch_at = math.inf
        if branching == "auto":
            # fsb scores splits with single-row bounds, which misjudge a min over several rows
            branching = "fsb" if self.s == 1 else "trial"
            if branching == "fsb":
                self.switch_at = AUTO_SWITCH_NODES
        self.branching = branching
        # a leaf MIP's bound carries the solver margin (milp.backends.base.widen); hand nodes off
        # only when the stopping rule can absorb it (else boxes shrink until CROWN is exact)
        self.handoff_fits = settings.stop_below is not None or max(settings.abs_gap, settings.rel_gap) >= 1e-5
        self.leaf_problem = None if self.s != 1 else Problem(
            self.net, problem.domain, Objective(self.C[0], float(self.e[0]), "max"), cons)
        # last-layer neurons the leaf MIP needs no binary for (they do not count against leaf_unstable)
        self.leaf_free = None if self.leaf_problem is None else relaxable(self.leaf_problem)
        # optimised slopes need the ReLU relaxation of relu_bounds (a clipped ReLU keeps fixed lines)
        if settings.slope_steps < 0:
            raise ProblemError(f"slope_steps must be >= 0, got {settings.slope_steps}")
        relu_only = all(isinstance(layer.act, ReLU) for layer in self.net.hidden_layers)
        self.slope_steps = settings.slope_steps if relu_only and self.net.depth <= SLOPE_MAX_DEPTH else 0
        self._root: BoxNode | None = None        # the root box, while its MIP is still due
        # rows bounded at every node: objective rows, then negated constraint rows e_k - C_k y
        # (and C_k y - e_k, whose bound <= 0 proves the constraint holds on the whole box)
        rows, offs = [self.C], [self.e]
        if cons is not None:
            rows += [-cons.C, cons.C]
            offs += [cons.e, -cons.e]
        self.W = np.concatenate(rows)
        self.off = np.concatenate(offs)
        self.region_steps = settings.region_steps
        self._region: Any = None
        self._improved = False
        self.search: Search | None = None
        self.stats: dict = {"leaf_mip": 0, "max_depth": 0, "seconds_bounding": 0.0, "seconds_primal": 0.0,
                            "branching": branching}

    # ------------------------------------------------------------------ incumbent
    def _offer(self, X: np.ndarray, source: str) -> None:
        if self.anytime.offer(X, source):
            self._improved = True

    def _evaluate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Max-form objective values and feasibility of candidate points (n, d)."""
        values, violation = self.problem.evaluate(np.clip(X, self.root_lo, self.root_hi))
        f = self.sign * values
        return f, (violation <= FEASIBILITY_TOL) & np.isfinite(f) & np.all(np.isfinite(X), axis=1)

    def _primal(self, lo, hi, xstars) -> None:
        """Centres and bound maximisers of the new boxes, then sign-gradient steps (a quarter
        of the box width, halving) from the best eight of them."""
        t0 = time.perf_counter()
        B, r = lo.shape[0], xstars.shape[1]
        X = np.concatenate([0.5 * (lo + hi), xstars.reshape(-1, lo.shape[1])])
        owner = np.concatenate([np.arange(B), np.repeat(np.arange(B), r)])
        f, ok = self._evaluate(X)
        if np.any(ok):
            self._offer(X[ok], "bab:candidate")
        if self.cfg.grad_steps > 0:
            order = np.argsort(-np.where(ok, f, -np.inf) if (self.k or self.p) else -f)[:8]
            Xg = X[order]
            step = 0.25 * (hi - lo)[owner[order]]
            for _ in range(self.cfg.grad_steps):
                Y = self.net.forward(Xg)
                j = np.argmin(Y @ self.C.T + self.e, axis=1)
                g = self.net.gradient(Xg, self.C[j])
                Xg = np.clip(Xg + step * np.sign(g), self.root_lo, self.root_hi)
                self._offer(Xg, "bab:gradient")
                step = 0.5 * step
        if self._improved and self.region_steps > 0 and self.s == 1 and self.region_lp is not None:
            self._polish()
        self._improved = False
        self.stats["seconds_primal"] += time.perf_counter() - t0

    def _polish(self) -> None:
        """Walk the incumbent to the best vertex of its linear region(s) by region LPs
        (``methods.region``): the exact local optimum closes the last digits of the gap."""
        if self._region is None:
            assert self.region_lp is not None
            self._region = self.region_lp(self.problem)
        x = self.anytime.x
        assert x is not None, "polishing follows an improvement"
        for _ in range(self.region_steps):
            try:
                sol = self._region.solve([p[0] for p in self.net.phase_pattern(x[None])])
            except SolverError as exc:       # an LP failure ends polishing, never the search
                self.region_steps = 0
                self.stats["region_lp_off"] = str(exc)
                return
            self.stats["region_lps"] = self.stats.get("region_lps", 0) + 1
            if sol.x is None or np.allclose(sol.x, x, rtol=0, atol=1e-12):
                break
            self._offer(sol.x[None], "bab:region-lp")
            # step slightly past the vertex into the neighbouring region
            x = np.clip(sol.x + 1e-3 * (sol.x - x), self.root_lo, self.root_hi)
            self._offer(x[None], "bab:region-lp")

    # ------------------------------------------------------------------ bounding
    def _bound(self, lo, hi, prior, mult, parent_alpha=None) -> _Bounded:
        """Bound a batch of boxes: the best row bound, the Lagrangian bound, which boxes are
        proven empty, and the candidate points of the bounds."""
        t0 = time.perf_counter()
        nb = node_bounds(self.net, lo, hi, prior)
        B = lo.shape[0]
        upper, xs = best_output_bounds(self.net, nb, self.W, self.off)
        obj, xstars, alpha = upper[:, :self.s], xs[:, :self.s], None
        if self.slope_steps:
            obj, xstars, alpha = self._tuned_slopes(nb, lo, hi, obj, xstars, parent_alpha)
        j = np.argmin(obj, axis=1)
        ub = obj[np.arange(B), j]
        infeasible, _ = position(lo, hi, self.A, self.b)
        if self.k:
            infeasible |= np.any(upper[:, self.s:self.s + self.k] < 0, axis=1)
        lam = self._row_lam(nb, j) if self.branching == "lambda" else np.zeros_like(lo)
        if self.cfg.mult_steps and (self.s > 1 or self.k or self.p):
            ub, mult, extra = tune_multipliers(
                self.net, nb, ub, mult, C=self.C, e=self.e, out_C=self.out_C, out_e=self.out_e, A=self.A,
                b=self.b, target=self.threshold(), live=~infeasible, steps=self.cfg.mult_steps)
            if extra is not None:
                xstars = np.concatenate([xstars, extra], axis=1)
        self.stats["seconds_bounding"] += time.perf_counter() - t0
        return _Bounded(ub, lam, xstars, infeasible, nb, mult, alpha)

    def _tuned_slopes(self, nb, lo, hi, obj, xstars, parent_alpha):
        """alpha-CROWN on the objective rows: the lower slopes of every unstable ReLU tuned by
        ``slope_steps`` projected steps from the parents' (``relu_bounds.lagrangian_bounds``
        with no split; any slopes in [0, 1] give a sound bound), the tighter bound per row kept.
        On a one-hidden-layer net the tuned bound tends to the node's LP bound, which the three
        fixed slopes of ``best_output_bounds`` miss where neurons with negative objective weight
        are unstable."""
        splits = [np.zeros(L.shape, dtype=np.int8) for L in nb.lower]
        got = lagrangian_bounds(self.net, lo, hi, nb.lower, nb.upper, splits, self.C, self.e, parent_alpha,
                                steps=self.slope_steps, lr=SLOPE_LR, scores=False)
        better = got.upper < obj
        return (np.where(better, got.upper, obj), np.where(better[:, :, None], got.x_star, xstars), got.alpha)

    def _row_lam(self, nb, j) -> np.ndarray:
        lam, _, _, _ = backsubstitute(self.net, self.net.depth, self.C[j][:, None, :], nb.lines)
        return lam[:, 0, :]

    # ------------------------------------------------------------------ Strategy
    def batch_size(self, open_nodes: int, nodes_left: float) -> int:
        """Nodes per batch: about ``batch_size`` children bounded per batched pass. See `Strategy.batch_size`."""
        assert self.search is not None
        if self.search.nodes >= self.switch_at:
            self.branching, self.switch_at = "trial", math.inf
            self.stats["branching"] = "fsb, then trial"
        d = self.net.input_dim
        per_node = 2 * (d if self.branching == "trial" else 1)
        k = max(1, min(open_nodes, self.cfg.batch_size // per_node))
        if self.branching == "fsb":          # cap the cheap trial children at 8 batches' worth
            k = max(1, min(k, 8 * self.cfg.batch_size // (2 * d)))
        if math.isfinite(nodes_left):
            k = max(1, min(k, int(nodes_left) // per_node))
        return k

    def roots(self, search: Search) -> list[Node]:
        """Bound the root box, to start the search.

        Parameters
        ----------
        search : Search
            The search that will run this strategy.

        Returns
        -------
        list of Node
            The root node, or nothing if the box is settled at once.
        """
        self.search = search
        lo, hi = self.root_lo[None].copy(), self.root_hi[None].copy()
        bounded = self._bound(lo, hi, None, None)
        search.nodes = 1
        if self.leaf_problem is not None and self._binaries(bounded.nb)[0] <= ROOT_MIP_BINARIES:
            self._root = BoxNode(self.root_lo, self.root_hi, math.inf,
                                 stored_prior(bounded.nb.lower, bounded.nb.upper, 0))  # type: ignore[attr-defined]
        return self._children(lo, hi, None, bounded)

    def expand(self, nodes: list[Node], search: Search) -> list[Node]:
        """Split each node (by the branching rule), bound the children, hand off or freeze leaves.

        See `Strategy.expand`.
        """
        boxes = [n for n in nodes if isinstance(n, BoxNode)]
        if self._root is not None and search.nodes >= LEAF_AFTER_NODES:
            self._root_mip(boxes)
        lo = np.array([n.lo for n in boxes])
        hi = np.array([n.hi for n in boxes])
        if self.branching in ("trial", "fsb"):
            lo2, hi2, parents, bounded = self._scored_split(boxes, lo, hi, cheap=self.branching == "fsb")
        else:
            lo2, hi2 = midpoint_children(lo, hi, self._split_dims(boxes))
            parents = [n for n in boxes for _ in range(2)]
            bounded = self._bound(lo2, hi2, stack_prior(parents), self._stack_mult(parents),
                                  self._stack_alpha(parents))
            search.nodes += lo2.shape[0]
        bounded.ub = np.minimum(bounded.ub, [n.bound for n in parents])   # a child's max is at most its parent's
        return self._children(lo2, hi2, parents, bounded)

    # ------------------------------------------------------------------ children
    def _children(self, lo, hi, parents, bd: _Bounded) -> list[Node]:
        assert self.search is not None
        frontier = self.search.frontier
        self._primal(lo, hi, bd.xstars)
        out: list[Node] = []
        tiny = np.all(hi - lo <= self.cfg.min_width * self.root_w, axis=1)
        handoff = np.zeros(lo.shape[0], dtype=bool)
        if self.cfg.leaf_mip and self.s == 1 and self.handoff_fits and (
                self.k or self.p or self.search.nodes >= LEAF_AFTER_NODES):
            handoff = self._binaries(bd.nb) <= self.cfg.leaf_unstable
        for i in range(lo.shape[0]):
            if bd.infeasible[i]:
                frontier.retire(-math.inf, EMPTY)
                continue
            depth = 0 if parents is None else parents[i].depth + 1
            self.stats["max_depth"] = max(self.stats["max_depth"], depth)
            node = BoxNode(lo[i].copy(), hi[i].copy(), float(bd.ub[i]),
                           stored_prior(bd.nb.lower, bd.nb.upper, i), depth,  # type: ignore[attr-defined]
                           bd.lam[i], None if bd.mult is None else bd.mult[i].copy(),
                           None if bd.alpha is None else [a[i].astype(np.float32) for a in bd.alpha])
            if tiny[i] or not np.any(hi[i] > lo[i]):
                self._leaf(node)
            elif not (handoff[i] and node.bound > self.threshold() and self._handoff(node)):
                out.append(node)
        return out

    # ------------------------------------------------------------------ branching
    @staticmethod
    def _stack_mult(parents: list[BoxNode]) -> np.ndarray | None:
        return None if parents[0].mult is None else np.array([n.mult for n in parents])

    @staticmethod
    def _stack_alpha(parents: list[BoxNode]) -> list[np.ndarray] | None:
        first = parents[0].alpha
        return None if first is None else [np.array([n.alpha[j] for n in parents])  # type: ignore[index]
                                           for j in range(len(first))]

    def _split_dims(self, nodes: list[BoxNode]) -> np.ndarray:
        """One-shot branching rules: the dimension with the best score per node."""
        W = np.array([n.hi - n.lo for n in nodes])
        if self.branching == "widest":
            score = relative_widths(W, self.root_w)
        elif self.branching == "gradient":
            X = np.array([0.5 * (n.lo + n.hi) for n in nodes])
            j = np.argmin(self.net.forward(X) @ self.C.T + self.e, axis=1)
            score = tie_break(np.abs(self.net.gradient(X, self.C[j])) * W, W, self.root_w)
        else:
            score = tie_break(np.abs(np.array([n.lam for n in nodes])) * W, W, self.root_w)
        score = np.where(splittable(W, self.root_w), score, -np.inf)
        return np.argmax(score, axis=1)

    def _scored_split(self, nodes: list[BoxNode], lo, hi, cheap: bool):
        """``trial``: bound both children of every dimension, keep per node the split whose worse
        child has the lowest bound. ``fsb`` (``cheap``): score the splits by cheap child bounds
        (parent's neuron bounds and interval arithmetic, CROWN on the objective rows only),
        then fully bound only the chosen two children."""
        assert self.search is not None
        K, d = lo.shape
        lo2, hi2 = midpoint_children(np.repeat(lo, d, axis=0), np.repeat(hi, d, axis=0), np.tile(np.arange(d), K))
        parents = [n for n in nodes for _ in range(2 * d)]
        bounded = None
        if cheap:
            t0 = time.perf_counter()
            nb = node_bounds(self.net, lo2, hi2, stack_prior(parents), tighten=False)
            alpha = self._stack_alpha(parents)
            if alpha is None:
                up, _ = best_output_bounds(self.net, nb, self.C, self.e)
            else:      # the parents' tuned slopes (a score, unrounded), then CROWN's own
                splits = [np.zeros(L.shape, dtype=np.int8) for L in nb.lower]
                up = np.minimum(best_output_bounds(self.net, nb, self.C, self.e)[0],
                                estimate_bounds(self.net, lo2, hi2, nb.lower, nb.upper, splits, self.C, self.e, alpha))
            self.stats["seconds_bounding"] += time.perf_counter() - t0
            self.stats["trial_bounds"] = self.stats.get("trial_bounds", 0) + lo2.shape[0]
            ub, inf = np.min(up, axis=1), position(lo2, hi2, self.A, self.b)[0]
        else:
            bounded = self._bound(lo2, hi2, stack_prior(parents), self._stack_mult(parents),
                                  self._stack_alpha(parents))
            self.search.nodes += lo2.shape[0]
            ub, inf = bounded.ub, bounded.infeasible
        pick = self._pick(nodes, lo, hi, ub, inf)
        sel = ((2 * (np.arange(K) * d + pick))[:, None] + np.array([0, 1])[None, :]).reshape(-1)
        parents = [parents[i] for i in sel]
        if bounded is None:
            bounded = self._bound(lo2[sel], hi2[sel], stack_prior(parents), self._stack_mult(parents),
                                  self._stack_alpha(parents))
            self.search.nodes += sel.size
        else:
            bounded = bounded.select(sel)
        return lo2[sel], hi2[sel], parents, bounded

    def _pick(self, nodes, lo, hi, ub, inf) -> np.ndarray:
        """Per node, the dimension whose worse child has the lowest bound (ties: the better
        child, then the widest dimension); ``ub``/``inf`` cover all 2d children."""
        K, d = lo.shape
        par = np.array([n.bound for n in nodes])[:, None]
        c = np.minimum(np.where(inf, -np.inf, ub), np.repeat(par[:, 0], 2 * d))
        worst = np.maximum(c[0::2], c[1::2]).reshape(K, d)
        best = np.minimum(c[0::2], c[1::2]).reshape(K, d)
        gain = (par - worst) + 0.1 * (par - best)
        # a gain below GAIN_FLOOR of the node's gap to the pruning threshold counts as none
        thr = self.threshold()
        gap = par - thr if math.isfinite(thr) else np.abs(par)
        scale = np.maximum(np.abs(par), 1e-12)
        floor = np.maximum(GAIN_FLOOR * gap, 1e-9 * scale)
        score = np.where(gain > floor, gain / scale, 0.0) + 1e-6 * relative_widths(hi - lo, self.root_w)
        score = np.where(splittable(hi - lo, self.root_w), score, -np.inf)
        return np.argmax(score, axis=1)
