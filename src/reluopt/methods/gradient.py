"""Gradient-based local search: PPGA and PPGA-LR (Tong, Zhu, Serra, Burer, arXiv 2512.24295).

Inside a linear region the gradient of ``c.y`` is constant and costs one backward pass,
far cheaper than an LP, so many starts are run at once as the rows of one matrix.

* ``ppga``: projected gradient ascent with a per-start step size (grown on success, halved
  on failure; a step that does not improve is rejected) and a random perturbation when the
  step size collapses (a kink or a flat region); starts that stop improving are restarted.
* ``ppga-lr``: the linear-region-aware variant. Along the projected gradient ``u`` the
  pre-activations move linearly, ``g(x + t u) = g(x) + t dg`` with ``dg`` from ONE forward
  pass of ``u`` through the region's slope masks; the step goes exactly to the first wall
  (the smallest ``t >= 0`` at which a neuron changes phase, the box or ``A x <= b`` binds),
  then a small ``cross`` further into the next region.

Domain handling (documented choice): the box by clipping (and, for PPGA-LR, by zeroing the
gradient components that push out of the box at an active bound and by the box ratio
test); ``A x <= b`` by a Dykstra projection (``region.project``) for PPGA, and for PPGA-LR
by the ratio test plus, when a row is active, the projection of the direction onto the
null space of the active rows. Output constraints ``C y <= e`` enter as an exact penalty
``mu * sum(max(0, C y - e))`` in the ascent (its subgradient is a vector-Jacobian product);
only points that satisfy them are ever offered as incumbents (``Anytime.offer`` checks).
Default time limit when none is given: ``region.DEFAULT_TIME_LIMIT`` (10 s).

Stopping: the time limit, Ctrl-C (status ``interrupted``, the best point kept), ``max_iter``,
or a stall: ``stall_iterations`` (default ``STALL_ITERATIONS``) iterations in a row without a
new incumbent, so that a huge time limit on a small network still ends. ``stats['stopped']``
says which.

Polish (not in the paper): gradient steps approach a region's optimal vertex but rarely land
on it. ``ppga`` and ``ppga-lr`` are the paper's two methods as its pseudo-code states them
(gradient steps only) and do not polish by default (``polish=0``). The reluopt variants
``ppga+polish`` and ``ppga-lr+polish`` spend the last ``polish`` fraction of the budget (10%)
on a Relax-and-Walk walk from the best point (Tong, Cai, Serra, arXiv 2401.03451): the region
LP gives the region's exact optimum, and the walk continues into neighbouring regions while
that improves. ``benchmarks/results/fidelity.md`` compares the two.
"""

from __future__ import annotations

import numpy as np

from ..certificate import certified_method
from ..errors import ProblemError
from ..parallel import single_threaded_blas
from ..problem import FEASIBILITY_TOL, Problem
from ..result import Result, interruptible
from ..tracker import Anytime
from .passes import backward, directional, forward_masks, ratio_test
from .points import as_incumbent, box_scale, check_domain, project, sample_domain
from .region import DEFAULT_TIME_LIMIT, RegionLP
from .walk import Stall, walk

#: Default ``stall_iterations``: batched iterations without a new incumbent before a run
#: stops. One iteration moves every start (64 by default) once, and a start that stops
#: improving restarts after ~20 iterations, so 5000 iterations try some 16000 fresh starts.
#: On a 2-8-8-1 network an iteration takes ~0.7 ms (the stall ends a run after ~4 s); on a
#: 784-1024-1024-1024 one ~50 ms, where the time limit ends the run first.
STALL_ITERATIONS = 5000


# ----------------------------------------------------------------------------- shared state
class _Objective:
    """Max-form value, output-constraint violation and penalised ascent direction."""

    def __init__(self, problem: Problem, mu: float | None):
        self.problem = problem
        self.net = problem.network
        self.c, self.d0 = problem.max_form()
        cons = problem.constraints
        self.C = None if cons is None else cons.C
        self.e = None if cons is None else cons.e
        scale = float(np.max(np.abs(self.c))) if self.c.size else 1.0
        self.mu = mu if mu is not None else 10.0 * max(scale, 1e-12)

    def evaluate(self, X):
        """(value, violation, penalised value, Y, G, S) for rows of X."""
        Y, G, S = forward_masks(self.net, X)
        f = Y @ self.c + self.d0
        if self.C is None:
            return f, np.zeros(X.shape[0]), f, G, S, None
        V = Y @ self.C.T - self.e
        viol = np.maximum(V, 0.0)
        return f, viol.max(axis=1), f - self.mu * viol.sum(axis=1), G, S, V

    def grad(self, S, V) -> np.ndarray:
        n = S[0].shape[0]
        Ceff = np.broadcast_to(self.c, (n, self.c.shape[0]))
        if V is not None:
            Ceff = Ceff - self.mu * (V > 0).astype(np.float64) @ self.C
        return backward(self.net, S, Ceff)


def _offer_best(anytime: Anytime, X, f, viol, feas_tol, source) -> None:
    """Offer the best feasible row (the offer re-checks it by a forward pass)."""
    ok = viol <= feas_tol
    dom = anytime.problem.domain
    if dom.A is not None:
        ok &= np.max(X @ dom.A.T - dom.b, axis=1) <= feas_tol
    if not np.any(ok):
        return
    i = int(np.argmax(np.where(ok, f, -np.inf)))
    best = anytime.value
    if best is not None:
        s = 1.0 if anytime.problem.sense == "max" else -1.0
        if f[i] <= s * best:
            return
    anytime.offer(X[i], source)


def _prepare(problem, time_limit, method, polish: float):
    anytime = Anytime(problem, method, DEFAULT_TIME_LIMIT if time_limit is None else time_limit)
    problem.max_form()  # clear error for a non-linear objective
    check_domain(problem)
    if not 0 <= polish < 1:
        raise ProblemError(f"polish must be a fraction of the budget in [0, 1), got {polish}")
    return anytime, anytime.time_limit * (1.0 - polish)


def _polish(problem: Problem, anytime: Anytime, polish: float, source: str) -> int:
    """Walk from the best point to a region vertex (and on while it improves); returns steps."""
    if polish <= 0 or anytime.x is None or anytime.out_of_time():
        return 0
    region = RegionLP(problem, should_stop=lambda: anytime.interrupted)
    _, steps = walk(problem, region, anytime, anytime.x, source=f"{source}-polish")
    return steps + 1


def _stopped(anytime: Anytime, loop_end: float, it: int, max_iter: int | None, stall: Stall) -> bool:
    """The gradient loop's stopping test (also counts the iteration for the stall rule)."""
    return (anytime.interrupted or anytime.elapsed >= loop_end or (max_iter is not None and it >= max_iter)
            or stall.tick())


def _reason(anytime: Anytime, loop_end: float, it: int, max_iter: int | None, stall: Stall,
            before: str | None = None) -> str:
    """Why the run stopped: ``interrupted`` (also during the polish), else the loop's reason."""
    if before is not None and not anytime.interrupted:
        return before
    return stall.reason(it, max_iter, "max_iter")


# ----------------------------------------------------------------------------- PPGA
@certified_method
def solve_ppga(problem: Problem, *, time_limit: float | None = None, seed: int = 0, progress=None,
               starts: int = 64, lr: float = 0.05, min_lr: float = 1e-6, sigma: float = 0.05,
               max_perturb: int = 3, max_iter: int | None = None, mu: float | None = None,
               polish: float = 0.0, incumbent=None, feas_tol: float = FEASIBILITY_TOL,
               stall_iterations: int | None = STALL_ITERATIONS, _name: str = "ppga") -> Result:
    """PPGA: projected (perturbed) gradient ascent from ``starts`` batched starts.

    Cheap per iteration (one forward and one backward pass for all starts), so it scales to
    networks where every LP-based method is slow. The private ``_name`` is the method name in
    the result (``solve_ppga_polish`` sets it).

    Parameters
    ----------
    problem : Problem
        The problem; any objective sense, box, ``A x <= b`` and output constraints.
    time_limit, seed, progress
        Seconds (default ``region.DEFAULT_TIME_LIMIT``), seed, callback on new incumbents.
    starts : int
        Number of batched starts.
    lr, min_lr, sigma : float
        Initial and smallest step, and perturbation size, as fractions of the box width.
    max_perturb : int
        Perturbations without a new best for a start before it restarts at random.
    max_iter, mu
        Iteration cap (reproducible runs); output-constraint penalty (default 10 max|c|).
    polish : float
        Fraction of the budget for the final region-LP walk (not in the paper; 0 here, 0.1
        in ``ppga+polish``), in [0, 1).
    incumbent, feas_tol
        An input point that replaces the first start; output-constraint tolerance.
    stall_iterations : int or None
        Stop after that many iterations without a new incumbent (None: never).

    Returns
    -------
    Result
        Status ``feasible`` (or ``no_solution`` / ``interrupted``), the best forward-checked
        point, and ``stats`` (iterations, starts, polish_lps, stopped).
    """
    anytime, loop_end = _prepare(problem, time_limit, _name, polish)
    stall = Stall(anytime, stall_iterations, "stall_iterations")
    anytime.progress = progress
    rng = np.random.default_rng(seed)
    dom = problem.domain
    scale = box_scale(dom)
    obj = _Objective(problem, mu)
    X = sample_domain(dom, starts, rng, "lhs", seed=seed)
    incumbent = as_incumbent(problem, incumbent)
    if incumbent is not None:
        X[0] = project(dom, incumbent[None, :])[0]
    steps = np.full(starts, lr)
    perturbs = np.zeros(starts, dtype=np.int64)
    start_best = np.full(starts, -np.inf)
    it = 0
    with interruptible(anytime), single_threaded_blas():
        f, viol, F, G, S, V = obj.evaluate(X)
        _offer_best(anytime, X, f, viol, feas_tol, _name)
        while not _stopped(anytime, loop_end, it, max_iter, stall):
            it += 1
            g = obj.grad(S, V) * scale
            norm = np.max(np.abs(g), axis=1)
            flat = norm <= 1e-300
            u = g / np.where(flat, 1.0, norm)[:, None]
            Xt = project(dom, X + (steps[:, None] * u) * scale)
            ft, vt, Ft, Gt, St, Vt = obj.evaluate(Xt)
            _offer_best(anytime, Xt, ft, vt, feas_tol, _name)
            acc = (Ft > F) & ~flat
            X[acc], f[acc], viol[acc], F[acc] = Xt[acc], ft[acc], vt[acc], Ft[acc]
            for l in range(len(G)):
                G[l][acc], S[l][acc] = Gt[l][acc], St[l][acc]
            if V is not None:
                V[acc] = Vt[acc]
            steps = np.where(acc, np.minimum(steps * 1.5, 0.5), steps * 0.5)
            # collapsed step: perturb, and restart starts that stopped improving
            stuck = (steps < min_lr) | flat
            if np.any(stuck):
                better = F > start_best + 1e-12
                start_best = np.maximum(start_best, F)
                perturbs = np.where(stuck & better, 0, perturbs + stuck)
                fresh = stuck & (perturbs > max_perturb)
                idx = np.nonzero(stuck)[0]
                noise = sigma * scale * rng.normal(size=(idx.size, dom.dim))
                X[idx] = project(dom, X[idx] + noise)
                nf = int(fresh.sum())
                if nf:
                    X[fresh] = sample_domain(dom, nf, rng)
                    perturbs[fresh] = 0
                    start_best[fresh] = -np.inf
                steps[idx] = lr
                f, viol, F, G, S, V = obj.evaluate(X)
                _offer_best(anytime, X, f, viol, feas_tol, _name)
            anytime.report(iterations=it)
        stopped = _reason(anytime, loop_end, it, max_iter, stall)
        polished = _polish(problem, anytime, polish, _name.removesuffix("+polish"))
    return anytime.result(anytime.heuristic_status(), iterations=it, starts=starts, polish_lps=polished,
                          stopped=_reason(anytime, loop_end, it, max_iter, stall, stopped))


# ----------------------------------------------------------------------------- PPGA-LR
def _direction(problem: Problem, X: np.ndarray, g: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """Project the ascent direction onto the domain's tangent cone (box; active A rows)."""
    dom = problem.domain
    u = g.copy()
    u[(X <= dom.lb + tol) & (u < 0)] = 0.0
    u[(X >= dom.ub - tol) & (u > 0)] = 0.0
    if dom.A is not None and dom.b is not None:
        slack = dom.b - X @ dom.A.T
        act = (slack <= 1e-9 * (1 + np.abs(dom.b))) & (u @ dom.A.T > 0)
        for i in np.nonzero(act.any(axis=1))[0]:
            Aa = dom.A[act[i]]
            u[i] = u[i] - Aa.T @ np.linalg.lstsq(Aa @ Aa.T, Aa @ u[i], rcond=None)[0]
            u[i][(X[i] <= dom.lb + tol) & (u[i] < 0)] = 0.0
            u[i][(X[i] >= dom.ub - tol) & (u[i] > 0)] = 0.0
    return u


def domain_step(problem: Problem, X: np.ndarray, U: np.ndarray) -> np.ndarray:
    """Largest ``t`` per row keeping ``X + t U`` in the box and ``A x <= b``: PPGA-LR's domain wall.

    Parameters
    ----------
    problem : Problem
        Gives the domain.
    X : np.ndarray, shape (n, d)
        Points in the domain.
    U : np.ndarray, shape (n, d)
        One direction per point.

    Returns
    -------
    np.ndarray, shape (n,)
        Non-negative; ``inf`` where the direction never leaves the domain.
    """
    dom = problem.domain
    with np.errstate(divide="ignore", invalid="ignore"):
        tb = np.where(U > 0, (dom.ub - X) / U, np.where(U < 0, (dom.lb - X) / U, np.inf))
        t = np.min(np.maximum(tb, 0.0), axis=1)
        if dom.A is not None:
            AU = U @ dom.A.T
            slack = np.maximum(dom.b - X @ dom.A.T, 0.0)
            ta = np.where(AU > 1e-15, slack / AU, np.inf)
            t = np.minimum(t, np.min(ta, axis=1))
    return t


@certified_method
def solve_ppga_lr(problem: Problem, *, time_limit: float | None = None, seed: int = 0,
                  progress=None, starts: int = 64, cross: float = 1e-6, lr: float = 0.05,
                  min_lr: float = 1e-6, sigma: float = 0.05,
                  patience: int = 5, max_perturb: int = 3, max_iter: int | None = None,
                  mu: float | None = None, polish: float = 0.0, incumbent=None,
                  feas_tol: float = FEASIBILITY_TOL, stall_iterations: int | None = STALL_ITERATIONS,
                  _name: str = "ppga-lr") -> Result:
    """PPGA-LR: exact steps to the next region wall along the projected gradient.

    The linear-region-aware variant of PPGA: inside a region the objective is linear, so the
    step goes exactly to the first wall (a ratio test) instead of guessing a step size. The
    private ``_name`` is the method name in the result (``solve_ppga_lr_polish`` sets it).

    Parameters
    ----------
    problem : Problem
        The problem; any objective sense, box, ``A x <= b`` and output constraints.
    time_limit, seed, progress
        Seconds (default ``region.DEFAULT_TIME_LIMIT``), seed, callback on new incumbents.
    starts : int
        Number of batched starts.
    cross : float
        How far past a wall a step goes (fraction of the box width along the direction's
        largest coordinate). When the first wall is nearer than ``cross`` (a ridge: the next
        region's gradient points back), the start takes a PPGA trial step of ``lr`` box
        widths instead, kept only if it improves (``lr`` grows on success, halves on failure).
    lr, min_lr, sigma : float
        Ridge step, smallest step and perturbation size, as fractions of the box width.
    patience : int
        Non-improving steps that trigger a perturbation.
    max_perturb : int
        Perturbations without a new best for a start before it restarts at random.
    max_iter, mu
        Iteration cap (reproducible runs); output-constraint penalty (default 10 max|c|).
    polish : float
        Fraction of the budget for the final region-LP walk (not in the paper; 0 here, 0.1
        in ``ppga-lr+polish``), in [0, 1).
    incumbent, feas_tol
        An input point that replaces the first start; output-constraint tolerance.
    stall_iterations : int or None
        Stop after that many iterations without a new incumbent (None: never).

    Returns
    -------
    Result
        Status ``feasible`` (or ``no_solution`` / ``interrupted``), the best forward-checked
        point, and ``stats`` (iterations, starts, walls_crossed, polish_lps, stopped).
    """
    anytime, loop_end = _prepare(problem, time_limit, _name, polish)
    stall = Stall(anytime, stall_iterations, "stall_iterations")
    anytime.progress = progress
    net = problem.network
    rng = np.random.default_rng(seed)
    dom = problem.domain
    scale = box_scale(dom)
    cap = 10.0 * float(np.linalg.norm(scale))  # step cap where the domain is unbounded
    obj = _Objective(problem, mu)
    X = sample_domain(dom, starts, rng, "lhs", seed=seed)
    incumbent = as_incumbent(problem, incumbent)
    if incumbent is not None:
        X[0] = project(dom, incumbent[None, :])[0]
    idle = np.zeros(starts, dtype=np.int64)
    steps = np.full(starts, lr)
    perturbs = np.zeros(starts, dtype=np.int64)
    start_best = np.full(starts, -np.inf)
    it = walls = 0
    with interruptible(anytime), single_threaded_blas():
        f, viol, F, G, S, V = obj.evaluate(X)
        _offer_best(anytime, X, f, viol, feas_tol, _name)
        while not _stopped(anytime, loop_end, it, max_iter, stall):
            it += 1
            U = _direction(problem, X, obj.grad(S, V))
            unorm = np.max(np.abs(U) / scale, axis=1)
            t_wall = ratio_test(net, G, S, directional(net, S, U))
            t_dom = domain_step(problem, X, U)
            t = np.minimum(np.minimum(t_wall, t_dom), cap / np.maximum(unorm, 1e-300))
            # past the wall by `cross` box widths, but never out of the domain
            t_go = np.minimum(t + cross / np.maximum(unorm, 1e-300), t_dom)
            t_go = np.where(unorm > 1e-300, t_go, 0.0)
            # a wall at ~0 is a ridge (the next region's gradient points back): PPGA trial step
            ridge = (t * unorm < cross) & (unorm > 1e-300)
            walls += int(np.sum((t_wall <= t_dom) & ~ridge))
            Xn = X + t_go[:, None] * U
            if np.any(ridge):
                Ur = U[ridge] / unorm[ridge][:, None]
                Xn[ridge] = X[ridge] + (steps[ridge][:, None] * Ur) * scale
            Xn = project(dom, Xn) if dom.A is not None and np.any(ridge) else np.clip(Xn, dom.lb, dom.ub)
            fn, vn, Fn, Gn, Sn, Vn = obj.evaluate(Xn)
            _offer_best(anytime, Xn, fn, vn, feas_tol, _name)
            improved = Fn > F + 1e-12 * (1 + np.abs(F))
            acc = ~ridge | improved
            steps = np.where(ridge, np.where(improved, np.minimum(steps * 1.5, 0.5), steps * 0.5), steps)
            X[acc], f[acc], F[acc] = Xn[acc], fn[acc], Fn[acc]
            for l in range(len(G)):
                G[l][acc], S[l][acc] = Gn[l][acc], Sn[l][acc]
            if V is not None:
                V[acc] = Vn[acc]
            improved &= acc
            idle = np.where(improved, 0, idle + 1)
            stuck = (idle >= patience) | (steps < min_lr)
            if np.any(stuck):
                better = F > start_best + 1e-12 * (1 + np.abs(F))
                start_best = np.maximum(start_best, F)
                perturbs = np.where(stuck & better, 0, perturbs + stuck)
                fresh = stuck & (perturbs > max_perturb)
                idx = np.nonzero(stuck)[0]
                X[idx] = project(dom, X[idx] + sigma * scale * rng.normal(size=(idx.size, dom.dim)))
                nf = int(fresh.sum())
                if nf:
                    X[fresh] = sample_domain(dom, nf, rng)
                    perturbs[fresh] = 0
                    start_best[fresh] = -np.inf
                idle[idx] = 0
                steps[idx] = lr
                f, viol, F, G, S, V = obj.evaluate(X)
                _offer_best(anytime, X, f, viol, feas_tol, _name)
            anytime.report(iterations=it)
        stopped = _reason(anytime, loop_end, it, max_iter, stall)
        polished = _polish(problem, anytime, polish, _name.removesuffix("+polish"))
    return anytime.result(anytime.heuristic_status(), iterations=it, starts=starts, walls_crossed=walls,
                          polish_lps=polished, stopped=_reason(anytime, loop_end, it, max_iter, stall, stopped))


# ----------------------------------------------------------------------------- reluopt variants
#: Budget fraction of the final walk in the ``+polish`` variants.
POLISH_FRACTION = 0.1


def solve_ppga_polish(problem: Problem, *, polish: float = POLISH_FRACTION, **options) -> Result:
    """``ppga+polish``: PPGA, then a Relax-and-Walk walk from its best point (reluopt's variant).

    The walk's region LP lands the point exactly on its region's optimal vertex, which
    gradient steps approach but rarely reach.

    Parameters
    ----------
    problem : Problem
        The problem.
    polish : float
        Fraction of the budget for the walk, in [0, 1).
    **options
        As ``solve_ppga``.

    Returns
    -------
    Result
        As ``solve_ppga``, method ``ppga+polish``.
    """
    return solve_ppga(problem, polish=polish, _name="ppga+polish", **options)


def solve_ppga_lr_polish(problem: Problem, *, polish: float = POLISH_FRACTION, **options) -> Result:
    """``ppga-lr+polish``: PPGA-LR, then a Relax-and-Walk walk from its best point (reluopt's variant).

    Parameters
    ----------
    problem : Problem
        The problem.
    polish : float
        Fraction of the budget for the walk, in [0, 1).
    **options
        As ``solve_ppga_lr``.

    Returns
    -------
    Result
        As ``solve_ppga_lr``, method ``ppga-lr+polish``.
    """
    return solve_ppga_lr(problem, polish=polish, _name="ppga-lr+polish", **options)
