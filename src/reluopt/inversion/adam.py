"""Adam for least squares and other smooth objectives: the ``adam`` method and its step rule.

``Adam`` is the vectorised optimiser state that ``surfing`` and ``direct`` (``inversion.surfing``)
step with; ``solve_adam`` is the registry's ``method="adam"``: multi-start projected Adam on
any problem objective, linear or least squares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..certificate import certified_method
from ..parallel import one_blas_thread
from ..problem import Problem
from ..result import FEASIBLE, Result
from ..tracker import Anytime


@dataclass
class Adam:
    """Adam (Kingma and Ba), vectorised over rows: each row is its own optimisation.

    Parameters
    ----------
    lr : float
        Step size.
    beta1, beta2 : float
        Decay rates of the first and second moment estimates.
    eps : float
        Added to the root of the second moment, against division by zero.
    """

    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def reset(self, shape) -> None:
        """Forget the moments: the next ``step`` starts a fresh run on iterates of ``shape``.

        Parameters
        ----------
        shape : tuple of int
            Shape of the iterates (rows x dimension).
        """
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)
        self.k = 0

    def step(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """One descent step from ``x`` along ``grad``, with bias-corrected moments.

        Parameters
        ----------
        x : numpy.ndarray
            Current iterates (rows x dimension).
        grad : numpy.ndarray
            Gradient of the minimised function at ``x``, same shape.

        Returns
        -------
        numpy.ndarray
            The new iterates (not projected).
        """
        k, lr = self._advance()
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad**2
        mhat = self.m / (1 - self.beta1**k)
        vhat = self.v / (1 - self.beta2**k)
        return x - lr * mhat / (np.sqrt(vhat) + self.eps)

    def _advance(self):
        """Count the step: the step count and step size of this step (shared by every row)."""
        self.k += 1
        return self.k, self.lr


@one_blas_thread
@certified_method
def solve_adam(problem: Problem, *, time_limit: float | None = 10.0, seed: int = 0, progress=None,
               starts: int = 16, steps: int = 500, lr: float | None = None, incumbent=None) -> Result:
    """Multi-start projected Adam on any problem objective (linear or least squares).

    A cheap local search for objectives the region-based methods do not take (least
    squares). Output constraints are not handled by the steps; only feasible points are kept.

    Parameters
    ----------
    problem : Problem
        The problem; its box must be bounded.
    time_limit : float or None, default 10
        Seconds.
    seed : int, default 0
        Seed of the uniform random starts.
    progress : callable, optional
        Called with progress reports (``Anytime.report``).
    starts : int, default 16
        Number of starts, run as one batch.
    steps : int, default 500
        Adam steps per start.
    lr : float, optional
        Step size; default a hundredth of the widest box side.
    incumbent : array_like, optional
        Accepted for the common method interface (the portfolio passes one); not used.

    Returns
    -------
    Result
        Status ``feasible`` with the best feasible point found (no bound).

    Raises
    ------
    ProblemError
        For an unbounded box or an option ``adam`` does not take.
    """
    problem.domain.require_bounded("adam")
    run = Anytime(problem, "adam", time_limit, progress)
    rng = np.random.default_rng(seed)
    d = problem.domain
    width = d.ub - d.lb
    step = lr if lr is not None else 0.01 * float(np.max(width))
    x = rng.uniform(d.lb, d.ub, size=(starts, d.dim))
    sign = 1.0 if problem.sense == "min" else -1.0       # Adam minimises
    opt = Adam(step)
    opt.reset(x.shape)
    for _ in range(steps):
        if run.out_of_time():
            break
        x = np.clip(opt.step(x, sign * problem.objective_gradient(x)), d.lb, d.ub)
        run.offer(x, "adam")
        run.report()
    return run.result(FEASIBLE, starts=starts)
