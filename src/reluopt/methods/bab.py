"""``method="bab"``: certified global optima by input-space branch and bound.

``bab_maximize_min`` maximises ``f(x) = min_j (C_j . y(x) + e_j)`` over a box (one row is a
plain linear objective; several rows are, e.g., the margins of a VNN-LIB disjunct), optionally
subject to ``A x <= b`` and output constraints ``C_out y <= e_out``. The search is the shared
engine of ``reluopt.search`` with the ``InputSplit`` strategy (bounding, branching, leaves:
see ``reluopt.search.input_split``); the incumbent, bound and history live in one ``Anytime``
tracker. ``solve_bab`` runs it on a ``Problem``.

Soundness: every bound comes from CROWN with outward rounding, input-constraint and
Lagrangian terms are concretised the same way, a leaf MIP counts only when its run ends in a
trusted status, and a box that reaches ``min_width`` undecided keeps its bound in the answer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..certificate import certified_method
from ..errors import ProblemError
from ..network import Network
from ..parallel import blas_threads
from ..problem import Domain, MaxMin, OutputConstraints, Problem
from ..result import (
    ABS_GAP,
    FEASIBLE,
    INFEASIBLE,
    NO_SOLUTION,
    OPTIMAL,
    REL_GAP,
    STATUSES,
    TIME_LIMIT,
    Result,
    interruptible,
)
from ..search import ABOVE, BELOW, BRANCHING, InputSplit, Limits, Search, Settings
from ..search.cluster import active as active_cluster
from ..search.distributed import StrategyFactory, run_search
from ..tracker import Anytime
from .region import RegionLP

__all__ = ["ABOVE", "BELOW", "BRANCHING", "BabOutcome", "bab_maximize_min", "solve_bab"]


@dataclass
class BabOutcome:
    """Result of ``bab_maximize_min``, in max sense.

    Parameters
    ----------
    x : ndarray or None
        The best point found (forward-checked, feasible within ``FEASIBILITY_TOL``).
    value : float or None
        ``f(x)`` by a forward pass.
    bound : float
        Certified upper bound of ``max f`` (``-inf``: no feasible point).
    status : str
        ``optimal``, ``infeasible``, ``feasible``, ``no_solution``, ``time_limit``,
        ``node_limit``, ``interrupted``, or ``above``/``below`` (a caller's threshold).
    nodes : int
        Boxes bounded.
    history : list of tuple
        ``(seconds, incumbent, bound, source)`` at each improvement.
    stats : dict
        Counters and timings of the search.
    """

    x: np.ndarray | None
    value: float | None
    bound: float
    status: str
    nodes: int
    history: list[tuple[float, float | None, float | None, str]] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


def run_input_split(problem: Problem, anytime: Anytime, *, time_limit: float | None = None,
                    node_limit: int | None = None, abs_gap: float = ABS_GAP, rel_gap: float = REL_GAP,
                    stop_above: float | None = None, stop_below: float | None = None, progress=None,
                    seed: int = 0, threads: int | None = 1, should_stop=None, **options) -> BabOutcome:
    """Input-space branch and bound on ``problem``, tracked by ``anytime``.

    Parameters
    ----------
    problem : Problem
        Bounded box, objective rows (``problem.rows()``), optional constraints.
    anytime : Anytime
        Receives every incumbent and certified bound (user sense).
    time_limit, node_limit : float, int or None
        Limits (None: none).
    abs_gap, rel_gap : float
        Stop when the incumbent is within these of the certified bound.
    stop_above, stop_below : float or None
        Stop at a point with value >= ``stop_above`` or a certified bound < ``stop_below``
        (max form).
    progress : callable or None
        Receives the search's progress dicts (nodes, open, bound, incumbent, ...).
    seed : int
    threads : int or None
        BLAS threads during the run (small matrices: 1 is fastest).
    should_stop : callable or None
        Polled once per batch (Ctrl-C).
    **options
        ``Settings`` fields: ``batch_size``, ``branching``, ``grad_steps``, ``mult_steps``,
        ``region_steps``, ``slope_steps``, ``min_width``, ``leaf_mip``, ``leaf_unstable``.

    Returns
    -------
    BabOutcome
        In max form.
    """
    return run_strategy(problem, anytime, "bab", Settings,
                        StrategyFactory(InputSplit, problem, anytime, seed, {"region_lp": RegionLP}),
                        time_limit=time_limit, node_limit=node_limit, abs_gap=abs_gap, rel_gap=rel_gap,
                        stop_above=stop_above, stop_below=stop_below, progress=progress, threads=threads,
                        should_stop=should_stop, **options)


def run_strategy(problem: Problem, anytime: Anytime, name: str, settings_type: type,
                 make_strategy: Callable[[Any], Any], *, time_limit: float | None, node_limit: int | None,
                 abs_gap: float, rel_gap: float, stop_above: float | None, stop_below: float | None, progress,
                 threads: int | None, should_stop, cluster=None, **options) -> BabOutcome:
    """Run a branch-and-bound strategy on the search engine and report it as a ``BabOutcome``.

    Shared by ``bab`` (input splitting) and ``bab-relu`` (ReLU splitting): option checking,
    limits, BLAS threads and the outcome's statistics are the same for every strategy.

    Parameters
    ----------
    problem : Problem
    anytime : Anytime
        The run's tracker (the strategy offers points and bounds to it).
    name : str
        The method's name, for error messages.
    settings_type : type
        The strategy's settings dataclass (with ``abs_gap``, ``rel_gap``, ``stop_above``,
        ``stop_below`` fields); ``options`` fill its other fields.
    make_strategy : callable
        ``make_strategy(settings)`` returns the strategy (with ``roots(search)`` and ``stats``); a
        ``search.distributed.StrategyFactory`` can also run on a cluster.
    time_limit, node_limit, abs_gap, rel_gap, stop_above, stop_below, progress, threads, should_stop
        As in ``run_input_split``.
    cluster : search.cluster.Cluster or None
        Farm the open frontier out to this Dask cluster once the warm-up is over (default: the
        active ``search.cluster.scope``'s, if any).
    **options
        Settings fields.

    Returns
    -------
    BabOutcome
        In max form.
    """
    fixed = {"abs_gap", "rel_gap", "stop_above", "stop_below"}
    valid = {f.name for f in dataclasses.fields(settings_type)} - fixed
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ProblemError(f"unknown {name} option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    strategy = make_strategy(settings_type(abs_gap=float(abs_gap), rel_gap=float(rel_gap), stop_above=stop_above,
                                           stop_below=stop_below, **options))
    search = Search(Limits.of(time_limit, node_limit, should_stop), progress)
    cluster = cluster if cluster is not None else active_cluster()
    with blas_threads(threads):
        if cluster is None:
            status = search.run(strategy, strategy.roots(search))
        elif isinstance(make_strategy, StrategyFactory):
            roots = strategy.roots(search)
            status = run_search(search, strategy, roots, cluster, make_strategy.spec(strategy.cfg))
        else:
            raise ProblemError(f"{name} cannot run on a Dask cluster")
    counts = search.frontier.counts
    stats = {**strategy.stats, "pruned": counts["pruned"], "infeasible": counts["infeasible"],
             "frozen": counts["frozen"], "closed": counts["closed"], "batches": search.batches,
             "open_nodes": len(search.frontier), "seconds": search.elapsed,
             "nodes_per_s": search.nodes / max(search.elapsed, 1e-9)}
    value = None if anytime.value is None else problem.objective.sign * anytime.value
    return BabOutcome(anytime.x, value, search.bound(), status, search.nodes, list(anytime.history), stats)


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
                     leaf_mip: bool = True, leaf_unstable: int = 12, threads: int | None = 1,
                     slope_steps: int = Settings.slope_steps,
                     should_stop=None) -> BabOutcome:
    """Maximise ``min_j (C_j . y(x) + e_j)`` over the box ``[lb, ub]`` by branch and bound.

    Parameters
    ----------
    network : Network
    lb, ub : array_like, shape (d,)
        A bounded, non-empty box.
    C, e : array_like, shapes (s, m) and (s,)
        The objective rows.
    time_limit, node_limit : float, int or None
        Limits (None: none).
    abs_gap, rel_gap : float
        Stop when the incumbent is within these of the certified bound.
    stop_above, stop_below : float or None
        Stop as soon as a point with value >= ``stop_above`` is found (status ``'above'``), or
        as soon as the certified bound is < ``stop_below`` (status ``'below'``).
    incumbent : array_like or None
        A starting point (clipped to the box, forward-checked).
    progress : callable or None
        Receives progress dicts (nodes, open, nodes_per_s, bound, incumbent).
    seed : int
    batch_size : int
        About this many boxes are bounded per batched pass.
    branching : str
        One of ``BRANCHING`` (``smear`` is an alias of ``lambda``).
    out_C, out_e : array_like or None
        Output constraints ``out_C y <= out_e``.
    A, b : array_like or None
        Input constraints ``A x <= b``.
    grad_steps, mult_steps, region_steps : int
        Sign-gradient steps per batch, multiplier steps per node, region LPs per improvement.
    min_width : float
        Boxes narrower than this (relative to the root, in every dimension) are frozen.
    leaf_mip : bool
        Hand nodes whose MIP has at most ``leaf_unstable`` binaries to the MIP.
    leaf_unstable : int
    slope_steps : int
        Projected steps per node on the objective rows' lower ReLU slopes (0: fixed slopes).
    threads : int or None
        BLAS threads during the run (small matrices: 1 is fastest).
    should_stop : callable or None
        Polled once per batch; True stops with status ``interrupted``.

    Returns
    -------
    BabOutcome
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
    cons = None
    if out_C is not None:
        cons = OutputConstraints(*_as_rows(out_C, out_e, network.output_dim, "output constraints"))
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
    problem = Problem(network, Domain(lb, ub, A, b), MaxMin(C, e), cons)
    anytime = Anytime(problem, "bab")
    if incumbent is not None:
        anytime.offer(np.asarray(incumbent, dtype=np.float64).reshape(1, -1), "incumbent")
    return run_input_split(problem, anytime, time_limit=time_limit, node_limit=node_limit, abs_gap=abs_gap,
                           rel_gap=rel_gap, stop_above=stop_above, stop_below=stop_below, progress=progress,
                           seed=seed, threads=threads, should_stop=should_stop, batch_size=batch_size,
                           branching=branching, grad_steps=grad_steps, mult_steps=mult_steps,
                           region_steps=region_steps, min_width=min_width, leaf_mip=leaf_mip,
                           leaf_unstable=leaf_unstable, slope_steps=slope_steps)


@certified_method
def solve_bab(problem: Problem, *, time_limit: float | None = None, seed: int = 0, progress=None,
              incumbent=None, node_limit: int | None = None, abs_gap: float = ABS_GAP,
              rel_gap: float = REL_GAP, **options) -> Result:
    """``method="bab"``: certified optimum of ``problem`` by input-space branch and bound.

    Parameters
    ----------
    problem : Problem
        Bounded box; a linear or ``MaxMin`` objective; optional constraints.
    time_limit, node_limit : float, int or None
    seed : int
    progress : callable or None
        Receives progress dicts (incumbent, bound, gap, nodes, open, nodes_per_s).
    incumbent : array_like or None
        A warm start (credited to ``incumbent`` in the history).
    abs_gap, rel_gap : float
    **options
        Search settings: ``batch_size``, ``branching``, ``grad_steps``, ``mult_steps``,
        ``region_steps``, ``slope_steps``, ``min_width``, ``leaf_mip``, ``leaf_unstable``, ``threads``.

    Returns
    -------
    Result
    """
    return solve_by_search(problem, "bab", run_input_split, time_limit=time_limit, seed=seed, progress=progress,
                           incumbent=incumbent, node_limit=node_limit, abs_gap=abs_gap, rel_gap=rel_gap, **options)


def solve_by_search(problem: Problem, name: str, runner: Callable[..., BabOutcome], *, time_limit: float | None,
                    seed: int, progress, incumbent, node_limit: int | None, abs_gap: float, rel_gap: float,
                    **options) -> Result:
    """A ``Result`` from a branch-and-bound runner (``run_input_split``, ``run_relu_split``).

    The parts every search method shares: the bounded-box and objective checks, the tracker
    with node counts in its progress reports, the warm start, Ctrl-C, and the final status
    (never ``optimal`` without a point, never ``infeasible`` with one).

    Parameters
    ----------
    problem : Problem
    name : str
        The method's name (in the Result and its messages).
    runner : callable
        ``runner(problem, anytime, time_limit=, node_limit=, abs_gap=, rel_gap=, progress=, seed=,
        should_stop=, **options)`` returning a ``BabOutcome``.
    time_limit, seed, progress, incumbent, node_limit, abs_gap, rel_gap
        As in ``solve_bab``.
    **options
        Passed to ``runner``.

    Returns
    -------
    Result
    """
    dom = problem.domain
    dom.require_bounded(name)
    problem.rows()      # a clear error for an objective a search cannot take
    counts: dict = {}      # latest node counts, added to every progress report

    def report(info):
        progress({**info, **counts})

    anytime = Anytime(problem, name, time_limit, None if progress is None else report)
    if incumbent is not None:
        x0 = np.asarray(incumbent, dtype=np.float64).reshape(1, -1)
        if x0.shape[1] != dom.dim:
            raise ProblemError(f"incumbent has {x0.shape[1]} entries but the network has {dom.dim} inputs")
        anytime.offer(x0, "incumbent")

    def on_progress(info):
        counts.update(nodes=info["nodes"], open=info["open"], nodes_per_s=info["nodes_per_s"])
        anytime.report()

    with interruptible(anytime):
        out = runner(problem, anytime,
                     time_limit=None if math.isinf(anytime.time_limit) else max(anytime.remaining, 1e-3),
                     node_limit=node_limit, abs_gap=abs_gap, rel_gap=rel_gap, progress=on_progress, seed=seed,
                     should_stop=lambda: anytime.interrupted, **options)
    status = out.status if out.status in STATUSES else TIME_LIMIT
    if status == OPTIMAL and anytime.x is None:
        status = NO_SOLUTION
    if status == INFEASIBLE and anytime.x is not None:   # never claim infeasible with a point
        status = FEASIBLE
    return anytime.result(status, nodes=out.nodes, **out.stats)
