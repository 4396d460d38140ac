"""The SAT side of ``verify``: find and confirm counterexamples.

Every (input box, output disjunct) pair is a ``Pair`` that keeps the best point found and a
certified upper bound of its margin ``min_j (e_j - C_j y(x))``. Candidate points from any
phase (sampling, gradient ascent, bound maximisers, branch and bound, MIP incumbents) go
through ``confirm``: clipped to the box, rounded to float32 where that stays inside, checked
by a forward pass with the exact VNN-LIB semantics and, when they hold, polished to a larger
margin; a confirmed point ends the search by raising ``Found``. ``falsify`` is the cheap
attack run before the exact phase: the solve layer's ``pgd`` on each pair's ``margin_problem``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..errors import ProblemError
from ..network import Network
from ..objectives import MaxMin
from ..problem import Domain, Problem
from .property import Disjunct


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


def falsify(network: Network, pairs: list[Pair], rng: np.random.Generator, deadline: float) -> None:
    """The solve layer's attack (``method="pgd"``) on each pair's margin problem, in turn.

    Each pair gets an equal share of the time left and one batch of starts (the attack's
    sampled, CROWN-corner and random starts, sign-gradient ascent of the smallest margin); it
    stops at the first point with margin >= 0, which ``confirm`` checks exactly.

    Parameters
    ----------
    network : Network
    pairs : list of Pair
        The open pairs; updated in place (best points).
    rng : numpy.random.Generator
    deadline : float
        ``time.perf_counter()`` value to stop at; the time left is shared among the pairs.

    Raises
    ------
    Found
        A counterexample was confirmed.
    """
    from ..methods.attack import solve_pgd

    samples = 4096 if network.input_dim <= 16 else 128
    for p in pairs:
        if p.dj.C.shape[0] == 0:   # no output atom: any point of the box is unsafe
            confirm(network, p, ((p.lb + p.ub) / 2)[None, :], "falsification")
    for k, p in enumerate(pairs):
        now = time.perf_counter()
        if now >= deadline:
            return
        try:
            res = solve_pgd(margin_problem(network, p.lb, p.ub, p.dj), time_limit=(deadline - now) / (len(pairs) - k),
                            seed=int(rng.integers(2**31)), incumbent=p.best_x, restarts=48, steps=80,
                            samples=samples, stop_above=0.0, batches=1)
        except ProblemError:      # e.g. a box whose interval bounds overflow: no attack, no claim
            continue
        if res.x is not None:
            confirm(network, p, res.x[None, :], "falsification")
