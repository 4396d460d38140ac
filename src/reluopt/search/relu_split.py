"""ReLU-split branch and bound for ``max min_r (C_r . y(x) + e_r)`` over a box, optionally
subject to ``A x <= b`` and output constraints ``C_out y <= e_out``: ``bab-relu``.

Where input splitting (``input_split``) halves the box, this strategy keeps the box and fixes
one unstable ReLU per split to its active (``g >= 0``) or inactive (``g <= 0``) phase, as
beta-CROWN, MN-BaB and VeriNet do; it scales with the number of unstable neurons rather than
with the input dimension.

* **bounding** (``relu_bounds``): the children of a batch of nodes are bounded together:
  neuron bounds from the parent's, clamped by the splits and recomputed by CROWN below the new
  split, then the objective rows by beta-CROWN (lower slopes ``alpha`` and split multipliers
  ``beta`` optimised a few projected steps, warm-started from the parent). Every bound is
  valid whatever the optimiser's state (proof in ``relu_bounds``). The root's neuron bounds
  come from alpha-CROWN.
* **constraints**: each row's bound adds ``mu . (e_out - C_out y) + nu . (b - A x)`` with
  multipliers ``mu, nu >= 0`` (``lagrange.Constraints``), optimised with ``alpha, beta`` and
  inherited by the children; valid for any ``mu, nu >= 0`` (``relu_bounds``). Such a bound never
  proves a node empty: that is the node LP's job (``leaf.node_lp``: the triangle relaxation
  with the split phases and the constraints, through the HiGHS back-end, only an
  ``infeasible`` status counts), run while there is no incumbent, on nodes with no unstable
  neuron left, and on nodes whose bound stalled (at most a quarter of the time). So the run
  ends ``infeasible`` only when every node was proven empty (``L > U``, an LP or a leaf MIP).
* **branching** (``BRANCHING``): ``babsr`` scores each unstable neuron by the intercept its
  upper line adds to the node's bound (the estimated improvement of splitting it, from the
  back-substituted coefficients); ``fsb`` (default) takes the top ``fsb_k`` candidates of that
  score and of ``|coefficient| min(U, -L)``, scores their children cheaply (``estimate_splits``:
  the parent's lines patched at the split neuron, warm slopes, no optimisation, no rounding: a
  ranking, never a bound) and keeps the split whose worse child is lowest. ``fsb-mixed``
  and ``input-first`` also score halving input dimensions of the node's box and take an input
  or a ReLU split per node (combined splitting: the rules and their soundness are in
  ``mixed_split``).
* **primal side**: the maximisers of the nodes' linear bounds and a few sign-gradient steps
  from the best of them, all forward-checked by the run's ``Anytime``, which keeps only
  points feasible within ``FEASIBILITY_TOL``; with constraints an infeasible point steps down
  its most violated constraint instead (a penalty step), and the node LPs' points are offered.
* **leaves**: a node with at most ``leaf_unstable`` unstable neurons goes to the MIP on its
  own neuron bounds and the problem's constraints (``leaf``; the splits fix those neurons'
  phases), counted only on a trusted status; a node with none left and no MIP is frozen (its
  bound stays in the answer).

Plain ReLU hidden layers only (a clear ``ProblemError`` otherwise).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..activations.relu import ReLU
from ..bounds import LayerBounds, compute_bounds
from ..errors import ProblemError
from ..problem import FEASIBILITY_TOL, Objective, Problem
from ..tracker import Anytime
from .boxes import stack_prior, stored_prior
from .engine import Search
from .gap import GapStrategy
from .lagrange import Constraints
from .leaf import node_lp, run_leaf
from .mixed_split import MIXED, choose_input, grouped_split_bounds, halve, input_split_scores
from .relu_bounds import Bounded, estimate_splits, lagrangian_bounds, split_bounds
from .tree import CLOSED, EMPTY, FROZEN, PRUNED, Node

BRANCHING = ("fsb", "babsr", *MIXED)


@dataclass
class ReluSettings:
    """The knobs of ReLU splitting.

    Parameters
    ----------
    abs_gap, rel_gap : float
        Stop when the incumbent is within these of the certified bound.
    stop_above, stop_below : float or None
        Stop at a point with value >= ``stop_above`` or a bound < ``stop_below`` (max form).
    batch_size : int
        Nodes popped per expansion (each gives two children, bounded together).
    branching : str
        ``fsb`` (filtered), ``babsr`` (scores only), ``fsb-mixed`` or ``input-first`` (``fsb``
        or an input split, per node); see the module docstring.
    fsb_k : int
        Candidates per score that ``fsb`` bounds cheaply.
    steps, root_steps : int
        Projected Adam steps on ``alpha, beta`` per child and at the root.
    lr : float
        Step size of those steps.
    root_alpha : bool
        alpha-CROWN for the root's neuron bounds (every node inherits them).
    grad_steps : int
        Sign-gradient steps from the best candidate points of each batch.
    leaf_mip : bool
        Hand nodes with at most ``leaf_unstable`` unstable neurons to the MIP (one row only).
    leaf_unstable : int
    """

    abs_gap: float
    rel_gap: float
    stop_above: float | None = None
    stop_below: float | None = None
    batch_size: int = 32
    branching: str = "fsb"
    fsb_k: int = 3
    steps: int = 5
    root_steps: int = 40
    lr: float = 0.1
    root_alpha: bool = True
    grad_steps: int = 3
    leaf_mip: bool = True
    leaf_unstable: int = 12


@dataclass
class ReluNode(Node):
    """The root box with some ReLUs fixed to a phase, and what its children inherit.

    Parameters
    ----------
    splits : list of ndarray
        Per hidden layer (n_j,) int8: +1 active, -1 inactive, 0 free.
    alpha, beta : list of ndarray
        Per hidden layer (s, n_j) float32: the node's slopes and multipliers (warm starts).
    lam : list of ndarray
        Per hidden layer (n_j,): coefficients of ``h_j`` in the node's tightest row bound.
    unstable : int
        Unstable (free) neurons left.
    mu, nu : ndarray or None
        (s, k) and (s, p): the multipliers of the output and input constraints (warm starts).
    """

    splits: list[np.ndarray] = field(default_factory=list)
    alpha: list[np.ndarray] = field(default_factory=list)
    beta: list[np.ndarray] = field(default_factory=list)
    lam: list[np.ndarray] = field(default_factory=list)
    unstable: int = 0
    mu: np.ndarray | None = None
    nu: np.ndarray | None = None


def _stack(nodes: list[ReluNode], name: str) -> list[np.ndarray]:
    return [np.array([getattr(n, name)[j] for n in nodes]) for j in range(len(nodes[0].splits))]


def _stack_mult(nodes: list[ReluNode], name: str) -> np.ndarray | None:
    """The nodes' constraint multipliers ``mu`` or ``nu`` (K, s, width), None without constraints."""
    return None if getattr(nodes[0], name) is None else np.array([getattr(n, name) for n in nodes])


class ReluSplit(GapStrategy):
    """Best-first branch and bound over ReLU phases (a ``Strategy`` for ``Search``).

    Parameters
    ----------
    problem : Problem
        Bounded box, objective rows (``problem.rows()``), optional ``A x <= b`` and output
        constraints, ReLU hidden layers.
    anytime : Anytime
        The run's tracker: incumbent (user sense), certified bound, history, progress.
    settings : ReluSettings
    seed : int
    root_bounds : LayerBounds or None
        Neuron bounds already valid on the box (e.g. the caller's alpha-CROWN): the root uses
        them instead of computing CROWN and alpha-CROWN again.
    """

    def __init__(self, problem: Problem, anytime: Anytime, settings: ReluSettings, seed: int = 0,
                 root_bounds: LayerBounds | None = None) -> None:
        if not all(isinstance(layer.act, ReLU) for layer in problem.network.hidden_layers):
            raise ProblemError("bab-relu needs plain ReLU hidden layers; use method='bab' or 'mip'")
        if settings.branching not in BRANCHING:
            raise ProblemError(f"unknown branching rule {settings.branching!r}; choose from {', '.join(BRANCHING)}")
        self.problem, self.anytime, self.cfg = problem, anytime, settings
        self.net = problem.network
        self.sign = problem.objective.sign
        self.source = "bab-relu"
        self.C, self.e = problem.rows()
        self.s = self.C.shape[0]
        self.lo, self.hi = problem.domain.lb[None].copy(), problem.domain.ub[None].copy()
        self.rng = np.random.default_rng(seed)
        self.handoff_fits = settings.stop_below is not None or max(settings.abs_gap, settings.rel_gap) >= 1e-5
        self.cons = Constraints.of(problem)
        self.leaf_problem = None if self.s != 1 else Problem(
            self.net, problem.domain, Objective(self.C[0], float(self.e[0]), "max"), problem.constraints)
        # the LP of a constrained node proves it empty (any row is a valid objective for that)
        self.lp_problem = None if self.cons is None else Problem(
            self.net, problem.domain, Objective(self.C[0], float(self.e[0]), "max"), problem.constraints)
        self.search: Search | None = None
        self.root_bounds = root_bounds
        self.stats: dict = {"leaf_mip": 0, "max_depth": 0, "seconds_bounding": 0.0, "seconds_branching": 0.0,
                            "seconds_primal": 0.0, "branching": settings.branching}
        if self.cons is not None:
            self.stats.update(node_lp=0, node_lp_empty=0, seconds_lp=0.0)
        if settings.branching in MIXED:
            self.stats.update(input_splits=0, relu_splits=0)

    # ------------------------------------------------------------------ incumbent
    def _primal(self, X: np.ndarray) -> None:
        """Offer candidate points, then sign-gradient steps from the best eight of them (the
        tracker keeps only feasible points; with constraints, see ``_constrained_steps``)."""
        t0 = time.perf_counter()
        X = np.clip(X, self.lo[0], self.hi[0])
        self.anytime.offer(X, "bab-relu:candidate")
        if self.cfg.grad_steps > 0 and self.cons is not None:
            self._constrained_steps(X)
        elif self.cfg.grad_steps > 0:
            f = np.min(self.net.forward(X) @ self.C.T + self.e, axis=1)
            Xg = X[np.argsort(-f)[:8]]
            step = 0.1 * (self.hi[0] - self.lo[0])
            for _ in range(self.cfg.grad_steps):
                j = np.argmin(self.net.forward(Xg) @ self.C.T + self.e, axis=1)
                Xg = np.clip(Xg + step * np.sign(self.net.gradient(Xg, self.C[j])), self.lo[0], self.hi[0])
                self.anytime.offer(Xg, "bab-relu:gradient")
                step = 0.5 * step
        self.stats["seconds_primal"] += time.perf_counter() - t0

    def _constrained_steps(self, X: np.ndarray) -> None:
        """Sign-gradient steps from the best eight points (feasible ones by value first, then the
        least violating): a feasible point steps up the objective, an infeasible one down its
        most violated constraint (a penalty step). Only feasible points are kept (``offer``)."""
        cons = self.cons
        assert cons is not None

        def rank(P):
            Y = self.net.forward(P)
            f = np.min(Y @ self.C.T + self.e, axis=1)
            viol = np.concatenate([Y @ cons.C.T - cons.e, P @ cons.A.T - cons.b], axis=1)
            worst = np.max(viol, axis=1, initial=-np.inf)
            return f, viol, worst, np.argmin(Y @ self.C.T + self.e, axis=1)

        f, _, worst, _ = rank(X)
        ok = worst <= FEASIBILITY_TOL
        Xg = X[np.lexsort((np.where(ok, -f, worst), ~ok))[:8]]
        step = 0.1 * (self.hi[0] - self.lo[0])
        k = cons.C.shape[0]
        for _ in range(self.cfg.grad_steps):
            _, viol, worst, j = rank(Xg)
            g = self.net.gradient(Xg, self.C[j])
            bad = worst > 0
            if np.any(bad):
                r = np.argmax(viol[bad], axis=1)
                g_out = self.net.gradient(Xg[bad], cons.C[np.minimum(r, max(k - 1, 0))]) if k else 0.0
                g_in = cons.A[np.maximum(r - k, 0)] if cons.A.shape[0] else 0.0
                g[bad] = -np.where((r < k)[:, None], g_out, g_in)
            Xg = np.clip(Xg + step * np.sign(g), self.lo[0], self.hi[0])
            self.anytime.offer(Xg, "bab-relu:gradient")
            step = 0.5 * step

    # ------------------------------------------------------------------ Strategy
    def batch_size(self, open_nodes: int, nodes_left: float) -> int:
        """Nodes popped per expansion (two children each). See `Strategy.batch_size`."""
        k = max(1, min(open_nodes, self.cfg.batch_size))
        if math.isfinite(nodes_left):
            k = max(1, min(k, int(nodes_left) // 2))
        return k

    # ------------------------------------------------------------------ tree
    def roots(self, search: Search) -> list[Node]:
        """Bound the root (alpha-CROWN neuron bounds, optimised slopes).

        Parameters
        ----------
        search : Search
            The run (its limits and node count).

        Returns
        -------
        list of Node
            The root if it is still open (else it has been retired or closed).
        """
        self.search = search
        t0 = time.perf_counter()
        splits = [np.zeros((1, n), dtype=np.int8) for n in self.net.hidden_sizes]
        initial = (self.root_bounds if self.root_bounds is not None
                   else compute_bounds(self.net, self.lo[0], self.hi[0], "crown"))
        if self.cfg.root_alpha and self.root_bounds is None:
            budget = min(search.limits.deadline, time.perf_counter() + 30.0) - time.perf_counter()
            initial = compute_bounds(self.net, self.lo[0], self.hi[0], "alpha-crown", initial=initial,
                                     time_limit=max(budget, 1e-3))
        lowers, uppers, empty = split_bounds(self.net, self.lo, self.hi, splits, (initial.lower, initial.upper))
        bd = lagrangian_bounds(self.net, self.lo, self.hi, lowers, uppers, splits, self.C, self.e,
                               steps=self.cfg.root_steps, lr=self.cfg.lr, cons=self.cons)
        self.stats["seconds_bounding"] += time.perf_counter() - t0
        search.nodes = 1
        X = np.concatenate([bd.x_star[0], 0.5 * (self.lo + self.hi),
                            self.rng.uniform(self.lo, self.hi, (32, self.lo.shape[1]))])
        self._primal(X)
        return self._children(self.lo, self.hi, splits, lowers, uppers, empty, bd, np.min(bd.upper, axis=1), [0])

    def expand(self, nodes: list[Node], search: Search) -> list[Node]:
        """Split one unstable neuron per node, bound both children in one batch, hand off leaves.
        See `Strategy.expand`."""
        parents = [n for n in nodes if isinstance(n, ReluNode)]
        plo, phi = np.array([n.lo for n in parents]), np.array([n.hi for n in parents])
        t0 = time.perf_counter()
        layer, neuron, worst = self._branch(parents, plo, phi)
        inp = np.zeros(len(parents), dtype=bool)
        if self.cfg.branching in MIXED:
            inp, dims = self._input_splits(parents, plo, phi, worst)
            layer = np.where(inp, -1, layer)          # -1: no ReLU split (the box is halved)
        self.stats["seconds_branching"] += time.perf_counter() - t0
        K = len(parents)
        kids = [n for n in parents for _ in range(2)]
        phase = np.tile(np.array([1, -1], dtype=np.int8), K)
        splits = self._child_splits(_stack(parents, "splits"), np.repeat(layer, 2), np.repeat(neuron, 2), phase)
        t0 = time.perf_counter()
        if inp.any():       # input children: CROWN from the first hidden layer on (a new box)
            lo, hi = halve(plo, phi, dims, inp)
            rows = np.repeat(inp, 2)
            relu_start = int(layer[~inp].min()) + 1 if (~inp).any() else 1
            lowers, uppers, empty = grouped_split_bounds(self.net, lo, hi, splits, stack_prior(kids),
                                                         [(np.nonzero(~rows)[0], relu_start),
                                                          (np.nonzero(rows)[0], 1)])
        else:
            lo, hi = np.repeat(plo, 2, axis=0), np.repeat(phi, 2, axis=0)
            lowers, uppers, empty = split_bounds(self.net, lo, hi, splits, stack_prior(kids),
                                                 start=int(layer.min()) + 1)
        bd = lagrangian_bounds(self.net, lo, hi, lowers, uppers, splits, self.C, self.e,
                               _stack(kids, "alpha"), _stack(kids, "beta"), steps=self.cfg.steps, lr=self.cfg.lr,
                               cons=self.cons, mu=_stack_mult(kids, "mu"), nu=_stack_mult(kids, "nu"))
        self.stats["seconds_bounding"] += time.perf_counter() - t0
        search.nodes += 2 * K
        # a child's maximum is at most its parent's
        parent = np.array([n.bound for n in kids])
        ub = np.minimum(np.min(bd.upper, axis=1), parent)
        self._primal(bd.x_star.reshape(-1, lo.shape[1]))
        stalled = ub >= parent - 1e-6 * (1 + np.abs(parent))
        return self._children(lo, hi, splits, lowers, uppers, empty, bd, ub, [n.depth + 1 for n in kids], stalled)

    @staticmethod
    def _child_splits(splits, layer, neuron, phase) -> list[np.ndarray]:
        out = [np.repeat(S, 2, axis=0) for S in splits]
        for j, S in enumerate(out):
            rows = np.nonzero(layer == j)[0]
            S[rows, neuron[rows]] = phase[rows]
        return out

    def _children(self, lo, hi, splits, lowers, uppers, empty, bd: Bounded, ub, depths, stalled=None) -> list[Node]:
        assert self.search is not None
        frontier = self.search.frontier
        unstable = sum(((L < 0) & (U > 0)).sum(axis=1) for L, U in zip(lowers, uppers, strict=True))
        best_row = np.argmin(bd.upper, axis=1)
        out: list[Node] = []
        for i in range(len(depths)):
            if empty[i]:
                frontier.retire(-math.inf, EMPTY)
                continue
            self.stats["max_depth"] = max(self.stats["max_depth"], depths[i])
            r = best_row[i]
            node = ReluNode(lo[i].copy(), hi[i].copy(), float(ub[i]), stored_prior(lowers, uppers, i), depths[i],
                            [S[i].copy() for S in splits], [a[i].astype(np.float32) for a in bd.alpha],
                            [b[i].astype(np.float32) for b in bd.beta],
                            [lh[i, r].astype(np.float32) for lh in bd.lam_h], int(unstable[i]),
                            None if bd.mu is None else bd.mu[i].copy(), None if bd.nu is None else bd.nu[i].copy())
            if node.bound <= self.threshold():
                frontier.retire(node.bound, PRUNED)
            elif self.cons is not None and self._lp_settles(node, stalled is not None and bool(stalled[i])):
                continue
            elif node.unstable <= self.cfg.leaf_unstable and self._try_leaf(node):
                continue
            elif node.unstable == 0:
                frontier.retire(node.bound, FROZEN)
            else:
                out.append(node)
        return out

    def _lp_settles(self, node: ReluNode, stalled: bool) -> bool:
        """The node's LP (``leaf.node_lp``) on a constrained problem, where it matters: while there
        is no incumbent, on a node with no unstable neuron left (the LP is exact there), or when
        the Lagrangian bound stalled (at most a quarter of the run's time). True if the node left
        the frontier: proven empty by an ``infeasible`` status, or pruned by the LP's bound."""
        assert self.search is not None and self.lp_problem is not None
        if not (self.anytime.value is None or node.unstable == 0
                or (stalled and self.stats["seconds_lp"] <= 0.25 * self.search.elapsed)):
            return False
        t0 = time.perf_counter()
        got = node_lp(self.lp_problem, node.lo, node.hi, node.prior, deadline=self.search.limits.deadline,
                      should_stop=self.search.limits.should_stop, inactive=[S < 0 for S in node.splits])
        self.stats["seconds_lp"] += time.perf_counter() - t0
        if got is None or got.bound is None:
            return False
        self.stats["node_lp"] += 1
        if got.bound == -math.inf:
            self.stats["node_lp_empty"] += 1
            self.search.frontier.retire(-math.inf, EMPTY)
            return True
        if got.point is not None:
            self.anytime.offer(got.point[None, :], "bab-relu:node-lp")
        node.bound = min(node.bound, got.bound)     # row 0's LP bounds the min over the rows too
        if node.bound <= self.threshold():
            self.search.frontier.retire(node.bound, PRUNED)
            return True
        return False

    def _try_leaf(self, node: ReluNode) -> bool:
        """The MIP on the node's neuron bounds (its splits fix those phases); True if it closed
        the node (its bound then counts in the certified bound)."""
        assert self.search is not None
        if not (self.cfg.leaf_mip and self.leaf_problem is not None and self.handoff_fits):
            return False
        got = run_leaf(self, node, self.anytime.offer, "bab-relu:leaf-mip", inactive=[S < 0 for S in node.splits])
        if got is None or got.bound is None:
            return False
        node.bound = min(node.bound, got.bound)
        if not got.closed:
            return False
        self.search.frontier.retire(node.bound, CLOSED)
        return True

    # ------------------------------------------------------------------ branching
    def _scores(self, nodes: list[ReluNode]):
        """Per hidden layer (K, n_j): the intercept score (BaBSR) and the magnitude score, -inf
        on neurons that cannot be split."""
        assert nodes[0].prior is not None
        lowers = [np.array([n.prior[0][j] for n in nodes], dtype=np.float64)  # type: ignore[index]
                  for j in range(len(nodes[0].splits))]
        uppers = [np.array([n.prior[1][j] for n in nodes], dtype=np.float64)  # type: ignore[index]
                  for j in range(len(nodes[0].splits))]
        lams = _stack(nodes, "lam")
        sc1, sc2 = [], []
        for L, U, lam in zip(lowers, uppers, lams, strict=True):
            ok = (L < 0) & (U > 0)
            width = np.where(ok, U - L, 1.0)
            inter = np.maximum(lam, 0) * U * (-L) / width
            mag = np.abs(lam) * np.minimum(U, -L)
            sc1.append(np.where(ok, inter + 1e-6 * mag, -np.inf))
            sc2.append(np.where(ok, mag, -np.inf))
        return sc1, sc2

    def _input_splits(self, nodes: list[ReluNode], lo, hi, relu_worst) -> tuple[np.ndarray, np.ndarray]:
        """Combined splitting (``MIXED``): which nodes halve an input, and the dimension."""
        prior = stack_prior(nodes)
        assert prior is not None
        lam0 = np.array([n.lam[0] for n in nodes], dtype=np.float64)
        dims, worst, par = input_split_scores(self.net, lo, hi, prior, _stack(nodes, "splits"), self.C, self.e,
                                              _stack(nodes, "alpha"), _stack(nodes, "beta"), lam0,
                                              self.hi[0] - self.lo[0])
        inp = choose_input(par - worst, par - relu_worst, MIXED[self.cfg.branching])
        self.stats["input_splits"] += int(inp.sum())
        self.stats["relu_splits"] += int((~inp).sum())
        return inp, dims

    def _branch(self, nodes: list[ReluNode], lo, hi) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The (layer, neuron) to split per node, by ``babsr`` or ``fsb``, and the chosen split's
        score (its worse child's estimate; ``inf`` for ``babsr``)."""
        sc1, sc2 = self._scores(nodes)
        sizes = np.cumsum([0, *self.net.hidden_sizes])
        flat1, flat2 = np.concatenate(sc1, axis=1), np.concatenate(sc2, axis=1)

        def locate(flat_idx):
            layer = np.searchsorted(sizes, flat_idx, side="right") - 1
            return layer, flat_idx - sizes[layer]

        if self.cfg.branching == "babsr" or self.cfg.fsb_k <= 1:
            return (*locate(np.argmax(flat1, axis=1)), np.full(len(nodes), np.inf))
        k = min(self.cfg.fsb_k, flat1.shape[1])
        cand = np.concatenate([np.argsort(-flat1, axis=1)[:, :k], np.argsort(-flat2, axis=1)[:, :k]], axis=1)
        K, c = cand.shape
        valid = np.isfinite(np.take_along_axis(flat1, cand, axis=1))
        layer, neuron = locate(cand.reshape(-1))
        # a score, not a bound: the parents' neuron bounds with the split neuron clamped
        # (no re-propagation), the parents' slopes and multipliers, no rounding
        prior = stack_prior(nodes)
        assert prior is not None
        child = estimate_splits(self.net, lo, hi, prior[0], prior[1], _stack(nodes, "splits"), self.C, self.e,
                                _stack(nodes, "alpha"), _stack(nodes, "beta"), layer.reshape(K, c),
                                neuron.reshape(K, c), self.cons, _stack_mult(nodes, "mu"), _stack_mult(nodes, "nu"))
        worst = np.where(valid, np.max(child, axis=2), np.inf)
        best = np.where(valid & np.isfinite(child[:, :, 0]) & np.isfinite(child[:, :, 1]), np.min(child, axis=2), 0.0)
        pick = np.argmin(worst + 1e-9 * best, axis=1)      # the lowest worse child; ties: lower better child
        chosen = cand[np.arange(K), pick]
        return (*locate(chosen), worst[np.arange(K), pick])
