"""Random restarts, each run to convergence: the fair restart baseline for Surfing.

Given a gradient budget per target, Adam on ``G_T`` runs from a random start until the run
has converged, then restarts from a fresh random start, until the budget is spent; the best
point of all restarts is kept. A run has converged when its step size, cut by ``cut`` each
time its best objective has not improved by a relative ``tol`` over ``patience`` steps, falls
below ``min_lr_ratio * lr`` (reduce-on-plateau). A target whose objective has fallen below
``tiny`` (a zero of the residual: nothing left to find) is not restarted any more.
So the number of restarts follows from the budget and from how long a run needs, not from a
fixed count: short budgets give one run, long ones several, each of them finished.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import ProblemError
from ..network import Network
from ..parallel import one_blas_thread
from ..result import Result, check_time_limit
from .adam import Adam
from .surfing import _grad, _prepare, _results, _starts, _values


class RowAdam(Adam):
    """Adam with its own moments, step count and step size per row: rows restart independently.

    Parameters
    ----------
    shape : tuple of int
        Rows x dimension of the iterates.
    lr : float
        The starting step size of every row.
    beta1, beta2, eps : float
        As in ``inversion.adam.Adam``.
    """

    def __init__(self, shape, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__(lr, beta1, beta2, eps)
        self.reset(shape)
        self.counts = np.zeros(shape[0])            # one step count per row
        self.rates = np.full(shape[0], float(lr))   # one step size per row

    def restart(self, rows: np.ndarray) -> None:
        """Start the selected rows afresh: zero moments and step count, the first step size.

        Parameters
        ----------
        rows : numpy.ndarray
            Boolean mask of the rows to restart.
        """
        self.m[rows] = 0.0
        self.v[rows] = 0.0
        self.counts[rows] = 0.0
        self.rates[rows] = self.lr

    def _advance(self):
        """Count the step of every row: per-row step counts and step sizes, as columns."""
        self.counts += 1
        return self.counts[:, None], self.rates[:, None]


@one_blas_thread
def restarts_to_convergence(network: Network, targets, box, *, budget: int, A=None, a=None, lr: float = 0.05,
                            patience: int = 20, tol: float = 1e-3, cut: float = 0.3, min_lr_ratio: float = 1e-2,
                            tiny: float = 1e-14, seed: int = 0, time_limit: float | None = None) -> list[Result]:
    """Adam on ``G_T`` with random restarts, each run to convergence, within ``budget`` steps per target.

    Parameters
    ----------
    network : Network
        ``G_T``.
    targets, box, A, a, seed, time_limit
        As for ``inversion.surfing.surf`` (one run per target: no parallel starts).
    budget : int
        Gradient evaluations per target, over all restarts.
    lr : float, default 0.05
        The step size each restart starts with.
    patience : int, default 20
        Steps without a relative improvement of ``tol`` before the step size is cut.
    tol : float, default 1e-3
        Relative improvement of a run's best objective that counts as progress.
    cut : float, default 0.3
        Factor applied to the step size on a plateau.
    min_lr_ratio : float, default 1e-2
        A run has converged when its step size falls below ``min_lr_ratio * lr``.
    tiny : float, default 1e-14
        A target whose best objective is below this is solved and not restarted again.

    Returns
    -------
    list of Result
        One per target, method ``restarts``: the best point of all restarts; ``stats`` hold
        ``restarts`` (runs started, the last possibly cut short by the budget) and
        ``converged_runs`` (runs that converged).

    Raises
    ------
    ProblemError
        For a budget below 1 or bad parameters, or targets, ``A``, ``a`` of the wrong shape.
    """
    if budget < 1:
        raise ProblemError("restarts_to_convergence needs a budget of at least 1 step")
    if not (0 < cut < 1) or patience < 1 or not (0 < min_lr_ratio < 1):
        raise ProblemError("restarts_to_convergence: need 0 < cut < 1, patience >= 1 and 0 < min_lr_ratio < 1")
    limit = check_time_limit(time_limit)
    start = time.perf_counter()
    deadline = start + limit
    T, A, a, lb, ub = _prepare(network, targets, A, a, box)
    k = T.shape[0]
    rng = np.random.default_rng(seed)
    x = _starts(rng, k, 1, lb, ub)
    opt = RowAdam(x.shape, lr)
    run_best = _values(network, x, T, A, a)
    stall = np.zeros(k, dtype=int)
    best_x, best_v = x.copy(), run_best.copy()
    runs = np.ones(k, dtype=int)
    converged_runs = np.zeros(k, dtype=int)
    solved_before = best_v < tiny
    evals = 0
    for _ in range(budget):
        if time.perf_counter() >= deadline:
            break
        x = np.clip(opt.step(x, _grad(network, x, T, A, a)), lb, ub)
        evals += 1
        v = _values(network, x, T, A, a)
        better = v < best_v
        best_x[better], best_v[better] = x[better], v[better]
        progress = v < run_best * (1 - tol)
        run_best = np.minimum(run_best, v)
        stall = np.where(progress, 0, stall + 1)
        plateau = stall >= patience
        opt.rates[plateau] *= cut
        stall[plateau] = 0
        solved = best_v < tiny
        converged_runs += (v < tiny) & ~solved_before
        solved_before = solved
        done = (opt.rates < min_lr_ratio * lr) & ~solved
        if done.any():
            converged_runs += done
            runs += done
            x[done] = _starts(rng, int(done.sum()), 1, lb, ub)
            opt.restart(done)
            run_best[done] = _values(network, x[done], T[done], A, a)
            stall[done] = 0
    out = _results("restarts", network, best_x, T, A, a, best_v[:, None], evals, time.perf_counter() - start,
                   {"starts": 1})
    for r, n, c in zip(out, runs, converged_runs, strict=True):
        r.stats["restarts"], r.stats["converged_runs"] = int(n), int(c)
    return out
