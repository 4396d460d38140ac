"""The solver boundary: what every MILP back-end (HiGHS, SCIP, Gurobi) takes and returns.

A back-end builds a solver instance from the solver-neutral sparse ``MilpModel`` and solves
it (maximise) with a time limit, gaps, a MIP start, a stop request and progress callbacks.
It returns a ``SolveOutput`` whose status it has checked: a solver error, an unexpected
status or an exception becomes status ``error``, which never carries a bound. Bounds seen
by ``on_progress`` during a run are for display; only the final, status-checked answer
certifies anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from ..formulation import MilpModel

#: Status of a solver run whose outcome cannot be trusted; it never yields a bound.
#: A solver's dual bound holds only up to its feasibility tolerances (about 1e-6): every bound
#: taken from a solver is moved outward by this much, relative to ``1 + |bound|`` (``widen``).
SOLVER_MARGIN = 1e-6


def widen(bound: float | None, sense: str = "max") -> float:
    """A solver's dual bound made safe for its tolerances: moved outward by ``SOLVER_MARGIN``.

    Parameters
    ----------
    bound : float or None
        The solver's dual bound (an upper bound for ``sense='max'``, a lower one for ``'min'``).
    sense : {'max', 'min'}

    Returns
    -------
    float
        ``bound +- SOLVER_MARGIN * (1 + |bound|)``; no bound or a non-finite one gives no
        information (``+inf`` for max, ``-inf`` for min).
    """
    if bound is None or not math.isfinite(bound):
        return math.inf if sense == "max" else -math.inf
    step = SOLVER_MARGIN * (1.0 + abs(bound))
    return bound + step if sense == "max" else bound - step


ERROR = "error"

#: Statuses a back-end reports (besides ``error``); each maps the solver's own statuses onto these.
STATUSES = ("optimal", "infeasible", "infeasible_or_unbounded", "unbounded", "time_limit", "interrupted",
            "iteration_limit", "node_limit", "solution_limit", "memory_limit", ERROR)

#: ``should_stop()``: polled during the run; true asks the solver to stop (status ``interrupted``).
StopCallback = Callable[[], bool]
#: ``on_progress(primal, dual, nodes)``: the solver's current bounds (model sense: max; +-inf if none).
ProgressCallback = Callable[[float, float, int], None]
#: ``on_improvement(objective, values)``: a new incumbent (full column vector), as the solver found it.
ImprovementCallback = Callable[[float, np.ndarray], None]


@dataclass
class SolveOutput:
    """Raw solver outcome in the model's ``max`` sense.

    Attributes
    ----------
    status : str
        One of `STATUSES`.
    values : numpy.ndarray or None
        Full column vector of the best solution, if any (callers forward-check it).
    objective : float or None
        Its objective as the solver computed it.
    bound : float or None
        The solver's dual (upper) bound, only after a trusted status.
    seconds : float
        Wall time of the call.
    nodes : int
        Branch-and-bound nodes.
    message : str
        Why, on an error.
    """

    status: str
    values: np.ndarray | None
    objective: float | None
    bound: float | None
    seconds: float
    nodes: int = 0
    message: str = ""


class SolverInstance(Protocol):
    """A model loaded into one solver; ``solve`` may be called again after changes."""

    def solve(self, *, time_limit: float | None = None, mip_rel_gap: float = 1e-4, mip_abs_gap: float = 1e-6,
              mip_start: np.ndarray | None = None, should_stop: StopCallback | None = None,
              on_progress: ProgressCallback | None = None,
              on_improvement: ImprovementCallback | None = None) -> SolveOutput:
        """Maximise the loaded model; ``time_limit`` counts from this call (seconds).

        Parameters
        ----------
        time_limit : float, optional
            Seconds for this call; None means no limit.
        mip_rel_gap, mip_abs_gap : float, optional
            Relative and absolute optimality gaps at which the solver stops.
        mip_start : numpy.ndarray, optional
            A full column vector to start from (e.g. `MilpModel.point_to_columns`).
        should_stop : StopCallback, optional
            Polled during the run; true asks the solver to stop (status ``interrupted``).
        on_progress : ProgressCallback, optional
            Called with the solver's current ``(primal, dual, nodes)``, for display only.
        on_improvement : ImprovementCallback, optional
            Called with each new incumbent ``(objective, values)``.

        Returns
        -------
        SolveOutput
            The status-checked outcome; a failed run has status ``error`` and no bound.
        """
        ...


class Backend(Protocol):
    """A MILP solver behind reluopt's one interface (see ``get_backend``).

    ``name``: the name callers pass (``solver='highs'``); ``extra``: the pip extra that
    installs it (None: always installed).
    """

    name: str
    extra: str | None

    def build(self, model: MilpModel, *, relax: bool = False, threads: int = 1) -> SolverInstance:
        """Load ``model`` into a new solver instance, to be solved once or more.

        Parameters
        ----------
        model : MilpModel
            The model.
        relax : bool, optional
            Load its LP relaxation (no integrality).
        threads : int, optional
            Solver threads.

        Returns
        -------
        SolverInstance
            The loaded instance.
        """
        ...

    def solve(self, model: MilpModel, *, relax: bool = False, threads: int = 1, time_limit: float | None = None,
              mip_rel_gap: float = 1e-4, mip_abs_gap: float = 1e-6, mip_start: np.ndarray | None = None,
              should_stop: StopCallback | None = None, on_progress: ProgressCallback | None = None,
              on_improvement: ImprovementCallback | None = None) -> SolveOutput:
        """`build` then `SolverInstance.solve` once, on a fresh instance.

        Parameters
        ----------
        model : MilpModel
            The model.
        relax : bool, optional
            Solve its LP relaxation (no integrality).
        threads : int, optional
            Solver threads.
        time_limit, mip_rel_gap, mip_abs_gap, mip_start, should_stop, on_progress, on_improvement
            As in `SolverInstance.solve`.

        Returns
        -------
        SolveOutput
            The status-checked outcome.
        """
        ...


def finite_or_inf(value: float, infinity: float) -> float:
    """``value`` with the solver's infinity mapped to +-inf, so callers test with ``math.isfinite``.

    Parameters
    ----------
    value : float
        A solver's value.
    infinity : float
        The solver's infinity (``|value| >= infinity`` counts as infinite).

    Returns
    -------
    float
        ``value``, +-inf or NaN.
    """
    value = float(value)
    if not math.isfinite(value) or abs(value) >= infinity:
        return math.copysign(math.inf, value) if not math.isnan(value) else math.nan
    return value


def quietly(callback: Callable[..., None] | None) -> Callable[..., None] | None:
    """``callback`` wrapped so that its exceptions never reach (or kill) the solver.

    Parameters
    ----------
    callback : callable or None
        A user callback.

    Returns
    -------
    callable or None
        The wrapped callback (None stays None).
    """
    if callback is None:
        return None

    def call(*args) -> None:
        try:
            callback(*args)
        except Exception:  # noqa: BLE001 - a user callback must not end the run
            pass
    return call
