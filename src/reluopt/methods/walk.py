"""Relax-and-Walk (Tong, Cai, Serra, arXiv 2401.03451).

Starting points come from the LP relaxation of the big-M MIP; ``starts`` chooses how:

* ``starts="paper"`` (default): the paper's starting-point procedure, as Gogeta.jl's
  ``optimize_by_walking!`` also implements it. Solve the relaxation, take its ``x``; then, layer by
  layer, draw a not-yet-fixed neuron of the layer with probability proportional to
  ``|z_int - z_frac| + delta`` (``z_int`` the neuron's true phase at the current point,
  ``z_frac`` its relaxed value), fix its binary to the flipped true phase ``1 - z_int``
  cumulatively (on top of the earlier fixes), re-solve and walk from the new ``x``. A fix
  that makes the relaxation infeasible is undone; after ``infeasible_per_restart`` of them,
  or once every layer is done, all fixes are cleared and the procedure restarts from the base
  relaxation with fresh draws, so relaxation starts never run out.
* ``starts="single"``: reluopt's earlier variant: each neuron in turn (weighted order
  without replacement, same weights) gets ONE fix, to ``1 - round(z_frac)``, on top of the
  base relaxation, undone after the solve; once every neuron has been tried, random domain
  points continue the stream of starts.

``delta`` (default ``DELTA``) keeps every neuron drawable. One reused HiGHS LP instance.

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
from .points import as_incumbent, box_scale, check_domain, project, sample_domain
from .region import DEFAULT_TIME_LIMIT, RegionLP, pattern_keys, phase_patterns

#: Default ``stall_walks``: walks in a row without a new incumbent before ``walk`` stops.
#: A walk costs a few region LPs: ~4 ms on a 2-8-8-1 network (the stall ends a run after
#: ~2 s), seconds on a large one, where the time limit ends the run first.
STALL_WALKS = 500

#: Default ``delta`` of the neuron weights ``|z_int - z_frac| + delta`` (reluopt's value;
#: Gogeta.jl's default is 0.1).
DELTA = 0.05

#: Default ``infeasible_per_restart`` (Gogeta.jl's ``infeasible_per_iter``).
INFEASIBLE_PER_RESTART = 5

START_RULES = ("paper", "single")


class Stall:
    """The stall rule of the heuristics, so that a huge time limit on a small network still ends.

    ``tick(n)`` after ``n`` units of work (iterations, samples, walks); ``stalled`` once
    ``limit`` units passed since the incumbent last improved by more than
    ``rtol (1 + |value|)``.

    Parameters
    ----------
    anytime : Anytime
        The run's tracker (its incumbent).
    limit : int or None
        Units of work without improvement; None never stalls.
    name : str
        The option's name, for the error message.
    rtol : float
        Relative improvement that counts.

    Raises
    ------
    ProblemError
        When ``limit`` is not a positive integer or None.
    """

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
        """Count ``n`` units of work (the count restarts when the incumbent improved).

        Parameters
        ----------
        n : int
            Units of work done since the last tick.

        Returns
        -------
        bool
            Whether the run has stalled (``stalled``).
        """
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
        """Why the heuristic stopped, for ``stats['stopped']``.

        Parameters
        ----------
        done : int
            Units of work done.
        limit : int or None
            The heuristic's own work limit (e.g. ``max_samples``).
        limit_name : str
            Its name, the reason when ``done`` reached it.

        Returns
        -------
        str
            ``interrupted``, ``limit_name``, ``stalled``, else ``time_limit``.
        """
        if self.anytime.interrupted:
            return "interrupted"
        if limit is not None and done >= limit:
            return limit_name
        return "stalled" if self.stalled else "time_limit"


def walk(problem: Problem, region: RegionLP, anytime: Anytime, x0: np.ndarray, *,
         eps: float = 0.01, max_steps: int = 1000, source: str = "walk") -> tuple[float | None, int]:
    """Walk from ``x0`` through improving linear regions (Relax-and-Walk's walk).

    Each step solves the region LP of the current region, then steps slightly past its optimum
    into the next region; the walk ends when the LP value stops improving, the pattern does not
    change, a solve fails, or time runs out. Every LP optimum is offered to ``anytime``.

    Parameters
    ----------
    problem : Problem
        The problem.
    region : RegionLP
        The region-LP solver (reused).
    anytime : Anytime
        The run's tracker (incumbent, time left).
    x0 : np.ndarray, shape (d,)
        The start (projected into the domain).
    eps : float
        Step past an optimum, as a fraction of the last move (widened up to 64x to leave the region).
    max_steps : int
        Most regions visited.
    source : str
        Label of the offered points.

    Returns
    -------
    best : float or None
        The best region-LP value reached (max form); None when the first LP failed.
    steps : int
        Steps taken.
    """
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


class RelaxStarts:
    """Starting points from the LP relaxation of the big-M model, on one reused HiGHS LP.

    Parameters
    ----------
    problem : Problem
        The problem (a bounded box).
    relax : callable
        ``relax(instance) -> SolveOutput``: one status-checked solve with the caller's time
        and interrupt policy.
    rng : numpy.random.Generator
        Source of the draws.
    delta : float
        Added to every neuron's weight ``|z_int - z_frac|``.
    relax_solver : str
        ``ipm`` (interior point, no crossover, no presolve) or ``simplex``.
    """

    def __init__(self, problem: Problem, relax, rng: np.random.Generator, delta: float = DELTA,
                 relax_solver: str = "ipm"):
        from ..milp.backends.highs import HighsBackend
        from ..milp.formulation import build_problem_model
        from .mip import problem_bounds

        self.problem = problem
        self.model = model = build_problem_model(problem, problem_bounds(problem)).relaxed()
        self.instance = HighsBackend().build(model, relax=True)
        self.highs = self.instance.highs    # the fast path: options and bounds changed in place
        if relax_solver == "ipm":
            # the relaxation of a dense net is a large LP: interior point without crossover is
            # about 3x faster than simplex here; presolve finds nothing to remove (stable
            # neurons are already out of the model) and cannot be interrupted
            self.highs.setOptionValue("solver", "ipm")
            self.highs.setOptionValue("run_crossover", "off")
            self.highs.setOptionValue("presolve", "off")
        self.relax = relax
        self.rng = rng
        self.delta = float(delta)
        self.solves = self.fixes = self.flips = self.infeasible = self.restarts = 0
        #: (layer, neuron, fixed value, x before, x after the solve or None): the first
        #: LOG_LIMIT fixes of ``paper`` (tests check that each fix flips the true phase)
        self.log: list[tuple[int, int, float, np.ndarray, np.ndarray | None]] = []
        self.base_x: np.ndarray | None = None
        self.base_values: np.ndarray | None = None

    LOG_LIMIT = 1000

    def _solve(self):
        self.solves += 1
        out = self.relax(self.instance)
        if out.values is None:
            return None, None
        return self.model.columns_to_point(out.values), out.values

    def _set(self, col: int, lo: float, hi: float) -> None:
        self.highs.changeColsBounds(1, np.array([col], dtype=np.int32), np.array([lo]), np.array([hi]))

    def _unfix(self, col: int) -> None:
        self._set(col, self.model.col_lower[col], self.model.col_upper[col])

    def _phases(self, x: np.ndarray, layer: int) -> np.ndarray:
        """True phase (g > 0) of the layer's neurons at ``x`` (clipped into the box)."""
        dom = self.problem.domain
        return self.problem.network.preactivations(np.clip(x, dom.lb, dom.ub)[None, :])[layer][0] > 0

    def base(self) -> np.ndarray | None:
        """Solve the plain relaxation, whose point is the first start.

        Returns
        -------
        np.ndarray or None
            Its ``x``; None when the solve gave no point.
        """
        self.base_x, self.base_values = self._solve()
        return self.base_x

    def paper(self, stop, infeasible_per_restart: int = INFEASIBLE_PER_RESTART):
        """Yield starts by cumulative layer-by-layer fixing with restarts (``starts="paper"``).

        Parameters
        ----------
        stop : callable
            ``stop() -> bool``; checked before every solve.
        infeasible_per_restart : int
            Infeasible fixes after which the fixes are cleared and the procedure restarts.

        Yields
        ------
        tuple of (ndarray, str)
            The ``x`` of each re-solved relaxation and its source name.
        """
        if self.base_x is None or self.base_values is None:
            return
        zc = self.model.z_cols
        if not any(np.any(c >= 0) for c in zc):
            return
        while not stop():
            x, vals = self.base_x, self.base_values
            fixed: list[int] = []
            bad = 0
            for layer, cols in enumerate(zc):
                left = list(np.nonzero(cols >= 0)[0])
                while left and bad < infeasible_per_restart and not stop():
                    z_int = self._phases(x, layer)[left].astype(np.float64)
                    w = np.abs(z_int - vals[cols[left]]) + self.delta
                    k = int(self.rng.choice(len(left), p=w / w.sum())) if w.sum() > 0 else 0
                    j = left.pop(k)
                    col, val = int(cols[j]), 1.0 - z_int[k]
                    self._set(col, val, val)
                    self.fixes += 1
                    self.flips += 1       # by construction: the opposite of the true phase
                    nx, nv = self._solve()
                    if len(self.log) < self.LOG_LIMIT:
                        self.log.append((layer, int(j), val, x, nx))
                    if nx is None:
                        self._unfix(col)
                        self.infeasible += 1
                        bad += 1
                        continue
                    fixed.append(col)
                    x, vals = nx, nv
                    yield x, "walk-restricted"
                if bad >= infeasible_per_restart:
                    break
            for col in fixed:
                self._unfix(col)
            self.restarts += 1

    def single(self, stop):
        """Yield starts by one fix at a time on the base relaxation (``starts="single"``).

        Parameters
        ----------
        stop : callable
            ``stop() -> bool``; checked before every solve.

        Yields
        ------
        tuple of (ndarray, str)
            The ``x`` of each restricted relaxation and its source name; ends once every
            neuron was tried.
        """
        if self.base_x is None or self.base_values is None:
            return
        zc = np.concatenate(self.model.z_cols)
        has = zc >= 0
        cols = zc[has]
        if not cols.size:
            return
        z_frac = self.base_values[cols]
        dom = self.problem.domain
        g = np.concatenate([p[0] for p in self.problem.network.preactivations(
            np.clip(self.base_x, dom.lb, dom.ub)[None, :])])[has]
        z_int = (g > 0).astype(np.float64)
        w = np.abs(z_int - z_frac) + self.delta
        # a weighted order without replacement (Efraimidis-Spirakis keys)
        order = np.argsort(-self.rng.random(cols.size) ** (1.0 / w))
        for j in order:
            if stop():
                return
            col, val = int(cols[j]), 1.0 - np.round(z_frac[j])
            self._set(col, val, val)
            self.fixes += 1
            self.flips += int(val != z_int[j])
            nx, _ = self._solve()
            self._unfix(col)
            if nx is not None:
                yield nx, "walk-restricted"


@certified_method
def solve_walk(problem: Problem, *, time_limit: float | None = None, seed: int = 0, progress=None,
               eps: float = 0.01, max_steps: int = 1000, relax_solver: str = "ipm",
               relax_fraction: float = 0.5, max_walks: int | None = None, start_samples: int = 64,
               incumbent=None, stall_walks: int | None = STALL_WALKS, starts: str = "paper",
               delta: float = DELTA, infeasible_per_restart: int = INFEASIBLE_PER_RESTART) -> Result:
    """Relax-and-Walk: walks from LP-relaxation starts (see the module docstring).

    Parameters
    ----------
    problem : Problem
        The problem (a bounded box: the relaxation needs big-M bounds).
    time_limit, seed, progress
        Seconds (default ``region.DEFAULT_TIME_LIMIT``), seed, callback on new incumbents.
    eps, max_steps
        The walk's step past a region's optimum (fraction of the move) and step cap.
    relax_solver : str
        ``ipm`` (interior point, no crossover) or ``simplex`` for the relaxations.
    relax_fraction : float
        Each relaxation may use at most this fraction of the remaining time.
    max_walks : int, optional
        Stop after that many walks (reproducible runs).
    start_samples : int
        Domain samples forward-checked first, so that a point exists even when the budget
        ends inside the (large) relaxation.
    incumbent : array_like, optional
        A start walked from first.
    stall_walks : int or None
        Stop after that many walks without a new incumbent (None: never).
    starts : str
        ``paper`` (cumulative layer-by-layer fixing with restarts) or ``single`` (one fix at
        a time on the base relaxation, then random points).
    delta : float
        Added to each neuron's weight ``|z_int - z_frac|``; > 0 keeps every neuron drawable.
    infeasible_per_restart : int
        ``paper`` starts: infeasible fixes before a restart.

    Returns
    -------
    Result
        Status ``feasible`` (or ``no_solution`` / ``interrupted``); ``stats`` has walks, steps,
        relaxations, relaxation_walks, random_walks, fixes, phase_flips (fixes that set the
        opposite of the neuron's true phase), restarts, region_lps and stopped.
    """
    if starts not in START_RULES:
        raise ProblemError(f"starts must be one of {', '.join(START_RULES)}, got {starts!r}")
    if not (np.isfinite(delta) and delta >= 0):
        raise ProblemError(f"delta must be a finite number >= 0, got {delta!r}")
    if isinstance(infeasible_per_restart, bool) or int(infeasible_per_restart) != infeasible_per_restart \
            or infeasible_per_restart < 1:
        raise ProblemError(f"infeasible_per_restart must be a positive integer, got {infeasible_per_restart!r}")
    anytime = Anytime(problem, "walk", DEFAULT_TIME_LIMIT if time_limit is None else time_limit,
                      progress)
    problem.max_form()
    check_domain(problem)
    problem.domain.require_bounded("walk (its LP relaxation)")
    incumbent = as_incumbent(problem, incumbent)
    rng = np.random.default_rng(seed)
    region = RegionLP(problem, should_stop=lambda: anytime.interrupted)
    n_walks = n_steps = 0
    by_source = {"walk-relax": 0, "walk-restricted": 0, "walk-random": 0}
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
        if source in by_source:
            by_source[source] += 1
        stall.tick()
        anytime.report(walks=n_walks, steps=n_steps)

    def relax(instance):
        """One relaxation on the reused instance (Ctrl-C stops it inside the LP)."""
        return instance.solve(time_limit=max(relax_fraction * anytime.remaining, 1e-3),
                              should_stop=lambda: anytime.interrupted)

    rs = None
    with interruptible(anytime), single_threaded_blas():
        if start_samples > 0:
            anytime.offer(sample_domain(problem.domain, start_samples, rng, "lhs", seed=seed), "walk-sample")
        if incumbent is not None:
            anytime.offer(incumbent, "incumbent")
            run(incumbent, "walk")
        # the relaxation of a large net takes seconds to build (3.4 s for 784-1024-1024-1024),
        # without a chance to poll: check before each step
        if not done():
            rs = RelaxStarts(problem, relax, rng, delta=delta, relax_solver=relax_solver)
        if rs is not None and not done() and rs.base() is not None:
            run(rs.base_x, "walk-relax")
            for x, source in (rs.paper(done, infeasible_per_restart) if starts == "paper"
                              else rs.single(done)):
                run(x, source)
        while not done():
            run(sample_domain(problem.domain, 1, rng)[0], "walk-random")
    stopped = stall.reason(n_walks, max_walks, "max_walks")
    c = {"relaxations": 0, "fixes": 0, "phase_flips": 0, "restarts": 0} if rs is None else \
        {"relaxations": rs.solves, "fixes": rs.fixes, "phase_flips": rs.flips, "restarts": rs.restarts}
    return anytime.result(anytime.heuristic_status(), walks=n_walks, steps=n_steps, **c,
                          relaxation_walks=by_source["walk-relax"] + by_source["walk-restricted"],
                          random_walks=by_source["walk-random"],
                          starts=starts, region_lps=region.n_solves, stopped=stopped)
