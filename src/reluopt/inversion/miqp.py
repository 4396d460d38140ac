"""Exact least-squares inversion of a ReLU network: a convex MIQP on SCIP.

``min 1/2 ||A y + a - t||^2`` over the big-M model of the network (the same model as the
linear MIP: ``reluopt.milp.formulation.build_network_model`` with CROWN bounds). With the
binaries fixed, the problem is a convex QP, so SCIP's branch and bound on the binaries with
outer approximation of the convex quadratic proves global optimality. HiGHS takes no
quadratic objective together with binaries, which is why this method uses SCIP.

Where SCIP is called: the network's rows and columns go through the solver back-end layer
(``milp.backends.scip.scip_model``, as for the linear MIP). The back-end interface
(``Backend.solve``) maximises a *linear* objective over a ``MilpModel`` and cannot express
the residual variables and the quadratic constraint ``1/2 ||r||^2 <= s``, so those are added
to the SCIP model here, in ``build_miqp``, and ``solve_miqp`` runs and reads the SCIP model
itself (status checked against ``TRUSTED_SCIP_STATUSES``). This module is the only place in
``inversion`` that touches SCIP.

Worth it for small latent dimensions: the number of binaries is the number of neurons whose
sign is not fixed over the latent box, which grows with the box and the latent dimension.

Soundness: the reported ``x`` is re-evaluated by a forward pass (``Anytime.offer``); the lower
bound is SCIP's dual bound widened downward by ``milp.backends.base.widen`` for its
feasibility tolerances, and never below 0; ``optimal`` is claimed only when the forward-pass
value meets that bound within the gap tolerances.
"""

from __future__ import annotations

import math

import numpy as np

from ..certificate import certified_method
from ..errors import ProblemError
from ..milp.backends.base import SOLVER_MARGIN, widen
from ..milp.backends.scip import TRUSTED_SCIP_STATUSES, import_scip, scip_model
from ..milp.formulation import MilpModel, add_output_constraints, build_network_model
from ..parallel import one_blas_thread
from ..problem import LeastSquares, Problem
from ..result import INFEASIBLE, OPTIMAL, SOLVER_ERROR, TIME_LIMIT, Result, check_time_limit
from ..tracker import Anytime
from .surfing import least_squares_objective

#: Default gaps: absolute on 1/2||r||^2, so that "optimal" means a residual near 1e-4.
LSQ_ABS_GAP = 1e-8
LSQ_REL_GAP = 1e-6



#: What needs SCIP, for the message when it is missing.
_WHAT = "exact least-squares inversion (method 'miqp', a MIQP)"


def build_miqp(model: MilpModel, objective: LeastSquares, *, seed: int = 0, scip_params: dict | None = None):
    """The SCIP model ``min s`` s.t. the network rows, ``r = A y + a - t``, ``1/2 ||r||^2 <= s``.

    Parameters
    ----------
    model : MilpModel
        The big-M model of the network over the input box (``build_network_model``).
    objective : LeastSquares
        The target ``t``, measurement matrix ``A`` and offset ``a``.
    seed : int, default 0
        SCIP's random seed shift.
    scip_params : dict, optional
        Extra SCIP parameters by name.

    Returns
    -------
    tuple
        ``(scip_model, columns, r_vars, s_var)``; ``columns[j]`` is the SCIP variable of model
        column ``j``.

    Raises
    ------
    SolverError
        When SCIP (the ``scip`` extra) is not installed.
    """
    pyscipopt = import_scip(_WHAT)
    m, cols = scip_model(model, _WHAT)      # the network's rows, through the back-end layer
    m.setParam("randomization/randomseedshift", int(seed) % 2**31)
    # Outer-approximation cuts of the 64-term quadratic make root rounds slow and barely move
    # the bound (the big-M relaxation reaches almost any output): branch early instead.
    m.setParam("separating/maxroundsroot", 5)
    for key, value in (scip_params or {}).items():
        m.setParam(key, value)
    inf = m.infinity()
    # residual r = A y + a - t, one free variable per measurement
    y = [cols[j] for j in model.y_cols]
    M = np.eye(len(y)) if objective.A is None else objective.A
    shift = objective.a - objective.t
    r_vars = [m.addVar(name=f"r{k}", lb=-inf, ub=inf) for k in range(M.shape[0])]
    for k in range(M.shape[0]):
        nz = np.nonzero(M[k])[0]
        m.addCons(r_vars[k] - pyscipopt.quicksum(float(M[k, j]) * y[j] for j in nz) == float(shift[k]),
                  name=f"res{k}")
    s_var = m.addVar(name="s", lb=0.0, ub=inf)
    m.addCons(0.5 * pyscipopt.quicksum(r * r for r in r_vars) <= s_var, name="lsq")
    m.setObjective(s_var, "minimize")
    return m, cols, r_vars, s_var


def _start_values(model: MilpModel, objective: LeastSquares, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    v = model.point_to_columns(x)
    y = v[model.y_cols]
    r = objective.residual(y[None, :])[0]
    return v, r, 0.5 * float(r @ r)


def polish_in_region(problem: Problem, x: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Solve the box-constrained linear least squares of ``x``'s linear region, a few times.

    The solver's point is only exact up to its tolerances; on the region the network is
    affine, so one bounded linear least-squares solve lands on the region's minimiser (when it
    stays in the region). Candidates are forward-checked by the caller.

    Parameters
    ----------
    problem : Problem
        A least-squares problem.
    x : numpy.ndarray
        The point whose region is polished (d,).
    rounds : int, default 3
        Solves, each in the region of the previous answer.

    Returns
    -------
    numpy.ndarray
        ``x`` and the ``rounds`` candidates, one per row (rounds + 1, d); not yet checked.
    """
    from scipy.optimize import lsq_linear

    net, d = problem.network, problem.domain
    obj = least_squares_objective(problem, "region polish")
    out = [x]
    for _ in range(rounds):
        pattern = [p[0] for p in net.phase_pattern(x[None, :])]
        _, (T, t0) = net.region_affine(pattern)
        M = T if obj.A is None else obj.A @ T
        rhs = obj.t - obj.a - (t0 if obj.A is None else obj.A @ t0)
        x = lsq_linear(M, rhs, bounds=(d.lb, d.ub), method="bvls").x
        out.append(x)
    return np.array(out)


@one_blas_thread
@certified_method
def solve_miqp(problem: Problem, *, time_limit: float | None = 60.0, seed: int = 0, progress=None,
               incumbent=None, bounds="crown", start_samples: int = 256, abs_gap: float = LSQ_ABS_GAP,
               rel_gap: float = LSQ_REL_GAP, scip_params: dict | None = None) -> Result:
    """Global minimum of a least-squares Problem by a convex MIQP on SCIP.

    ``incumbent``: a latent to start from (e.g. Surfing's answer); ``start_samples`` uniform
    box samples are tried as well. ``bounds``: 'crown', 'ibp', ... or LayerBounds (as ``mip``).
    ``scip_params``: extra SCIP parameters by name. The default gaps are tighter than the
    linear methods': an inversion target in the range has minimum 0, where only an absolute
    gap means anything.

    Parameters
    ----------
    problem : Problem
        A problem with a ``LeastSquares`` objective and a bounded box.
    time_limit : float or None, default 60
        Seconds, bounds and model building included.
    seed : int, default 0
        Seed of the start samples and SCIP's random seed shift.
    progress : callable, optional
        Called with progress reports.
    incumbent : array_like, optional
        A latent to start from.
    bounds : str or LayerBounds, default 'crown'
        Neuron bounds of the big-M model.
    start_samples : int, default 256
        Uniform box samples tried as starting points.
    abs_gap, rel_gap : float
        Gaps at which SCIP stops and ``optimal`` is claimed.
    scip_params : dict, optional
        Extra SCIP parameters by name.

    Returns
    -------
    Result
        ``optimal`` with a certified lower bound meeting the value, else ``time_limit`` (best
        point and bound so far), ``infeasible`` or ``solver_error``.

    Raises
    ------
    ProblemError
        For a linear objective, a bad incumbent or an unknown option.
    SolverError
        When SCIP is not installed.
    """
    obj = least_squares_objective(problem, "miqp", "for a linear objective use 'mip'")
    check_time_limit(time_limit)
    import_scip(_WHAT)
    from ..methods.mip import problem_bounds

    run = Anytime(problem, "miqp", time_limit, progress)
    layer_bounds = problem_bounds(problem, bounds)
    model = build_network_model(problem.network, problem.domain, layer_bounds)
    add_output_constraints(model, problem)
    stats = {k: model.stats[k] for k in ("binaries", "stable_neurons", "hidden_neurons", "rows", "columns")}
    stats["bounds_seconds"] = run.elapsed
    run.improve_bound(0.0, "nonnegative")
    # --- starting points
    if incumbent is not None:
        start = np.asarray(incumbent, dtype=np.float64).reshape(-1)
        if start.shape != (problem.network.input_dim,):
            raise ProblemError(f"incumbent has shape {start.shape}, expected ({problem.network.input_dim},)")
        run.offer(start[None, :], "incumbent")
    if start_samples > 0:
        d = problem.domain
        rng = np.random.default_rng([seed, 0x5EED])    # not the stream callers draw targets from
        xs = np.vstack([d.center()[None, :], d.lb + rng.random((start_samples, d.dim)) * (d.ub - d.lb)])
        run.offer(xs, "start samples")
    scip, cols, r_vars, s_var = build_miqp(model, obj, seed=seed, scip_params=scip_params)
    stats["build_seconds"] = run.elapsed - stats["bounds_seconds"]
    if run.x is not None:
        v, r, s = _start_values(model, obj, run.x)
        sol = scip.createSol()
        for var, val in zip(cols, v, strict=True):
            scip.setSolVal(sol, var, float(val))
        for var, val in zip(r_vars, r, strict=True):
            scip.setSolVal(sol, var, float(val))
        scip.setSolVal(sol, s_var, s)
        stats["start_accepted"] = bool(scip.addSol(sol, free=True))
    if math.isfinite(run.time_limit):
        if run.out_of_time():
            return run.result(TIME_LIMIT, **stats)
        scip.setParam("limits/time", max(run.remaining, 0.1))
    scip.setParam("limits/gap", float(rel_gap))
    scip.setParam("limits/absgap", float(abs_gap))
    try:
        scip.optimize()
    except Exception as exc:  # noqa: BLE001 - pyscipopt raises plain Exception on LP errors
        stats["solver_message"] = f"SCIP failed: {str(exc).strip() or type(exc).__name__}"
        return run.result(SOLVER_ERROR, **stats)
    status = scip.getStatus()
    stats.update(solver_status=status, nodes=int(scip.getNNodes()), solve_seconds=float(scip.getSolvingTime()))
    for sol in scip.getSols():
        run.offer(np.array([scip.getSolVal(sol, cols[j]) for j in model.x_cols])[None, :], "miqp")
    if run.x is not None:
        run.offer(polish_in_region(problem, run.x), "region polish")
    if status == "infeasible":
        if run.x is None:
            return run.result(INFEASIBLE, **stats)
        stats["warning"] = "SCIP reported infeasible although a feasible point is known"
        return run.result(TIME_LIMIT, **stats)
    if status not in TRUSTED_SCIP_STATUSES:   # its dual bound means nothing
        stats["solver_message"] = f"SCIP ended with status {status!r}"
        return run.result(SOLVER_ERROR, **stats)
    dual = float(scip.getDualbound())
    if math.isfinite(dual) and abs(dual) < 1e20:
        run.improve_bound(max(0.0, widen(dual, "min")), "miqp")
    run.report(nodes=stats["nodes"])
    if run.converged(max(abs_gap, 2 * SOLVER_MARGIN), rel_gap + 2 * SOLVER_MARGIN):
        return run.result(OPTIMAL, **stats)
    return run.result(TIME_LIMIT, **stats)
