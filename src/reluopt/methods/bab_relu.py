"""``method="bab-relu"``: certified global optima by branch and bound over ReLU phases.

The search is the shared engine of ``reluopt.search`` with the ``ReluSplit`` strategy
(beta-CROWN node bounds, BaBSR/FSB branching, leaf MIPs: see ``reluopt.search.relu_split``);
the incumbent, bound and history live in one ``Anytime`` tracker, as for ``bab``. It suits
networks with many inputs, where input splitting stalls. Input constraints ``A x <= b`` and
output constraints enter the node bounds as Lagrangian terms; nodes are proven empty by LPs.

Soundness: every node bound is a beta-CROWN bound (with the constraints' Lagrangian terms)
that is valid for any slopes and multipliers the optimiser leaves (proof in
``reluopt.search.relu_bounds``), rounded outward; a leaf MIP or node LP counts only when it
ends in a trusted status (its bound widened); ``infeasible`` only when every node was proven
empty; every incumbent is forward-checked and feasible; a node that cannot be split further
keeps its bound in the answer.
"""

from __future__ import annotations

from ..certificate import certified_method
from ..problem import Problem
from ..result import (
    ABS_GAP,
    REL_GAP,
    Result,
)
from ..search.distributed import StrategyFactory
from ..search.relu_split import ReluSettings, ReluSplit
from ..tracker import Anytime
from .bab import BabOutcome, run_strategy, solve_by_search

__all__ = ["run_relu_split", "solve_bab_relu"]


def run_relu_split(problem: Problem, anytime: Anytime, *, time_limit: float | None = None,
                   node_limit: int | None = None, abs_gap: float = ABS_GAP, rel_gap: float = REL_GAP,
                   stop_above: float | None = None, stop_below: float | None = None, progress=None,
                   seed: int = 0, threads: int | None = 1, should_stop=None, **options) -> BabOutcome:
    """ReLU-split branch and bound on ``problem``, tracked by ``anytime``.

    Parameters
    ----------
    problem : Problem
        Bounded box, objective rows (``problem.rows()``), optional input and output
        constraints, ReLU hidden layers.
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
    return run_strategy(problem, anytime, "bab-relu", ReluSettings,
                        StrategyFactory(ReluSplit, problem, anytime, seed),
                        time_limit=time_limit, node_limit=node_limit, abs_gap=abs_gap, rel_gap=rel_gap,
                        stop_above=stop_above, stop_below=stop_below, progress=progress, threads=threads,
                        should_stop=should_stop, **options)


@certified_method
def solve_bab_relu(problem: Problem, *, time_limit: float | None = None, seed: int = 0, progress=None,
                   incumbent=None, node_limit: int | None = None, abs_gap: float = ABS_GAP,
                   rel_gap: float = REL_GAP, **options) -> Result:
    """``method="bab-relu"``: certified optimum of ``problem`` by branch and bound over ReLU phases.

    Parameters
    ----------
    problem : Problem
        Bounded box; a linear or ``MaxMin`` objective; optional ``A x <= b`` and output
        constraints.
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
    return solve_by_search(problem, "bab-relu", run_relu_split, time_limit=time_limit, seed=seed,
                           progress=progress, incumbent=incumbent, node_limit=node_limit, abs_gap=abs_gap,
                           rel_gap=rel_gap, **options)
