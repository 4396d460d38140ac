"""``mip`` and ``auto`` on a general model: one MILP on HiGHS, SCIP or Gurobi, warm-started.

``mip`` builds the model's MILP (``formulation.formulate_model``: reluopt's bounds per network,
stable neurons removed), starts the solver from the best of a few samples and solves it; every
solver point is mapped to its decision and forward-checked by the tracker; the bound is the
solver's status-checked dual bound, widened (``widen``). ``auto`` first runs the heuristic
``region_walk`` (samples, then LPs with every network's activation pattern and the integers
fixed at the best points, repeated from each LP's answer) and gives its best point to the MIP
as its start.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ProblemError, SolverError
from ..milp.backends import ERROR, get_backend
from ..milp.backends.base import SOLVER_MARGIN, widen
from ..result import ABS_GAP, INFEASIBLE, INTERRUPTED, OPTIMAL, REL_GAP, SOLVER_ERROR, TIME_LIMIT, interruptible
from .formulation import ModelMilp, formulate_model, objective_box_bound
from .result import ModelResult, ModelTracker

if TYPE_CHECKING:
    from .core import Model

#: Share of the time limit ``auto`` gives its heuristic phase (at most ``HEURISTIC_SECONDS``).
HEURISTIC_FRACTION = 0.25
HEURISTIC_SECONDS = 5.0


def sample_decisions(tracker: ModelTracker, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform decisions in the variables' box (integers rounded; unbounded sides: 0 +- 1).

    Parameters
    ----------
    tracker : ModelTracker
    n : int
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray, shape (n + 1, n_vars)
        The box centre first.
    """
    lo = np.where(np.isfinite(tracker.lb), tracker.lb, np.minimum(tracker.ub - 1.0, -1.0))
    hi = np.where(np.isfinite(tracker.ub), tracker.ub, np.maximum(lo + 2.0, 1.0))
    us = np.vstack([0.5 * (lo + hi), lo + rng.random((n, lo.size)) * (hi - lo)])
    return tracker.clean(us)


def start_point(tracker: ModelTracker, samples: int, seed: int) -> None:
    """Offer the box centre and ``samples`` uniform decisions to the tracker (a MIP start).

    Parameters
    ----------
    tracker : ModelTracker
    samples : int
    seed : int
    """
    if samples > 0:
        tracker.offer(sample_decisions(tracker, samples, np.random.default_rng(seed)), "start samples")


def region_walk(model: Model, mm: ModelMilp, tracker: ModelTracker, *, seed: int = 0, samples: int = 256,
                starts: int = 4, steps: int = 5, deadline: float = math.inf) -> None:
    """A heuristic: LPs of the MILP with the activation patterns and the integers of good points fixed.

    Within one activation pattern of every network and fixed integers, the model is an LP; its
    optimum is a better point of that region (or the first feasible one). From the samples
    with the best values (feasible first, then the least violated), the LP is solved, its answer
    forward-checked and offered, and the walk repeats from it while it improves.

    Parameters
    ----------
    model : Model
    mm : ModelMilp
    tracker : ModelTracker
        Receives every point (forward-checked there).
    seed, samples : int
        The samples' seed and count.
    starts : int
        Samples the walk starts from.
    steps : int
        LPs per start at most.
    deadline : float
        ``tracker.elapsed`` value at which to stop.
    """
    backend = get_backend("highs")
    us = sample_decisions(tracker, samples, np.random.default_rng(seed))
    tracker.offer(us, "samples")
    vals, viol, _ = model.evaluate(us)
    sign = 1.0 if model.sense == "max" else -1.0
    order = np.lexsort((-sign * vals, np.maximum(viol, 0.0)))
    integer = np.nonzero(mm.milp.integrality)[0]
    for u in us[order[:starts]]:
        for _ in range(steps):
            if tracker.out_of_time() or tracker.elapsed >= deadline:
                return
            point = mm.start(model, u)
            lp = mm.milp.copy()
            lp.col_lower[integer] = lp.col_upper[integer] = np.round(point[integer])
            out = backend.solve(lp, relax=True, time_limit=max(min(deadline - tracker.elapsed, 10.0), 0.1))
            if out.status != "optimal" or out.values is None:
                break
            u = tracker.clean(out.values[model.var_cols])[0]
            if not tracker.offer(u, "region lp"):
                break


def solve_model_mip(model: Model, *, method: str = "mip", time_limit: float | None = None, seed: int = 0,
                    progress=None, bounds: str = "crown", solver: str = "highs", threads: int = 1,
                    start_samples: int = 256, abs_gap: float = ABS_GAP, rel_gap: float = REL_GAP,
                    bound_options: dict | None = None) -> ModelResult:
    """Solve a model by one MILP (``method='mip'``), after the heuristic phase for ``'auto'``.

    Parameters
    ----------
    model : Model
    method : {'mip', 'auto'}
    time_limit : float, optional
        Seconds for everything (bounds, heuristics, build, solve).
    seed : int, optional
        Seed of the samples.
    progress : callable, optional
        Receives progress dicts.
    bounds : str, optional
        Neuron bound method per network (default 'crown'; 'lp-obbt' also uses the model's
        linear constraints for the input boxes).
    solver : str, optional
        'highs', 'scip' or 'gurobi'.
    threads : int, optional
    start_samples : int, optional
        Samples tried for a MIP start.
    abs_gap, rel_gap : float, optional
        Optimality tolerances.
    bound_options : dict, optional
        Options of ``compute_bounds``.

    Returns
    -------
    ModelResult
    """
    backend = get_backend(solver)
    tracker = ModelTracker(model, method, time_limit, progress)
    stats: dict = {}
    with interruptible(tracker):
        if bound_options is None and bounds in ("alpha-crown", "lp-obbt", "mip-obbt") and \
                math.isfinite(tracker.remaining):      # the costly bounds get half the budget
            bound_options = {"time_limit": 0.5 * tracker.remaining / max(len(model.feeds), 1)}
        mm = formulate_model(model, bounds=bounds, bound_options=bound_options)
        stats.update({k: v for k, v in mm.stats.items() if k != "scaling_issue"})
        stats["bounds_seconds"] = tracker.elapsed
        if mm.stats["scaling_issue"]:
            raise SolverError(f"the MIP cannot certify this model: {mm.stats['scaling_issue']}")
        sign = mm.sign
        root = objective_box_bound(model, mm)
        if math.isfinite(root):
            tracker.improve_bound(sign * root, "column bounds")
        start_point(tracker, start_samples, seed)
        if method == "auto":
            budget = min(HEURISTIC_FRACTION * tracker.remaining, HEURISTIC_SECONDS) \
                if math.isfinite(tracker.remaining) else HEURISTIC_SECONDS
            region_walk(model, mm, tracker, seed=seed, deadline=tracker.elapsed + budget)
            stats["heuristic_seconds"] = tracker.elapsed - stats["bounds_seconds"]
        if tracker.out_of_time():
            return tracker.result(INTERRUPTED if tracker.interrupted else TIME_LIMIT, **stats)
        mip_start = mm.start(model, tracker.x) if tracker.x is not None else None

        def on_improvement(objective: float, values: np.ndarray) -> None:
            tracker.offer(values[model.var_cols], "mip")

        def on_progress(primal: float, dual: float, nodes: int) -> None:
            tracker.report(nodes=nodes)

        out = backend.solve(mm.milp, time_limit=tracker.remaining, mip_start=mip_start, threads=threads,
                            mip_rel_gap=rel_gap, mip_abs_gap=abs_gap, on_improvement=on_improvement,
                            should_stop=lambda: tracker.interrupted, on_progress=on_progress)
        stats.update(solver=solver, solve_seconds=out.seconds, nodes=out.nodes, solver_status=out.status)
        if out.values is not None:
            tracker.offer(out.values[model.var_cols], "mip")
        if out.status == ERROR:
            stats["solver_message"] = out.message
            return tracker.result(SOLVER_ERROR, **stats)
        if out.status == "infeasible":
            if tracker.x is None:
                return tracker.result(INFEASIBLE, **stats)
            stats["warning"] = "solver reported infeasible although a feasible point is known"
            return tracker.result(TIME_LIMIT, **stats)
        if out.status in ("unbounded", "infeasible_or_unbounded"):
            # with a feasible point known, the model is unbounded
            what = "unbounded" if tracker.x is not None else out.status.replace("_", " ")
            raise ProblemError(f"the solver reports the model {what}: give every variable in the objective "
                               "finite bounds")
        if out.bound is not None:
            tracker.improve_bound(sign * widen(out.bound), "mip")
        elif out.status == "optimal" and out.objective is not None:
            tracker.improve_bound(sign * widen(out.objective), "mip")
        gaps = {"abs_gap": max(abs_gap, 2 * SOLVER_MARGIN), "rel_gap": rel_gap + 2 * SOLVER_MARGIN}
        if tracker.converged(gaps["abs_gap"], gaps["rel_gap"]):
            return tracker.result(OPTIMAL, **gaps, **stats)
        if tracker.interrupted or out.status == "interrupted":
            return tracker.result(INTERRUPTED, **stats)
        return tracker.result(TIME_LIMIT, **stats)
