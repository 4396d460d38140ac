"""Points of the input domain: sampling designs, projection, the user's incumbent, emptiness.

The local searches (``sampling``, ``walk``, ``ppga``) start from sampled points of the domain
(``sample_domain``), keep their iterates in it (``project``) and accept a user's warm start
(``as_incumbent``); every method first checks that ``A x <= b`` meets the box
(``check_domain``). ``add_dense_rows`` and ``highs_inf`` put dense rows and infinite bounds
into a HiGHS model (shared with ``region.RegionLP``).
"""

from __future__ import annotations

import math

import highspy
import numpy as np

from ..errors import EmptyInputSet, ProblemError, SolverError
from ..milp.backends.highs import new_highs, run_ok
from ..problem import Domain, Problem


def highs_inf(v: np.ndarray) -> np.ndarray:
    """``v`` with infinities replaced by HiGHS's infinity (HiGHS takes no ``inf``).

    Parameters
    ----------
    v : array_like
        Bounds, possibly infinite.

    Returns
    -------
    numpy.ndarray
        The same bounds in HiGHS's convention.
    """
    v = np.asarray(v, dtype=np.float64)
    return np.where(np.isposinf(v), highspy.kHighsInf, np.where(np.isneginf(v), -highspy.kHighsInf, v))


def add_dense_rows(h: highspy.Highs, M: np.ndarray, lo, hi) -> None:
    """Add the rows ``lo <= M x <= hi`` of a dense matrix to a HiGHS model, zeros left out.

    Parameters
    ----------
    h : highspy.Highs
        The model (its columns are ``x``).
    M : numpy.ndarray
        The row coefficients (k, d).
    lo, hi : array_like
        Row bounds (k,), possibly infinite.

    Returns
    -------
    None
    """
    k, _ = M.shape
    if k == 0:
        return
    nz = M != 0
    starts = np.concatenate([[0], np.cumsum(nz.sum(axis=1))[:-1]]).astype(np.int32)
    idx = np.nonzero(nz)[1].astype(np.int32)
    vals = M[nz]
    h.addRows(k, highs_inf(lo), highs_inf(hi), int(vals.size), starts, idx, vals)


def as_incumbent(problem: Problem, incumbent) -> np.ndarray | None:
    """A warm-start input as a finite vector of the right length, so a bad one fails clearly.

    Parameters
    ----------
    problem : Problem
        The problem whose input dimension the incumbent must have.
    incumbent : array_like or None
        The user's starting point.

    Returns
    -------
    numpy.ndarray or None
        The point as a float vector, or None when none was given.

    Raises
    ------
    ProblemError
        For a wrong length or a non-finite entry.
    """
    if incumbent is None:
        return None
    x = np.asarray(incumbent, dtype=np.float64).reshape(-1)
    d = problem.domain.dim
    if x.shape != (d,):
        raise ProblemError(f"incumbent has {x.shape[0]} entries; the network has {d} inputs")
    if not np.all(np.isfinite(x)):
        raise ProblemError("incumbent contains a non-finite value")
    return x


def check_domain(problem: Problem) -> None:
    """Raise ``EmptyInputSet`` if ``A x <= b`` has no point in the box (one LP).

    ``methods.method`` turns that into status ``infeasible`` with the reason, so every
    method gives the same answer on an empty input set. A failed LP raises ``SolverError``.

    Parameters
    ----------
    problem : Problem
        The problem whose domain is checked.

    Returns
    -------
    None
    """
    dom = problem.domain
    if dom.A is None:
        return
    h = new_highs()
    h.addVars(dom.dim, highs_inf(dom.lb), highs_inf(dom.ub))
    add_dense_rows(h, dom.A, np.full(dom.A.shape[0], -np.inf), dom.b)
    ok, message = run_ok(h)
    if not ok:
        raise SolverError(f"checking whether A x <= b meets the box: {message}")
    if h.getModelStatus() in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
        raise EmptyInputSet("the input constraints A x <= b have no point in the box")


def project(domain: Domain, X: np.ndarray, iters: int = 100, tol: float = 1e-9) -> np.ndarray:
    """Euclidean projection of each row of ``X`` onto the box and ``A x <= b``.

    The box alone is a clip. With ``A x <= b``: Dykstra's alternating projection over the
    box and each half-space, vectorised over rows, for ``iters`` sweeps (cheap, and exact in
    the limit); rows that are still infeasible by more than ``1e-7`` then get the exact
    projection, a small convex QP solved by HiGHS.

    Parameters
    ----------
    domain : Domain
        The box and optional ``A x <= b``.
    X : numpy.ndarray
        Points, one per row (n, d).
    iters : int, default 100
        Dykstra sweeps at most.
    tol : float, default 1e-9
        Convergence tolerance of the sweeps.

    Returns
    -------
    numpy.ndarray
        The projected points (n, d).
    """
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    lb, ub = domain.lb, domain.ub
    if domain.A is None:
        return np.clip(X, lb, ub)
    A, b = domain.A, domain.b
    assert b is not None, "a Domain with A has b"
    norms2 = np.maximum(np.sum(A * A, axis=1), 1e-300)
    k = A.shape[0]
    Y = X.copy()
    P = np.zeros((k + 1,) + X.shape)  # Dykstra increments, one per set
    for _ in range(iters):
        prev, prev_p = Y.copy(), P.copy()
        Z = Y + P[0]
        Y = np.clip(Z, lb, ub)
        P[0] = Z - Y
        for i in range(k):
            Z = Y + P[i + 1]
            viol = np.maximum(Z @ A[i] - b[i], 0.0)
            Y = Z - (viol / norms2[i])[:, None] * A[i][None, :]
            P[i + 1] = Z - Y
        if (np.max(np.abs(Y - prev)) <= tol and np.max(np.abs(P - prev_p)) <= tol
                and np.max(_max_violation(Y, A, b)) <= tol):
            break
    Y = np.clip(Y, lb, ub)
    bad = np.nonzero(_max_violation(Y, A, b) > 1e-7)[0]
    if bad.size:
        Y[bad] = _qp_project(domain, X[bad], Y[bad])
    return Y


def _qp_project(domain: Domain, X: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Exact projection by the QP ``min 1/2 |z|^2 - x.z`` over the domain (one HiGHS model)."""
    assert domain.A is not None and domain.b is not None, "only called for a domain with A x <= b"
    d = domain.dim
    h = new_highs()
    h.addVars(d, highs_inf(domain.lb), highs_inf(domain.ub))
    add_dense_rows(h, domain.A, np.full(domain.A.shape[0], -np.inf), domain.b)
    hess = highspy.HighsHessian()
    hess.dim_ = d
    hess.format_ = highspy.HessianFormat.kTriangular
    hess.start_ = np.arange(d + 1, dtype=np.int32)
    hess.index_ = np.arange(d, dtype=np.int32)
    hess.value_ = np.ones(d)
    h.passHessian(hess)
    out = fallback.copy()
    cols = np.arange(d, dtype=np.int32)
    for i, x in enumerate(X):
        h.changeColsCost(d, cols, -x)
        ok, _ = run_ok(h)
        if ok and h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            out[i] = np.clip(np.array(h.getSolution().col_value), domain.lb, domain.ub)
    return out


def _max_violation(X: np.ndarray, A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Largest violation of ``A x <= b`` per row."""
    return np.max(X @ A.T - b, axis=1)


def unit_design(d: int, n: int, rng: np.random.Generator, design: str = "uniform",
                seed: int | None = None) -> np.ndarray:
    """``n`` points of ``[0, 1]^d`` from a design, the raw material of every sampled start.

    Parameters
    ----------
    d, n : int
        Dimension and number of points.
    rng : numpy.random.Generator
        Random stream for ``uniform`` (and ``lhs``/``sobol`` when ``seed`` is None).
    design : {'uniform', 'lhs', 'sobol'}
        Independent uniform points, a Latin hypercube, or a scrambled Sobol sequence.
    seed : int, optional
        A seed for ``lhs``/``sobol`` instead of drawing from ``rng``.

    Returns
    -------
    numpy.ndarray
        The points (n, d).
    """
    if design == "uniform":
        return rng.random((n, d))
    if design == "lhs":
        # Latin hypercube in numpy (what scipy.stats.qmc.LatinHypercube draws by default:
        # one point per stratum and coordinate, strata permuted independently, uniform
        # jitter), without importing scipy.stats, whose first import costs ~1 s
        r = np.random.default_rng(seed) if seed is not None else rng
        strata = np.argsort(r.random((n, d)), axis=0)
        return (strata + r.random((n, d))) / n
    if design == "sobol":
        from scipy.stats import qmc

        s = int(rng.integers(2**31)) if seed is None else seed
        m = max(int(math.ceil(math.log2(max(n, 1)))), 0)
        return qmc.Sobol(d=d, scramble=True, seed=s).random_base2(m)[:n]
    raise ProblemError(f"unknown sampling design {design!r}; choose uniform, lhs or sobol")


def to_domain(domain: Domain, U: np.ndarray) -> np.ndarray:
    """Map unit-cube points into the domain: affine on bounded coordinates, a normal
    quantile on unbounded ones, then projected onto ``A x <= b``.

    Parameters
    ----------
    domain : Domain
        The target domain.
    U : numpy.ndarray
        Points of the unit cube (n, d).

    Returns
    -------
    numpy.ndarray
        Points of the domain (n, d).
    """
    lb, ub = domain.lb, domain.ub
    fin = np.isfinite(lb) & np.isfinite(ub)
    X = np.empty(U.shape)
    X[:, fin] = lb[fin] + U[:, fin] * (ub[fin] - lb[fin])
    if not np.all(fin):
        from scipy.stats import norm

        Z = norm.ppf(np.clip(U[:, ~fin], 1e-12, 1 - 1e-12))
        X[:, ~fin] = np.where(np.isfinite(lb[~fin]), lb[~fin] + np.abs(Z),
                              np.where(np.isfinite(ub[~fin]), ub[~fin] - np.abs(Z), Z))
    return project(domain, X)


def sample_domain(domain: Domain, n: int, rng: np.random.Generator, design: str = "uniform",
                  seed: int | None = None) -> np.ndarray:
    """``n`` points of the domain from a ``design``: the starts of the sampling methods.

    Parameters
    ----------
    domain : Domain
        The input domain.
    n : int
        Number of points.
    rng : numpy.random.Generator
        Random stream.
    design : {'uniform', 'lhs', 'sobol'}
        See ``unit_design``.
    seed : int, optional
        See ``unit_design``.

    Returns
    -------
    numpy.ndarray
        The points (n, d).
    """
    return to_domain(domain, unit_design(domain.dim, n, rng, design, seed))


def box_scale(domain: Domain) -> np.ndarray:
    """Per-coordinate length scale (box width, 1 where unbounded): sets step sizes.

    Parameters
    ----------
    domain : Domain
        The input domain.

    Returns
    -------
    numpy.ndarray
        One positive length per input.
    """
    w = domain.ub - domain.lb
    return np.where(np.isfinite(w) & (w > 0), w, 1.0)
