"""The exact phase of ``verify``: complete methods on the pairs the fast paths leave open.

Three methods, chosen by ``verify`` (the splitting rule, ``methods.portfolio.exact_method``):
input-space branch and bound (``methods.bab``), per pair and, for boxes with several open
disjuncts, one shared splitting tree (``search.disjuncts``); ReLU-split branch and bound
(``methods.bab_relu``) per pair; or the big-M MIP with an epigraph column
``t <= e_j - C_j y``, solved by any MILP back-end of ``milp.backends`` (HiGHS by default).
Each stops at the threshold 0 either way: a
counterexample (confirmed by a forward pass) or a certified bound below 0 (the pair is
closed). A solver run that fails proves nothing: the pair stays open.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from ..bounds import LayerBounds
from ..methods.bab import run_input_split
from ..milp.backends import ERROR, Backend
from ..network import Network
from ..parallel import blas_threads
from ..result import INTERRUPTED, TIME_LIMIT
from ..search import Limits, Search
from ..tracker import Anytime
from .falsify import Pair, confirm, confirm_many, margin_problem

#: A MIP dual bound proves a pair impossible only below ``-MIP_UNSAT_TOL * (1 + scale)``,
#: with ``scale`` the magnitude of the margins on the box: MILP solvers work with
#: feasibility tolerances of about 1e-6, so their bound is not exact to the last digit.
MIP_UNSAT_TOL = 1e-6

#: With several open pairs, the first round of exact runs gives each this fraction of a
#: fair share of the time (see ``run_exact``).
FIRST_ROUND_FRACTION = 0.5

#: ReLU splitting works on all open pairs in turn, each resuming its own tree, for slices of
#: the time left divided by ``SLICES_PER_PAIR`` times the open pairs (at least
#: ``MIN_SLICE`` seconds): no tree is restarted, so the time the easy pairs do not need goes
#: to the hardest, and a pair with a counterexample is not kept waiting behind the others.
SLICES_PER_PAIR = 4
MIN_SLICE = 1.0

#: ``report(phase, **extra)``: progress of the verification (see ``verify``).
Report = Callable[..., None]


def run_exact(network: Network, pairs: list[Pair], crown: dict[int, LayerBounds], backend: Backend | None,
              deadline: float, seed: int, report: Report, stats: dict, relu: bool = False,
              alpha: set[int] | None = None) -> None:
    """Run the complete method on the open pairs until all are closed or time is up.

    Branch and bound (``backend`` None): round 0 runs it per pair (most promising margin
    first) with ``FIRST_ROUND_FRACTION`` of a fair share each when several pairs are open or
    the only one has a single atom; then each box with pairs still open gets one shared
    splitting tree (``search.disjuncts``: plain CROWN bounds, but one tree for all disjuncts, and
    on single-atom disjuncts often faster than the Lagrangian bound); then per-pair rounds
    share what is left (closest to a proof first). Each run starts from scratch. ReLU
    splitting (``relu``): ``relu_rounds``, one resumed tree per pair. MIP (``backend``
    given): per-pair rounds.

    Parameters
    ----------
    network : Network
    pairs : list of Pair
        All pairs of the property; open ones are worked on, updated in place.
    crown : dict
        Box index -> its hidden-layer bounds (``LayerBounds``), for the MIP's big-M values.
    backend : Backend or None
        The MILP back-end of the MIP; None: branch and bound.
    deadline : float
        ``time.perf_counter()`` value to stop at.
    seed : int
        Seed of branch and bound.
    report : callable
        ``report(phase, **extra)`` progress.
    stats : dict
        Gets ``exact_method`` and one ``exact_runs`` entry per run.
    relu : bool, default False
        Branch and bound splits ReLU phases (``bab-relu``) instead of the input box.
    alpha : set of int, optional
        Boxes whose ``crown`` entry holds alpha-CROWN bounds: their ReLU-split trees start
        from them instead of computing their own.

    Raises
    ------
    Found
        A counterexample was confirmed.
    """
    bab = backend is None and not relu
    name = "mip" if backend is not None else "bab-relu" if relu else "bab"
    stats["exact_method"] = name
    runs = stats.setdefault("exact_runs", [])
    if relu and backend is None:
        relu_rounds(network, pairs, deadline, seed, report, runs, {b: crown[b] for b in alpha or ()})
        return
    for rnd in range(1000):
        todo = [p for p in pairs if not p.closed_by]
        if not todo:
            return
        if rnd == 1 and bab:
            split_boxes(network, pairs, deadline, report, runs)
            todo = [p for p in pairs if not p.closed_by]
            if not todo:
                return
        if rnd == 0:
            todo.sort(key=lambda p: -p.best_margin)
        else:
            todo.sort(key=lambda p: p.upper)
        # round 0 keeps time for the shared tree when it may pay: several pairs, or one
        # single-atom pair (where plain splitting is often as good as the Lagrangian bound)
        portfolio = bab and (len(todo) > 1 or todo[0].dj.C.shape[0] == 1)
        fraction = FIRST_ROUND_FRACTION if rnd == 0 and portfolio else 1.0
        for k, p in enumerate(todo):
            remaining = deadline - time.perf_counter()
            if remaining <= 0.05:
                return
            share = remaining / (len(todo) - k) * fraction
            label = f"{name} pair {k + 1}/{len(todo)}" + (f" round {rnd + 1}" if rnd else "")
            report(label, box=p.box, disjunct=p.index, time_limit=share)
            t0 = time.perf_counter()
            if backend is None:
                outcome = run_bab(network, p, share, seed, _bab_progress(report, label, p))
            else:
                outcome = run_mip(network, p, crown[p.box], share, backend)
            runs.append({"box": p.box, "disjunct": p.index, "method": name, "round": rnd,
                         "seconds": time.perf_counter() - t0, "outcome": outcome})


class ReluTree:
    """One pair's ReLU-split tree (``search.relu_split``), resumable: each ``run`` goes on from
    the frontier the last one left.

    Parameters
    ----------
    network : Network
    p : Pair
        Its margin problem is searched, its best point is the first incumbent.
    seed : int
    root_bounds : LayerBounds or None
        Neuron bounds valid on the pair's box (``verify``'s alpha-CROWN); None: the tree's
        root computes its own.
    """

    def __init__(self, network: Network, p: Pair, seed: int, root_bounds: LayerBounds | None = None) -> None:
        from ..search.relu_split import ReluSettings, ReluSplit

        problem = margin_problem(network, p.lb, p.ub, p.dj)
        self.anytime = Anytime(problem, "bab-relu")
        if p.best_x is not None:
            self.anytime.offer(p.best_x[None, :], "incumbent")
        settings = ReluSettings(abs_gap=0.0, rel_gap=0.0, stop_above=0.0, stop_below=0.0)
        self.strategy = ReluSplit(problem, self.anytime, settings, seed, root_bounds=root_bounds)
        self.search: Search | None = None

    def run(self, time_limit: float, progress: Callable[[dict], None] | None = None) -> tuple[str, float, int]:
        """Search for ``time_limit`` more seconds (or until the pair is decided).

        Parameters
        ----------
        time_limit : float
            Seconds.
        progress : callable, optional
            Receives the search's progress dicts.

        Returns
        -------
        tuple
            The search's status, its certified bound of the margin, and its nodes so far.
        """
        deadline = time.perf_counter() + time_limit
        with blas_threads(1):
            if self.search is None:
                self.search = Search(Limits(deadline), progress)
                status = self.search.run(self.strategy, self.strategy.roots(self.search))
            else:
                self.search.limits.deadline, self.search.progress = deadline, progress
                status = self.search.run(self.strategy, [])
        return status, self.search.bound(), self.search.nodes


def relu_rounds(network: Network, pairs: list[Pair], deadline: float, seed: int, report: Report,
                runs: list, root_bounds: dict[int, LayerBounds] | None = None) -> None:
    """ReLU splitting on the open pairs in turn, each resuming its own tree (``ReluTree``).

    Each pass visits the open pairs closest to a proof first (smallest certified bound); each
    visit gets the time left divided by ``SLICES_PER_PAIR`` times the open pairs (at least
    ``MIN_SLICE``). A pair closes when its bound drops below 0; a point with margin >= 0 is
    confirmed by a forward pass and ends the search.

    Parameters
    ----------
    network : Network
    pairs : list of Pair
        All pairs; the open ones are worked on, updated in place.
    deadline : float
        ``time.perf_counter()`` value to stop at.
    seed : int
    report : callable
        ``report(phase, **extra)`` progress.
    runs : list
        Gets one entry per visit.
    root_bounds : dict, optional
        Box index -> neuron bounds valid on it (alpha-CROWN), shared by the trees of its pairs.

    Raises
    ------
    Found
        A counterexample was confirmed.
    """
    trees: dict[int, ReluTree] = {}
    spent: set[int] = set()     # searched to the end without a proof (e.g. frozen nodes): no use going on
    for rnd in range(100000):
        todo = sorted((p for p in pairs if not p.closed_by and id(p) not in spent), key=lambda p: p.upper)
        if not todo:
            return
        for k, p in enumerate(todo):
            remaining = deadline - time.perf_counter()
            if remaining <= 0.05:
                return
            n_open = sum(1 for q in pairs if not q.closed_by and id(q) not in spent)
            share = min(remaining, max(MIN_SLICE, remaining / (SLICES_PER_PAIR * n_open)))
            label = f"bab-relu pair {k + 1}/{len(todo)}" + (f" pass {rnd + 1}" if rnd else "")
            report(label, box=p.box, disjunct=p.index, time_limit=share)
            t0 = time.perf_counter()
            tree = trees.get(id(p))
            if tree is None:
                tree = trees[id(p)] = ReluTree(network, p, seed, (root_bounds or {}).get(p.box))
            status, bound, nodes = tree.run(share, _bab_progress(report, label, p))
            if tree.anytime.x is not None:
                confirm(network, p, np.asarray(tree.anytime.x, dtype=np.float64)[None, :], "bab-relu")
            if math.isfinite(bound):
                p.upper = min(p.upper, float(bound))
                if bound < 0:
                    p.closed_by = "bab-relu"
                    status = "unsat"
            if p.closed_by or status not in (TIME_LIMIT, INTERRUPTED):
                trees.pop(id(p), None)      # decided, or nothing left to search: free the tree
                spent.add(id(p))
            runs.append({"box": p.box, "disjunct": p.index, "method": "bab-relu", "round": rnd, "nodes": nodes,
                         "seconds": time.perf_counter() - t0, "outcome": status})


def split_boxes(network: Network, pairs: list[Pair], deadline: float, report: Report, runs: list) -> None:
    """One shared input-splitting tree (``search.disjuncts``) per box with open disjuncts.

    Each box gets time in proportion to its open pairs.

    Parameters
    ----------
    network : Network
    pairs : list of Pair
        All pairs; the open ones are worked on, updated in place.
    deadline : float
        ``time.perf_counter()`` value to stop at.
    report : callable
        ``report(phase, **extra)`` progress.
    runs : list
        Gets one entry per tree.

    Raises
    ------
    Found
        A counterexample was confirmed.
    """
    from ..search.disjuncts import split_disjuncts

    by_box: dict[int, list[Pair]] = {}
    for p in pairs:
        if not p.closed_by:
            by_box.setdefault(p.box, []).append(p)
    groups = list(by_box.values())
    n_open = sum(1 for p in pairs if not p.closed_by)
    for g in groups:
        remaining = deadline - time.perf_counter()
        if remaining <= 0.05:
            return
        share = remaining * len(g) / n_open
        n_open -= len(g)
        label = f"split box {g[0].box} ({len(g)} disjuncts)"
        report(label, time_limit=share)
        t0 = time.perf_counter()

        def on_points(X, g=g):
            confirm_many(network, g, X, "bab-split")

        def show(info, label=label):
            report(label, **info)

        out = split_disjuncts(network, g[0].lb, g[0].ub, [p.dj for p in g],
                              deadline=time.perf_counter() + share, on_points=on_points, progress=show)
        for p, u in zip(g, out.upper, strict=True):
            p.upper = min(p.upper, float(u))
            if out.status == "unsat" and u < 0:
                p.closed_by = "bab-split"
        runs.append({"box": g[0].box, "disjuncts": len(g), "method": "bab-split", "nodes": out.nodes,
                     "seconds": time.perf_counter() - t0, "outcome": out.status})


def _bab_progress(report: Report, label: str, p: Pair) -> Callable[[dict], None]:
    """Forward branch and bound's node counts (its incumbent and bound are this pair's)."""
    def show(info: dict) -> None:
        extra = {k: info[k] for k in ("nodes", "open", "nodes_per_s") if k in info}
        if info.get("incumbent") is not None:
            extra["incumbent"] = max(p.best_margin, info["incumbent"])
        report(label, **extra)
    return show


def run_bab(network: Network, p: Pair, time_limit: float, seed: int,
            progress: Callable[[dict], None] | None = None) -> str:
    """Branch and bound on ``max min_j (e_j - C_j y)`` over the pair's box.

    No gap tolerance: only the threshold 0 decides (a gap straddling 0 proves nothing), and
    the run stops at 0 either way.

    Parameters
    ----------
    network : Network
    p : Pair
        Updated in place (best point, certified upper bound, ``closed_by``).
    time_limit : float
        Seconds.
    seed : int
    progress : callable, optional
        Receives branch and bound's progress dicts.
    Returns
    -------
    str
        ``unsat`` when the pair was closed, else branch and bound's status.

    Raises
    ------
    Found
        Branch and bound's point is a counterexample.
    """
    problem = margin_problem(network, p.lb, p.ub, p.dj)
    anytime = Anytime(problem, "bab")
    if p.best_x is not None:
        anytime.offer(p.best_x[None, :], "incumbent")
    out = run_input_split(problem, anytime, time_limit=time_limit, stop_above=0.0, stop_below=0.0,
                          abs_gap=0.0, rel_gap=0.0, progress=progress, seed=seed)
    if out.x is not None:
        confirm(network, p, np.asarray(out.x, dtype=np.float64), "bab")
    bound = out.bound
    if bound is not None and math.isfinite(bound):
        p.upper = min(p.upper, float(bound))
        if bound < 0:
            p.closed_by = "bab"
            return "unsat"
    return str(out.status)


def run_mip(network: Network, p: Pair, bounds: LayerBounds, time_limit: float, backend: Backend) -> str:
    """The big-M MIP with an epigraph column ``t <= e_j - C_j y``; maximise ``t``.

    Only the sign of the optimum matters, so ``t`` is bounded below by ``-tol``: the solver
    then prunes every node whose bound is below ``-tol`` (a cut-off) instead of searching
    for the true optimum, and infeasibility of this model (or a dual bound below ``-tol``)
    proves every margin below ``-tol``. Stops as soon as that is certain or an incumbent's
    forward pass is a counterexample. A dual bound seen during the run only stops it; the
    proof is the final, status-checked answer.

    Parameters
    ----------
    network : Network
    p : Pair
        Updated in place (best point, certified upper bound, ``closed_by``).
    bounds : LayerBounds
        Neuron bounds on the pair's box (big-M values).
    time_limit : float
        Seconds.
    backend : Backend
        The MILP solver (``milp.backends.get_backend``).

    Returns
    -------
    str
        ``unsat`` when the pair was closed, ``unknown`` when the model is badly scaled or
        the run failed, else the solver's status.

    Raises
    ------
    Found
        An incumbent is a counterexample.
    """
    from ..milp.formulation import build_network_model
    from ..problem import Domain

    model = build_network_model(network, Domain(p.lb, p.ub), bounds)
    C, e = p.dj.C, p.dj.e
    scale = float(np.max(np.abs(bounds.out_upper)) + np.max(np.abs(bounds.out_lower))
                  + np.max(np.abs(e), initial=0.0))
    tol = MIP_UNSAT_TOL * (1.0 + scale)
    t_col = model.add_columns([-tol], [max(p.upper, -tol)], cost=[1.0])[0]
    k = C.shape[0]
    rows = sp.lil_matrix((k, model.n_cols))
    rows[:, t_col] = 1.0
    rows[:, model.y_cols] = C
    model.add_rows(rows.tocsr(), -np.inf, e)
    start = None
    if p.best_x is not None and p.best_margin >= -tol:   # else not a point of this model
        start = model.point_to_columns(p.best_x)
        start[t_col] = min(p.best_margin, p.upper)
    found: list[np.ndarray] = []
    dual: list[float] = []

    def on_improvement(obj, values):
        if obj >= -tol and len(values) == model.n_cols:
            x = np.clip(model.columns_to_point(values), p.lb, p.ub)
            if p.dj.holds(network.forward(x[None, :]))[0]:
                found.append(x)

    def on_progress(primal, dual_bound, nodes):
        if dual_bound < -tol:
            dual.append(dual_bound)

    if model.scaling_issue() is not None:   # the solver's answer would prove nothing
        return "unknown"
    out = backend.solve(model, time_limit=time_limit, mip_start=start, on_improvement=on_improvement,
                        on_progress=on_progress, should_stop=lambda: bool(found or dual))
    if found:
        confirm(network, p, np.array(found), "mip")
    if out.values is not None:
        confirm(network, p, model.columns_to_point(out.values)[None, :], "mip")
    if out.status == ERROR:   # a failed run proves nothing, whatever its callbacks saw
        return "unknown"
    # every point with margin >= -tol is feasible here (t is only cut off below -tol), so
    # infeasibility or a dual bound below -tol proves all margins < -tol; a bound seen
    # during the run counts only when the run ended with a bound of its own (not abandoned)
    if out.status == "infeasible" or (out.bound is not None and (dual or out.bound < -tol)):
        p.upper = min(p.upper, -tol)
        p.closed_by = "mip"
        return "unsat"
    if out.bound is not None and math.isfinite(out.bound):
        p.upper = min(p.upper, max(out.bound, -tol) + tol)
    return out.status

