"""Result of an optimisation, and the anytime bookkeeping every method shares.

Values and bounds are in the user's sense: for ``max`` the bound is an upper bound on the
optimum, for ``min`` a lower bound. ``x`` is always re-evaluated by a forward pass, so
``value`` is the network's own value, never a solver's claim.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .errors import ProblemError
from .interrupts import (  # noqa: F401 - re-exported: methods import them from here
    StopFlag,
    catch_interrupts,
    interrupt_handled,
    interrupt_requested,
    interruptible,
)

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
    """The relative gap ``|bound - value| / max(|value|, 1e-10)``.

    Parameters
    ----------
    value, bound : float or None

    Returns
    -------
    float
        ``inf`` when either side is missing or not finite.
    """
    if value is None or bound is None or not (math.isfinite(value) and math.isfinite(bound)):
        return math.inf
    return abs(bound - value) / max(abs(value), 1e-10)


def check_time_limit(time_limit: float | None) -> float:
    """A method's time limit, validated (``ProblemError`` unless positive).

    Parameters
    ----------
    time_limit : float or None
        Seconds; None for no limit.

    Returns
    -------
    float
        ``inf`` for None.
    """
    if time_limit is None:
        return math.inf
    t = float(time_limit)
    if not t > 0 or math.isnan(t):
        raise ProblemError(f"time limit must be positive, got {time_limit}")
    return t


@dataclass
class Result:
    """Outcome of a method, in the user's sense.

    Attributes
    ----------
    status, method, sense : str
        One of ``STATUSES``; the method that ran; ``'max'`` or ``'min'``.
    x, value : np.ndarray, float or None
        The best feasible input found and the network's own value there.
    bound : float or None
        A certified bound on the optimum (upper for max, lower for min).
    history : list of tuple
        ``(seconds, incumbent, bound, source)`` at each improvement.
    stats : dict
        Method-specific counters and notes.
    seconds : float
    """

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
        """The result as JSON-friendly data (infinite numbers as strings, NaN as None).

        Returns
        -------
        dict
        """
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
        """``to_dict`` as JSON text.

        Parameters
        ----------
        **kw
            Passed to ``json.dumps``.

        Returns
        -------
        str
        """
        return json.dumps(self.to_dict(), **kw)

    def summary(self) -> str:
        """Aligned lines for people: status, method, value, bound, gap, x, seconds.

        Returns
        -------
        str
        """
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
    """Format a labelled vector for the reports, every entry shown and wrapped to ``width`` columns.

    Parameters
    ----------
    label : str
        Printed first, padded to 8 columns.
    values : array_like
        The entries (flattened), each as ``%.6g``.
    width : int
        Column at which lines wrap; continuation lines are indented under the first entry.

    Returns
    -------
    str
        E.g. ``'x        [0.1, 0.2, ...]'``; a vector of more than 12 entries also shows its length.
    """
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
