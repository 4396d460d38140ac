"""Certificates: the checks every Result passes before it leaves a method.

One wrapper, ``certified_method``, sits on every method: it refuses boxes over which the
network's values overflow, answers an empty input set with ``infeasible``, and checks the
result's invariants (``check_certificate``). A violation is a bug reported as
``CertificateError``, never a certificate.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import time
from collections.abc import Callable

import numpy as np

from .errors import CertificateError, EmptyInputSet, ProblemError, UnknownOptionError
from .problem import FEASIBILITY_TOL, Problem
from .result import ABS_GAP, FEASIBLE, INFEASIBLE, OPTIMAL, REL_GAP, STATUSES, Result

#: Relative slack of the certificate checks (the solvers' margins are 1e-6 (1 + |bound|)).
CERTIFICATE_TOL = 1e-5


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
    with the gap tolerances the method was given. A method without ``**options`` has its
    option names checked first: a misspelled one is a ``ProblemError`` naming the valid ones.

    Parameters
    ----------
    fn : callable
        A ``solve_*`` method taking the problem first.

    Returns
    -------
    callable
        ``fn`` with the same signature, its results checked.
    """
    accepted = option_names(fn)
    name = fn.__name__.removeprefix("solve_").replace("_", "-")

    @functools.wraps(fn)
    def wrapper(problem: Problem, *args, **options) -> Result:
        if accepted is not None:
            check_option_names(name, options, accepted)
        start = time.perf_counter()
        check_box_scale(problem)
        try:
            result = fn(problem, *args, **options)
        except EmptyInputSet as exc:
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


def option_names(fn: Callable[..., object]) -> frozenset[str] | None:
    """The keyword options ``fn`` takes, or None when it takes any (``**options``).

    Parameters
    ----------
    fn : callable
        A method ``fn(problem, *, ...)``.

    Returns
    -------
    frozenset of str or None
        Its keyword parameter names, or None if it has a ``**`` parameter.
    """
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)) - {"problem"}


def check_option_names(method: str, options, valid) -> None:
    """Refuse an option a method does not take, naming the valid ones (a typo is never ignored).

    Parameters
    ----------
    method : str
        The method's name, for the message.
    options : iterable of str
        The option names given.
    valid : iterable of str
        The option names the method takes.

    Raises
    ------
    UnknownOptionError
        A ``ProblemError`` (and ``TypeError``) for the first unknown name (sorted), with the
        closest valid name when one is close.
    """
    valid = sorted(valid)
    unknown = sorted(set(options) - set(valid))
    if not unknown:
        return
    bad = unknown[0]
    close = difflib.get_close_matches(bad, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownOptionError(f"method '{method}' has no option {bad!r}{hint}; its options: {', '.join(valid)}")


#: Largest magnitude of a neuron's interval bound that the bounding code handles soundly
#: (branch and bound bounds in float32, whose range ends near 3e38).
MAX_NEURON_BOUND = 1e30


def check_box_scale(problem: Problem) -> None:
    """Refuse a bounded box over which the network's values overflow floating point.

    Parameters
    ----------
    problem : Problem
        The problem whose box (if bounded) is checked.

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
