"""``method="pgd"``: projected gradient ascent on the worst objective row, from many starts.

The attack of adversarial-robustness work (Madry et al.'s PGD with restarts and a margin
loss), applied to any problem with objective rows: for ``max min_r (C_r y + e_r)`` (a
VNN-LIB disjunct's margins, a robust objective) the ascent direction is the gradient of the
currently smallest row, and for a plain ``c . y`` it is ``c``'s. Verification falsifies with
it (``stop_above=0``: any point where every margin is >= 0 is a counterexample), and it is a
cheap incumbent for the exact methods.

Starts, in this order: the incumbent (if given), the centre, the box corners at which CROWN's
linear upper bound of each row is largest (where the relaxation says the row could be large),
and the best of ``samples`` uniform points; the rest are uniform random. Each round moves all
starts at once: a sign-gradient step of ``step`` times the box width, shrinking linearly to
1e-3, plus Gaussian noise that decays to zero; the box and ``A x <= b`` by projection. Output
constraints are not followed by the ascent; only points that satisfy them become incumbents.
"""

from __future__ import annotations

import numpy as np

from ..bounds import compute_bounds, linear_output_bounds
from ..certificate import certified_method
from ..errors import ProblemError
from ..parallel import single_threaded_blas
from ..problem import Problem
from ..result import Result, interruptible
from ..tracker import Anytime
from .points import as_incumbent, project

#: Time limit when none is given (seconds).
DEFAULT_TIME_LIMIT = 10.0


def attack_starts(problem: Problem, n: int, samples: int, rng: np.random.Generator, incumbent=None) -> np.ndarray:
    """The ``n`` starting points of the attack (see the module docstring).

    Parameters
    ----------
    problem : Problem
        Bounded box; objective rows from ``problem.rows()``.
    n : int
        Number of starts.
    samples : int
        Uniform points sampled to pick the best ones as starts.
    rng : numpy.random.Generator
    incumbent : array_like or None

    Returns
    -------
    ndarray, shape (n, d)
    """
    dom = problem.domain
    net = problem.network
    C, e = problem.rows()
    width = dom.ub - dom.lb
    starts = [] if incumbent is None else [np.asarray(incumbent, dtype=np.float64)[None, :]]
    starts.append(dom.center()[None, :])
    bounds = compute_bounds(net, dom.lb, dom.ub, "crown")
    _, corners, _, _ = linear_output_bounds(net, dom.lb, dom.ub, C, bounds)
    starts.append(corners[0])
    if samples > 0:
        X = dom.lb + rng.random((samples, dom.dim)) * width
        values = np.min(net.forward(X) @ C.T + e, axis=1)
        starts.append(X[np.argsort(-values)[: max(n // 2, 1)]])
    X = np.vstack(starts)[:n]
    if X.shape[0] < n:
        X = np.vstack([X, dom.lb + rng.random((n - X.shape[0], dom.dim)) * width])
    return project(dom, X)


@certified_method
def solve_pgd(problem: Problem, *, time_limit: float | None = None, seed: int = 0, progress=None,
              incumbent=None, restarts: int = 48, steps: int = 80, step: float = 0.2, noise: float = 0.02,
              samples: int = 4096, stop_above: float | None = None, batches: int | None = None) -> Result:
    """Projected gradient ascent on the smallest objective row from ``restarts`` starts.

    Parameters
    ----------
    problem : Problem
        Bounded box; a linear or ``MaxMin`` objective (max form is used internally).
    time_limit : float or None
        Seconds (default ``DEFAULT_TIME_LIMIT``).
    seed : int
    progress : callable or None
    incumbent : array_like or None
        A first start.
    restarts : int
        Starts moved together (one batch).
    steps : int
        Rounds per batch; a new batch of starts follows while time is left.
    step : float
        The first step, as a fraction of the box width (it shrinks linearly to 1e-3).
    noise : float
        Standard deviation of the first round's noise, as a fraction of the width.
    samples : int
        Uniform points whose best become starts.
    stop_above : float or None
        Stop as soon as a point reaches this value (user sense ``>=`` for max, ``<=`` for min):
        for verification, a counterexample.
    batches : int or None
        At most this many batches of starts (None: until the time limit).

    Returns
    -------
    Result
        Status ``feasible`` with a point (``stats['reached']`` when ``stop_above`` was met),
        ``no_solution`` without one, or ``interrupted``; no bound (a heuristic).
    """
    dom = problem.domain
    dom.require_bounded("pgd")
    if restarts < 1 or steps < 1 or (batches is not None and batches < 1):
        raise ProblemError(f"pgd needs restarts, steps and batches >= 1, got {restarts}, {steps} and {batches}")
    C, e = problem.rows()
    sign = problem.objective.sign
    anytime = Anytime(problem, "pgd", DEFAULT_TIME_LIMIT if time_limit is None else time_limit, progress)
    rng = np.random.default_rng(seed)
    target = None if stop_above is None else sign * float(stop_above)
    width = dom.ub - dom.lb
    net = problem.network
    rounds = done = 0

    def reached() -> bool:
        return target is not None and anytime.value is not None and sign * anytime.value >= target

    with interruptible(anytime), single_threaded_blas():
        X = attack_starts(problem, restarts, samples, rng, as_incumbent(problem, incumbent))
        anytime.offer(X, "pgd:start")
        while not (reached() or anytime.out_of_time() or (batches is not None and done >= batches)):
            done += 1
            for it in range(steps):
                Y = net.forward(X)
                j = np.argmin(Y @ C.T + e, axis=1)
                G = net.gradient(X, C[j])
                frac = 1.0 - it / steps
                X = X + (step * frac + 1e-3) * width * np.sign(G)
                X = project(dom, X + rng.normal(scale=noise * frac, size=X.shape) * width)
                anytime.offer(X, "pgd")
                rounds += 1
                if reached() or anytime.out_of_time():
                    break
            X = project(dom, dom.lb + rng.random(X.shape) * width)     # the next batch: fresh starts
    status = anytime.heuristic_status()
    stopped = ("interrupted" if anytime.interrupted else "reached" if reached() else
               "batches" if batches is not None and done >= batches else "time_limit")
    return anytime.result(status, rounds=rounds, batches=done, reached=reached(), stopped=stopped)

