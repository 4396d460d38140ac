"""Certified lower bounds: gradient norms at points strictly inside linear regions.

Sampling evaluates many points at once (batched gradients); the local search then climbs
the gradient norm over regions: it perturbs the best points with a shrinking radius and
keeps a move when the new point is inside a region with a larger gradient norm.
"""

from __future__ import annotations

import time

import numpy as np

from .common import Target, interior_mask


def _sample_domain(target: Target, rng: np.random.Generator, n: int) -> np.ndarray:
    d = target.domain
    x = rng.uniform(d.lb, d.ub, size=(n, d.dim))
    if d.A is not None:
        x = x[np.all(x @ d.A.T <= d.b, axis=1)]
    return x


def best_interior(target: Target, x: np.ndarray):
    """The point of ``x`` with the largest gradient norm among those strictly inside a region.

    Parameters
    ----------
    target : Target
        What is bounded.
    x : numpy.ndarray
        Candidate points, shape (n, d).

    Returns
    -------
    x : numpy.ndarray or None
        The best point.
    value : float
        Its gradient norm (-inf when no candidate qualifies).
    """
    if x.shape[0] == 0:
        return None, -np.inf
    x = x[interior_mask(target.network, x) & target.domain.contains(x, tol=0.0)]
    if x.shape[0] == 0:
        return None, -np.inf
    norms = target.norms(x)
    i = int(np.argmax(norms))
    return x[i].copy(), float(norms[i])


def sample_lower(target: Target, *, samples: int = 20000, seed: int = 0, batch: int = 4096,
                 deadline: float = np.inf):
    """A lower bound from uniform samples of the domain: the best interior sample.

    Parameters
    ----------
    target : Target
        What is bounded.
    samples : int, optional
        Number of samples.
    seed : int, optional
        Their seed.
    batch : int, optional
        Samples evaluated at once.
    deadline : float, optional
        ``time.perf_counter()`` value at which to stop.

    Returns
    -------
    x : numpy.ndarray or None
        The best sample.
    value : float
        Its gradient norm (-inf when none qualifies).
    """
    rng = np.random.default_rng(seed)
    best_x, best = None, -np.inf
    done = 0
    while done < samples and time.perf_counter() < deadline:
        x = _sample_domain(target, rng, min(batch, samples - done))
        done += batch
        bx, bv = best_interior(target, x)
        if bv > best:
            best_x, best = bx, bv
    return best_x, best


def local_ascent(target: Target, x0: np.ndarray, value: float, *, seed: int = 0, rounds: int = 60,
                 batch: int = 256, deadline: float = np.inf):
    """Climb the gradient norm over neighbouring regions from ``x0``.

    Parameters
    ----------
    target : Target
        What is bounded.
    x0 : numpy.ndarray
        The start point.
    value : float
        Its gradient norm.
    seed : int, optional
        Seed of the random neighbours.
    rounds : int, optional
        Maximum number of rounds (the radius shrinks after a round without progress).
    batch : int, optional
        Neighbours per round.
    deadline : float, optional
        ``time.perf_counter()`` value at which to stop.

    Returns
    -------
    x : numpy.ndarray
        The best point.
    value : float
        Its gradient norm.
    """
    rng = np.random.default_rng(seed)
    d = target.domain
    width = np.maximum(d.ub - d.lb, 1e-12)
    radius = 0.25
    best_x, best = x0.copy(), value
    for _ in range(rounds):
        if time.perf_counter() >= deadline or radius < 1e-6:
            break
        cand = best_x + radius * width * rng.uniform(-1, 1, size=(batch, d.dim))
        cand = np.clip(cand, d.lb, d.ub)
        bx, bv = best_interior(target, cand)
        if bv > best * (1 + 1e-12):
            best_x, best = bx, bv
        else:
            radius *= 0.6
    return best_x, best
