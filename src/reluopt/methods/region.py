"""The region LP: the best point of one linear region of the network, and domain helpers.

For a fixed phase pattern the network is affine, ``g_l = A_l x + c_l`` and ``y = T x + t``,
so ``max c.(T x + t)`` over the region intersected with the domain (box, ``A x <= b``, and
output constraints ``C (T x + t) <= e``, linear inside the region) is an LP with ``d``
columns and one row per hidden neuron. The local-search methods solve thousands of these,
so ``RegionLP`` keeps ONE highspy model alive and swaps only what a new pattern changes:

* first-layer rows have fixed coefficients ``W_1``; a new pattern changes only their bounds
  (``changeRowsBounds``, one call);
* deeper layers and output-constraint rows depend on the pattern; they are kept as one block
  at the end of the row list and replaced by one ``deleteRows`` and one ``addRows`` call;
* the objective is replaced by one ``changeColsCost`` call.

HiGHS keeps the column basis across these changes (added rows enter basic), so each solve
is a warm-started dual simplex instead of a cold build (see benchmarks/PROFILE_local_search.md
for the measured difference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import highspy
import numpy as np

from ..errors import EmptyInputSet, ProblemError, SolverError
from ..milp.backends.highs import model_status, new_highs, run_ok, subscribe_stop
from ..network import Network
from ..problem import Domain, Problem

_INF = highspy.kHighsInf

#: Default time limit (seconds) of every local-search heuristic when none is given.
DEFAULT_TIME_LIMIT = 10.0


def _hinf(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return np.where(np.isposinf(v), _INF, np.where(np.isneginf(v), -_INF, v))


@dataclass
class RegionSolution:
    """Outcome of one region LP, in the problem's max form.

    Attributes
    ----------
    status : str
        ``optimal``, ``infeasible``, ``unbounded``, ``time_limit``, ``interrupted`` or ``error``.
    x, lp_value, tight, pre
        The LP's point (clipped to the box), its predicted max-form objective, and per layer
        the neurons (near) on a wall and the pre-activations at ``x``.
    """

    status: str                       # optimal | infeasible | unbounded | time_limit | interrupted | error
    x: np.ndarray | None = None
    lp_value: float | None = None     # max-form objective predicted by the LP (c.T x + c.t + d)
    tight: list[np.ndarray] | None = None  # per layer: neurons (near) on a wall at x
    pre: list[np.ndarray] | None = None    # per layer: pre-activations at x (region's affine map)


def phase_patterns(net: Network, X: np.ndarray) -> list[np.ndarray]:
    """Phase pattern (int8: 0 off, 1 linear, 2 saturated) per layer for a batch ``X``.

    Parameters
    ----------
    net : Network
    X : numpy.ndarray

    Returns
    -------
    list of numpy.ndarray
    """
    return net.phase_pattern(np.atleast_2d(X))


def pattern_keys(patterns: list[np.ndarray]) -> list[bytes]:
    """A hashable key per row of a batched pattern (packed bits; phases 2 kept apart).

    Parameters
    ----------
    patterns : list of numpy.ndarray

    Returns
    -------
    list of bytes
    """
    flat = np.concatenate(patterns, axis=1)
    if np.any(flat > 1):
        return [row.tobytes() for row in flat.astype(np.int8)]
    packed = np.packbits(flat.astype(bool), axis=1)
    return [row.tobytes() for row in packed]


def _row_bounds(layer, phase: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on ``A x`` that keep ``g = A x + c`` in ``phase``."""
    g_lo, g_hi = layer.act.phase_bounds(phase)
    return g_lo - c, g_hi - c


class RegionLP:
    """A reusable LP over the linear regions of ``problem``'s network (see module doc).

    Parameters
    ----------
    problem : Problem
    reuse : bool, optional
        False builds a fresh model for every solve (the reference for tests and the benchmark).
    warm : bool, optional
        False keeps the model but drops the previous basis (for unrelated regions, as in
        sampling, where the old basis costs more iterations than it saves).
    tight_tol : float, optional
        Relative distance to a kink at which a neuron counts as on a wall.
    should_stop : callable, optional
        Polled inside each LP (Ctrl-C): status ``interrupted``.
    """

    def __init__(self, problem: Problem, *, reuse: bool = True, warm: bool = True,
                 tight_tol: float = 1e-7, should_stop=None) -> None:
        self.problem = problem
        self.should_stop = should_stop   # polled inside each LP (Ctrl-C): status 'interrupted'
        self.net = problem.network
        self.c, self.d0 = problem.max_form()
        self.reuse = reuse
        self.warm = warm
        self.tight_tol = tight_tol
        self.n_solves = 0
        self.iterations = 0
        dom = problem.domain
        self.dim = dom.dim
        self._n_static = 0 if dom.A is None else dom.A.shape[0]
        self._n_first = self.net.layers[0].n_out
        self._block = 0  # rows in the replaceable block
        self._h: highspy.Highs | None = None

    # ----------------------------------------------------------------- model
    def _new_model(self) -> highspy.Highs:
        h = new_highs()
        if self.should_stop is not None:
            subscribe_stop(h, self.should_stop)
        dom = self.problem.domain
        d = self.dim
        h.addVars(d, _hinf(dom.lb), _hinf(dom.ub))
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        if dom.A is not None:
            self._add_dense(h, dom.A, np.full(dom.A.shape[0], -np.inf), dom.b)
        W1 = self.net.layers[0].W
        self._add_dense(h, W1, np.full(W1.shape[0], -np.inf), np.full(W1.shape[0], np.inf))
        self._block = 0
        return h

    @staticmethod
    def _add_dense(h: highspy.Highs, M: np.ndarray, lo, hi) -> None:
        k, d = M.shape
        if k == 0:
            return
        nz = M != 0
        starts = np.concatenate([[0], np.cumsum(nz.sum(axis=1))[:-1]]).astype(np.int32)
        idx = np.nonzero(nz)[1].astype(np.int32)
        vals = M[nz]
        h.addRows(k, _hinf(lo), _hinf(hi), int(vals.size), starts, idx, vals)

    # ----------------------------------------------------------------- solve
    def solve(self, pattern, time_limit: float | None = None) -> RegionSolution:
        """Best point of the region of ``pattern`` (per-layer phases of ONE point).

        Parameters
        ----------
        pattern : list of array_like
        time_limit : float, optional

        Returns
        -------
        RegionSolution
            A failed LP has status ``error``.
        """
        net = self.net
        pattern = [np.asarray(p).reshape(-1).astype(np.int8) for p in pattern]
        pre, (T, t) = net.region_affine(pattern)
        if self._h is None or not self.reuse:
            self._h = self._new_model()
        h = self._h
        # first layer: bounds only
        lo1, hi1 = _row_bounds(net.layers[0], pattern[0], pre[0][1])
        first = np.arange(self._n_static, self._n_static + self._n_first, dtype=np.int32)
        h.changeRowsBounds(first.size, first, _hinf(lo1), _hinf(hi1))  # type: ignore[attr-defined]  # not in the stubs
        # the replaceable block: deeper layers and output constraints
        blocks, los, his = [], [], []
        for l in range(1, net.depth):
            A_l, c_l = pre[l]
            lo, hi = _row_bounds(net.layers[l], pattern[l], c_l)
            blocks.append(A_l)
            los.append(lo)
            his.append(hi)
        cons = self.problem.constraints
        if cons is not None:
            blocks.append(cons.C @ T)
            los.append(np.full(cons.C.shape[0], -np.inf))
            his.append(cons.e - cons.C @ t)
        if self._block:
            start = self._n_static + self._n_first
            idx = np.arange(start, start + self._block, dtype=np.int32)
            h.deleteRows(idx.size, idx)
            self._block = 0
        if blocks:
            M = np.vstack(blocks)
            self._add_dense(h, M, np.concatenate(los), np.concatenate(his))
            self._block = M.shape[0]
        cost = self.c @ T
        h.changeColsCost(self.dim, np.arange(self.dim, dtype=np.int32), cost)
        if time_limit is not None and math.isfinite(time_limit):
            # an LP's limit is on the instance's run clock, which keeps counting over runs
            h.setOptionValue("time_limit", h.getRunTime() + max(float(time_limit), 1e-3))
        else:
            h.setOptionValue("time_limit", _INF)
        if not self.warm:
            h.clearSolver()  # unrelated regions: the old basis is a poor start
        ok, _ = run_ok(h)   # the HiGHS back-end's status-checked run
        self.n_solves += 1
        status = model_status(h) if ok else "error"
        info = h.getInfo()
        self.iterations += int(info.simplex_iteration_count)
        if status == "optimal":
            x = np.array(h.getSolution().col_value)
            x = np.clip(x, self.problem.domain.lb, self.problem.domain.ub)
            value = float(cost @ x + self.c @ t + self.d0)
            g = [A @ x + c for A, c in pre]
            tight = self._tight(pre, g, x)
            return RegionSolution("optimal", x, value, tight, g)
        if status == "infeasible":
            return RegionSolution("infeasible")
        if status in ("unbounded", "infeasible_or_unbounded"):
            return RegionSolution("unbounded")
        if status in ("time_limit", "interrupted"):
            return RegionSolution(status)
        # numerical trouble: rebuild from scratch next time
        self._h = None
        return RegionSolution("error")

    def solve_point(self, x, time_limit: float | None = None) -> RegionSolution:
        """Region LP of the region containing ``x``.

        Parameters
        ----------
        x : array_like
        time_limit : float, optional

        Returns
        -------
        RegionSolution
        """
        pats = phase_patterns(self.net, np.asarray(x, dtype=np.float64)[None, :])
        return self.solve([p[0] for p in pats], time_limit)

    def _tight(self, pre, g, x) -> list[np.ndarray]:
        scale_x = 1.0 + float(np.max(np.abs(x))) if x.size else 1.0
        out = []
        for layer, (A, c), gl in zip(self.net.layers[:-1], pre, g, strict=True):
            tol = self.tight_tol * (1.0 + np.abs(c) + np.abs(A).sum(axis=1) * scale_x)
            tight = np.zeros(gl.shape, dtype=bool)
            for kink in layer.act.kinks:
                tight |= np.abs(gl - kink) <= tol
            out.append(tight)
        return out


# ----------------------------------------------------------------------------- domain
def as_incumbent(problem: Problem, incumbent) -> np.ndarray | None:
    """A warm-start input as a finite vector of the right length (or None), with a clear error.

    Parameters
    ----------
    problem : Problem
    incumbent : array_like or None

    Returns
    -------
    numpy.ndarray or None
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
    """
    dom = problem.domain
    if dom.A is None:
        return
    h = new_highs()
    h.addVars(dom.dim, _hinf(dom.lb), _hinf(dom.ub))
    RegionLP._add_dense(h, dom.A, np.full(dom.A.shape[0], -np.inf), dom.b)
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
    X : numpy.ndarray
    iters, tol : optional
        Most Dykstra sweeps, and their convergence tolerance.

    Returns
    -------
    numpy.ndarray
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
    h.addVars(d, _hinf(domain.lb), _hinf(domain.ub))
    RegionLP._add_dense(h, domain.A, np.full(domain.A.shape[0], -np.inf), domain.b)
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
    """``n`` points of ``[0, 1]^d``: ``uniform``, ``lhs`` (Latin hypercube) or ``sobol``.

    Parameters
    ----------
    d, n : int
    rng : numpy.random.Generator
    design : str, optional
    seed : int, optional
        Seed of the lhs/sobol design instead of ``rng``.

    Returns
    -------
    numpy.ndarray
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
    U : numpy.ndarray

    Returns
    -------
    numpy.ndarray
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
    """``n`` points of the domain from a ``design`` (see ``unit_design``)."""
    return to_domain(domain, unit_design(domain.dim, n, rng, design, seed))


def single_threaded_blas():
    """Context limiting BLAS to one thread while a local search runs.

    The searches multiply small batches (64 starts x a few hundred neurons); a threaded
    BLAS gains nothing there, and on a loaded machine its spinning threads made each
    product 30-40x slower (profile in benchmarks/PROFILE_local_search.md). Uses
    threadpoolctl when installed (it comes with scikit-learn), else does nothing.

    Returns
    -------
    contextlib.AbstractContextManager
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def box_scale(domain: Domain) -> np.ndarray:
    """Per-coordinate length scale (box width, 1 where unbounded): sets step sizes."""
    w = domain.ub - domain.lb
    return np.where(np.isfinite(w) & (w > 0), w, 1.0)
