"""``method="pgd"``: projected gradient ascent on a margin loss, from many starts at once.

The attack of adversarial-robustness work, applied to any problem with objective rows. The
loss is the margin ``max_g min_{r in g} (C_r y + e_r)`` over groups of rows (one group for a
``MaxMin`` objective such as a VNN-LIB disjunct, one group per disjunct when ``verify``
attacks a whole box, a single row for ``c . y``): Carlini and Wagner's margin, whose
gradient is that of the deciding row, or with ``tau > 0`` its smooth version (a soft min
within a group, a soft max over groups). Verification falsifies with it (``stop_above=0``:
a point where every margin of a disjunct is >= 0 is a counterexample), and it is a cheap
incumbent for the exact methods.

The step rule is Croce and Hein's APGD (``ascend``): a sign-gradient step of ``step`` times
the box width plus momentum 0.75, projected on the box and ``A x <= b``; at the APGD
checkpoints (22%, 41%, 57%, ... of the rounds) a start whose loss improved in fewer than
75% of the rounds since the last checkpoint, or not at all, halves its step and returns to
its best point. All starts move in one batched forward and backward pass.

Starts (``attack_starts``), in this order: the incumbent (if given), the box centre; for
every group, the point of the box that maximises the smallest of CROWN's linear upper
bounds of its rows (one small LP) and the same for CROWN's linear lower bounds; per row, the
box corner that maximises its linear upper bound and the one that maximises its linear
lower bound; then the best of ``samples`` uniform points; the rest uniform random. Output
constraints are not followed by the ascent; only points that satisfy them become incumbents.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..bounds import compute_bounds, linear_output_bounds
from ..certificate import certified_method
from ..errors import ProblemError
from ..milp.backends.highs import model_status, new_highs, run_ok
from ..network import Network
from ..parallel import single_threaded_blas
from ..problem import Problem
from ..result import Result, interruptible
from ..tracker import Anytime
from .points import add_dense_rows, as_incumbent, highs_inf, project

#: Time limit when none is given (seconds).
DEFAULT_TIME_LIMIT = 10.0

#: APGD's momentum and the share of improving rounds below which a start halves its step.
MOMENTUM = 0.75
RHO = 0.75


def margin_loss(V: np.ndarray, groups: np.ndarray, tau: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The margin ``max_g min_{r in g} V_r`` of each point and its gradient with respect to ``V``.

    With ``tau > 0`` the smooth version ``tau * log sum_g exp(s_g / tau)`` with
    ``s_g = -tau * log sum_{r in g} exp(-V_r / tau)`` (it tends to the margin as ``tau -> 0``),
    whose gradient mixes the near-deciding rows; with ``tau = 0`` the margin itself and the
    one-hot gradient of the deciding row (ties: the first).

    Parameters
    ----------
    V : numpy.ndarray, shape (n, R)
        Row values ``C_r y + e_r`` of ``n`` points.
    groups : numpy.ndarray of int, shape (R,)
        The group (disjunct) of each row, numbered from 0.
    tau : float, default 0
        Temperature of the smooth version, in the units of ``V``.

    Returns
    -------
    value : numpy.ndarray, shape (n,)
        The loss of each point.
    weights : numpy.ndarray, shape (n, R)
        Its gradient with respect to ``V`` (rows of ``weights @ C`` are the output directions).
    """
    V = np.atleast_2d(np.asarray(V, dtype=np.float64))
    groups = np.asarray(groups, dtype=np.intp)
    n, R = V.shape
    G = int(groups.max()) + 1 if R else 0
    inner = np.empty((n, G))
    q = np.zeros((n, R))
    for g in range(G):
        idx = np.nonzero(groups == g)[0]
        Vg = V[:, idx]
        if tau > 0:
            lo = Vg.min(axis=1, keepdims=True)
            z = np.exp(-(Vg - lo) / tau)
            s = z.sum(axis=1, keepdims=True)
            inner[:, g] = lo[:, 0] - tau * np.log(s[:, 0])
            q[:, idx] = z / s
        else:
            j = np.argmin(Vg, axis=1)
            inner[:, g] = Vg[np.arange(n), j]
            q[np.arange(n), idx[j]] = 1.0
    if tau > 0:
        hi = inner.max(axis=1, keepdims=True)
        z = np.exp((inner - hi) / tau)
        s = z.sum(axis=1, keepdims=True)
        value = hi[:, 0] + tau * np.log(s[:, 0])
        p = z / s
    else:
        k = np.argmax(inner, axis=1)
        value = inner[np.arange(n), k]
        p = np.zeros((n, G))
        p[np.arange(n), k] = 1.0
    return value, q * p[:, groups]


def margin_gradient(network: Network, X: np.ndarray, C: np.ndarray, e: np.ndarray, groups: np.ndarray,
                    tau: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The hard margin of each point (a forward pass) and the gradient of the (soft) loss in ``x``.

    Parameters
    ----------
    network : Network
    X : numpy.ndarray, shape (n, d)
    C : numpy.ndarray, shape (R, m)
    e : numpy.ndarray, shape (R,)
    groups : numpy.ndarray of int, shape (R,)
    tau : float, default 0
        See ``margin_loss``.

    Returns
    -------
    value : numpy.ndarray, shape (n,)
        ``max_g min_{r in g} (C_r y(x) + e_r)``.
    grad : numpy.ndarray, shape (n, d)
        Gradient of ``margin_loss(..., tau)`` (a subgradient at kinks).
    """
    V = network.forward(X) @ C.T + e
    hard, W = margin_loss(V, groups, 0.0)
    if tau > 0:
        _, W = margin_loss(V, groups, tau)
    return hard, network.gradient(X, W @ C)


def checkpoints(steps: int) -> set[int]:
    """APGD's checkpoint rounds for ``steps`` rounds (fractions 0.22, 0.41, 0.57, ... of them).

    Parameters
    ----------
    steps : int

    Returns
    -------
    set of int
        Round numbers at which a start may halve its step.
    """
    p = [0.0, 0.22]
    while p[-1] < 1.0:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    marks = (math.ceil(f * steps - 1e-9) for f in p[1:])
    return {k for k in marks if 0 < k < steps}


def ascend(value_grad: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], X: np.ndarray,
           proj: Callable[[np.ndarray], np.ndarray], width: np.ndarray, *, steps: int, step: float,
           rng: np.random.Generator, noise: float = 0.0,
           after_round: Callable[[np.ndarray, np.ndarray], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """APGD ascent of every row of ``X`` (see the module docstring), vectorised over the rows.

    Parameters
    ----------
    value_grad : callable
        ``X -> (values (n,), gradients (n, d))`` of the loss to increase.
    X : numpy.ndarray, shape (n, d)
        The starts (already projected).
    proj : callable
        Projection onto the feasible inputs.
    width : numpy.ndarray, shape (d,)
        Box widths (step scale).
    steps : int
        Rounds.
    step : float
        First step, as a fraction of the width.
    rng : numpy.random.Generator
        For the optional noise.
    noise : float, default 0
        Standard deviation of Gaussian noise added to each step (fraction of the width),
        decaying linearly to 0.
    after_round : callable, optional
        Called with the new points and their losses after each round; returning True stops
        the ascent.

    Returns
    -------
    best_x : numpy.ndarray, shape (n, d)
        Each start's best point.
    best_v : numpy.ndarray, shape (n,)
        Its loss.
    """
    n = X.shape[0]
    eta = np.full((n, 1), float(step))
    v, g = value_grad(X)
    best_x, best_v = X.copy(), v.copy()
    prev = X
    marks = checkpoints(steps)
    last_mark, wins = 0, np.zeros(n)
    eta_at_mark, best_at_mark = eta.copy(), best_v.copy()
    for it in range(steps):
        Z = proj(X + eta * width * np.sign(g))
        if it == 0:
            Xn = Z
        else:
            Xn = proj(X + MOMENTUM * (Z - X) + (1 - MOMENTUM) * (X - prev))
        if noise > 0:
            Xn = proj(Xn + rng.normal(scale=noise * (1 - it / steps), size=Xn.shape) * width)
        vn, gn = value_grad(Xn)
        wins += vn > v
        up = vn > best_v
        best_x[up], best_v[up] = Xn[up], vn[up]
        prev, X, v, g = X, Xn, vn, gn
        if after_round is not None and after_round(Xn, vn):
            break
        if it + 1 in marks:
            stall = (wins < RHO * (it + 1 - last_mark)) | ((eta == eta_at_mark)[:, 0] & (best_v <= best_at_mark))
            eta_at_mark, best_at_mark = eta.copy(), best_v.copy()
            if stall.any():
                eta[stall] *= 0.5
                X = X.copy()
                X[stall] = best_x[stall]
                prev = X.copy()
                v, g = value_grad(X)
            last_mark, wins = it + 1, np.zeros(n)
    return best_x, best_v


def maximin_point(lam: np.ndarray, const: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> np.ndarray | None:
    """The point of the box that maximises ``min_r (lam_r . x + const_r)`` (one LP), or None.

    Parameters
    ----------
    lam : numpy.ndarray, shape (R, d)
    const : numpy.ndarray, shape (R,)
    lb, ub : numpy.ndarray, shape (d,)

    Returns
    -------
    numpy.ndarray or None
        The maximiser, or None when the LP did not end optimal (a start is only a start).
    """
    R, d = lam.shape
    if R == 1:
        return np.where(lam[0] > 0, ub, lb)
    h = new_highs(1)
    h.addVars(d + 1, highs_inf(np.append(lb, -np.inf)), highs_inf(np.append(ub, np.inf)))
    h.changeColsCost(1, np.array([d], dtype=np.int32), np.array([-1.0]))    # maximise t
    add_dense_rows(h, np.hstack([-lam, np.ones((R, 1))]), np.full(R, -np.inf), const)   # t - lam_r x <= const_r
    ok, _ = run_ok(h)
    if not ok or model_status(h) != "optimal":
        return None
    return np.clip(np.array(h.getSolution().col_value)[:d], lb, ub)


def relaxation_starts(network: Network, lb: np.ndarray, ub: np.ndarray, C: np.ndarray, e: np.ndarray,
                      groups: np.ndarray, lp: bool = True) -> np.ndarray:
    """Starts from CROWN's linear bounds of the rows ``C y + e`` over the box.

    Per group: the maximiser of the smallest linear upper bound and of the smallest linear
    lower bound of its rows (LPs); per row: the corner maximising its upper bound and the
    corner maximising its lower bound.

    Parameters
    ----------
    network : Network
    lb, ub : numpy.ndarray, shape (d,)
    C : numpy.ndarray, shape (R, m)
    e : numpy.ndarray, shape (R,)
    groups : numpy.ndarray of int, shape (R,)
    lp : bool, default True
        Include the maximin points (LPs); False: the corners only.

    Returns
    -------
    numpy.ndarray, shape (k, d)
    """
    bounds = compute_bounds(network, lb, ub, "crown")
    _, up_corner, up_lam, up_const = linear_output_bounds(network, lb, ub, C, bounds)
    _, _, lo_lam, lo_const = linear_output_bounds(network, lb, ub, -C, bounds)
    up_lam, up_const, up_corner = up_lam[0], up_const[0] + e, up_corner[0]
    lo_lam, lo_const = -lo_lam[0], -lo_const[0] + e    # C_r y + e_r >= lo_lam_r x + lo_const_r
    out = []
    for g in range(int(groups.max()) + 1 if lp else 0):
        idx = groups == g
        for lam, const in ((up_lam, up_const), (lo_lam, lo_const)):
            x = maximin_point(lam[idx], const[idx], lb, ub)
            if x is not None and np.all(np.isfinite(x)):
                out.append(x)
    out.extend(up_corner)
    out.extend(np.where(lo_lam > 0, ub, lb))
    return np.array(out).reshape(-1, lb.size)


def attack_starts(problem: Problem, n: int, samples: int, rng: np.random.Generator, incumbent=None,
                  rows=None, lp: bool = True) -> np.ndarray:
    """The ``n`` starting points of the attack (see the module docstring).

    Parameters
    ----------
    problem : Problem
        Bounded box; objective rows from ``problem.rows()``.
    n : int
        Number of starts.
    samples : int
        Uniform points sampled to pick the best ones as starts.
    rng : numpy.random.Generator
    incumbent : array_like or None
    rows : tuple or None
        ``(C, e, groups)`` of the loss (default: ``problem.rows()``, one group).
    lp : bool, default True
        Include the relaxation's maximin points (see ``relaxation_starts``).

    Returns
    -------
    ndarray, shape (n, d)
    """
    dom = problem.domain
    net = problem.network
    C, e, groups = rows if rows is not None else (*problem.rows(), np.zeros(problem.rows()[1].size, int))
    width = dom.ub - dom.lb
    starts = [] if incumbent is None else [np.asarray(incumbent, dtype=np.float64)[None, :]]
    starts.append(dom.center()[None, :])
    starts.append(relaxation_starts(net, dom.lb, dom.ub, C, e, groups, lp))
    if samples > 0:
        X = dom.lb + rng.random((samples, dom.dim)) * width
        values, _ = margin_loss(net.forward(X) @ C.T + e, groups)
        starts.append(X[np.argsort(-values)[: max(n // 2, 1)]])
    X = np.vstack(starts)[:n]
    if X.shape[0] < n:
        X = np.vstack([X, dom.lb + rng.random((n - X.shape[0], dom.dim)) * width])
    return project(dom, X)


@certified_method
def solve_pgd(problem: Problem, *, time_limit: float | None = None, seed: int = 0, progress=None,
              incumbent=None, restarts: int = 48, steps: int = 80, step: float = 0.25, noise: float = 0.0,
              tau: float = 0.0, samples: int = 4096, stop_above: float | None = None,
              batches: int | None = None) -> Result:
    """APGD on the margin of the objective rows from ``restarts`` starts, batch after batch.

    Parameters
    ----------
    problem : Problem
        Bounded box; a linear or ``MaxMin`` objective (max form is used internally).
    time_limit : float or None
        Seconds (default ``DEFAULT_TIME_LIMIT``).
    seed : int
    progress : callable or None
    incumbent : array_like or None
        A first start.
    restarts : int
        Starts moved together (one batch).
    steps : int
        Rounds per batch; a new batch of random starts follows while time is left.
    step : float
        The first step, as a fraction of the box width (halved per start at APGD checkpoints).
    noise : float
        Standard deviation of Gaussian noise per step (fraction of the width, decaying to 0).
    tau : float
        Temperature of the smooth margin (0: the hard min of the rows, CW's margin).
    samples : int
        Uniform points whose best become starts.
    stop_above : float or None
        Stop as soon as a point reaches this value (user sense ``>=`` for max, ``<=`` for min):
        for verification, a counterexample.
    batches : int or None
        At most this many batches of starts (None: until the time limit).

    Returns
    -------
    Result
        Status ``feasible`` with a point (``stats['reached']`` when ``stop_above`` was met),
        ``no_solution`` without one, or ``interrupted``; no bound (a heuristic).
    """
    dom = problem.domain
    dom.require_bounded("pgd")
    if restarts < 1 or steps < 1 or (batches is not None and batches < 1):
        raise ProblemError(f"pgd needs restarts, steps and batches >= 1, got {restarts}, {steps} and {batches}")
    if not (step > 0 and noise >= 0 and tau >= 0):
        raise ProblemError(f"pgd needs step > 0, noise >= 0 and tau >= 0, got {step}, {noise} and {tau}")
    C, e = problem.rows()
    groups = np.zeros(e.size, dtype=np.intp)
    sign = problem.objective.sign
    anytime = Anytime(problem, "pgd", DEFAULT_TIME_LIMIT if time_limit is None else time_limit, progress)
    rng = np.random.default_rng(seed)
    target = None if stop_above is None else sign * float(stop_above)
    width = dom.ub - dom.lb
    net = problem.network
    counter = {"rounds": 0}
    done = 0

    def reached() -> bool:
        return target is not None and anytime.value is not None and sign * anytime.value >= target

    def after_round(X: np.ndarray, values: np.ndarray) -> bool:
        anytime.offer(X, "pgd")
        counter["rounds"] += 1
        return reached() or anytime.out_of_time()

    with interruptible(anytime), single_threaded_blas():
        X = attack_starts(problem, restarts, samples, rng, as_incumbent(problem, incumbent), (C, e, groups))
        anytime.offer(X, "pgd:start")
        while not (reached() or anytime.out_of_time() or (batches is not None and done >= batches)):
            done += 1
            ascend(lambda Z: margin_gradient(net, Z, C, e, groups, tau), X, lambda Z: project(dom, Z), width,
                   steps=steps, step=step, rng=rng, noise=noise, after_round=after_round)
            X = project(dom, dom.lb + rng.random(X.shape) * width)     # the next batch: fresh starts
    status = anytime.heuristic_status()
    stopped = ("interrupted" if anytime.interrupted else "reached" if reached() else
               "batches" if batches is not None and done >= batches else "time_limit")
    return anytime.result(status, rounds=counter["rounds"], batches=done, reached=reached(), stopped=stopped)
