"""The anytime tracker: incumbent, certified bound, history and progress of one run.

``Tracker`` is what every search keeps (branch and bound, the MIP, the heuristics, the
Lipschitz search); ``Anytime`` is the tracker of a method solving a ``Problem``: it evaluates
candidate inputs itself (forward pass, constraints) and builds the final ``Result``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from .problem import FEASIBILITY_TOL, Problem
from .result import (
    ABS_GAP,
    FEASIBLE,
    INFEASIBLE,
    INTERRUPTED,
    NO_SOLUTION,
    OPTIMAL,
    REL_GAP,
    TIME_LIMIT,
    Result,
    check_time_limit,
    relative_gap,
)

#: A progress callback receives a snapshot dict: elapsed, incumbent, bound, gap, and extras.
ProgressCallback = Callable[[dict], None]


class Tracker:
    """The anytime state of one run: best point and value, certified bound, history, progress.

    Every search in reluopt keeps its incumbent and bound here, so that histories and progress
    reports look the same whatever produced them. The value of an accepted point must be its
    exact objective value (``Anytime.offer`` evaluates candidates itself).

    Parameters
    ----------
    method : str
        Name shown in progress reports and results.
    sense : {'max', 'min'}
        Which values are better; the bound is an upper bound for 'max', a lower one for 'min'.
    time_limit : float or None
        Seconds (None: no limit).
    progress : callable or None
        Receives a dict (elapsed, method, incumbent, bound, gap and extras) at most every
        ``progress_every`` seconds, and at every improvement.
    progress_every : float

    Attributes
    ----------
    x, value : ndarray or None, float or None
        The incumbent.
    bound : float or None
        The certified bound.
    history : list of tuple
        ``(seconds, value, bound, source)`` at each improvement.
    interrupted : bool
        Set by ``interruptible`` on Ctrl-C.
    """

    def __init__(self, method: str, sense: str = "max", time_limit: float | None = None,
                 progress: ProgressCallback | None = None, progress_every: float = 0.25) -> None:
        self.method = method
        self.sense = sense
        self.time_limit = check_time_limit(time_limit)
        self.progress = progress
        self.progress_every = progress_every
        self.start = time.perf_counter()
        self._last_progress = -math.inf
        self.x: np.ndarray | None = None
        self.value: float | None = None
        self.bound: float | None = None
        self.history: list[tuple[float, float | None, float | None, str]] = []
        self.interrupted = False

    # time
    @property
    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.start

    @property
    def remaining(self) -> float:
        """Seconds left of the time limit (``inf`` without one)."""
        return self.time_limit - self.elapsed

    def out_of_time(self) -> bool:
        """Whether to stop now: Ctrl-C arrived (see ``interruptible``) or the time limit is reached.

        Returns
        -------
        bool
        """
        return self.interrupted or self.elapsed >= self.time_limit

    def better(self, a: float, b: float | None) -> bool:
        """Is value ``a`` strictly better than ``b`` (None: nothing yet) in this run's sense?

        Parameters
        ----------
        a : float
        b : float or None

        Returns
        -------
        bool
        """
        return b is None or (a > b if self.sense == "max" else a < b)

    # incumbent and bound
    def accept(self, x: np.ndarray, value: float, source: str) -> bool:
        """Keep ``x`` if its (exact) ``value`` beats the incumbent; record it in the history.

        Parameters
        ----------
        x : ndarray, shape (d,)
        value : float
            The objective value at ``x``, already checked by the caller.
        source : str
            What found it (shown in the history).

        Returns
        -------
        bool
            True if the incumbent improved.
        """
        if not self.better(value, self.value):
            return False
        self.x, self.value = np.array(x, dtype=np.float64), float(value)
        self._record(source)
        return True

    def improve_bound(self, bound: float, source: str) -> bool:
        """Record a certified bound if it is tighter than the current one.

        Parameters
        ----------
        bound : float
        source : str

        Returns
        -------
        bool
            True if the bound tightened.
        """
        if bound is None or math.isnan(bound):
            return False
        if self.bound is not None:
            tighter = bound < self.bound if self.sense == "max" else bound > self.bound
            if not tighter:
                return False
        self.bound = float(bound)
        self._record(source)
        return True

    def _record(self, source: str) -> None:
        self.history.append((self.elapsed, self.value, self.bound, source))
        self.report(force=True)

    @property
    def gap(self) -> float:
        """Relative gap between incumbent and bound (``inf`` without both)."""
        return relative_gap(self.value, self.bound)

    def converged(self, abs_gap: float = ABS_GAP, rel_gap: float = REL_GAP) -> bool:
        """Are incumbent and bound within the tolerances?

        Parameters
        ----------
        abs_gap, rel_gap : float

        Returns
        -------
        bool
        """
        if self.value is None or self.bound is None:
            return False
        g = abs(self.bound - self.value)
        return g <= abs_gap or g <= rel_gap * max(abs(self.value), 1e-10)

    def report(self, force: bool = False, **extra) -> None:
        """Send a progress report (rate-limited unless ``force``).

        Parameters
        ----------
        force : bool
        **extra
            Added to the report.
        """
        if self.progress is None:
            return
        now = self.elapsed
        if not force and now - self._last_progress < self.progress_every:
            return
        self._last_progress = now
        self.progress({"elapsed": now, "method": self.method, "incumbent": self.value,
                       "bound": self.bound, "gap": self.gap, **extra})


class Anytime(Tracker):
    """The tracker of a method solving a ``Problem``: candidates are evaluated here.

    ``offer`` takes candidate inputs, evaluates them by a forward pass, keeps the best
    feasible one and records the improvement in the history. ``improve_bound`` records a
    tighter certified bound. Both speak the user's sense.

    Parameters
    ----------
    problem : Problem
    method : str
    time_limit : float or None
    progress : callable or None
    progress_every : float
    """

    def __init__(
        self,
        problem: Problem,
        method: str,
        time_limit: float | None = None,
        progress: ProgressCallback | None = None,
        progress_every: float = 0.25,
    ) -> None:
        super().__init__(method, problem.sense, time_limit, progress, progress_every)
        self.problem = problem

    def heuristic_status(self) -> str:
        """A heuristic's final status, so that every heuristic ends alike.

        Returns
        -------
        str
            ``interrupted`` after Ctrl-C, else ``feasible`` with a point and ``no_solution`` without one.
        """
        if self.interrupted:
            return INTERRUPTED
        return FEASIBLE if self.x is not None else NO_SOLUTION

    # incumbent
    def offer(self, xs, source: str, tol: float = FEASIBILITY_TOL) -> bool:
        """Evaluate candidate inputs; keep the best feasible one.

        Parameters
        ----------
        xs : array_like, shape (n, d) or (d,)
            Candidates (clipped to the box).
        source : str
            Who found them (for the history).
        tol : float
            Constraint tolerance.

        Returns
        -------
        bool
            True if the incumbent improved.
        """
        xs = np.atleast_2d(np.asarray(xs, dtype=np.float64))
        if xs.size == 0:
            return False
        d = self.problem.domain
        xs = np.clip(xs, d.lb, d.ub)  # remove round-off outside the box
        vals, viol = self.problem.evaluate(xs)     # one forward pass for both
        ok = (viol <= tol) & np.all(np.isfinite(xs), axis=1) & np.isfinite(vals)
        if not np.any(ok):
            return False
        xs, vals = xs[ok], vals[ok]
        i = int(np.argmax(vals) if self.problem.sense == "max" else np.argmin(vals))
        v = float(vals[i])
        return self.accept(xs[i], v, source)

    def result(self, status: str, **stats) -> Result:
        """Finish: re-check the incumbent by a forward pass and build the Result.

        Parameters
        ----------
        status : str
            ``optimal`` without a point and a bound is downgraded.
        **stats
            The Result's ``stats``.

        Returns
        -------
        Result
        """
        x, value = self.x, self.value
        if x is not None:
            value = float(self.problem.objective_values(x)[0])
        if status == OPTIMAL and (x is None or self.bound is None):
            status = TIME_LIMIT if x is None else FEASIBLE
        bound = self.bound
        if status == INFEASIBLE:   # the optimum over an empty set
            bound = -math.inf if self.problem.sense == "max" else math.inf
        return Result(status=status, method=self.method, sense=self.problem.sense, x=x,
                      value=value, bound=bound, history=list(self.history),
                      stats=stats, seconds=self.elapsed)
