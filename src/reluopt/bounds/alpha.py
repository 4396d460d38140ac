"""alpha-CROWN: CROWN with the lower ReLU slopes optimised per bounded row (one box).

Every lower slope ``alpha`` in the admissible range of an unstable neuron ([0, 1] for a
ReLU; ``Activation.lower_slope_range``) gives a valid relaxation, so any choice gives a
sound bound; we pick them by projected gradient descent (Adam) on the bound
itself, one slope vector per row of the specification. The gradient is exact where the
line choices are locally constant: with ``x*`` the box corner maximising the linear bound,
the bound is the relaxed network's value at ``x*``, and its derivative in the lower slope of
neuron ``i`` of hidden layer ``j`` is ``lam_ji * g_ji(x*)`` where the lower line is used
(``lam_ji < 0``), ``g_j`` being the relaxed network's pre-activation.

The optimiser only picks slopes; the reported bound is recomputed by
``crown.backsubstitute`` (with its outward rounding) for the final slopes, and never exceeds
the plain CROWN bound it starts from. Only networks whose hidden activations are all
``optimisable`` are handled (a network with clipped ReLUs keeps its CROWN bounds).
"""

from __future__ import annotations

import time

import numpy as np

from ..network import Network
from .core import LayerBounds, outward
from .crown import backsubstitute, concretise_upper


def _optimisable(network: Network) -> bool:
    return all(layer.act.optimisable for layer in network.hidden_layers)


def _bound_grad(network, k, spec, lowers, uppers, alphas, lo, hi):
    """Upper bounds of ``spec @ g_k`` (rows independent, spec (s, n_k)) and their gradients
    in the lower slopes ``alphas[j]`` (s, n_j); floating point, not rounded outward."""
    layer = network.layers[k]
    lam = spec @ layer.W
    const = spec @ layer.b
    saved: list[tuple[np.ndarray, ...]] = [()] * k       # per layer j < k, filled from the top down
    for j in range(k - 1, -1, -1):
        hidden = network.layers[j]
        L, U = lowers[j], uppers[j]
        free, _, _ = hidden.act.lower_slope_range(L, U)
        a_lo0, b_lo, a_up, b_up = hidden.act.relaxation(L, U)
        a_lo = np.where(free[None, :], alphas[j], a_lo0[None, :])
        pos = lam > 0
        lam_g = np.where(pos, lam * a_up[None, :], lam * a_lo)
        const = const + (np.where(pos, lam, 0.0) @ b_up) + lam_g @ hidden.b
        if np.any(b_lo):
            const = const + np.where(pos, 0.0, lam) @ b_lo
        saved[j] = (lam, pos, a_lo, a_up, b_up, b_lo, free)
        lam = lam_g @ hidden.W
    x_star = np.where(lam >= 0, hi[None, :], lo[None, :])
    value = np.einsum("sd,sd->s", lam, x_star) + const
    grads = []
    h = x_star
    for j in range(k):
        hidden = network.layers[j]
        lam_j, pos, a_lo, a_up, b_up, b_lo, free = saved[j]
        g = h @ hidden.W.T + hidden.b
        grads.append(np.where(~pos & free[None, :], lam_j * g, 0.0))
        h = np.where(pos, a_up[None, :] * g + b_up[None, :], a_lo * g + b_lo[None, :])
    return value, grads


def _sound_upper(network, k, spec, lowers, uppers, alphas, lo, hi):
    """Outward-rounded upper bounds of ``spec @ g_k`` with per-row slopes (rows as a batch)."""
    s = spec.shape[0]
    lw = [np.broadcast_to(L, (s, L.size)) for L in lowers[:k]]
    up = [np.broadcast_to(U, (s, U.size)) for U in uppers[:k]]
    lines = [layer.act.relaxation(L, U, a)
             for layer, L, U, a in zip(network.layers[:k], lw, up, alphas, strict=True)]
    lam, const, mag, _ = backsubstitute(network, k, spec[:, None, :], lines)
    value, _, magnitude = concretise_upper(lam, const, mag, np.broadcast_to(lo, (s, lo.size)),
                                           np.broadcast_to(hi, (s, hi.size)), points=False)
    _, upper = outward(value, value, magnitude)
    return upper[:, 0]


def optimise_rows(network: Network, k: int, spec: np.ndarray, lowers, uppers, lo, hi, *,
                  iters: int = 40, lr: float = 0.2, deadline: float | None = None,
                  stop_below: np.ndarray | None = None) -> np.ndarray:
    """Sound upper bounds of each row of ``spec @ g_k`` over a box, with optimised lower slopes.

    The slopes of the layers below ``k`` are tuned by Adam (alpha-CROWN); the bound of the best
    slopes is then recomputed soundly (rounded outward), so a bad step can only cost tightness.

    Parameters
    ----------
    network : Network
        The network.
    k : int
        The layer whose pre-activations ``g_k`` the rows read.
    spec : np.ndarray, shape (s, n_k)
        The rows.
    lowers, uppers : list of np.ndarray
        Pre-activation bounds of the hidden layers below ``k`` (one box, 1-D per layer).
    lo, hi : np.ndarray, shape (d,)
        The box.
    iters : int
        Adam steps.
    lr : float
        Adam step size.
    deadline : float, optional
        ``time.perf_counter()`` value after which no further step starts.
    stop_below : np.ndarray, shape (s,), optional
        Stop optimising once every row's bound is below its entry (the bound is kept).

    Returns
    -------
    np.ndarray, shape (s,)
        Sound upper bounds, one per row.
    """
    spec = np.asarray(spec, dtype=np.float64)
    s = spec.shape[0]
    alphas, ranges = [], []
    for layer, L, U in zip(network.layers[:k], lowers[:k], uppers[:k], strict=True):
        a = np.broadcast_to(layer.act.relaxation(L, U)[0], (s, L.size)).copy()   # CROWN's choice
        alphas.append(a)
        ranges.append(layer.act.lower_slope_range(L, U)[1:])
    best = _sound_upper(network, k, spec, lowers, uppers, alphas, lo, hi)
    if s == 0 or k == 0:
        return best
    m = [np.zeros_like(a) for a in alphas]
    v = [np.zeros_like(a) for a in alphas]
    b1, b2 = 0.9, 0.999
    best_alphas = [a.copy() for a in alphas]
    for it in range(1, iters + 1):
        if deadline is not None and time.perf_counter() > deadline:
            break
        if stop_below is not None and np.all(best < stop_below):
            break
        value, grads = _bound_grad(network, k, spec, lowers, uppers, alphas, lo, hi)
        improved = value < best   # provisional (unrounded); the sound value is checked below
        for j in range(k):
            best_alphas[j] = np.where(improved[:, None], alphas[j], best_alphas[j])
        best = np.where(improved, value, best)
        for j in range(k):
            m[j] = b1 * m[j] + (1 - b1) * grads[j]
            v[j] = b2 * v[j] + (1 - b2) * grads[j] ** 2
            step = lr * (m[j] / (1 - b1 ** it)) / (np.sqrt(v[j] / (1 - b2 ** it)) + 1e-12)
            alphas[j] = np.clip(alphas[j] - step, *ranges[j])
    value, _ = _bound_grad(network, k, spec, lowers, uppers, alphas, lo, hi)
    improved = value < best
    for j in range(k):
        best_alphas[j] = np.where(improved[:, None], alphas[j], best_alphas[j])
    sound = _sound_upper(network, k, spec, lowers, uppers, best_alphas, lo, hi)
    return sound


def alpha_crown_bounds(network: Network, lb, ub, initial: LayerBounds, *, iters: int = 30,
                       deadline: float | None = None) -> LayerBounds:
    """Pre-activation bounds of one box tightened by alpha-CROWN, for fewer unstable neurons.

    The unstable neurons of every hidden layer after the first are bounded with optimised
    slopes (``optimise_rows``); the result is intersected with ``initial`` (its box 0).

    Parameters
    ----------
    network : Network
        The network.
    lb, ub : array_like, shape (d,)
        The box.
    initial : LayerBounds
        Bounds of the box to start from and never loosen (e.g. CROWN's).
    iters : int
        Adam steps per layer.
    deadline : float, optional
        ``time.perf_counter()`` value after which no further layer is tightened.

    Returns
    -------
    LayerBounds
        Method ``alpha-crown``; ``initial`` itself when no activation has free slopes.
    """
    lo = np.asarray(lb, dtype=np.float64)
    hi = np.asarray(ub, dtype=np.float64)
    lowers = [L[0].copy() for L in initial.lower]
    uppers = [U[0].copy() for U in initial.upper]
    if not _optimisable(network):
        return initial
    for k in range(1, network.depth):
        if deadline is not None and time.perf_counter() > deadline:
            break
        rows = np.nonzero(network.layers[k].act.unstable(lowers[k], uppers[k]))[0]
        if rows.size == 0:
            continue
        n = network.layers[k].n_out
        eye = np.zeros((rows.size, n))
        eye[np.arange(rows.size), rows] = 1.0
        # stop a row once it proves the neuron stable: U < 0 (upper row) or -L < 0 (lower row)
        spec = np.concatenate([eye, -eye])
        up = optimise_rows(network, k, spec, lowers, uppers, lo, hi, iters=iters, deadline=deadline,
                           stop_below=np.zeros(2 * rows.size))
        uppers[k][rows] = np.minimum(uppers[k][rows], up[: rows.size])
        lowers[k][rows] = np.maximum(lowers[k][rows], -up[rows.size:])
        lowers[k] = np.minimum(lowers[k], uppers[k])
    return LayerBounds([L[None] for L in lowers], [U[None] for U in uppers], initial.out_lower,
                       initial.out_upper, "alpha-crown", dict(initial.stats), box_lower=lo[None], box_upper=hi[None])
