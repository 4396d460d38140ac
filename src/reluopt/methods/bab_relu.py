"""``method="bab-relu"``: certified global optima by branch and bound over ReLU phases.

The search is the shared engine of ``reluopt.search`` with the ``ReluSplit`` strategy
(beta-CROWN node bounds, BaBSR/FSB branching, leaf MIPs: see ``reluopt.search.relu_split``);
the incumbent, bound and history live in one ``Anytime`` tracker, as for ``bab``. It suits
networks with many inputs, where input splitting stalls.

Soundness: every node bound is a beta-CROWN bound that is valid for any slopes and
multipliers the optimiser leaves (proof in ``reluopt.search.relu_bounds``), rounded outward; a
leaf MIP counts only when it ends in a trusted status; a node that cannot be split further
keeps its bound in the answer.
"""

from __future__ import annotations

import math

import numpy as np

from ..certificate import certified_method
from ..errors import ProblemError
from ..parallel import blas_threads
from ..problem import Problem
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
from ..search import Limits, Search
from ..search.relu_split import ReluSettings, ReluSplit
from ..tracker import Anytime
from .bab import BabOutcome

__all__ = ["run_relu_split", "solve_bab_relu"]


def run_relu_split(problem: Problem, anytime: Anytime, *, time_limit: float | None = None,
                   node_limit: int | None = None, abs_gap: float = ABS_GAP, rel_gap: float = REL_GAP,
                   stop_above: float | None = None, stop_below: float | None = None, progress=None,
                   seed: int = 0, threads: int | None = 1, should_stop=None, **options) -> BabOutcome:
    """ReLU-split branch and bound on ``problem``, tracked by ``anytime``.

    Parameters
    ----------
    problem : Problem
        Bounded box, objective rows (``problem.rows()``), no constraints, ReLU hidden layers.
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
        Receives the search's progress dicts.
    seed : int
    threads : int or None
        BLAS threads during the run.
    should_stop : callable or None
        Polled once per batch (Ctrl-C).
    **options
        ``ReluSettings`` fields: ``batch_size``, ``branching``, ``fsb_k``, ``steps``,
        ``root_steps``, ``lr``, ``root_alpha``, ``grad_steps``, ``leaf_mip``, ``leaf_unstable``.

    Returns
    -------
    BabOutcome
        In max form.
    """
    valid = set(ReluSettings.__dataclass_fields__) - {"abs_gap", "rel_gap", "stop_above", "stop_below"}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ProblemError(f"unknown bab-relu option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    settings = ReluSettings(abs_gap=float(abs_gap), rel_gap=float(rel_gap), stop_above=stop_above,
                            stop_below=stop_below, **options)
    strategy = ReluSplit(problem, anytime, settings, seed)
    search = Search(Limits.of(time_limit, node_limit, should_stop), progress)
    with blas_threads(threads):
        status = search.run(strategy, strategy.roots(search))
    sign = problem.objective.sign
    stats = {**strategy.stats, "pruned": search.frontier.counts["pruned"],
             "infeasible": search.frontier.counts["infeasible"], "frozen": search.frontier.counts["frozen"],
             "closed": search.frontier.counts["closed"], "batches": search.batches,
             "open_nodes": len(search.frontier), "seconds": search.elapsed,
             "nodes_per_s": search.nodes / max(search.elapsed, 1e-9)}
    value = None if anytime.value is None else sign * anytime.value
    return BabOutcome(anytime.x, value, search.bound(), status, search.nodes, list(anytime.history), stats)


@certified_method
def solve_bab_relu(problem: Problem, *, time_limit: float | None = None, seed: int = 0, progress=None,
                   incumbent=None, node_limit: int | None = None, abs_gap: float = ABS_GAP,
                   rel_gap: float = REL_GAP, **options) -> Result:
    """``method="bab-relu"``: certified optimum of ``problem`` by branch and bound over ReLU phases.

    Parameters
    ----------
    problem : Problem
        Bounded box; a linear or ``MaxMin`` objective; no constraints (a ``ProblemError``).
    time_limit, node_limit : float, int or None
    seed : int
    progress : callable or None
        Receives progress dicts (incumbent, bound, gap, nodes, open, nodes_per_s).
    incumbent : array_like or None
        A warm start (credited to ``incumbent`` in the history).
    abs_gap, rel_gap : float
    **options
        Search settings (``run_relu_split``) and ``threads``.

    Returns
    -------
    Result
    """
    dom = problem.domain
    dom.require_bounded("bab-relu")
    problem.rows()      # a clear error for an objective it cannot take
    counts: dict = {}

    def report(info):
        progress({**info, **counts})

    anytime = Anytime(problem, "bab-relu", time_limit, None if progress is None else report)
    if incumbent is not None:
        x0 = np.asarray(incumbent, dtype=np.float64).reshape(1, -1)
        if x0.shape[1] != dom.dim:
            raise ProblemError(f"incumbent has {x0.shape[1]} entries but the network has {dom.dim} inputs")
        anytime.offer(x0, "incumbent")

    def on_progress(info):
        counts.update(nodes=info["nodes"], open=info["open"], nodes_per_s=info["nodes_per_s"])
        anytime.report()

    with interruptible(anytime):
        out = run_relu_split(
            problem, anytime,
            time_limit=None if math.isinf(anytime.time_limit) else max(anytime.remaining, 1e-3),
            node_limit=node_limit, abs_gap=abs_gap, rel_gap=rel_gap, progress=on_progress, seed=seed,
            should_stop=lambda: anytime.interrupted, **options)
    status = out.status if out.status in STATUSES else TIME_LIMIT
    if status == OPTIMAL and anytime.x is None:
        status = NO_SOLUTION
    if status == INFEASIBLE and anytime.x is not None:   # never claim infeasible with a point
        status = FEASIBLE
    return anytime.result(status, nodes=out.nodes, **out.stats)
