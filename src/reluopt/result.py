"""Result of an optimisation, and the anytime bookkeeping every method shares.

Values and bounds are in the user's sense: for ``max`` the bound is an upper bound on the
optimum, for ``min`` a lower bound. ``x`` is always re-evaluated by a forward pass, so
``value`` is the network's own value, never a solver's claim.
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .errors import ProblemError
from .problem import FEASIBILITY_TOL, Problem

OPTIMAL = "optimal"            # gap within tolerance, bound certified
INFEASIBLE = "infeasible"      # proven: no feasible input exists
TIME_LIMIT = "time_limit"      # stopped by the time limit
NODE_LIMIT = "node_limit"      # stopped by a node / iteration limit
INTERRUPTED = "interrupted"    # stopped by Ctrl-C
FEASIBLE = "feasible"          # a heuristic finished its budget: a point, no proof
NO_SOLUTION = "no_solution"    # finished without a feasible point and without a proof
SOLVER_ERROR = "solver_error"  # a solver failed; the bound is what was proven before it
STATUSES = (OPTIMAL, INFEASIBLE, TIME_LIMIT, NODE_LIMIT, INTERRUPTED, FEASIBLE, NO_SOLUTION, SOLVER_ERROR)

#: Default stopping tolerances of the exact methods.
ABS_GAP = 1e-4
REL_GAP = 1e-4



def relative_gap(value: float | None, bound: float | None) -> float:
    """``|bound - value| / max(|value|, 1e-10)``; ``inf`` when either side is missing."""
    if value is None or bound is None or not (math.isfinite(value) and math.isfinite(bound)):
        return math.inf
    return abs(bound - value) / max(abs(value), 1e-10)


def check_time_limit(time_limit: float | None) -> float:
    if time_limit is None:
        return math.inf
    t = float(time_limit)
    if not t > 0 or math.isnan(t):
        raise ProblemError(f"time limit must be positive, got {time_limit}")
    return t


@dataclass
class Result:
    """Outcome of a method. ``history`` rows: (seconds, incumbent, bound, source)."""

    status: str
    method: str
    sense: str
    x: np.ndarray | None = None
    value: float | None = None
    bound: float | None = None
    history: list[tuple[float, float | None, float | None, str]] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def gap(self) -> float:
        """Relative gap between incumbent and bound (``inf`` if either is missing)."""
        return relative_gap(self.value, self.bound)

    @property
    def abs_gap(self) -> float:
        if self.value is None or self.bound is None:
            return math.inf
        return abs(self.bound - self.value)

    def to_dict(self) -> dict:
        def num(v):
            if v is None:
                return None
            v = float(v)
            return v if math.isfinite(v) else (None if math.isnan(v) else str(v))

        return {
            "status": self.status,
            "method": self.method,
            "sense": self.sense,
            "x": None if self.x is None else [float(v) for v in self.x],
            "value": num(self.value),
            "bound": num(self.bound),
            "gap": num(self.gap),
            "seconds": self.seconds,
            "history": [
                {"seconds": t, "incumbent": num(v), "bound": num(b), "source": s}
                for t, v, b, s in self.history
            ],
            "stats": jsonable(self.stats),
        }

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    def summary(self) -> str:
        lines = [f"status   {self.status}", f"method   {self.method}"]
        if self.value is not None:
            lines.append(f"value    {self.value:.10g}   ({self.sense})")
        else:
            lines.append("value    none (no feasible point found)")
        if self.bound is not None:
            lines.append(f"bound    {self.bound:.10g}")
        if self.value is not None and self.bound is not None:
            lines.append(f"gap      {self.gap:.3g} (relative), {self.abs_gap:.3g} (absolute)")
        if self.x is not None:
            lines.append(format_vector("x", self.x))
        lines.append(f"seconds  {self.seconds:.3f}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Result(status={self.status!r}, method={self.method!r}, value={self.value}, "
                f"bound={self.bound}, gap={self.gap:.3g})")


def format_vector(label: str, values, width: int = 100) -> str:
    """``'x        [0.1, 0.2, ...]'``: every entry (``%.6g``), wrapped at ``width`` columns with
    the continuation lines indented under the first entry; long vectors get their length."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    head = f"{label:<8} ["
    if values.size > 12:
        head = f"{label:<8} ({values.size}) ["
    items = [f"{v:.6g}" for v in values]
    lines, line = [], head
    for k, item in enumerate(items):
        piece = item + (", " if k < len(items) - 1 else "]")
        if len(line) + len(piece.rstrip()) > width and line.strip() and not line.endswith("["):
            lines.append(line.rstrip())
            line = " " * len(head)
        line += piece
    if not items:
        line += "]"
    lines.append(line.rstrip())
    return "\n".join(lines)


def jsonable(obj, *, nonfinite: Callable[[float], object] = str, default: Callable[[object], object] | None = None):
    """``obj`` with numpy values, tuples and dict keys made JSON-friendly, recursively.

    Parameters
    ----------
    obj
        Dicts, lists, tuples, numpy arrays and scalars, and plain values.
    nonfinite
        What an infinite or NaN float becomes (default: its string, ``"inf"``).
    default
        Applied to any other object (default: kept as it is).

    Returns
    -------
    object
        Dicts with string keys, lists, and plain scalars.
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v, nonfinite=nonfinite, default=default) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [jsonable(v, nonfinite=nonfinite, default=default) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return nonfinite(obj)
    if default is not None and not isinstance(obj, str | int | float | bool | type(None)):
        return default(obj)
    return obj


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
        """Stop now: Ctrl-C arrived (see ``interruptible``) or the time limit is reached."""
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
        """A heuristic's final status: ``interrupted`` after Ctrl-C, else ``feasible`` with a
        point and ``no_solution`` without one."""
        if self.interrupted:
            return INTERRUPTED
        return FEASIBLE if self.x is not None else NO_SOLUTION

    # incumbent
    def offer(self, xs, source: str, tol: float = FEASIBILITY_TOL) -> bool:
        """Evaluate candidate inputs (n, d); keep the best feasible one. True if improved."""
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
        """Finish: re-check the incumbent by a forward pass and build the Result."""
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


class StopFlag:
    """A bare ``interrupted`` flag for ``interruptible``, for code without an Anytime."""

    def __init__(self) -> None:
        self.interrupted = False


#: Targets of the ``interruptible`` blocks now open in this process, innermost last.
_ACTIVE: list = []


def _on_sigint(signum, frame) -> None:
    """Ctrl-C: mark every open ``interruptible`` target. Never raises: the code that runs
    (possibly a solver callback inside C code) polls the flags and stops by itself."""
    for target in _ACTIVE:
        target.interrupted = True


def interrupt_requested() -> bool:
    """True once Ctrl-C arrived inside an open ``interruptible`` block of this process."""
    return any(getattr(t, "interrupted", False) for t in _ACTIVE)


def interrupt_handled() -> bool:
    """True inside an ``interruptible`` block: someone returns the best so far on Ctrl-C."""
    return bool(_ACTIVE)


def catch_interrupts() -> None:
    """Install the flag-only Ctrl-C handler for good: for a pool's worker process, which gets
    the terminal's SIGINT with its parent and must survive it while idle (its running task
    stops by its own ``interruptible`` block, the parent decides what happens next)."""
    try:
        signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:  # not in the main thread
        pass


@contextmanager
def interruptible(anytime):
    """Turn Ctrl-C into ``anytime.interrupted = True`` so the method returns its best so far.

    ``anytime``: an Anytime or anything with an ``interrupted`` attribute (``StopFlag``).
    Blocks nest: one handler marks every open block's target, so a method run inside another
    (a heuristic phase of ``auto``, OBBT inside the MIP) stops both. A block entered after
    Ctrl-C reached an enclosing one starts interrupted. Outside the main thread no handler
    can be installed; the target is still registered, so an enclosing block's Ctrl-C
    reaches it.
    """
    installed = False
    previous = None
    try:
        previous = signal.getsignal(signal.SIGINT)
        if previous is not _on_sigint:
            signal.signal(signal.SIGINT, _on_sigint)
            installed = True
    except ValueError:  # not in the main thread
        pass
    if interrupt_requested():
        anytime.interrupted = True
    _ACTIVE.append(anytime)
    try:
        yield anytime
    finally:
        for i in range(len(_ACTIVE) - 1, -1, -1):   # by identity, innermost first
            if _ACTIVE[i] is anytime:
                del _ACTIVE[i]
                break
        if installed:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
