"""Sampling heuristics (Perakis and Tsiourvas, arXiv 2205.14189).

* ``sampling`` (Algorithm 1): sample the domain (uniform, Latin hypercube or Sobol), take
  each sample's activation pattern, solve the region LP of every pattern not seen before
  (patterns are deduplicated by a hash of their packed bits), keep the best.
* ``sampling-mip`` (Algorithm 2): as Algorithm 1, and after a region LP whose value is
  within the gap rule of the incumbent (default: within 2/3 of ``|incumbent|`` below it,
  in the max form), solve a neighbourhood MIP (column bounds of the big-M model, one reused
  HiGHS instance) and repeat from the MIP's solution while it improves. Which binaries are
  free is the ``free`` option:

  - ``free="paper"``: the neighbourhood MIP of the paper's Algorithm 2, as Gogeta.jl
    implements it (``optimize_by_sampling!``, ``enhanced=true``): the
    binaries of the neurons active at the LP optimum are fixed to 1, every other binary is
    free (inactive neurons may switch on), a large neighbourhood;
  - ``free="tight-wall"``: reluopt's variant: only the binaries of the neurons that are
    (near) tight at the LP optimum are free, all others are fixed to the region's pattern:
    the regions that touch the LP optimum, a small neighbourhood.

  ``benchmarks/results/fidelity.md`` compares the two; the default is the better one there.
* ``sampling+mip``: the paper's warm start: the sampling algorithm runs for a fraction of
  the budget and its best point is handed to the exact MIP as its start (the ``auto``
  portfolio with this single heuristic).

Both are heuristics: they finish with status ``feasible`` (or ``no_solution``; ``interrupted``
after Ctrl-C, with the best point), never ``optimal``. Default time limit when none is given:
``region.DEFAULT_TIME_LIMIT`` (10 s). They also stop after ``stall_samples`` samples in a row
without a new incumbent (default ``STALL_SAMPLES``), so that a huge time limit on a small
network still ends (there, every sample soon falls in a region already seen);
``stats['stopped']`` says why a run stopped.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..certificate import certified_method
from ..errors import ProblemError
from ..parallel import single_threaded_blas
from ..problem import Problem
from ..result import Result, interruptible
from ..tracker import Anytime
from .points import as_incumbent, check_domain, project, to_domain, unit_design
from .portfolio import solve_auto
from .region import DEFAULT_TIME_LIMIT, RegionLP, pattern_keys, phase_patterns
from .walk import Stall

#: Default ``stall_samples``: samples in a row without a new incumbent before a run stops.
#: A sample in a known region costs one forward pass (microseconds); one in a new region a
#: region LP (milliseconds on a small network, ~10 ms on a 20-200-200-200 one).
STALL_SAMPLES = 20000

#: ``free`` rules of the neighbourhood MIP (see the module docstring).
FREE_RULES = ("tight-wall", "paper")
DEFAULT_FREE = "tight-wall"


class _Sampler:
    """A stream of domain points from one design (a Sobol engine continues its sequence)."""

    def __init__(self, problem: Problem, design: str, rng: np.random.Generator, seed: int):
        self.domain = problem.domain
        self.design = design
        self.rng = rng
        self.seed = seed
        self.calls = 0
        self._sobol = None
        if design == "sobol":
            from scipy.stats import qmc

            self._sobol = qmc.Sobol(d=self.domain.dim, scramble=True, seed=seed)
        else:
            unit_design(1, 1, rng, design, seed)  # validates the name early

    def draw(self, n: int) -> np.ndarray:
        self.calls += 1
        if self._sobol is not None:
            with warnings.catch_warnings():  # balance warning when n is not a power of 2
                warnings.simplefilter("ignore")
                U = self._sobol.random(n)
        else:
            U = unit_design(self.domain.dim, n, self.rng, self.design, self.seed + self.calls)
        return to_domain(self.domain, U)


def _start(problem: Problem, time_limit, method: str, progress) -> Anytime:
    anytime = Anytime(problem, method, DEFAULT_TIME_LIMIT if time_limit is None else time_limit,
                      progress)
    problem.max_form()
    check_domain(problem)
    return anytime


def _run(problem: Problem, anytime: Anytime, *, seed: int, design: str, batch: int,
         max_samples: int | None, incumbent, on_lp, stall_samples: int | None = STALL_SAMPLES) -> dict:
    """Algorithm 1's loop; ``on_lp(pattern, solution)`` runs after every region LP."""
    stall = Stall(anytime, stall_samples, "stall_samples")
    net = problem.network
    rng = np.random.default_rng(seed)
    # sampled regions are unrelated: no warm basis
    region = RegionLP(problem, warm=False, should_stop=lambda: anytime.interrupted)
    sampler = _Sampler(problem, design, rng, seed)
    seen: set[bytes] = set()
    n_samples = n_lps = n_dup = 0
    method = anytime.method
    pending = []
    incumbent = as_incumbent(problem, incumbent)
    if incumbent is not None:  # a warm start: its region LP is solved first
        x0 = project(problem.domain, incumbent[None, :])
        anytime.offer(x0, "incumbent")
        pending.append(x0)
    with interruptible(anytime), single_threaded_blas():
        while not anytime.out_of_time() and not stall.stalled:
            if max_samples is not None and n_samples >= max_samples:
                break
            k = batch if max_samples is None else min(batch, max_samples - n_samples)
            X = pending.pop() if pending else sampler.draw(k)
            n_samples += X.shape[0]
            anytime.offer(X, "sample")
            pats = phase_patterns(net, X)
            for i, key in enumerate(pattern_keys(pats)):
                if key in seen:
                    n_dup += 1
                    continue
                if anytime.out_of_time():
                    break
                seen.add(key)
                pattern = [p[i] for p in pats]
                sol = region.solve(pattern, time_limit=anytime.remaining)
                n_lps += 1
                if sol.status == "optimal":
                    anytime.offer(sol.x, f"{method}-lp")
                    if on_lp is not None:
                        on_lp(pattern, sol)
                anytime.report(samples=n_samples, lps=n_lps)
            stall.tick(X.shape[0])
        if n_samples == 0 and (max_samples is None or max_samples > 0):
            # the budget ended before the first batch (e.g. inside the one-off scipy.stats
            # import of a Sobol design): one batch of forward passes still gives a point
            X = sampler.draw(batch)
            n_samples += X.shape[0]
            anytime.offer(X, "sample")
    stopped = stall.reason(n_samples, max_samples, "max_samples")
    return {"samples": n_samples, "region_lps": n_lps, "duplicates": n_dup,
            "lp_iterations": region.iterations, "design": design, "stopped": stopped}


@certified_method
def solve_sampling(problem: Problem, *, time_limit: float | None = None, seed: int = 0,
                   progress=None, design: str = "lhs", batch: int = 32,
                   max_samples: int | None = None, incumbent=None,
                   stall_samples: int | None = STALL_SAMPLES) -> Result:
    """Algorithm 1: region LPs at the patterns of sampled points; best LP optimum wins.

    Parameters
    ----------
    problem : Problem
        The problem; any objective sense, box, ``A x <= b`` and output constraints.
    time_limit, seed, progress
        Seconds (default ``region.DEFAULT_TIME_LIMIT``), seed, callback on new incumbents.
    design : {'uniform', 'lhs', 'sobol'}
        How the points are sampled.
    batch : int
        Points sampled (and forward-checked) at once.
    max_samples : int or None
        Stop after that many samples.
    incumbent : array_like or None
        A user's point, offered first.
    stall_samples : int or None
        Stop after that many samples without a new incumbent (None: never).

    Returns
    -------
    Result
        Status ``feasible`` (or ``no_solution`` / ``interrupted``), the best forward-checked
        point, and ``stats`` (samples, region_lps, duplicates, lp_iterations, design, stopped).
    """
    anytime = _start(problem, time_limit, "sampling", progress)
    stats = _run(problem, anytime, seed=seed, design=design, batch=batch,
                 max_samples=max_samples, incumbent=incumbent, on_lp=None, stall_samples=stall_samples)
    return anytime.result(anytime.heuristic_status(), **stats)


class Neighbourhood:
    """Neighbourhood MIPs on one reused HiGHS instance of the big-M model.

    Parameters
    ----------
    problem : Problem
        The problem (a bounded box: the model needs big-M bounds).
    should_stop : callable, optional
        ``() -> bool``, polled inside each MIP (Ctrl-C).
    """

    def __init__(self, problem: Problem, should_stop=None):
        from ..milp.backends.highs import HighsBackend
        from ..milp.formulation import build_problem_model
        from .mip import problem_bounds

        self.problem = problem
        self.model = build_problem_model(problem, problem_bounds(problem))
        self.instance = HighsBackend().build(self.model)
        self.highs = self.instance.highs
        self.should_stop = should_stop   # Ctrl-C inside a MIP
        # z1 ("g > 0") of every neuron with a kink at 0, then z2 ("g >= tau") of clipped
        # neurons with a kink at tau; each is fixed to the pattern unless its neuron is tight
        z1 = np.concatenate(self.model.z_cols)
        z2 = np.concatenate(self.model.z2_cols) if self.model.z2_cols else np.full(z1.shape, -1)
        self.has1, self.has2 = z1 >= 0, z2 >= 0
        self.cols = np.concatenate([z1[self.has1], z2[self.has2]]).astype(np.int32)
        self.solves = 0
        self.freed = 0

    def free_mask(self, pattern, tight, rule: str) -> tuple[np.ndarray, np.ndarray]:
        """The binaries' values in ``pattern`` and which of them the neighbourhood frees.

        Parameters
        ----------
        pattern : list of ndarray
            Phase of every hidden neuron, per layer (0 inactive, 1 active, 2 saturated).
        tight : list of ndarray of bool
            Per layer, the neurons on a wall at the LP optimum (used by ``tight-wall``).
        rule : str
            ``paper`` (binaries at 0 are free, those at 1 fixed: Algorithm 2's neighbourhood)
            or ``tight-wall`` (only the binaries of tight neurons are free).

        Returns
        -------
        tuple of ndarray
            The binaries' values (0/1, float) and the boolean free mask, in column order.
        """
        phase = np.concatenate([np.asarray(p).reshape(-1) for p in pattern])
        value = np.concatenate([phase[self.has1] > 0, phase[self.has2] > 1]).astype(np.float64)
        if rule == "paper":
            return value, value == 0.0
        t = np.concatenate(tight)
        return value, np.concatenate([t[self.has1], t[self.has2]])

    def solve(self, pattern, tight, x, time_limit: float, rule: str = "tight-wall"):
        """Fix the binaries that ``rule`` keeps to ``pattern``, free the others, solve.

        Parameters
        ----------
        pattern, tight, rule
            As in ``free_mask``.
        x : ndarray
            The LP optimum, handed to HiGHS as the MIP start.
        time_limit : float
            Seconds for this MIP.

        Returns
        -------
        ndarray or None
            The input point of the MIP's best solution (to be forward-checked by the caller),
            or None when nothing is free or the MIP found no solution.
        """
        value, free = self.free_mask(pattern, tight, rule)
        if not np.any(free):
            return None
        lo = np.where(free, 0.0, value)
        hi = np.where(free, 1.0, value)
        self.highs.changeColsBounds(self.cols.size, self.cols, lo, hi)
        start = self.model.point_to_columns(x)
        self.solves += 1
        self.freed += int(free.sum())
        out = self.instance.solve(time_limit=time_limit, mip_start=start, should_stop=self.should_stop)
        if out.values is None:
            return None
        return self.model.columns_to_point(out.values)


@certified_method
def solve_sampling_mip(problem: Problem, *, time_limit: float | None = None, seed: int = 0,
                       progress=None, design: str = "lhs", batch: int = 32,
                       max_samples: int | None = None, gap_rule: float = 2 / 3,
                       nbhd_time: float = 1.0, max_rounds: int = 20, incumbent=None,
                       stall_samples: int | None = STALL_SAMPLES, free: str = DEFAULT_FREE) -> Result:
    """Algorithm 2: Algorithm 1 plus neighbourhood MIPs around promising LP optima.

    Parameters
    ----------
    problem : Problem
        The problem (a bounded box: the neighbourhood MIP needs big-M bounds).
    time_limit, seed, progress
        Seconds (default ``region.DEFAULT_TIME_LIMIT``), seed, callback on new incumbents.
    design, batch, max_samples, incumbent, stall_samples
        As in ``solve_sampling``.
    gap_rule : float
        An LP optimum gets a neighbourhood search when it is at most ``gap_rule * |incumbent|``
        below the incumbent (max form); Algorithm 2's exploitation rate (2/3 in Gogeta.jl).
    nbhd_time : float
        Seconds per neighbourhood MIP.
    max_rounds : int
        Repeats per LP optimum (each from the previous MIP's solution, while it improves).
    free : str
        Which binaries a neighbourhood MIP frees: ``paper`` (Algorithm 2: the neurons that are
        active at the LP optimum stay fixed to 1, all others are free) or ``tight-wall``
        (reluopt: only the neurons on a wall at the LP optimum are free).

    Returns
    -------
    Result
        Status ``feasible`` (or ``no_solution`` / ``interrupted``); ``stats`` adds
        neighbourhood_searches, improving_rounds, neighbourhood_mips, binaries, free and
        freed_binaries (mean free binaries per neighbourhood MIP).
    """
    if free not in FREE_RULES:
        raise ProblemError(f"free must be one of {', '.join(FREE_RULES)}, got {free!r}")
    anytime = _start(problem, time_limit, "sampling-mip", progress)
    problem.domain.require_bounded("sampling-mip (its neighbourhood MIP)")
    nb = Neighbourhood(problem, should_stop=lambda: anytime.interrupted)
    region = RegionLP(problem, should_stop=lambda: anytime.interrupted)
    s = 1.0 if problem.sense == "max" else -1.0
    counts = {"searches": 0, "improving": 0}

    def on_lp(pattern, sol):
        if anytime.value is None or anytime.out_of_time():
            return
        inc = s * anytime.value
        if sol.lp_value < inc - gap_rule * max(abs(inc), 1e-9):
            return
        counts["searches"] += 1
        value, pat, tight, x = sol.lp_value, pattern, sol.tight, sol.x
        for _ in range(max_rounds):
            if anytime.out_of_time():
                return
            xm = nb.solve(pat, tight, x, min(nbhd_time, anytime.remaining), rule=free)
            if xm is None:
                return
            anytime.offer(xm, "sampling-mip-nbhd")
            # the region LP at the MIP's point gives the exact optimum and its tight walls
            nxt = region.solve_point(xm, time_limit=anytime.remaining)
            if nxt.status != "optimal" or nxt.lp_value <= value + 1e-9 * (1 + abs(value)):
                return
            counts["improving"] += 1
            anytime.offer(nxt.x, "sampling-mip-nbhd")
            value, tight, x = nxt.lp_value, nxt.tight, nxt.x
            pat = [p[0] for p in phase_patterns(problem.network, xm[None, :])]

    stats = _run(problem, anytime, seed=seed, design=design, batch=batch,
                 max_samples=max_samples, incumbent=incumbent, on_lp=on_lp, stall_samples=stall_samples)
    stats.update(neighbourhood_searches=counts["searches"], improving_rounds=counts["improving"],
                 neighbourhood_mips=nb.solves, binaries=int(nb.cols.size), free=free,
                 freed_binaries=nb.freed / nb.solves if nb.solves else 0.0)
    return anytime.result(anytime.heuristic_status(), **stats)


def solve_sampling_then_mip(problem: Problem, *, time_limit: float | None = None, seed: int = 0,
                            progress=None, sampling: str = "sampling", sampling_fraction: float = 0.25,
                            incumbent=None, **options) -> Result:
    """``sampling+mip``: the paper's warm start, the exact MIP started from the sampling's best point.

    Perakis and Tsiourvas hand the sampling algorithm's solution to the MIP solver as its
    start; this is the ``auto`` portfolio with that one heuristic and ``exact="mip"``.

    Parameters
    ----------
    problem : Problem
        The problem (a bounded box).
    time_limit, seed, progress
        Total seconds (default: the MIP runs without a limit after a 10 s sampling phase),
        seed, callback on new incumbents.
    sampling : str
        ``sampling`` (Algorithm 1) or ``sampling-mip`` (Algorithm 2).
    sampling_fraction : float
        Share of the budget for the sampling phase, in [0, 1].
    incumbent : array_like, optional
        A user's starting point for the sampling phase.
    **options
        Passed to the MIP (e.g. ``bounds``, ``rel_gap``).

    Returns
    -------
    Result
        The MIP's result (bound, status) with the best point of both phases; method
        ``sampling+mip``; ``stats['phases']`` lists the two phases.
    """
    if sampling not in ("sampling", "sampling-mip"):
        raise ProblemError(f"sampling must be 'sampling' or 'sampling-mip', got {sampling!r}")
    result = solve_auto(problem, time_limit=time_limit, seed=seed, progress=progress,
                        heuristic_fraction=sampling_fraction, heuristics=(sampling,), exact="mip",
                        incumbent=incumbent, **options)
    result.method = "sampling+mip"
    return result
