"""What a general model's solve returns, and the tracker that forward-checks every candidate.

``ModelTracker`` is the ``Tracker`` of a model: candidate decisions are clipped to the
variables' bounds, integers rounded, and evaluated by ``Model.evaluate`` (forward passes
through every network in order); only feasible ones count. ``ModelTracker.result`` builds the
``ModelResult`` (every variable's value, every network's outputs recomputed at the returned
decision, the violation) and checks its invariants (``check_model_result``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..certificate import _gap_closed, _slack
from ..domain import FEASIBILITY_TOL
from ..errors import CertificateError
from ..result import ABS_GAP, FEASIBLE, INFEASIBLE, OPTIMAL, REL_GAP, STATUSES, TIME_LIMIT, Result
from ..tracker import ProgressCallback, Tracker

if TYPE_CHECKING:
    from .core import Model


@dataclass(repr=False)
class ModelResult(Result):
    """The outcome of ``Model.solve``, in the model's sense (a ``Result`` with the model's parts).

    Attributes
    ----------
    x : numpy.ndarray or None
        The decision vector (every variable's entries, in creation order).
    values : dict
        Variable name -> its value (a float for a scalar, an array for a vector).
    outputs : dict
        Network output name -> the network's outputs recomputed by a forward pass at ``x``.
    violation : float or None
        The largest violation of a constraint, bound or integrality at ``x``.
    """

    values: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    violation: float | None = None

    def __repr__(self) -> str:
        return (f"ModelResult(status={self.status!r}, method={self.method!r}, value={self.value}, "
                f"bound={self.bound}, gap={self.gap:.3g})")


class ModelTracker(Tracker):
    """The anytime state of a model's solve: candidates are forward-checked here.

    Parameters
    ----------
    model : Model
    method : str
    time_limit : float or None
    progress : callable or None
    """

    def __init__(self, model: Model, method: str, time_limit: float | None = None,
                 progress: ProgressCallback | None = None) -> None:
        super().__init__(method, model.sense, time_limit, progress)
        self.model = model
        lb, ub = model.bounds()
        cols = model.var_cols
        self.lb, self.ub = lb[cols], ub[cols]
        self.integer = model.integer_mask()[cols]

    def clean(self, us) -> np.ndarray:
        """Candidates clipped to the variables' bounds, integers rounded.

        Parameters
        ----------
        us : array_like, shape (n, n_vars) or (n_vars,)

        Returns
        -------
        numpy.ndarray, shape (n, n_vars)
        """
        us = np.atleast_2d(np.asarray(us, dtype=np.float64)).copy()
        us[:, self.integer] = np.round(us[:, self.integer])
        return np.clip(us, self.lb, self.ub)

    def offer(self, us, source: str, tol: float = FEASIBILITY_TOL) -> bool:
        """Evaluate candidate decisions by forward passes; keep the best feasible one.

        Parameters
        ----------
        us : array_like, shape (n, n_vars) or (n_vars,)
        source : str
            Who found them.
        tol : float
            Constraint tolerance.

        Returns
        -------
        bool
            True if the incumbent improved.
        """
        us = self.clean(us)
        if us.size == 0 and self.model.n_vars:
            return False
        vals, viol, _ = self.model.evaluate(us)
        ok = (viol <= tol) & np.all(np.isfinite(us), axis=1) & np.isfinite(vals)
        if not ok.any():
            return False
        us, vals = us[ok], vals[ok]
        i = int(np.argmax(vals) if self.sense == "max" else np.argmin(vals))
        return self.accept(us[i], float(vals[i]), source)

    def result(self, status: str, *, abs_gap: float = ABS_GAP, rel_gap: float = REL_GAP, **stats) -> ModelResult:
        """Finish: recompute everything at the incumbent by forward passes, build and check the result.

        Parameters
        ----------
        status : str
            ``optimal`` without a point and a bound is downgraded.
        abs_gap, rel_gap : float
            The tolerances ``optimal`` must meet.
        **stats
            The result's ``stats``.

        Returns
        -------
        ModelResult
        """
        model = self.model
        x, value, violation = self.x, self.value, None
        values: dict = {}
        outputs: dict = {}
        if x is not None:
            vals, viol, v = model.evaluate(x)
            value, violation = float(vals[0]), float(viol[0])
            for b in model.blocks:
                entry = v[0, b.columns]
                (values if b.kind == "var" else outputs)[b.name] = float(entry[0]) if b.scalar else entry.copy()
        if status == OPTIMAL and (x is None or self.bound is None):
            status = TIME_LIMIT if x is None else FEASIBLE
        bound = self.bound
        if status == INFEASIBLE:
            bound = -math.inf if self.sense == "max" else math.inf
        res = ModelResult(status=status, method=self.method, sense=self.sense, x=x, value=value, bound=bound,
                          history=list(self.history), stats=stats, seconds=self.elapsed, values=values,
                          outputs=outputs, violation=violation)
        sign = 1.0 if self.sense == "max" else -1.0
        if (status == OPTIMAL and not _gap_closed(res, abs_gap, rel_gap) and violation is not None
                and violation > 0 and value is not None and bound is not None and sign * (value - bound) > 0):
            res.status = FEASIBLE      # the point beats the exact bound only by the constraint tolerance
            res.stats["note"] = "the point beats the certified bound using the constraint tolerance"
        return check_model_result(res, model, abs_gap=abs_gap, rel_gap=rel_gap)


def check_model_result(result: ModelResult, model: Model, *, abs_gap: float = ABS_GAP,
                       rel_gap: float = REL_GAP) -> ModelResult:
    """Check a model result's invariants before it is returned, so a bug never passes as a certificate.

    Parameters
    ----------
    result : ModelResult
    model : Model
    abs_gap, rel_gap : float
        The tolerances ``optimal`` must meet.

    Returns
    -------
    ModelResult
        ``result``, when every invariant holds.

    Raises
    ------
    CertificateError
        A NaN, an infeasible ``x`` or one whose forward-pass value differs from ``value``, a
        bound on the wrong side of the value, ``optimal`` outside the gap, ``infeasible`` with a point.
    """
    what = f"Model.solve (method {result.method!r}) returned status {result.status!r}"
    if result.status not in STATUSES:
        raise CertificateError(f"{what}, which is not a known status")
    for v in (result.value, result.bound):
        if v is not None and math.isnan(v):
            raise CertificateError(f"{what} with a NaN value or bound")
    sign = 1.0 if result.sense == "max" else -1.0
    if result.x is not None:
        if result.status == INFEASIBLE:
            raise CertificateError(f"{what} together with a point")
        vals, viol, _ = model.evaluate(result.x)
        if not viol[0] <= 10 * FEASIBILITY_TOL:
            raise CertificateError(f"{what} with a decision that violates the model by {viol[0]:.3g}")
        if result.value is None or not math.isclose(vals[0], result.value, rel_tol=1e-9, abs_tol=1e-12):
            raise CertificateError(f"{what} with value {result.value} but the forward passes give {vals[0]}")
        # as in check_certificate: a point using the constraint tolerance may beat the exact bound
        exact = viol[0] <= 0.0
        if exact and result.bound is not None and \
                sign * (result.bound - result.value) < -_slack(result.value, result.bound):
            raise CertificateError(f"{what} with the bound {result.bound:.10g} on the wrong side of its value "
                                   f"{result.value:.10g} ({result.sense})")
    elif result.value is not None:
        raise CertificateError(f"{what} with a value but no point")
    if result.status == OPTIMAL and not _gap_closed(result, abs_gap, rel_gap):
        raise CertificateError(f"{what} with a gap of {result.abs_gap:.3g} above its tolerances")
    return result
