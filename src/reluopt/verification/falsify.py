"""The SAT side of ``verify``: find and confirm counterexamples.

Every (input box, output disjunct) pair is a ``Pair`` that keeps the best point found and a
certified upper bound of its margin ``min_j (e_j - C_j y(x))``. Candidate points from any
phase (sampling, gradient ascent, bound maximisers, branch and bound, MIP incumbents) go
through ``confirm``: clipped to the box, rounded to float32 where that stays inside, checked
by a forward pass with the exact VNN-LIB semantics and, when they hold, polished to a larger
margin; a confirmed point ends the search by raising ``Found``. ``falsify`` is the cheap
attack run before the exact phase: the ``pgd`` method's APGD on the margin of each box's
whole disjunction (``attack_box``), then optionally a short MIP per pair (``mip_attack``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..errors import ProblemError
from ..network import Network
from ..objectives import MaxMin
from ..parallel import single_threaded_blas
from ..problem import Domain, Problem
from .property import Disjunct

#: The MIP attack's model keeps only points whose margin is above ``-MIP_CUTOFF * (1 + scale)``
#: (scale: the output bounds' and right-hand sides' magnitude), so the solver prunes the rest.
MIP_CUTOFF = 1e-6

#: The attack's first, bound-free round gets ``steps // QUICK_SHARE`` of the first batch's rounds.
QUICK_SHARE = 4

#: Inputs of at most this many dimensions get 4096 samples, no maximin LP starts and no
#: smooth-margin run: input splitting decides them soon after, so the attack stays as cheap
#: as one batch.
SMALL_INPUT = 16


@dataclass
class Pair:
    """One (input box, output disjunct) pair of a property and what is known about it.

    Parameters
    ----------
    box, index : int
        The box's position in ``Property.boxes`` and the disjunct's in that box.
    lb, ub : numpy.ndarray
        The box.
    dj : Disjunct
        The unsafe set on it, ``C y <= e``.
    best_x : numpy.ndarray, optional
        The point with the largest margin found so far.
    best_margin : float
        Its margin (``-inf`` before any point).
    upper : float
        A certified upper bound of the margin on the box.
    closed_by : str
        The method that proved the pair impossible (empty while open).
    """

    box: int
    index: int
    lb: np.ndarray
    ub: np.ndarray
    dj: Disjunct
    best_x: np.ndarray | None = None
    best_margin: float = -math.inf
    upper: float = math.inf
    closed_by: str = ""


class Found(Exception):
    """A confirmed counterexample: raised to end ``verify``'s phases at once.

    Parameters
    ----------
    x, y : numpy.ndarray
        The point and its outputs (forward pass).
    method : str
        The phase that found it.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, method: str):
        super().__init__(method)
        self.x, self.y, self.method = x, y, method


def confirm(network: Network, pair: Pair, X: np.ndarray, method: str) -> None:
    """Record the best of the candidate points ``X`` and raise ``Found`` if one is unsafe.

    The points are clipped to the box and rounded to float32 where that stays inside; a
    counterexample is polished to a larger margin so the witness survives float32 re-checks.

    Parameters
    ----------
    network : Network
    pair : Pair
        Updated in place (``best_x``, ``best_margin``).
    X : numpy.ndarray
        One point ``(d,)`` or a batch ``(n, d)``.
    method : str
        Named in the ``Found`` raised.

    Raises
    ------
    Found
        A row of ``X`` (or its polished version) satisfies the disjunct exactly.
    """
    X = float32_inside(np.clip(np.atleast_2d(X), pair.lb, pair.ub), pair.lb, pair.ub)
    Y = network.forward(X)
    ok = pair.dj.holds(Y)
    margins = pair.dj.margins(Y)
    if np.any(np.isfinite(margins)):
        i = int(np.argmax(margins))
        if margins[i] > pair.best_margin:
            pair.best_margin, pair.best_x = float(margins[i]), X[i].copy()
    if not ok.any():
        return
    idx = np.nonzero(ok)[0]
    i = int(idx[np.argmax(margins[idx])])
    x = float32_inside(polish(network, pair, X[i]), pair.lb, pair.ub)
    y = network.forward(x[None, :])[0]
    if not pair.dj.holds(y[None, :])[0]:  # polishing never worsens, but stay safe
        x, y = X[i], Y[i]
    raise Found(x, y, method)


def confirm_many(network: Network, group: list[Pair], X: np.ndarray, method: str) -> None:
    """``confirm`` for several pairs on the same box with one forward pass.

    Parameters
    ----------
    network : Network
    group : list of Pair
        Pairs sharing one box; updated in place.
    X : numpy.ndarray
        Candidate points, ``(n, d)``.
    method : str
        Named in the ``Found`` raised.

    Raises
    ------
    Found
        A point satisfies one of the disjuncts exactly.
    """
    lb, ub = group[0].lb, group[0].ub
    X = float32_inside(np.clip(np.atleast_2d(X), lb, ub), lb, ub)
    Y = network.forward(X)
    for p in group:
        margins = p.dj.margins(Y)
        i = int(np.argmax(margins))
        if margins[i] > p.best_margin:
            p.best_margin, p.best_x = float(margins[i]), X[i].copy()
        ok = p.dj.holds(Y)
        if ok.any():
            confirm(network, p, X[ok], method)


def float32_inside(X: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """Round to float32 values still inside the box (where one exists).

    A witness read back in single precision (ONNX files, VNN-COMP checkers) is then the
    same point.

    Parameters
    ----------
    X : numpy.ndarray
        Points inside ``[lb, ub]``.
    lb, ub : numpy.ndarray
        The box.

    Returns
    -------
    numpy.ndarray
        ``X`` (float64) with each coordinate replaced by a float32 value inside the box, or
        left as it is where no such value exists.
    """
    X32 = X.astype(np.float32)
    X32 = np.where(X32 < lb, np.nextafter(X32, np.float32(np.inf)), X32)
    X32 = np.where(X32 > ub, np.nextafter(X32, np.float32(-np.inf)), X32)
    ok = (X32 >= lb) & (X32 <= ub)
    return np.where(ok, X32.astype(np.float64), X)


def polish(network: Network, pair: Pair, x: np.ndarray, steps: int = 30) -> np.ndarray:
    """A few small sign-gradient steps that increase the margin of a counterexample.

    Parameters
    ----------
    network : Network
    pair : Pair
    x : numpy.ndarray
        A point of the box.
    steps : int, default 30
        Steps, each 0.7 times the last (the first: 1e-3 of the box width).

    Returns
    -------
    numpy.ndarray
        The point with the largest margin seen (``x`` itself if no step improved it).
    """
    dj = pair.dj
    if dj.C.shape[0] == 0:
        return x
    width = pair.ub - pair.lb
    best, best_m = x, dj.margins(network.forward(x[None, :]))[0]
    cur = x.copy()
    for it in range(steps):
        M = dj.e - network.forward(cur[None, :])[0] @ dj.C.T
        g = network.gradient(cur[None, :], -dj.C[int(np.argmin(M))])[0]
        cur = np.clip(cur + 1e-3 * 0.7 ** it * width * np.sign(g), pair.lb, pair.ub)
        m = dj.margins(network.forward(cur[None, :]))[0]
        if m > best_m:
            best, best_m = cur.copy(), m
    return best


def margin_problem(network: Network, lb: np.ndarray, ub: np.ndarray, dj: Disjunct) -> Problem:
    """A pair as the optimisation problem every method solves: ``max min_j (e_j - C_j y)`` over the box.

    A point whose value is >= 0 (> 0 on strict atoms) is a counterexample; a certified bound
    below 0 proves the pair impossible.

    Parameters
    ----------
    network : Network
    lb, ub : numpy.ndarray
        The box.
    dj : Disjunct
        With at least one atom.

    Returns
    -------
    Problem
    """
    return Problem(network, Domain(lb, ub), MaxMin(-dj.C, dj.e))


def box_rows(group: list[Pair]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The margins of all pairs on one box as the attack's rows: ``(C, e, groups)`` of ``e - C y``.

    Parameters
    ----------
    group : list of Pair
        Pairs on the same box, each with at least one atom.

    Returns
    -------
    C : numpy.ndarray, shape (R, m)
        Rows ``-C_j`` of every disjunct, so that a row's value ``C y + e`` is its margin.
    e : numpy.ndarray, shape (R,)
    groups : numpy.ndarray of int, shape (R,)
        The position in ``group`` of each row's pair.
    """
    C = np.vstack([-p.dj.C for p in group])
    e = np.concatenate([p.dj.e for p in group])
    groups = np.concatenate([np.full(p.dj.C.shape[0], k, dtype=np.intp) for k, p in enumerate(group)])
    return C, e, groups


def attack_box(network: Network, group: list[Pair], rng: np.random.Generator, deadline: float,
               restarts: int = 48, steps: int = 80, samples: int = 128, smooth: bool = True) -> None:
    """APGD on the margin of a box's disjunction (``max`` over its pairs of their smallest margin).

    Three runs of ``restarts`` starts, so that easy counterexamples cost no bound: first
    ``steps // QUICK_SHARE`` rounds on the hard margin from the best samples, the centre and
    the best points so far; then the rest of ``steps`` from CROWN's relaxation points and
    corners and the first run's best points; last ``steps // 2`` rounds on the smooth margin
    from the best points and fresh random ones. Points whose margin is within round-off of
    0, and each start's best point, go through ``confirm_many``.

    Parameters
    ----------
    network : Network
    group : list of Pair
        Pairs on one box, each with at least one atom; updated in place (best points).
    rng : numpy.random.Generator
    deadline : float
        ``time.perf_counter()`` value to stop at.
    restarts, steps, samples : int
        Starts per batch, rounds of the first batch, uniform samples among which the best
        become starts.
    smooth : bool, default True
        Run the last, smooth-margin run, and start from the relaxation's maximin points (LPs),
        not only its corners.

    Raises
    ------
    Found
        A counterexample was confirmed.
    """
    from ..methods.attack import ascend, attack_starts, margin_gradient, margin_loss

    lb, ub = group[0].lb, group[0].ub
    C, e, groups = box_rows(group)
    problem = margin_problem(network, lb, ub, group[0].dj)
    width = ub - lb
    known = [p.best_x for p in group if p.best_x is not None]
    S = lb + rng.random((samples, lb.size)) * width       # checked before any bound is computed
    vals = margin_loss(network.forward(S) @ C.T + e, groups)[0]
    best_s = S[np.argsort(-vals)[:restarts]]
    confirm_many(network, group, np.vstack([S[vals >= -1e-6 * (1.0 + np.abs(vals))], best_s[:1]]), "falsification")

    def proj(Z: np.ndarray) -> np.ndarray:
        return np.clip(Z, lb, ub)

    def after_round(Z: np.ndarray, values: np.ndarray) -> bool:
        near = values >= -1e-6 * (1.0 + np.abs(values))    # only these can be counterexamples
        if near.any():
            confirm_many(network, group, Z[near], "falsification")
        return time.perf_counter() >= deadline

    def run(X: np.ndarray, rounds: int, tau: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        def value_grad(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return margin_gradient(network, Z, C, e, groups, tau)

        best, values = ascend(value_grad, X, proj, width, steps=max(rounds, 1), step=0.25, rng=rng,
                              after_round=after_round)
        confirm_many(network, group, best, "falsification")     # the best points, for the exact phase
        return best, values

    # The cheap first round: the best samples, the centre and the known points, no bound computed.
    quick = max(steps // QUICK_SHARE, 1)
    X = np.vstack(known + [((lb + ub) / 2)[None, :], best_s])[:restarts]
    best, values = run(X, quick)
    if time.perf_counter() >= deadline:
        return
    # Then the relaxation starts (CROWN's maximin points and corners) with the first round's best.
    X = attack_starts(problem, restarts, 0, rng, None, (C, e, groups), lp=smooth)
    X = np.vstack([X[: restarts - restarts // 2], best[np.argsort(-values)]])[:restarts]
    confirm_many(network, group, X, "falsification")
    best, values = run(X, steps - quick)
    if time.perf_counter() >= deadline:
        return
    if not smooth:
        return
    # Last, the smooth margin from the best points so far and fresh random ones.
    keep = best[np.argsort(-values)[: restarts // 4]]
    X = np.vstack([keep, lb + rng.random((restarts - keep.shape[0], lb.size)) * width])
    V = network.forward(X) @ C.T + e
    run(X, steps // 2, 0.05 * float(np.std(V)) + 1e-12)


def falsify(network: Network, pairs: list[Pair], rng: np.random.Generator, deadline: float,
            mip_seconds: float = 0.0, backend: str = "highs") -> None:
    """The margin attack (``attack_box``) on each box's open pairs together, then optionally a MIP.

    Each box gets an equal share of the time left; the attack stops at the first point where
    some disjunct's margins are all >= 0, which ``confirm`` checks exactly. With
    ``mip_seconds > 0`` the pairs then get a short MIP attack each (``mip_attack``), the one
with the largest margin found first.

    Parameters
    ----------
    network : Network
    pairs : list of Pair
        The open pairs; updated in place (best points).
    rng : numpy.random.Generator
    deadline : float
        ``time.perf_counter()`` value to stop at; the time left is shared among the boxes.
    mip_seconds : float, default 0
        Time cap of each pair's MIP attack (0: none).
    backend : str, default "highs"
        The MILP back-end of the MIP attack (``milp.backends.get_backend``).

    Raises
    ------
    Found
        A counterexample was confirmed.
    """
    with single_threaded_blas():      # small products: threads only add overhead
        _falsify(network, pairs, rng, deadline, mip_seconds, backend)


def _falsify(network: Network, pairs: list[Pair], rng: np.random.Generator, deadline: float,
             mip_seconds: float, backend: str) -> None:
    samples = 4096 if network.input_dim <= SMALL_INPUT else 128
    for p in pairs:
        if p.dj.C.shape[0] == 0:   # no output atom: any point of the box is unsafe
            confirm(network, p, ((p.lb + p.ub) / 2)[None, :], "falsification")
    boxes = sorted({p.box for p in pairs})
    for k, b in enumerate(boxes):
        now = time.perf_counter()
        if now >= deadline:
            return
        group = [p for p in pairs if p.box == b]
        try:
            attack_box(network, group, rng, now + (deadline - now) / (len(boxes) - k), samples=samples,
                       smooth=network.input_dim > SMALL_INPUT)
        except ProblemError:      # e.g. a box whose interval bounds overflow: no attack, no claim
            continue
    if mip_seconds > 0:       # the pairs closest to a counterexample first
        for p in sorted(pairs, key=lambda q: -q.best_margin):
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            mip_attack(network, p, min(mip_seconds, left), backend)


def mip_attack(network: Network, pair: Pair, time_limit: float, backend="highs") -> str:
    """A short MIP on the pair's margin (``max t``, ``t <= e_j - C_j y``, ``t`` cut off just below 0).

    An attack, not a proof: it never changes ``pair.upper`` or closes the pair. Every
    incumbent the solver reports, and its final point, count only through ``confirm`` (a
    forward pass with the exact VNN-LIB semantics); a failed run (status ``error``) ends
    with no claim.

    Parameters
    ----------
    network : Network
    pair : Pair
        Updated in place (best point).
    time_limit : float
        Seconds for the solver.
    backend : str or Backend, default "highs"
        A name for ``milp.backends.get_backend``, or a back-end object.

    Returns
    -------
    str
        The solver's status (``error`` on a failed run), or ``skipped`` when the model is
        badly scaled or the pair has no atom.

    Raises
    ------
    Found
        A point the solver found is a counterexample.
    """
    from ..bounds import compute_bounds
    from ..milp.backends import get_backend
    from ..milp.formulation import build_network_model

    C, e = pair.dj.C, pair.dj.e
    if C.shape[0] == 0:
        return "skipped"
    solver = get_backend(backend) if isinstance(backend, str) else backend
    bounds = compute_bounds(network, pair.lb, pair.ub, "crown")
    model = build_network_model(network, Domain(pair.lb, pair.ub), bounds)
    if model.scaling_issue() is not None:
        return "skipped"
    lo, hi = bounds.out_lower[0], bounds.out_upper[0]
    scale = float(np.max(np.abs(hi)) + np.max(np.abs(lo)) + np.max(np.abs(e), initial=0.0))
    t_hi = float(np.min(e - np.where(C > 0, C * lo, C * hi).sum(axis=1)))
    t_lo = -MIP_CUTOFF * (1.0 + scale)   # only near-counterexamples are feasible: a search, not an optimum
    t_col = model.add_columns([t_lo], [max(t_hi, t_lo)], cost=[1.0])[0]
    rows = sp.lil_matrix((C.shape[0], model.n_cols))
    rows[:, t_col] = 1.0
    rows[:, model.y_cols] = C
    model.add_rows(rows.tocsr(), -np.inf, e)
    start = None
    if pair.best_x is not None and pair.best_margin >= t_lo:     # else not a point of this model
        start = model.point_to_columns(pair.best_x)
        start[t_col] = min(max(pair.best_margin, t_lo), max(t_hi, t_lo))
    found: list[np.ndarray] = []

    def on_improvement(obj, values):
        if len(values) == model.n_cols:
            x = np.clip(model.columns_to_point(values), pair.lb, pair.ub)
            if pair.dj.holds(network.forward(x[None, :]))[0]:
                found.append(x)

    out = solver.solve(model, time_limit=max(time_limit, 1e-3), mip_start=start, on_improvement=on_improvement,
                       should_stop=lambda: bool(found))
    if found:
        confirm(network, pair, np.array(found), "mip-attack")
    if out.values is not None and len(out.values) == model.n_cols:
        confirm(network, pair, model.columns_to_point(out.values)[None, :], "mip-attack")
    return out.status
