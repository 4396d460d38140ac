"""``method="auto"``: a heuristic phase, then an exact method warm-started from its best point.

The heuristic phase (default: PPGA-LR then sampling LP, with ``pgd`` first above
``BAB_MAX_DIM`` inputs, sharing ``heuristic_fraction`` =
25% of the budget, at most ``BAB_HEURISTIC_SECONDS`` before branch and bound; each heuristic
starts from the best point so far) finds a good point fast. The exact phase gets the rest,
by the splitting rule (``exact_method``): on a bounded box, input splitting (``bab``) up to
``SPLIT_MAX_DIM`` inputs and ReLU splitting (``bab-relu``) above for plain problems (ReLU
network, linear or ``MaxMin`` objective, with or without input and output constraints); for
the others input splitting up to ``BAB_MAX_DIM`` inputs and the big-M MIP (``mip``) above;
``incumbent=x`` is the warm start. Progress reports of every phase use the portfolio's clock and carry ``phase``.
The merged history says which method found each improvement (``source`` column: the
phase's method name, e.g. ``ppga-lr``, ``mip``, with the phase's own detail after a colon).
The final status is the exact phase's (``optimal`` only if it proved it); if no exact
method is installed, ``feasible``.

Without a time limit the heuristic phase takes ``DEFAULT_TIME_LIMIT`` (10 s) in total and
the exact phase runs until it finishes.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..certificate import certified_method, check_option_names, option_names
from ..errors import ProblemError
from ..problem import Problem
from ..result import (
    FEASIBLE,
    INFEASIBLE,
    INTERRUPTED,
    NO_SOLUTION,
    OPTIMAL,
    Result,
    StopFlag,
    check_time_limit,
    interruptible,
)
from .points import as_incumbent, check_domain
from .region import DEFAULT_TIME_LIMIT


def _label(phase: str, source: str) -> str:
    return source if source.startswith(phase) else f"{phase}:{source}"


#: The heuristic phase of ``auto``. Above ``BAB_MAX_DIM`` inputs ``pgd`` (APGD on the
#: objective's margin) runs first: on MNIST-FC margins its point was better than PPGA-LR's
#: (benchmarks/results/falsify.md).
DEFAULT_HEURISTICS = ("ppga-lr", "sampling")

#: The splitting rule of ``auto`` and ``verify`` (``exact_method``, stated once here), on a
#: bounded box. A *plain* problem (plain ReLU hidden layers, a linear or ``MaxMin`` objective,
#: input constraints ``A x <= b`` and output constraints allowed; every VNN-LIB pair is one)
#: gets input splitting (``bab``) up to ``SPLIT_MAX_DIM`` inputs and ReLU splitting
#: (``bab-relu``) above. Any other problem gets input splitting up to ``BAB_MAX_DIM`` inputs and
#: the big-M MIP (``mip``) above. Input splitting halves one input per branch, so the boxes it
#: needs grow exponentially with the dimension; ReLU splitting grows with the unstable neurons
#: instead, and the MIP's size depends on neither. Measured at equal time on width-100 nets
#: (benchmarks/results/vnncomp.md): input splitting's bound is the tightest at 10 inputs, the
#: two tie at 16, ReLU splitting wins from 30, and the MIP is the loosest throughout. With a
#: budget row and an output constraint (benchmarks/results/relu_constraints.md) the two
#: splittings tie at 12 inputs, ReLU splitting is the tightest at 20 and 40, and the MIP is
#: the loosest throughout, so constraints do not change the rule.
SPLIT_MAX_DIM = 16

#: ``auto``'s input-splitting limit on problems ReLU splitting does not take (other activations,
#: other objectives); above it, the MIP.
BAB_MAX_DIM = 8

#: ``verify``'s input-splitting limit, whatever the activations (above it: ReLU splitting on
#: plain-ReLU networks, else the MIP). Verification decides only the sign of the margin, not
#: the optimum to a gap: a box closes as soon as its bound is below 0 and the first
#: counterexample ends the search, so splitting pays off in more dimensions than the MIP.
VERIFY_BAB_MAX_DIM = SPLIT_MAX_DIM


def relu_split_fits(network, problem: Problem | None = None) -> bool:
    """Whether ReLU splitting (``bab-relu``) can take the network (and the problem's form).

    Parameters
    ----------
    network : Network
        The network.
    problem : Problem, optional
        Also checked: a linear or ``MaxMin`` objective (input constraints ``A x <= b`` and
        output constraints are taken).

    Returns
    -------
    bool
        True when every hidden layer is a plain ReLU (and the problem fits).
    """
    from ..activations.relu import ReLU
    from ..objectives import MaxMin, Objective

    if not network.hidden_layers or not all(type(layer.act) is ReLU for layer in network.hidden_layers):
        return False
    if problem is None:
        return True
    return isinstance(problem.objective, Objective | MaxMin)


def exact_method(dim: int, bounded: bool, relu_fits: bool, *, verification: bool = False) -> str:
    """The splitting rule: which exact method ``auto`` and ``verify`` use.

    Parameters
    ----------
    dim : int
        Input dimension.
    bounded : bool
        Whether the input box is bounded (branch and bound needs it).
    relu_fits : bool
        ``relu_split_fits`` of the network and problem (a plain problem).
    verification : bool, default False
        ``verify``'s rule: input splitting up to ``VERIFY_BAB_MAX_DIM`` inputs whatever the
        activations.

    Returns
    -------
    str
        ``"bab"`` (input splitting), ``"bab-relu"`` (ReLU splitting) or ``"mip"``.
    """
    if not bounded:
        return "mip"
    if dim <= (VERIFY_BAB_MAX_DIM if verification else SPLIT_MAX_DIM if relu_fits else BAB_MAX_DIM):
        return "bab"
    return "bab-relu" if relu_fits else "mip"


#: Before branch and bound the heuristic phase takes at most this many seconds: bab finds
#: good points itself (box centres, bound maximisers, gradient steps, region LPs), and on the
#: peaks and reformer surrogates it proves the optimum in under a second, so a quarter of a
#: 60 s budget spent on heuristics first only delayed the answer (14 s instead of ~1.5 s).
BAB_HEURISTIC_SECONDS = 1.0

#: Before any heuristic, branch and bound runs alone for this many nodes (at most this many
#: seconds): a problem it closes at once (the shipped demo, 157 nodes) needs no heuristics.
BAB_PROBE_NODES = 1000
BAB_PROBE_SECONDS = 2.0


def choose_exact(problem: Problem) -> str:
    """The exact method for ``problem`` by the splitting rule (``exact_method``).

    Parameters
    ----------
    problem : Problem
        The problem.

    Returns
    -------
    str
        ``"bab"``, ``"bab-relu"`` or ``"mip"``.
    """
    return exact_method(problem.domain.dim, problem.domain.bounded,
                        relu_split_fits(problem.network, problem))


def merge_histories(problem: Problem, phases: list[tuple[str, float, Result]]):
    """Monotone merged history of the phases: rows where the incumbent or the bound improved.

    Parameters
    ----------
    problem : Problem
        The problem (its sense says what improves).
    phases : list of tuple
        ``(name, start offset in seconds, Result)`` per phase.

    Returns
    -------
    list of tuple
        ``(seconds, incumbent, bound, source)`` rows.
    """
    events = []
    for name, offset, res in phases:
        for t, v, b, src in res.history:
            events.append((offset + t, v, b, _label(name, src)))
    events.sort(key=lambda e: e[0])
    sign = 1.0 if problem.sense == "max" else -1.0
    inc = bound = None
    out = []
    for t, v, b, src in events:
        better_v = v is not None and (inc is None or sign * v > sign * inc)
        better_b = b is not None and (bound is None or sign * b < sign * bound)
        if better_v:
            inc = v
        if better_b:
            bound = b
        if better_v or better_b:
            out.append((t, inc, bound, src))
    return out


@certified_method
def solve_auto(problem: Problem, *, time_limit: float | None = None, seed: int = 0, progress=None,
               heuristic_fraction: float | None = None, heuristics=None,
               exact: str | None = None, incumbent=None, **options) -> Result:
    """Heuristics for ``heuristic_fraction`` of the budget, then ``exact`` warm-started.

    Parameters
    ----------
    problem : Problem
        The problem.
    time_limit : float, optional
        Seconds for all phases.
    seed : int, optional
        Seed of the heuristics.
    progress : callable, optional
        Called with progress events of every phase.
    heuristic_fraction : float, optional
        Share of the budget for the heuristics; defaults to 0.25, capped at
        ``BAB_HEURISTIC_SECONDS`` when the exact method is branch and bound; then branch and
        bound first runs alone for ``BAB_PROBE_NODES`` nodes, and a problem it closes there gets
        no heuristic phase.
    heuristics : sequence of str or str, optional
        Heuristic methods, run in turn (a comma-separated string works too); default
        ``DEFAULT_HEURISTICS``, with ``pgd`` first above ``BAB_MAX_DIM`` inputs.
    exact : str, optional
        The exact method (default `choose_exact`).
    incumbent : array_like, optional
        A user's starting point, handed to the first heuristic (and kept if it is feasible and
        best).
    **options
        Passed to the exact method only.

    Returns
    -------
    Result
        The certified result, with the merged history of all phases.
    """
    from . import METHODS, get_method

    total = check_time_limit(time_limit)
    capped = heuristic_fraction is None
    heuristic_fraction = 0.25 if heuristic_fraction is None else heuristic_fraction
    if not 0 <= heuristic_fraction <= 1:
        raise ProblemError(f"heuristic_fraction must be in [0, 1], got {heuristic_fraction}")
    if heuristics is None:
        heuristics = ("pgd", *DEFAULT_HEURISTICS) if problem.domain.dim > BAB_MAX_DIM else DEFAULT_HEURISTICS
    heuristics = [h.strip() for h in (heuristics.split(",") if isinstance(heuristics, str) else heuristics)
                  if h.strip()]
    exact_name = exact or choose_exact(problem)
    if exact_name not in METHODS:
        raise ProblemError(f"unknown exact method {exact_name!r}; choose mip or bab")
    heuristic_fns = [(h, get_method(h)) for h in heuristics]  # unknown names fail before any run
    try:        # a misspelled option of the exact phase fails now, not after the heuristics
        exact_options = option_names(get_method(exact_name))
    except ProblemError:    # the exact method's module is missing: a heuristic run (below)
        exact_options = None
    if exact_options is not None:
        check_option_names(f"auto (exact phase: {exact_name})", options,
                           exact_options - {"time_limit", "seed", "progress", "incumbent"})
    problem.max_form()
    check_domain(problem)
    start = time.perf_counter()
    h_total = heuristic_fraction * total if math.isfinite(total) else DEFAULT_TIME_LIMIT
    if capped and exact_name == "bab":
        h_total = min(h_total, BAB_HEURISTIC_SECONDS)
    sign = 1.0 if problem.sense == "max" else -1.0
    warm = as_incumbent(problem, incumbent)   # passed on even if infeasible (a direction to go)
    best_x = best_v = None                    # the best FEASIBLE point, forward-checked
    phases: list[tuple[str, float, Result]] = []
    summary: list[dict] = []

    def consider(x) -> bool:
        nonlocal best_x, best_v
        if x is None or not problem.is_feasible(x)[0]:
            return False
        v = float(problem.objective_values(x)[0])
        if best_v is None or sign * v > sign * best_v:
            best_x, best_v = np.array(x, dtype=np.float64), v
            return True
        return False

    if consider(warm):
        phases.append(("incumbent", 0.0, Result(FEASIBLE, "incumbent", problem.sense, best_x, best_v,
                                                history=[(0.0, best_v, None, "incumbent")])))

    def finish(status: str, bound: float | None, exact_result: Result | None) -> Result:
        stats: dict = {"phases": summary, "exact": exact_name if exact_fn else None}
        if exact_result is not None:   # the exact phase's counters (nodes, nodes/s, binaries, ...)
            stats.update({k: v for k, v in exact_result.stats.items()
                          if k not in stats and isinstance(v, int | float | str) and not isinstance(v, bool)})
        return Result(status=status, method="auto", sense=problem.sense, x=best_x, value=best_v,
                      bound=bound, history=merge_histories(problem, phases), stats=stats,
                      seconds=time.perf_counter() - start)

    def phase_progress(name: str, offset: float):
        """The phase's progress reports on the portfolio's clock, tagged with the phase."""
        if progress is None:
            return None
        return lambda info: progress({**info, "elapsed": offset + info.get("elapsed", 0.0),
                                      "method": "auto", "phase": name})

    def take(name: str, offset: float, res: Result) -> None:
        phases.append((name, offset, res))
        summary.append({"method": name, "status": res.status, "value": res.value,
                        "bound": res.bound, "seconds": res.seconds})
        consider(res.x)

    # Ctrl-C in the heuristic phase ends the whole run: status interrupted, the best point,
    # no exact phase (each heuristic returns at once; the flag also covers the gaps between)
    try:
        exact_fn = get_method(exact_name)
    except ProblemError:  # the exact method's module is missing: a heuristic run
        exact_fn = None
    if capped and exact_name == "bab" and exact_fn is not None:
        probe_limit = min(BAB_PROBE_SECONDS, total)
        res = exact_fn(problem, time_limit=probe_limit, node_limit=BAB_PROBE_NODES, seed=seed,
                       progress=phase_progress("bab", 0.0), incumbent=warm, **options)
        take("bab", 0.0, res)
        if res.status in (OPTIMAL, INFEASIBLE, INTERRUPTED):   # closed (or stopped): no heuristics needed
            return finish(res.status, res.bound, res)
    interrupt = StopFlag()
    with interruptible(interrupt):
        for k, (name, fn) in enumerate(heuristic_fns):
            budget = h_total / len(heuristic_fns)
            left = (total - (time.perf_counter() - start)) if math.isfinite(total) else math.inf
            budget = min(budget, left)
            if budget <= 1e-3 or interrupt.interrupted:
                break
            offset = time.perf_counter() - start
            res = fn(problem, time_limit=budget, seed=seed + k, progress=phase_progress(name, offset),
                     incumbent=best_x if best_x is not None else warm)
            take(name, offset, res)
            if res.status == INTERRUPTED:
                interrupt.interrupted = True
                break

    bound = None
    exact_result = None
    status = INTERRUPTED if interrupt.interrupted else FEASIBLE if best_x is not None else NO_SOLUTION
    left = total - (time.perf_counter() - start)
    if exact_fn is not None and left > 1e-3 and not interrupt.interrupted:
        offset = time.perf_counter() - start
        res = exact_fn(problem, time_limit=None if math.isinf(left) else left, seed=seed,
                       progress=phase_progress(exact_name, offset),
                       incumbent=best_x if best_x is not None else warm, **options)
        take(exact_name, offset, res)
        exact_result = res
        bound = res.bound
        status = res.status
        if status in (INFEASIBLE, NO_SOLUTION) and best_x is not None:  # never infeasible with a point
            status = FEASIBLE
        if status == OPTIMAL and (best_x is None or bound is None):
            status = FEASIBLE if best_x is not None else NO_SOLUTION
    return finish(status, bound, exact_result)
