"""Relax-and-Walk (Tong, Cai, Serra, arXiv 2401.03451).

Starting points come from the LP relaxation of the big-M MIP: its optimum ``x``, then the
relaxation re-solved with ONE binary fixed to the opposite of its rounded relaxed value,
the neuron drawn with weight ``|z_int - z_frac| + 0.05`` (``z_int`` the neuron's true phase
at the relaxation's ``x``, ``z_frac`` its relaxed value): neurons the relaxation gets most
wrong are tried first. Each restriction is applied alone on the base relaxation (one
reused HiGHS LP, warm-started). Once every neuron has been tried, random domain points
continue the stream of starts.

The walk from a start: solve the region LP of its region, step slightly past the optimum
along the direction of travel (``x_new + eps (x_new - x_old)``, eps 0.01, projected onto
the domain) into the neighbouring region, and repeat while the region LP value improves.

A heuristic: status ``feasible`` (or ``no_solution``; ``interrupted`` after Ctrl-C, with the
best point). Default time limit when none is given: ``region.DEFAULT_TIME_LIMIT`` (10 s).
It also stops after ``stall_walks`` walks in a row without a new incumbent (default
``STALL_WALKS``), so a huge time limit on a small network still ends; ``stats['stopped']``
says why it stopped.
"""

from __future__ import annotations

import numpy as np

from ..certificate import certified_method
from ..errors import ProblemError
from ..parallel import single_threaded_blas
from ..problem import Problem
from ..result import Result, interruptible
from ..tracker import Anytime
from .domain import as_incumbent, box_scale, check_domain, project, sample_domain
from .region import DEFAULT_TIME_LIMIT, RegionLP, pattern_keys, phase_patterns

#: Default ``stall_walks``: walks in a row without a new incumbent before ``walk`` stops.
#: A walk costs a few region LPs: ~4 ms on a 2-8-8-1 network (the stall ends a run after
#: ~2 s), seconds on a large one, where the time limit ends the run first.
STALL_WALKS = 500


class Stall:
    """The stall rule of the heuristics: ``tick(n)`` after ``n`` units of work (iterations,
    samples, walks); ``stalled`` once ``limit`` units passed since the incumbent last improved
    by more than ``rtol (1 + |value|)``. ``limit=None`` never stalls."""

    def __init__(self, anytime: Anytime, limit: int | None, name: str = "stall limit", rtol: float = 1e-9):
        if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 1):
            raise ProblemError(f"{name} must be a positive integer or None, got {limit!r}")
        self.anytime = anytime
        self.limit = None if limit is None else int(limit)
        self.rtol = rtol
        self.sign = 1.0 if anytime.problem.sense == "max" else -1.0
        self.best: float | None = None
        self.count = 0

    def tick(self, n: int = 1) -> bool:
        v = self.anytime.value
        if v is not None and (self.best is None or self.sign * (v - self.best) > self.rtol * (1 + abs(self.best))):
            self.best = v
            self.count = 0
        else:
            self.count += n
        return self.stalled

    @property
    def stalled(self) -> bool:
        return self.limit is not None and self.count >= self.limit

    def reason(self, done: int, limit: int | None, limit_name: str) -> str:
        """Why the heuristic stopped (``stats['stopped']``): ``interrupted``, ``limit_name``
        when ``done`` reached its own work ``limit``, ``stalled``, else ``time_limit``."""
        if self.anytime.interrupted:
            return "interrupted"
        if limit is not None and done >= limit:
            return limit_name
        return "stalled" if self.stalled else "time_limit"


def walk(problem: Problem, region: RegionLP, anytime: Anytime, x0: np.ndarray, *,
         eps: float = 0.01, max_steps: int = 1000, source: str = "walk") -> tuple[float | None, int]:
    """Walk from ``x0`` through improving regions; returns (best LP value, steps)."""
    dom = problem.domain
    net = problem.network
    scale = box_scale(dom)
    x_old = project(dom, np.asarray(x0, dtype=np.float64)[None, :])[0]
    sol = region.solve_point(x_old, time_limit=anytime.remaining)
    if sol.status != "optimal" or sol.lp_value is None:
        return None, 0
    anytime.offer(sol.x, source)
    best, x_new = sol.lp_value, sol.x
    key = pattern_keys(phase_patterns(net, x_old[None, :]))[0]
    steps = 0
    while steps < max_steps and not anytime.out_of_time():
        steps += 1
        direction = x_new - x_old
        if np.max(np.abs(direction) / scale) < 1e-12:
            # the start already was the region's optimum: leave along the objective gradient
            direction = problem.network.gradient(x_new, problem.max_form()[0]) * scale * scale
            nrm = np.max(np.abs(direction) / scale)
            if nrm < 1e-300:
                break
            direction = direction / nrm
        # slightly past the optimum; widen the step until the pattern changes (a few tries)
        moved = False
        for k in range(4):
            x_try = project(dom, (x_new + eps * (4 ** k) * direction)[None, :])[0]
            k_try = pattern_keys(phase_patterns(net, x_try[None, :]))[0]
            if k_try != key:
                moved = True
                break
        if not moved:
            break
        nxt = region.solve_point(x_try, time_limit=anytime.remaining)
        if nxt.status != "optimal" or nxt.lp_value is None:
            break
        anytime.offer(nxt.x, source)
        if nxt.lp_value <= best + 1e-9 * (1 + abs(best)):
            break
        best, x_old, x_new, key = nxt.lp_value, x_new, nxt.x, k_try
    return best, steps


@certified_method
def solve_walk(problem: Problem, *, time_limit: float | None = None, seed: int = 0, progress=None,
               eps: float = 0.01, max_steps: int = 1000, relax_solver: str = "ipm",
               relax_fraction: float = 0.5, max_walks: int | None = None, start_samples: int = 64,
               incumbent=None, stall_walks: int | None = STALL_WALKS) -> Result:
    """Relax-and-Walk: walks from LP-relaxation starts and single-neuron restrictions.

    ``relax_solver``: ``ipm`` (interior point, no crossover) or ``simplex`` for the
    relaxations; each relaxation may use at most ``relax_fraction`` of the remaining time.
    ``max_walks`` stops after that many walks (reproducible runs); ``start_samples`` domain
    samples are forward-checked first, so that a point exists even when the budget ends
    inside the (large) relaxation. ``stall_walks``: stop after that many walks without a new
    incumbent (None: never).
    """
    from ..milp.backends.highs import HighsBackend
    from ..milp.formulation import build_problem_model
    from .mip import problem_bounds

    anytime = Anytime(problem, "walk", DEFAULT_TIME_LIMIT if time_limit is None else time_limit,
                      progress)
    problem.max_form()
    check_domain(problem)
    problem.domain.require_bounded("walk (its LP relaxation)")
    incumbent = as_incumbent(problem, incumbent)
    rng = np.random.default_rng(seed)
    region = RegionLP(problem, should_stop=lambda: anytime.interrupted)
    n_walks = n_steps = n_relax = 0
    stall = Stall(anytime, stall_walks, "stall_walks")

    def done() -> bool:
        return anytime.out_of_time() or (max_walks is not None and n_walks >= max_walks) or stall.stalled

    def run(x, source):
        nonlocal n_walks, n_steps
        if done():
            return
        _, k = walk(problem, region, anytime, x, eps=eps, max_steps=max_steps, source=source)
        n_walks += 1
        n_steps += k
        stall.tick()
        anytime.report(walks=n_walks, steps=n_steps)

    def relax(time_fraction: float):
        """The relaxation on the reused instance (Ctrl-C stops it inside the LP)."""
        return instance.solve(time_limit=max(time_fraction * anytime.remaining, 1e-3),
                              should_stop=lambda: anytime.interrupted)

    with interruptible(anytime), single_threaded_blas():
        if start_samples > 0:
            anytime.offer(sample_domain(problem.domain, start_samples, rng, "lhs", seed=seed), "walk-sample")
        if incumbent is not None:
            anytime.offer(incumbent, "incumbent")
            run(incumbent, "walk")
        order = np.zeros(0, dtype=np.int64)
        # the relaxation of a large net takes seconds to build (3.4 s for 784-1024-1024-1024),
        # without a chance to poll: check before each step
        model = None if done() else build_problem_model(problem, problem_bounds(problem)).relaxed()
        if model is not None and not done():
            instance = HighsBackend().build(model, relax=True)
            highs = instance.highs   # the fast path: options and bounds changed in place
            if relax_solver == "ipm":
                # the relaxation of a dense net is a large LP: interior point without crossover is
                # about 3x faster than simplex here (measured on a 100-500-500-1 net)
                highs.setOptionValue("solver", "ipm")
                highs.setOptionValue("run_crossover", "off")
                # presolve finds nothing to remove here (stable neurons are already out of the
                # model) yet took 2 s on a 784-1024-1024-1024 net, per relaxation, and cannot be
                # interrupted: the same IPM iterates without it
                highs.setOptionValue("presolve", "off")
            base = relax(relax_fraction)
            n_relax += 1
            if base.values is not None and not done():
                x_frac = model.columns_to_point(base.values)
                run(x_frac, "walk-relax")
                zc = np.concatenate(model.z_cols)
                has = zc >= 0
                cols = zc[has]
                if cols.size:
                    z_frac = base.values[cols]
                    g = np.concatenate([p[0] for p in problem.network.preactivations(
                        np.clip(x_frac, problem.domain.lb, problem.domain.ub)[None, :])])[has]
                    z_int = (g > 0).astype(np.float64)
                    w = np.abs(z_int - z_frac) + 0.05
                    # a weighted order without replacement (Efraimidis-Spirakis keys)
                    order = np.argsort(-rng.random(cols.size) ** (1.0 / w))
        for j in order:
            if done():
                break
            assert model is not None     # order is empty without a relaxation
            col = np.array([cols[j]], dtype=np.int32)
            val = 1.0 - np.round(z_frac[j])
            highs.changeColsBounds(1, col, np.array([val]), np.array([val]))
            out = relax(relax_fraction)
            highs.changeColsBounds(1, col, np.array([model.col_lower[cols[j]]]),
                                   np.array([model.col_upper[cols[j]]]))
            n_relax += 1
            if out.values is not None:
                run(model.columns_to_point(out.values), "walk-restricted")
        while not done():
            run(sample_domain(problem.domain, 1, rng)[0], "walk-random")
    stopped = stall.reason(n_walks, max_walks, "max_walks")
    return anytime.result(anytime.heuristic_status(), walks=n_walks, steps=n_steps, relaxations=n_relax,
                          region_lps=region.n_solves, stopped=stopped)
