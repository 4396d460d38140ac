"""Input-space branch and bound: certified global optima over low-dimensional input boxes.

The engine ``bab_maximize_min`` maximises ``f(x) = min_j (C_j . y(x) + e_j)`` over a box
(``s = 1`` row is a plain linear objective; ``s > 1`` rows are the margins of a VNN-LIB
disjunct). Best-first search over sub-boxes:

* **bounding**: the children of many popped nodes are bounded in one batched CROWN pass
  (``bab_bounds``), each child starting from its parent's neuron bounds; the objective
  rows are bounded with three lower-slope choices of the unstable ReLUs (adaptive, 0, 1)
  and the tightest kept. The bound of a node is the smaller of ``min_j UB(C_j y + e_j)``
  and Lagrangian bounds
  ``UB(sum_j lam_j (C_j y + e_j) + sum_k mu_k (e_out_k - C_out_k y) + nu . (b - A x))``
  (valid for ``lam`` in the simplex, ``mu, nu >= 0``), whose multipliers are tuned by a few
  Polyak subgradient steps per node and inherited by the children.
* **primal side**: the forward value at each child's centre and at the maximisers of its
  linear bounds, then a few projected gradient steps from the best of them, and region LPs
  from each new incumbent (``methods.region``: the exact best point of its linear region);
  the incumbent is always a forward-checked point.
* **branching** (``branching=``): ``"auto"`` (default) is ``"fsb"`` for one objective row,
  switching to ``"trial"`` after ``AUTO_SWITCH_NODES`` nodes, and ``"trial"`` for a min
  over several rows (verification's disjuncts, where fsb's single-row scores misjudge the
  split). ``"fsb"`` scores the split of every dimension by
  cheap bounds of both children (the parent's neuron bounds, CROWN on the objective only),
  keeps the split whose worse child has the lowest bound, and fully bounds only those two
  children. ``"trial"`` does the same with full bounds of all ``2 d`` children (``d`` times
  the bounding cost). Measured (ACAS Xu over the prop_1 box: fsb 1.2 to 4 times faster
  than trial, lambda/gradient/widest do not finish in 15 s; see benchmarks/bench_bab.py
  --sections branching). No dimension is split while it is ``MAX_ASPECT`` times narrower
  than the widest, which stops a rule from shaving one dimension forever while the bound
  waits on another (it can still stall between the aspect cap and tiny gains: ACAS Xu 5_6
  and 5_8 over the prop_1 box).
  ``"lambda"`` (alias ``"smear"``)
  takes the dimension maximising ``|Lam_i| * width_i`` of the node's CROWN linear bound,
  ``"gradient"`` maximises ``|df/dx_i (centre)| * width_i`` and ``"widest"`` the widest
  dimension relative to the root box; they are kept for comparison.
* **pruning / stopping**: nodes whose bound is at most incumbent + tolerance are dropped
  (their bound still counts in the certified bound); stop on absolute or relative gap, on
  ``stop_above`` (a point with value >= t) or ``stop_below`` (certified bound < t), time
  or node limit. The certified bound is the max over open, pruned and frozen nodes.

Supported combinations (``solve_bab``): objective ``max``/``min c . y + d`` over a bounded
box; optional ``A x <= b`` (nodes entirely outside are pruned, the rest bounded with the
Lagrangian term); optional output constraints ``C_out y <= e_out`` (nodes where one row
provably fails are pruned; an incumbent satisfies all rows within ``FEASIBILITY_TOL``).
With a single objective row, a node with at most ``leaf_unstable`` (12) unstable neurons
is handed to the big-M MIP on its sub-box (when the gap tolerances, at least 1e-5, or a
``stop_below`` threshold can absorb the MIP's 1e-6 margin; without constraints only after
``LEAF_AFTER_NODES`` nodes), built on the node's neuron bounds
(``leaf_mip=True``, default): input splitting alone would chase a constraint boundary, or
the last unstable neurons near a flat optimum, for many levels (ACAS Xu 1_1, max Y_0 over
the prop_1 box to a relative gap of 1e-4: open after 60 s and 650k nodes without hand-off,
closed in 5.5 to 7.6 s with it). A node HiGHS closes counts with
its MIP bound plus a 1e-6 relative margin. Boxes that reach ``min_width`` undecided are
frozen: their bound counts in the certified bound, so the answer is sound, and the status
is then ``feasible`` rather than ``optimal`` if the gap stays open. Least-squares
objectives and unbounded boxes are rejected.

Soundness: all bounds come from CROWN with outward rounding (``bounds.core.outward``);
input-constraint and Lagrangian terms are concretised the same way.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..bounds.core import outward
from ..certificate import certified_method
from ..errors import ProblemError
from ..network import Network
from ..problem import FEASIBILITY_TOL, Problem
from ..result import (
    ABS_GAP,
    FEASIBLE,
    INFEASIBLE,
    INTERRUPTED,
    NO_SOLUTION,
    NODE_LIMIT,
    OPTIMAL,
    REL_GAP,
    TIME_LIMIT,
    Anytime,
    Result,
    interruptible,
)
from .bab_bounds import best_output_bounds, down32, node_bounds, output_bounds, up32

#: Outcome statuses of the engine beyond reluopt.result's: stopped by stop_above / stop_below.
ABOVE = "above"
BELOW = "below"

BRANCHING = ("auto", "trial", "fsb", "lambda", "gradient", "widest")
_BRANCHING_ALIASES = {"smear": "lambda"}
#: A node's split dimension is at most this many times narrower than its widest (relative).
MAX_ASPECT = 256.0

#: ``branching="auto"`` with one objective row starts with fsb and switches to trial after
#: this many nodes: fsb is up to 2x faster on easy boxes, but its cheap scores can stall
#: (ACAS Xu 5_6 and 5_8 over the prop_1 box: open after 60 s with fsb alone, closed in
#: 2 to 3 s by trial).
AUTO_SWITCH_NODES = 2000

#: Relative margin added to a leaf MIP's bound for HiGHS's feasibility tolerances.
LEAF_MIP_MARGIN = 1e-6

#: Without constraints, leaf MIPs start only after this many nodes: CROWN splitting closes
#: most gaps sooner and cheaper (ACAS Xu 1_1, max Y_0 over prop_1 at the default gaps: 1.0 s
#: this way, 4.1 s with hand-off from the root), while tight gaps still get them (relative gap
#: 1e-4: 7.6 s; open after 60 s without any hand-off).
LEAF_AFTER_NODES = 2000
#: Split gains (fsb/trial) below this fraction of the node's gap count as none. Off: 1e-4
#: unstuck ACAS Xu 5_8 but left 17 of 45 prop_1 proofs open in 5 s instead of 4 (benchmarks/
#: out/bab_gainfloor_1e-4.md), and 1e-3 or 1e-2 lose ACAS Xu 1_1 (optimal in 3 s -> open at 30 s).
GAIN_FLOOR = 0.0


@dataclass
class BabOutcome:
    """Result of ``bab_maximize_min`` in max sense. ``value`` is ``f(x)`` (forward pass) or
    None; ``bound`` a certified upper bound of ``max f`` (``-inf``: no feasible point)."""

    x: np.ndarray | None
    value: float | None
    bound: float
    status: str
    nodes: int
    history: list[tuple[float, float | None, float, str]] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


@dataclass
class _Node:
    lo: np.ndarray
    hi: np.ndarray
    ub: float
    lam: np.ndarray              # linear bound coefficients (d,) of the best bound row
    prior: tuple                 # parent-inherited neuron bounds (lowers, uppers), float32
    mult: np.ndarray | None      # Lagrange multipliers (lam_j, mu_k, nu_i)
    depth: int = 0


class _Engine:
    """State of one branch-and-bound run (see ``bab_maximize_min``)."""

    def __init__(self, network, lb, ub, C, e, *, time_limit, node_limit, abs_gap, rel_gap,
                 stop_above, stop_below, incumbent, progress, seed, batch_size, branching,
                 out_C, out_e, A, b, grad_steps, mult_steps, region_steps, min_width, leaf_mip, leaf_unstable,
                 on_incumbent,
                 on_bound, should_stop):
        self.net = network
        self.start = time.perf_counter()
        self.deadline = self.start + (math.inf if time_limit is None else float(time_limit))
        self.node_limit = math.inf if node_limit is None else int(node_limit)
        self.abs_gap, self.rel_gap = float(abs_gap), float(rel_gap)
        self.stop_above, self.stop_below = stop_above, stop_below
        self.progress = progress
        self.rng = np.random.default_rng(seed)
        self.batch_size = int(batch_size)
        branching = _BRANCHING_ALIASES.get(branching, branching)
        if branching not in BRANCHING:
            raise ProblemError(f"unknown branching rule {branching!r}; choose from {', '.join(BRANCHING)}")
        self.switch_at = math.inf
        if branching == "auto":
            # fsb scores splits with single-row bounds, which misjudge a min over several
            # rows: ACAS Xu 1_1 prop_2 (max-min of 4 rows) closes in 1.2 s with trial and
            # stays open after 60 s with fsb
            branching = "fsb" if C.shape[0] == 1 else "trial"
            if branching == "fsb":
                self.switch_at = AUTO_SWITCH_NODES
        self.branching = branching
        self.C, self.e = C, e
        self.s = C.shape[0]
        self.out_C, self.out_e = out_C, out_e
        self.k = 0 if out_C is None else out_C.shape[0]
        self.A, self.b = A, b
        self.p = 0 if A is None else A.shape[0]
        self.grad_steps, self.mult_steps = int(grad_steps), int(mult_steps)
        self.root_lo, self.root_hi = lb, ub
        self.root_w = ub - lb
        self.min_width = float(min_width)
        self.leaf_mip = leaf_mip
        self.leaf_unstable = int(leaf_unstable)
        # a leaf MIP's bound carries a margin of LEAF_MIP_MARGIN (1 + |bound|); hand nodes off
        # only when the stopping rule can absorb it (else boxes shrink until CROWN is exact)
        self.handoff_fits = (stop_below is not None or max(self.abs_gap, self.rel_gap) >= 10 * LEAF_MIP_MARGIN)
        self.on_incumbent, self.on_bound, self.should_stop = on_incumbent, on_bound, should_stop
        # rows bounded at every node: objective rows, then negated constraint rows e_k - C_k y
        # (and C_k y - e_k, whose bound <= 0 proves the constraint holds on the whole box)
        rows = [C] + ([-out_C, out_C] if self.k else [])
        offs = [e] + ([out_e, -out_e] if self.k else [])
        self.W = np.concatenate(rows)
        self.off = np.concatenate(offs)
        self.x: np.ndarray | None = None
        self.value = -math.inf
        self.heap: list = []
        self.counter = 0
        self.pruned_max = -math.inf      # max bound of nodes dropped by the incumbent or thresholds
        self.frozen_max = -math.inf      # max bound of tiny leaves left undecided
        self.closed_max = -math.inf      # max bound of nodes closed by the MIP
        self.nodes = 0
        self.history: list = []
        self.stats = {"pruned": 0, "infeasible": 0, "frozen": 0, "leaf_mip": 0, "batches": 0,
                      "max_depth": 0, "seconds_bounding": 0.0, "seconds_primal": 0.0,
                      "branching": branching}
        self.last_bound = math.inf
        self._improved = False
        self._region = None
        self.region_steps = int(region_steps)
        self._last_report = -math.inf
        if incumbent is not None:
            x0 = np.clip(np.asarray(incumbent, dtype=np.float64).reshape(1, -1), lb, ub)
            self._offer(x0, "incumbent")

    # ------------------------------------------------------------------ primal side
    def _f(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Objective ``min_j`` and feasibility of candidate points (n, d)."""
        Y = self.net.forward(X)
        f = np.min(Y @ self.C.T + self.e, axis=1)
        ok = np.all(np.isfinite(X), axis=1) & np.isfinite(f)
        if self.k:
            ok &= np.all(Y @ self.out_C.T - self.out_e <= FEASIBILITY_TOL, axis=1)
        if self.p:
            ok &= np.all(X @ self.A.T - self.b <= FEASIBILITY_TOL, axis=1)
        return f, ok

    def _offer(self, X: np.ndarray, source: str) -> None:
        X = np.clip(X, self.root_lo, self.root_hi)
        f, ok = self._f(X)
        if not np.any(ok):
            return
        f = np.where(ok, f, -np.inf)
        i = int(np.argmax(f))
        if f[i] > self.value:
            self.value, self.x = float(f[i]), X[i].copy()
            self._improved = True
            self.history.append((self.elapsed, self.value, self.global_bound(), source))
            if self.on_incumbent is not None:
                self.on_incumbent(self.x, self.value)

    def _primal(self, lo, hi, xstars) -> None:
        """Centres and bound maximisers of the new boxes, then sign-gradient steps (a quarter
        of the box width, halving) from the best eight of them."""
        t0 = time.perf_counter()
        B, r = lo.shape[0], xstars.shape[1]
        X = np.concatenate([0.5 * (lo + hi), xstars.reshape(-1, lo.shape[1])])
        owner = np.concatenate([np.arange(B), np.repeat(np.arange(B), r)])
        f, ok = self._f(X)
        if np.any(ok):
            self._offer(X[ok], "bab:candidate")
        if self.grad_steps > 0:
            order = np.argsort(-np.where(ok, f, -np.inf) if (self.k or self.p) else -f)[:8]
            Xg = X[order]
            step = 0.25 * (hi - lo)[owner[order]]
            for _ in range(self.grad_steps):
                Y = self.net.forward(Xg)
                j = np.argmin(Y @ self.C.T + self.e, axis=1)
                g = self.net.gradient(Xg, self.C[j])
                Xg = np.clip(Xg + step * np.sign(g), self.root_lo, self.root_hi)
                self._offer(Xg, "bab:gradient")
                step = 0.5 * step
        if self._improved and self.region_steps > 0 and self.s == 1:
            self._polish()
        self._improved = False
        self.stats["seconds_primal"] += time.perf_counter() - t0

    def _polish(self) -> None:
        """Walk the incumbent to the best vertex of its linear region(s) by region LPs
        (``methods.region``): the exact local optimum closes the last digits of the gap."""
        try:
            if self._region is None:
                from ..problem import Domain, Objective, OutputConstraints
                from .region import RegionLP
                cons = OutputConstraints(self.out_C, self.out_e) if self.k else None
                prob = Problem(self.net, Domain(self.root_lo, self.root_hi, self.A, self.b),
                               Objective(self.C[0], float(self.e[0]), "max"), cons)
                self._region = RegionLP(prob)
            x = self.x
            assert x is not None, "polishing follows an improvement"
            for _ in range(self.region_steps):
                sol = self._region.solve([p[0] for p in self.net.phase_pattern(x[None])])
                self.stats["region_lps"] = self.stats.get("region_lps", 0) + 1
                if sol.x is None or np.allclose(sol.x, x, rtol=0, atol=1e-12):
                    break
                self._offer(sol.x[None], "bab:region-lp")
                # step slightly past the vertex into the neighbouring region
                x = np.clip(sol.x + 1e-3 * (sol.x - x), self.root_lo, self.root_hi)
                self._offer(x[None], "bab:region-lp")
        except Exception:  # noqa: BLE001 - polishing is optional (e.g. an LP failure)
            self.region_steps = 0

    # ------------------------------------------------------------------ bounding
    def _box_position(self, lo, hi) -> tuple[np.ndarray, np.ndarray]:
        """Boxes entirely outside ``A x <= b`` and boxes entirely inside (sound: the min and
        max of ``A x`` over the box rounded outward)."""
        B = lo.shape[0]
        if not self.p:
            return np.zeros(B, dtype=bool), np.ones(B, dtype=bool)
        Ap, An = np.maximum(self.A, 0), np.minimum(self.A, 0)
        low = lo @ Ap.T + hi @ An.T
        high = hi @ Ap.T + lo @ An.T
        mag = np.abs(lo) @ np.abs(self.A).T + np.abs(hi) @ np.abs(self.A).T
        low, high = outward(low, high, mag)
        return np.any(low > self.b, axis=1), np.all(high <= self.b, axis=1)

    def _bound(self, lo, hi, prior, mult):
        """Bound a batch of boxes. Returns ub (B,), lam (B, d), x* (B, r, d), infeasible (B,),
        neuron bounds, multipliers."""
        t0 = time.perf_counter()
        nb = node_bounds(self.net, lo, hi, prior)
        B = lo.shape[0]
        upper, xs = best_output_bounds(self.net, nb, self.W, self.off)
        obj = upper[:, :self.s]
        j = np.argmin(obj, axis=1)
        ub = obj[np.arange(B), j]
        infeasible, _ = self._box_position(lo, hi)
        if self.k:
            infeasible |= np.any(upper[:, self.s:self.s + self.k] < 0, axis=1)
        # linear coefficients of the best row (for smear branching): recompute cheaply
        lam = self._row_lam(nb, j) if self.branching == "lambda" else np.zeros_like(lo)
        xstars = xs[:, :self.s]
        if self.mult_steps and (self.s > 1 or self.k or self.p):
            ub, lam, mult, extra = self._lagrange(nb, ub, lam, mult, infeasible)
            if extra is not None:
                xstars = np.concatenate([xstars, extra], axis=1)
        self.stats["seconds_bounding"] += time.perf_counter() - t0
        return ub, lam, xstars, infeasible, nb, mult

    def _row_lam(self, nb, j) -> np.ndarray:
        from .bab_bounds import backsubstitute
        spec = self.C[j][:, None, :]
        lam, _, _, _ = backsubstitute(self.net, self.net.depth, spec, nb.lines)
        return lam[:, 0, :]

    def _threshold(self) -> float:
        """Nodes whose bound is at most this are not needed."""
        t = -math.inf
        if self.x is not None:
            t = self.value + max(self.abs_gap, self.rel_gap * abs(self.value))
        if self.stop_below is not None:
            t = max(t, self.stop_below)
        if self.stop_above is not None:
            # a node that cannot reach stop_above cannot give a counterexample; keep it
            # only when the caller also wants a proof of its bound (no stop_below)
            if self.stop_below is not None:
                t = max(t, min(self.stop_above, self.stop_below))
        return t

    def _lagrange(self, nb, ub, lam, mult, infeasible):
        """Polyak subgradient steps on (lam in simplex, mu >= 0, nu >= 0) for each box."""
        B = ub.shape[0]
        s, k, p = self.s, self.k, self.p
        if mult is None:
            mult = np.zeros((B, s + k + p))
            mult[:, :s] = 1.0 / s
        target = self._threshold()
        live = ~infeasible
        if not math.isfinite(target) or not np.any(live & (ub > target)):
            return ub, lam, mult, None
        best_x = None
        Cfull = np.concatenate([self.C, -self.out_C]) if k else self.C
        efull = np.concatenate([self.e, self.out_e]) if k else self.e
        for _ in range(self.mult_steps):
            w = mult[:, :s + k] @ Cfull                     # (B, m)
            o = mult[:, :s + k] @ efull                     # (B,)
            nu = mult[:, None, s + k:] if p else None
            up, xs, v = output_bounds(self.net, nb, w[:, None, :], o[:, None], self.A, nu, self.b,
                                      subgradient=True)
            val = up[:, 0]
            better = val < ub
            ub = np.where(better, val, ub)
            best_x = xs if best_x is None else np.where(better[:, None, None], xs, best_x)
            # subgradient of the bound w.r.t. the multipliers
            g = np.concatenate([v[:, 0] @ Cfull.T + efull] + ([self.b - xs[:, 0] @ self.A.T] if p else []),
                               axis=1)
            gap = np.maximum(val - target, 0.0)
            step = gap / np.maximum(np.sum(g * g, axis=1), 1e-30)
            mult = mult - step[:, None] * g
            mult[:, :s] = _simplex(mult[:, :s])
            mult[:, s:] = np.maximum(mult[:, s:], 0.0)
        return ub, lam, mult, best_x

    # ------------------------------------------------------------------ branching
    def _split_dims(self, nodes: list[_Node]) -> np.ndarray:
        W = np.array([n.hi - n.lo for n in nodes])
        splittable = self._eligible(W)
        if self.branching == "widest":
            score = W / np.maximum(self.root_w, 1e-300)
        elif self.branching == "gradient":
            X = np.array([0.5 * (n.lo + n.hi) for n in nodes])
            j = np.argmin(self.net.forward(X) @ self.C.T + self.e, axis=1)
            score = np.abs(self.net.gradient(X, self.C[j])) * W
            score = score + 1e-12 * W / np.maximum(self.root_w, 1e-300) * np.max(
                score, axis=1, keepdims=True).clip(1e-300)
        else:
            score = np.abs(np.array([n.lam for n in nodes])) * W
            # ties (e.g. a zero linear bound) fall back to the widest relative dimension
            score = score + 1e-12 * W / np.maximum(self.root_w, 1e-300) * np.max(
                score, axis=1, keepdims=True).clip(1e-300)
        score = np.where(splittable, score, -np.inf)
        return np.argmax(score, axis=1)

    def _eligible(self, W: np.ndarray) -> np.ndarray:
        """Dimensions a rule may split: at most ``MAX_ASPECT`` times narrower (relative to the
        root box) than the node's widest. Without the cap a rule can split one dimension
        forever while the bound waits on another (seen with "trial" on a 3-8-4-1 net); with
        it every box shrinks to a point, where CROWN is exact, so the bound converges."""
        rel = W / np.maximum(self.root_w, 1e-300)
        return (W > 0) & (rel * MAX_ASPECT >= np.max(rel, axis=1, keepdims=True))

    @staticmethod
    def _children(lo, hi, dims):
        """Two children per box, split at the middle of ``dims``."""
        K = lo.shape[0]
        r = np.arange(K)
        mid = 0.5 * (lo[r, dims] + hi[r, dims])
        lo2 = np.repeat(lo, 2, axis=0)
        hi2 = np.repeat(hi, 2, axis=0)
        hi2[2 * r, dims] = mid
        lo2[2 * r + 1, dims] = mid
        return lo2, hi2

    # ------------------------------------------------------------------ bookkeeping
    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def global_bound(self) -> float:
        top = -self.heap[0][0] if self.heap else -math.inf
        return max(top, self.pruned_max, self.frozen_max, self.closed_max)

    def _push(self, node: _Node) -> None:
        self.counter += 1
        heapq.heappush(self.heap, (-node.ub, self.counter, node))

    def _converged(self, bound: float) -> bool:
        if self.x is None:
            return False
        g = bound - self.value
        return g <= self.abs_gap or g <= self.rel_gap * max(abs(self.value), 1e-10)

    def _record_bound(self, bound: float) -> None:
        if bound < self.last_bound:
            self.last_bound = bound
            self.history.append((self.elapsed, None if self.x is None else self.value, bound, "bab"))
            if self.on_bound is not None:
                self.on_bound(bound)

    def _report(self, force=False) -> None:
        if self.progress is None:
            return
        now = self.elapsed
        if not force and now - self._last_report < 0.1:
            return
        self._last_report = now
        self.progress({"elapsed": now, "incumbent": None if self.x is None else self.value,
                       "bound": self.global_bound(), "nodes": self.nodes,
                       "nodes_per_s": self.nodes / max(now, 1e-9), "open": len(self.heap)})

    # ------------------------------------------------------------------ main loop
    def _make_children(self, lo, hi, parents, ub, lam, xstars, infeasible, nb, mult) -> list[_Node]:
        self._primal(lo, hi, xstars)
        out = []
        tiny = np.all(hi - lo <= self.min_width * self.root_w, axis=1)
        handoff = np.zeros(lo.shape[0], dtype=bool)
        if self.leaf_mip and self.s == 1 and self.handoff_fits and (
                self.k or self.p or self.nodes >= LEAF_AFTER_NODES):
            handoff = nb.unstable(self.net) <= self.leaf_unstable
        for i in range(lo.shape[0]):
            if infeasible[i]:
                self.stats["infeasible"] += 1
                continue
            prior = ([down32(L[i]) for L in nb.lower], [up32(U[i]) for U in nb.upper])
            depth = 0 if parents is None else parents[i].depth + 1
            self.stats["max_depth"] = max(self.stats["max_depth"], depth)
            node = _Node(lo[i].copy(), hi[i].copy(), float(ub[i]), lam[i], prior,
                         None if mult is None else mult[i].copy(), depth)
            if tiny[i] or not np.any(hi[i] > lo[i]):
                self._leaf(node)
                continue
            if handoff[i] and node.ub > self._threshold() and self._handoff(node):
                continue
            out.append(node)
        return out

    def _handoff(self, node: _Node) -> bool:
        """Solve the node's sub-box by the MIP (few unstable neurons left, constraints
        undecided: splitting would chase the constraint boundary for many levels). True if
        the MIP closed it; its bound then counts in the certified bound."""
        got = _leaf_mip(self, node)
        if got is None:
            return False
        bound, closed = got
        self.stats["leaf_mip"] += 1
        node.ub = min(node.ub, bound)
        if not closed:
            return False
        self.closed_max = max(self.closed_max, node.ub)
        return True

    def _leaf(self, node: _Node) -> None:
        """A box too small to split: hand to the MIP if allowed, else freeze its bound."""
        bound = node.ub
        if self.leaf_mip and (self.k or self.s > 1 or self.p) and node.ub > self._threshold():
            got = _leaf_mip(self, node)
            if got is not None:
                bound = min(bound, got[0])
                self.stats["leaf_mip"] += 1
        if bound > self._threshold():
            self.stats["frozen"] += 1
        self.frozen_max = max(self.frozen_max, bound)

    def run(self) -> BabOutcome:
        lo, hi = self.root_lo[None].copy(), self.root_hi[None].copy()
        ub, lam, xs, inf, nb, mult = self._bound(lo, hi, None, None)
        self.nodes = 1
        for node in self._make_children(lo, hi, None, ub, lam, xs, inf, nb, mult):
            self._push(node)
        status = OPTIMAL
        while True:
            thr = self._threshold()
            while self.heap and -self.heap[0][0] <= thr:       # drop nodes no longer needed
                _, _, node = heapq.heappop(self.heap)
                self.pruned_max = max(self.pruned_max, node.ub)
                self.stats["pruned"] += 1
            bound = self.global_bound()
            self._record_bound(bound)
            self._report()
            if self.stop_above is not None and self.x is not None and self.value >= self.stop_above:
                status = ABOVE
                break
            if self.stop_below is not None and bound < self.stop_below:
                status = BELOW
                break
            if not self.heap:
                # frozen leaves may keep the gap open: only a closed gap is optimal
                if bound == -math.inf:
                    status = INFEASIBLE
                elif self.x is not None and self._converged(bound):
                    status = OPTIMAL
                else:
                    status = FEASIBLE if self.x is not None else NO_SOLUTION
                break
            if self._converged(bound):
                status = OPTIMAL
                break
            if self.should_stop is not None and self.should_stop():
                status = INTERRUPTED
                break
            if time.perf_counter() >= self.deadline:
                status = TIME_LIMIT
                break
            if self.nodes >= self.node_limit:
                status = NODE_LIMIT
                break
            self._step()
        bound = self.global_bound()
        self._record_bound(bound)
        self._report(force=True)
        self.stats.update(open_nodes=len(self.heap), seconds=self.elapsed,
                          nodes_per_s=self.nodes / max(self.elapsed, 1e-9))
        return BabOutcome(self.x, None if self.x is None else self.value, bound, status, self.nodes,
                          self.history, self.stats)

    def _step(self) -> None:
        """Pop a batch of the most promising nodes, split, bound the children, push."""
        if self.nodes >= self.switch_at:
            self.branching, self.switch_at = "trial", math.inf
            self.stats["branching"] = "fsb, then trial"
        per_node = 2 * (self.net.input_dim if self.branching == "trial" else 1)
        k = max(1, min(len(self.heap), self.batch_size // per_node))
        if self.branching == "fsb":          # cap the cheap trial children at 8 batches' worth
            k = max(1, min(k, 8 * self.batch_size // (2 * self.net.input_dim)))
        if math.isfinite(self.node_limit):
            k = max(1, min(k, int(self.node_limit - self.nodes) // per_node))
        nodes = [heapq.heappop(self.heap)[2] for _ in range(k)]
        self.stats["batches"] += 1
        lo = np.array([n.lo for n in nodes])
        hi = np.array([n.hi for n in nodes])
        if self.branching == "trial":
            lo2, hi2, parents, (ub, lam, xs, inf, nb, mult) = self._trial(nodes, lo, hi)
        elif self.branching == "fsb":
            lo2, hi2, parents, (ub, lam, xs, inf, nb, mult) = self._cheap_children(nodes, lo, hi)
        else:
            dims = self._split_dims(nodes)
            lo2, hi2 = self._children(lo, hi, dims)
            parents = [n for n in nodes for _ in range(2)]
            prior = self._stack_prior(parents)
            mult = None if parents[0].mult is None else np.array([n.mult for n in parents])
            ub, lam, xs, inf, nb, mult = self._bound(lo2, hi2, prior, mult)
            self.nodes += lo2.shape[0]
        ub = np.minimum(ub, [n.ub for n in parents])     # a child's max is at most its parent's
        for node in self._make_children(lo2, hi2, parents, ub, lam, xs, inf, nb, mult):
            if node.ub <= self._threshold():
                self.pruned_max = max(self.pruned_max, node.ub)
                self.stats["pruned"] += 1
            else:
                self._push(node)

    @staticmethod
    def _stack_prior(parents):
        depth = len(parents[0].prior[0])
        return ([np.array([p.prior[0][l] for p in parents], dtype=np.float64) for l in range(depth)],
                [np.array([p.prior[1][l] for p in parents], dtype=np.float64) for l in range(depth)])

    def _cheap_children(self, nodes, lo, hi):
        """``"fsb"``: score every split by cheap child bounds (the parent's neuron bounds and
        interval arithmetic, CROWN on the objective rows only), then fully bound only the
        chosen children: the trial rule's choice at a fraction of its cost."""
        K, d = lo.shape
        dims = np.tile(np.arange(d), K)
        lo2, hi2 = self._children(np.repeat(lo, d, axis=0), np.repeat(hi, d, axis=0), dims)
        parents = [n for n in nodes for _ in range(2 * d)]
        t0 = time.perf_counter()
        nb = node_bounds(self.net, lo2, hi2, self._stack_prior(parents), tighten=False)
        up, _ = best_output_bounds(self.net, nb, self.C, self.e)
        self.stats["seconds_bounding"] += time.perf_counter() - t0
        self.stats["trial_bounds"] = self.stats.get("trial_bounds", 0) + lo2.shape[0]
        inf, _ = self._box_position(lo2, hi2)
        pick = self._pick(nodes, lo, hi, np.min(up, axis=1), inf)
        sel = ((2 * (np.arange(K) * d + pick))[:, None] + np.array([0, 1])[None, :]).reshape(-1)
        lo2, hi2 = lo2[sel], hi2[sel]
        parents = [parents[i] for i in sel]
        mult = None if parents[0].mult is None else np.array([n.mult for n in parents])
        out = self._bound(lo2, hi2, self._stack_prior(parents), mult)
        self.nodes += lo2.shape[0]
        return lo2, hi2, parents, out

    def _pick(self, nodes, lo, hi, ub, inf) -> np.ndarray:
        """Per node, the dimension whose worse child has the lowest bound (ties: the better
        child, then the widest dimension); ``ub``/``inf`` cover all 2d children."""
        K, d = lo.shape
        par = np.array([n.ub for n in nodes])[:, None]
        c = np.minimum(np.where(inf, -np.inf, ub), np.repeat(par[:, 0], 2 * d))
        worst = np.maximum(c[0::2], c[1::2]).reshape(K, d)
        best = np.minimum(c[0::2], c[1::2]).reshape(K, d)
        rel_w = (hi - lo) / np.maximum(self.root_w, 1e-300)
        gain = (par - worst) + 0.1 * (par - best)
        # a gain below GAIN_FLOOR of the node's gap to the pruning threshold counts as none
        # (then the widest dimension is split); see GAIN_FLOOR for why it is off
        thr = self._threshold()
        gap = par - thr if math.isfinite(thr) else np.abs(par)
        scale = np.maximum(np.abs(par), 1e-12)
        floor = np.maximum(GAIN_FLOOR * gap, 1e-9 * scale)
        score = np.where(gain > floor, gain / scale, 0.0) + 1e-6 * rel_w
        score = np.where(self._eligible(hi - lo), score, -np.inf)
        return np.argmax(score, axis=1)

    def _trial(self, nodes, lo, hi):
        """Bound both children of every splittable dimension; keep per node the split whose
        worse child has the lowest bound (ties: the better child, then the widest dimension)."""
        K, d = lo.shape
        dims = np.tile(np.arange(d), K)
        lo2, hi2 = self._children(np.repeat(lo, d, axis=0), np.repeat(hi, d, axis=0), dims)
        parents = [n for n in nodes for _ in range(2 * d)]
        mult = None if parents[0].mult is None else np.array([n.mult for n in parents])
        ub, lam, xs, inf, nb, mult = self._bound(lo2, hi2, self._stack_prior(parents), mult)
        self.nodes += lo2.shape[0]
        pick = self._pick(nodes, lo, hi, ub, inf)
        sel = ((2 * (np.arange(K) * d + pick))[:, None] + np.array([0, 1])[None, :]).reshape(-1)
        out = (ub[sel], lam[sel], xs[sel], inf[sel], nb.select(sel), None if mult is None else mult[sel])
        return lo2[sel], hi2[sel], [parents[i] for i in sel], out


def _simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row onto the probability simplex."""
    n = v.shape[1]
    u = -np.sort(-v, axis=1)
    css = np.cumsum(u, axis=1) - 1.0
    ind = np.arange(1, n + 1)
    cond = u - css / ind > 0
    rho = n - 1 - np.argmax(cond[:, ::-1], axis=1)
    theta = css[np.arange(v.shape[0]), rho] / (rho + 1)
    return np.maximum(v - theta[:, None], 0.0)


def _leaf_mip(engine: _Engine, node: _Node) -> tuple[float, bool] | None:
    """Exact MIP on a node's sub-box (single objective row only), built on the node's
    neuron bounds. Returns ``(bound, closed)`` (closed: HiGHS finished) or None."""
    if engine.s != 1:
        return None
    try:
        from ..milp.backends import get_backend
        from ..milp.formulation import build_problem_model
        from ..problem import Domain, Objective, OutputConstraints
    except ImportError:
        return None
    remaining = engine.deadline - time.perf_counter()
    if remaining <= 0.05:
        return None
    cons = None if not engine.k else OutputConstraints(engine.out_C, engine.out_e)
    prob = Problem(engine.net, Domain(node.lo, node.hi, engine.A, engine.b),
                   Objective(engine.C[0], float(engine.e[0]), "max"), cons)
    try:
        from ..bounds import crown_bounds
        bounds = crown_bounds(engine.net, node.lo, node.hi)
        for l, (L, U) in enumerate(zip(*node.prior, strict=True)):
            bounds.lower[l] = np.maximum(bounds.lower[l], L[None].astype(np.float64))
            bounds.upper[l] = np.minimum(bounds.upper[l], U[None].astype(np.float64))
            bounds.lower[l] = np.minimum(bounds.lower[l], bounds.upper[l])
        model = build_problem_model(prob, bounds)
    except Exception:  # noqa: BLE001 - a leaf solve is optional; the node's CROWN bound stays
        return None
    if model.scaling_issue() is not None:   # the solver's answer would not be a certificate
        engine.leaf_mip = False
        engine.stats["leaf_mip_off"] = "badly scaled: " + str(model.scaling_issue())
        return None
    out = get_backend("highs").solve(model, time_limit=min(remaining, 5.0), mip_rel_gap=0.5 * engine.rel_gap,
                                     mip_abs_gap=0.5 * engine.abs_gap, should_stop=engine.should_stop)
    if out.values is not None:
        engine._offer(model.columns_to_point(out.values)[None, :], "bab:leaf-mip")
    if out.status == "infeasible":
        return -math.inf, True
    if out.bound is None or not math.isfinite(out.bound):
        return None
    # HiGHS works to tolerances of about 1e-6: widen its bound accordingly
    return float(out.bound) + LEAF_MIP_MARGIN * (1.0 + abs(out.bound)), out.status == "optimal"


# ---------------------------------------------------------------------------- public API
def _as_rows(C, e, m: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    C = np.atleast_2d(np.asarray(C, dtype=np.float64))
    e = np.asarray(e, dtype=np.float64).reshape(-1)
    if C.shape[1] != m or C.shape[0] != e.shape[0] or C.shape[0] == 0:
        raise ProblemError(f"{what}: C has shape {C.shape} and e has {e.shape[0]} entries; "
                           f"expected (s, {m}) and s entries")
    if not (np.all(np.isfinite(C)) and np.all(np.isfinite(e))):
        raise ProblemError(f"{what}: C or e contain a non-finite value")
    return C, e


def bab_maximize_min(network: Network, lb, ub, C, e, *, time_limit: float | None = None,
                     node_limit: int | None = None, abs_gap: float = ABS_GAP, rel_gap: float = REL_GAP,
                     stop_above: float | None = None, stop_below: float | None = None,
                     incumbent=None, progress=None, seed: int = 0, batch_size: int = 128,
                     branching: str = "auto", out_C=None, out_e=None, A=None, b=None,
                     grad_steps: int = 3, mult_steps: int = 3, region_steps: int = 5, min_width: float = 1e-7,
                     leaf_mip: bool = True, leaf_unstable: int = 12, threads: int | None = 1, on_incumbent=None,
                     on_bound=None, should_stop=None) -> BabOutcome:
    """Maximise ``min_j (C_j . y(x) + e_j)`` over the box ``[lb, ub]`` by branch and bound.

    ``stop_above=t`` stops as soon as a point with value >= t is found (status ``'above'``);
    ``stop_below=t`` as soon as the certified bound is < t (status ``'below'``). Other
    statuses: ``optimal`` (gap closed), ``infeasible``, ``no_solution``, ``time_limit``,
    ``node_limit``, ``interrupted``. ``out_C y <= out_e`` and ``A x <= b`` are optional
    constraints. ``threads`` caps BLAS threads during the run (small matrices: 1 is fastest).
    """
    lb = np.asarray(lb, dtype=np.float64).reshape(-1)
    ub = np.asarray(ub, dtype=np.float64).reshape(-1)
    d = network.input_dim
    if lb.shape[0] != d or ub.shape[0] != d:
        raise ProblemError(f"box has {lb.shape[0]}/{ub.shape[0]} bounds but the network has {d} inputs")
    if not (np.all(np.isfinite(lb)) and np.all(np.isfinite(ub))):
        i = int(np.argwhere(~(np.isfinite(lb) & np.isfinite(ub)))[0][0])
        raise ProblemError(f"bab needs a bounded box, but input {i} has bounds [{lb[i]}, {ub[i]}]")
    if np.any(lb > ub):
        i = int(np.argwhere(lb > ub)[0][0])
        raise ProblemError(f"box is empty: lb[{i}] = {lb[i]} > ub[{i}] = {ub[i]}")
    C, e = _as_rows(C, e, network.output_dim, "objective rows")
    if out_C is not None:
        out_C, out_e = _as_rows(out_C, out_e, network.output_dim, "output constraints")
    if (A is None) != (b is None):
        raise ProblemError("give both A and b for linear input constraints A x <= b")
    if A is not None:
        A = np.atleast_2d(np.asarray(A, dtype=np.float64))
        b = np.asarray(b, dtype=np.float64).reshape(-1)
        if A.shape != (b.shape[0], d) or not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
            raise ProblemError(f"input constraints A x <= b: A has shape {A.shape} and b {b.shape[0]} entries; "
                               f"expected ({b.shape[0]}, {d}) and finite values")
    if incumbent is not None and np.asarray(incumbent).size != d:
        raise ProblemError(f"incumbent has {np.asarray(incumbent).size} entries but the network has {d} inputs")
    if time_limit is not None and not time_limit > 0:
        raise ProblemError(f"time limit must be positive, got {time_limit}")
    engine = _Engine(network, lb, ub, C, e, time_limit=time_limit, node_limit=node_limit,
                     abs_gap=abs_gap, rel_gap=rel_gap, stop_above=stop_above, stop_below=stop_below,
                     incumbent=incumbent, progress=progress, seed=seed, batch_size=batch_size,
                     branching=branching, out_C=out_C, out_e=out_e, A=A, b=b, grad_steps=grad_steps,
                     mult_steps=mult_steps, region_steps=region_steps, min_width=min_width, leaf_mip=leaf_mip,
                     leaf_unstable=leaf_unstable,
                     on_incumbent=on_incumbent, on_bound=on_bound, should_stop=should_stop)
    with _blas_threads(threads):
        return engine.run()


@contextlib.contextmanager
def _blas_threads(n: int | None):
    """Limit BLAS threads (threadpoolctl if installed): tiny GEMMs are slower multi-threaded."""
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


_STATUS = {OPTIMAL: OPTIMAL, INFEASIBLE: INFEASIBLE, TIME_LIMIT: TIME_LIMIT, NODE_LIMIT: NODE_LIMIT,
           INTERRUPTED: INTERRUPTED, NO_SOLUTION: NO_SOLUTION, FEASIBLE: FEASIBLE}


@certified_method
def solve_bab(problem: Problem, *, time_limit: float | None = None, seed: int = 0, progress=None,
              incumbent=None, node_limit: int | None = None, abs_gap: float = ABS_GAP,
              rel_gap: float = REL_GAP, **options) -> Result:
    """``method="bab"``: certified optimum of ``problem`` by input-space branch and bound.

    Options are passed to ``bab_maximize_min`` (``batch_size``, ``branching``, ``grad_steps``,
    ``mult_steps``, ``min_width``, ``leaf_mip``, ``threads``).
    """
    c, d = problem.max_form()
    dom = problem.domain
    dom.require_bounded("bab")
    sign = problem.objective.sign
    counts: dict = {}      # latest node counts, added to every progress report

    def report(info):
        progress({**info, **counts})

    anytime = Anytime(problem, "bab", time_limit, None if progress is None else report)
    if incumbent is not None:   # the caller's warm start is credited to itself in the history
        anytime.offer(np.clip(np.asarray(incumbent, dtype=np.float64).reshape(1, -1), dom.lb, dom.ub),
                      "incumbent")

    def on_incumbent(x, value):
        anytime.offer(x[None, :], "bab")

    def on_bound(bound):
        anytime.improve_bound(sign * bound, "bab")

    def on_progress(info):
        counts.update(nodes=info["nodes"], open=info["open"], nodes_per_s=info["nodes_per_s"])
        anytime.report()

    cons = problem.constraints
    with interruptible(anytime):
        out = bab_maximize_min(
            problem.network, dom.lb, dom.ub, c[None, :], [d],
            time_limit=None if math.isinf(anytime.time_limit) else max(anytime.remaining, 1e-3),
            node_limit=node_limit, abs_gap=abs_gap, rel_gap=rel_gap, incumbent=incumbent,
            progress=on_progress, seed=seed,
            out_C=None if cons is None else cons.C, out_e=None if cons is None else cons.e,
            A=dom.A, b=dom.b, on_incumbent=on_incumbent, on_bound=on_bound,
            should_stop=lambda: anytime.interrupted, **options)
    if out.x is not None:
        anytime.offer(out.x[None, :], "bab")
    status = _STATUS.get(out.status, TIME_LIMIT)
    if status == OPTIMAL and anytime.x is None:
        status = NO_SOLUTION
    if status == INFEASIBLE and anytime.x is not None:   # never claim infeasible with a point
        status = FEASIBLE
    return anytime.result(status, nodes=out.nodes, nodes_per_s=out.stats.get("nodes_per_s"),
                          open_nodes=out.stats.get("open_nodes"), **{k: v for k, v in out.stats.items()
                                                                    if k not in ("nodes_per_s", "open_nodes")})
