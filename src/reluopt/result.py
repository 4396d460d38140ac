"""Result of an optimisation, and the anytime bookkeeping every method shares.

Values and bounds are in the user's sense: for ``max`` the bound is an upper bound on the
optimum, for ``min`` a lower bound. ``x`` is always re-evaluated by a forward pass, so
``value`` is the network's own value, never a solver's claim.
"""

from __future__ import annotations

import functools
import json
import math
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .errors import CertificateError, EmptyInputSet, ProblemError
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

#: Relative slack of the certificate checks (the solvers' margins are 1e-6 (1 + |bound|)).
CERTIFICATE_TOL = 1e-5


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
            "stats": _jsonable(self.stats),
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


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


#: A progress callback receives a snapshot dict: elapsed, incumbent, bound, gap, and extras.
ProgressCallback = Callable[[dict], None]


class Anytime:
    """Shared incumbent/bound bookkeeping for a method run.

    ``offer`` takes candidate inputs, evaluates them by a forward pass, keeps the best
    feasible one and records the improvement in the history. ``improve_bound`` records a
    tighter certified bound. Both speak the user's sense.
    """

    def __init__(
        self,
        problem: Problem,
        method: str,
        time_limit: float | None = None,
        progress: ProgressCallback | None = None,
        progress_every: float = 0.25,
    ) -> None:
        self.problem = problem
        self.method = method
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
        return time.perf_counter() - self.start

    @property
    def remaining(self) -> float:
        return self.time_limit - self.elapsed

    def out_of_time(self) -> bool:
        """Stop now: Ctrl-C arrived (see ``interruptible``) or the time limit is reached."""
        return self.interrupted or self.elapsed >= self.time_limit

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
        ok = self.problem.is_feasible(xs, tol) & np.all(np.isfinite(xs), axis=1)
        if not np.any(ok):
            return False
        xs = xs[ok]
        vals = self.problem.objective_values(xs)
        i = int(np.argmax(vals) if self.problem.sense == "max" else np.argmin(vals))
        v = float(vals[i])
        if self.value is not None and not self.problem.better(v, self.value):
            return False
        self.x, self.value = xs[i].copy(), v
        self._record(source)
        return True

    def improve_bound(self, bound: float, source: str) -> bool:
        """Record a certified bound (user sense) if it is tighter than the current one."""
        if bound is None or math.isnan(bound):
            return False
        if self.bound is not None:
            tighter = bound < self.bound if self.problem.sense == "max" else bound > self.bound
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
        return relative_gap(self.value, self.bound)

    def converged(self, abs_gap: float = ABS_GAP, rel_gap: float = REL_GAP) -> bool:
        if self.value is None or self.bound is None:
            return False
        g = abs(self.bound - self.value)
        return g <= abs_gap or g <= rel_gap * max(abs(self.value), 1e-10)

    def report(self, force: bool = False, **extra) -> None:
        if self.progress is None:
            return
        now = self.elapsed
        if not force and now - self._last_progress < self.progress_every:
            return
        self._last_progress = now
        self.progress({"elapsed": now, "method": self.method, "incumbent": self.value,
                       "bound": self.bound, "gap": self.gap, **extra})

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


def _slack(*values: float) -> float:
    return CERTIFICATE_TOL * (1.0 + max(abs(v) for v in values))


def _beats_bound_by_tolerance(result: Result, problem: Problem) -> bool:
    """Does ``x`` beat the bound while violating a constraint (within FEASIBILITY_TOL)?"""
    if result.x is None or result.value is None or result.bound is None:
        return False
    sign = 1.0 if problem.sense == "max" else -1.0
    return sign * (result.value - result.bound) > 0 and problem.constraint_violation(result.x)[0] > 0.0


def _gap_closed(result: Result, abs_gap: float, rel_gap: float) -> bool:
    """Both sides of the gap test: ``|bound - value|`` within the tolerances (plus slack)."""
    if result.value is None or result.bound is None:
        return False
    allowed = max(abs_gap, rel_gap * max(abs(result.value), 1e-10)) + _slack(result.value, result.bound)
    return abs(result.bound - result.value) <= allowed


def check_certificate(result: Result, problem: Problem, *, abs_gap: float = ABS_GAP,
                      rel_gap: float = REL_GAP) -> Result:
    """Check a Result's invariants before it leaves a method; return it unchanged.

    Parameters
    ----------
    result, problem
        The outcome and the problem it answers.
    abs_gap, rel_gap
        The gap tolerances the method stopped at (``optimal`` must meet them).

    Returns
    -------
    Result
        ``result``, when every invariant holds.

    Raises
    ------
    CertificateError
        When an invariant fails: a NaN, an ``x`` that is infeasible or whose forward-pass
        value is not ``value``, a bound on the wrong side of the value, a non-finite bound
        over a bounded box, ``optimal`` without both sides of the gap test, ``infeasible``
        with a point. Such a result is a bug, never a certificate.
    """
    what = f"method {result.method!r} returned status {result.status!r}"
    if result.status not in STATUSES:
        raise CertificateError(f"{what}, which is not a known status")
    for name in ("value", "bound"):
        v = getattr(result, name)
        if v is not None and math.isnan(v):
            raise CertificateError(f"{what} with a NaN {name}")
    if result.x is not None:
        x = np.asarray(result.x, dtype=np.float64)
        if x.shape != (problem.domain.dim,) or not np.all(np.isfinite(x)):
            raise CertificateError(f"{what} with an x of shape {x.shape} or non-finite entries")
        if result.status == INFEASIBLE:
            raise CertificateError(f"{what} together with a point x")
        if not problem.is_feasible(x[None, :], 10 * FEASIBILITY_TOL)[0]:
            viol = float(problem.constraint_violation(x)[0])
            raise CertificateError(f"{what} with an x that violates the constraints by {viol:.3g}")
        forward = float(problem.objective_values(x)[0])
        if result.value is None or not math.isclose(forward, result.value, rel_tol=1e-9, abs_tol=1e-12):
            raise CertificateError(f"{what} with value {result.value} but the forward pass gives {forward}")
    elif result.value is not None:
        raise CertificateError(f"{what} with a value but no x")
    sign = 1.0 if problem.sense == "max" else -1.0
    # The bound holds for the exact constraints; x may violate them by up to FEASIBILITY_TOL,
    # and such a point may do (slightly) better than the bound, or be the only point of a
    # set the method proved empty (bound -inf for max). The side checks need an exact x.
    exact_x = result.x is None or problem.constraint_violation(result.x)[0] <= 0.0
    if result.bound is not None:
        if result.status == INFEASIBLE:
            if sign * result.bound != -math.inf:
                raise CertificateError(f"{what} with the finite bound {result.bound}")
        elif not math.isfinite(result.bound) and problem.domain.bounded and not (
                not exact_x and sign * result.bound == -math.inf):
            raise CertificateError(f"{what} with the bound {result.bound} over a bounded box")
        if (exact_x and result.value is not None
                and sign * (result.bound - result.value) < -_slack(result.value, result.bound)):
            raise CertificateError(
                f"{what} with the bound {result.bound:.10g} on the wrong side of its own value "
                f"{result.value:.10g} ({problem.sense}): the bound is not a valid bound")
    if result.status == OPTIMAL:
        if result.value is None or result.bound is None:
            raise CertificateError(f"{what} without both a value and a bound")
        if not _gap_closed(result, abs_gap, rel_gap):
            raise CertificateError(f"{what} with a gap of {result.abs_gap:.3g} above its tolerances")
    return result


def certified_method(fn: Callable[..., Result]) -> Callable[..., Result]:
    """Wrap a method ``fn(problem, **options) -> Result``: the one place where results are checked.

    An empty input set (``EmptyInputSet``) becomes status ``infeasible`` with the reason in
    ``stats["reason"]``, whichever method met it; every Result passes ``check_certificate``
    with the gap tolerances the method was given.
    """

    @functools.wraps(fn)
    def wrapper(problem: Problem, *args, **options) -> Result:
        start = time.perf_counter()
        check_box_scale(problem)
        try:
            result = fn(problem, *args, **options)
        except EmptyInputSet as exc:
            name = fn.__name__.removeprefix("solve_").replace("_", "-")
            result = Result(INFEASIBLE, name, problem.sense, stats={"reason": str(exc)},
                            seconds=time.perf_counter() - start)
        abs_gap, rel_gap = options.get("abs_gap", ABS_GAP), options.get("rel_gap", REL_GAP)
        if result.status == OPTIMAL and not _gap_closed(result, abs_gap, rel_gap) and _beats_bound_by_tolerance(
                result, problem):
            # only a point using the constraint tolerance can beat the bound by more than the
            # gap (check_certificate verifies that): a point, but no proof of optimality
            result.status = FEASIBLE
            result.stats["note"] = ("the point beats the certified bound of the exact constraints by "
                                    f"{result.abs_gap:.3g}, using the {FEASIBILITY_TOL:g} constraint tolerance")
        return check_certificate(result, problem, abs_gap=abs_gap, rel_gap=rel_gap)

    return wrapper


#: Largest magnitude of a neuron's interval bound that the bounding code handles soundly
#: (branch and bound bounds in float32, whose range ends near 3e38).
MAX_NEURON_BOUND = 1e30


def check_box_scale(problem: Problem) -> None:
    """Refuse a bounded box over which the network's values overflow floating point.

    Raises
    ------
    ProblemError
        When the interval bounds of some neuron over the box exceed ``MAX_NEURON_BOUND``
        (or overflow): no bound computed there would mean anything.
    """
    dom = problem.domain
    if not dom.bounded:
        return
    from .bounds.ibp import interval_bounds

    with np.errstate(all="ignore"):
        widest = float(np.max(np.abs(np.concatenate([dom.lb, dom.ub]))))
        b = interval_bounds(problem.network, dom.lb, dom.ub)
        layers = [*zip(b.lower, b.upper, strict=True), (b.out_lower, b.out_upper)]
        for k, (L, U) in enumerate(layers):
            top = float(np.max(np.abs(np.concatenate([np.ravel(L), np.ravel(U)])))) if np.size(L) else 0.0
            if not top <= MAX_NEURON_BOUND:   # also catches inf and NaN
                where = "the outputs" if k == len(layers) - 1 else f"hidden layer {k}"
                raise ProblemError(
                    f"the box is too large: over it the interval bounds of {where} reach {top:.3g} "
                    f"(inputs up to {widest:.3g}), beyond what floating point can bound soundly; "
                    "give a smaller box")
