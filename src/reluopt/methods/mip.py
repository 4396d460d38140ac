"""Exact MIP: the big-M formulation with tightened bounds, solved by HiGHS (or SCIP / Gurobi).

Why it beats the peers' embeddings of the same network: bounds come from CROWN intersected
with interval arithmetic (optionally LP-OBBT), so stable neurons have no binary and the
big-M constants of the others are small; the model is assembled from sparse matrices in one
call; and the solver starts from a good incumbent (a cheap sample of the box, or any point
the caller passes as ``incumbent``, such as a heuristic's best).

Soundness: every solver solution is mapped back to its input ``x`` and re-evaluated by a
forward pass before it counts (``Anytime.offer``); the reported value is the network's own.
The bound is HiGHS's dual bound widened by ``SOLVER_MARGIN * (1 + |bound|)`` for the solver's
feasibility tolerances; ``optimal`` is claimed only when the forward-pass value meets that
bound within the gap tolerances.
"""

from __future__ import annotations

import math

import numpy as np

from ..bounds import BOUND_METHODS, LayerBounds, compute_bounds
from ..certificate import certified_method
from ..errors import ProblemError, SolverError
from ..milp.backends import BACKENDS, ERROR, get_backend
from ..milp.backends.base import SOLVER_MARGIN, widen
from ..milp.formulation import build_problem_model
from ..milp.rescale import rescale_rule
from ..problem import Problem
from ..result import (
    ABS_GAP,
    INFEASIBLE,
    INTERRUPTED,
    OPTIMAL,
    REL_GAP,
    SOLVER_ERROR,
    TIME_LIMIT,
    Result,
    interruptible,
    relative_gap,
)
from ..tracker import Anytime


def problem_bounds(problem: Problem, bounds: str | LayerBounds = "crown", *, time_limit: float | None = None,
                   executor=None) -> LayerBounds:
    """Pre-activation bounds of ``problem``'s network over its domain, by name or as given.

    Parameters
    ----------
    problem : Problem
        The problem (its domain must be bounded unless ``bounds`` is given).
    bounds : str or LayerBounds, optional
        One of `BOUND_METHODS`, or bounds of exactly one box.
    time_limit : float, optional
        Seconds for OBBT.
    executor : concurrent.futures.Executor, optional
        Runs OBBT's LPs in parallel.

    Returns
    -------
    LayerBounds
        The bounds.

    Raises
    ------
    ProblemError
        Unknown bounds, bounds of several boxes, or an unbounded domain.
    """
    if isinstance(bounds, LayerBounds):
        if bounds.batch != 1:
            raise ProblemError("the MIP needs bounds of exactly one box")
        return bounds
    if not isinstance(bounds, str) or bounds not in BOUND_METHODS:
        raise ProblemError(f"unknown bounds {bounds!r}; choose from {', '.join(BOUND_METHODS)}")
    domain = problem.domain
    domain.require_bounded("the MIP")
    return compute_bounds(problem.network, domain.lb, domain.ub, bounds, A=domain.A, b=domain.b,
                          time_limit=time_limit, executor=executor)


def quick_incumbent(problem: Problem, n_samples: int, seed: int) -> np.ndarray | None:
    """The best feasible point among the box centre and ``n_samples`` uniform samples (a MIP start).

    Parameters
    ----------
    problem : Problem
        The problem (bounded box).
    n_samples : int
        Number of samples; 0 or less gives None.
    seed : int
        Their seed.

    Returns
    -------
    numpy.ndarray or None
        The point, None when no candidate is feasible.
    """
    if n_samples <= 0:
        return None
    d = problem.domain
    rng = np.random.default_rng(seed)
    xs = np.vstack([d.center()[None, :], d.lb + rng.random((n_samples, d.dim)) * (d.ub - d.lb)])
    ok = problem.is_feasible(xs)
    if not ok.any():
        return None
    xs = xs[ok]
    vals = problem.objective_values(xs)
    return xs[int(np.argmax(vals) if problem.sense == "max" else np.argmin(vals))]


@certified_method
def solve_mip(
    problem: Problem,
    *,
    time_limit: float | None = None,
    seed: int = 0,
    progress=None,
    incumbent=None,
    bounds: str | LayerBounds = "crown",
    rescale: bool | str = False,
    threads: int = 1,
    start_samples: int = 256,
    abs_gap: float = ABS_GAP,
    rel_gap: float = REL_GAP,
    executor=None,
    solver: str = "highs",
) -> Result:
    """Solve ``problem`` exactly by the big-M MIP on HiGHS (or SCIP / Gurobi).

    Statistics: binaries, stable neurons, bound/build/solve seconds, nodes.

    Parameters
    ----------
    problem : Problem
        The problem (bounded domain).
    time_limit : float, optional
        Seconds for the whole call (bounds, build and solve).
    seed : int, optional
        Seed of the start samples.
    progress : callable, optional
        Called with progress events (incumbent, bound, gap).
    incumbent : array_like, optional
        An input used as the MIP start.
    bounds : str or LayerBounds, optional
        ``"crown"`` (default), ``"ibp"`` (the peers' choice, for comparison), ``"lp-obbt"`` or
        ``"mip-obbt"`` (tighter, costlier), or LayerBounds.
    rescale : bool or str, optional
        Build the model of the rescaled network (same function, better-conditioned big-M):
        True or ``"pow2-unstable"`` (unstable neurons, powers of two), or ``"paper"`` (every
        neuron by ``1 / (U - L)``, Plate et al. as in ALGORITHMS.md section 3).
    threads : int, optional
        Solver threads.
    start_samples : int, optional
        Box samples tried for a start when none is given (0: none).
    abs_gap, rel_gap : float, optional
        Optimality gaps at which the solver stops.
    executor : concurrent.futures.Executor, optional
        Runs OBBT's LPs in parallel.
    solver : str, optional
        ``"highs"`` (default), ``"scip"`` or ``"gurobi"`` (optional extras); each shows live
        progress and incumbents.

    Returns
    -------
    Result
        The certified result (status, incumbent, bound, statistics).
    """
    backend = get_backend(solver)   # an unknown name or a missing extra fails before any work
    rescale_rule(rescale)           # so does an unknown rescaling rule
    anytime = Anytime(problem, "mip", time_limit, progress)
    sign = 1.0 if problem.sense == "max" else -1.0
    stats: dict = {}
    with interruptible(anytime):
        # --- bounds and model
        obbt_limit = None if not math.isfinite(anytime.time_limit) else 0.5 * anytime.time_limit
        layer_bounds = problem_bounds(problem, bounds, time_limit=obbt_limit, executor=executor)
        stats["bounds_seconds"] = anytime.elapsed
        if anytime.out_of_time():   # Ctrl-C or the limit during the bounds: no model, the samples only
            sampled = quick_incumbent(problem, start_samples, seed)
            if sampled is not None:
                anytime.offer(sampled[None, :], "start samples")
            return anytime.result(INTERRUPTED if anytime.interrupted else TIME_LIMIT, **stats)
        t0 = anytime.elapsed
        model = build_problem_model(problem, layer_bounds, rescale=rescale)
        stats["build_seconds"] = anytime.elapsed - t0
        stats.update({k: model.stats[k] for k in ("binaries", "stable_neurons", "hidden_neurons", "rows",
                                                  "columns", "nonzeros")})
        stats["bounds"] = bounds if isinstance(bounds, str) else bounds.method
        issue = model.scaling_issue()
        if issue is not None:
            raise SolverError(f"the MIP cannot certify this problem: {issue}; rescale the network's "
                              "inputs or outputs, or use method 'bab' on a small box")
        # --- output bounds already give a certified bound (max form: c.y + d <= ...)
        c, d = problem.max_form()
        lo, hi = layer_bounds.out_lower[0], layer_bounds.out_upper[0]
        root = float(np.sum(np.where(c > 0, c * hi, c * lo)) + d)
        anytime.improve_bound(sign * root, "output bounds")
        # --- starting point
        start = None
        if incumbent is not None:
            start = np.asarray(incumbent, dtype=np.float64).reshape(-1)
            if start.shape != (problem.network.input_dim,):
                raise ProblemError(f"incumbent has shape {start.shape}, expected ({problem.network.input_dim},)")
            anytime.offer(start[None, :], "incumbent")
        sampled = quick_incumbent(problem, start_samples, seed)
        if sampled is not None:
            anytime.offer(sampled[None, :], "start samples")
        if anytime.x is not None:
            start = anytime.x
        mip_start = model.point_to_columns(start) if start is not None else None

        def on_improvement(objective: float, values: np.ndarray) -> None:
            anytime.offer(model.columns_to_point(values)[None, :], "mip")

        def on_progress(primal: float, dual: float, nodes: int) -> None:
            # shown live, certified only by the solver's final, status-checked answer
            if math.isfinite(dual) and abs(dual) < 1e30:
                shown = sign * widen(dual)
                anytime.report(nodes=nodes, bound=shown, gap=relative_gap(anytime.value, shown))
            else:
                anytime.report(nodes=nodes)

        if anytime.out_of_time():
            return anytime.result(INTERRUPTED if anytime.interrupted else TIME_LIMIT, **stats)
        out = backend.solve(
            model, time_limit=anytime.remaining, mip_start=mip_start, threads=threads,
            mip_rel_gap=rel_gap, mip_abs_gap=abs_gap, on_improvement=on_improvement,
            should_stop=lambda: anytime.interrupted, on_progress=on_progress,
        )
        stats["solver"] = solver
        stats["solve_seconds"] = out.seconds
        stats["nodes"] = out.nodes
        stats["solver_status"] = out.status
        if out.values is not None:
            anytime.offer(model.columns_to_point(out.values)[None, :], "mip")
        if out.status == ERROR:
            # never a bound: the result keeps what was proven before the solver failed
            stats["solver_message"] = out.message
            return anytime.result(SOLVER_ERROR, **stats)
        if out.status == "infeasible":
            # The solver's proof (up to its tolerances); a point we hold would contradict it.
            if anytime.x is None:
                return anytime.result(INFEASIBLE, **stats)
            stats["warning"] = "solver reported infeasible although a feasible point is known"
            return anytime.result(TIME_LIMIT, **stats)
        if out.bound is not None:
            anytime.improve_bound(sign * widen(out.bound), "mip")
        elif out.status == "optimal" and out.objective is not None:
            anytime.improve_bound(sign * widen(out.objective), "mip")
        if anytime.converged(max(abs_gap, 2 * SOLVER_MARGIN), rel_gap + 2 * SOLVER_MARGIN):
            return anytime.result(OPTIMAL, **stats)
        if anytime.interrupted or out.status == "interrupted":
            return anytime.result(INTERRUPTED, **stats)
        return anytime.result(TIME_LIMIT, **stats)


#: MIP back-ends of ``solve_mip`` (see ``milp.backends.get_backend``).
SOLVERS = BACKENDS




def write_problem_model(problem: Problem, path, *, bounds: str | LayerBounds = "crown", rescale: bool = False,
                        time_limit: float | None = None) -> dict:
    """Write the MIP that ``solve_mip`` solves (same bounds, stable neurons removed) as an MPS or
    LP file, so that users can take reluopt's formulation to any solver.

    Parameters
    ----------
    problem : Problem
        The problem (bounded domain, linear objective).
    path : str or os.PathLike
        Ends in ``.mps`` or ``.lp``.
    bounds : str or LayerBounds, optional
        As in `solve_mip` (default 'crown').
    rescale : bool, optional
        As in `solve_mip`.
    time_limit : float, optional
        Seconds for OBBT bounds.

    Returns
    -------
    dict
        The model's statistics (columns, rows, binaries, stable neurons, ...).
    """
    from ..milp.backends.highs import write_model

    layer_bounds = problem_bounds(problem, bounds, time_limit=time_limit)
    model = build_problem_model(problem, layer_bounds, rescale=rescale)
    issue = model.scaling_issue()
    if issue is not None:
        raise SolverError(f"the MIP cannot certify this problem: {issue}; rescale the network's inputs or outputs")
    write_model(model, path, sense=problem.sense)
    return dict(model.stats)
