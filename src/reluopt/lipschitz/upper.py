"""Cheap certified upper bounds on the Lipschitz constant.

- ``product_bound``: ``||c W_L||_q`` times the q->q operator norms of the transposed hidden
  weights (diagonal 0/1 activation matrices have norm <= 1 in every p-norm).
- ``interval_jacobian_bound``: back-propagate ``c`` through the layers with interval
  arithmetic, each activation slope in {0}, {1} or [0, 1] by the neuron bounds (stable
  neurons fixed). Sound for every pattern consistent with the bounds.
- ``spectral_product_bound`` and ``spectral_interval_bound``: the same two for the l2 -> l2
  constant of several rows ``C`` (the spectral norm of ``C J``).
"""

from __future__ import annotations

import numpy as np

from ..bounds import LayerBounds
from ..bounds.core import REL_MARGIN
from ..network import Network


def _operator_norm_transposed(W: np.ndarray, q: float) -> float:
    """``||W^T||_{q->q}``."""
    if q == 1.0:
        return float(np.max(np.abs(W).sum(axis=1)))   # max column sum of W^T = max row sum of W
    if q == np.inf:
        return float(np.max(np.abs(W).sum(axis=0)))
    return float(np.linalg.norm(W, ord=2))


def product_bound(network: Network, c: np.ndarray, q: float) -> float:
    """The cheapest upper bound: the product of the layers' operator norms.

    Parameters
    ----------
    network : Network
        The network.
    c : numpy.ndarray
        Output weights.
    q : float
        The gradient's norm.

    Returns
    -------
    float
        ``||W_out^T c||_q * prod ||W_l^T||_{q->q}``, rounded up.
    """
    v = network.layers[-1].W.T @ c
    total = float(np.linalg.norm(v, ord=q))
    for layer in network.hidden_layers:
        total *= _operator_norm_transposed(layer.W, q)
    return total * (1 + 1e-9)


def slope_intervals(network: Network, bounds: LayerBounds, i: int = 0):
    """Per hidden layer, the interval ``[lo, hi]`` of each neuron's activation slope.

    Parameters
    ----------
    network : Network
        The network.
    bounds : LayerBounds
        Its neuron bounds.
    i : int, optional
        Which box of ``bounds``.

    Returns
    -------
    list of tuple of numpy.ndarray
        ``(lo, hi)`` per hidden layer.
    """
    out = []
    for l, layer in enumerate(network.hidden_layers):
        L, U = bounds.lower[l][i], bounds.upper[l][i]
        out.append(layer.act.slope_bounds(L, U))
    return out


def gradient_intervals(network: Network, c: np.ndarray, bounds: LayerBounds, i: int = 0):
    """Intervals of the backward vectors, from the last hidden layer down to the input gradient.

    Parameters
    ----------
    network : Network
        The network.
    c : numpy.ndarray
        Output weights.
    bounds : LayerBounds
        Its neuron bounds.
    i : int, optional
        Which box of ``bounds``.

    Returns
    -------
    lams : list of tuple of numpy.ndarray
        Aligned with the hidden layers: ``lams[l]`` bounds ``W_{l+1}^T mu_{l+1}``.
    gradient : tuple of numpy.ndarray
        The input-gradient interval ``(lo, hi)``.
    """
    slopes = slope_intervals(network, bounds, i)
    v = network.layers[-1].W.T @ c
    lo, hi = v.copy(), v.copy()
    lams: list[tuple[np.ndarray, np.ndarray]] = []      # from the last hidden layer down
    for l in range(network.depth - 1, -1, -1):
        lams.append((lo, hi))
        s_lo, s_hi = slopes[l]
        # mu = s * lambda with s in [s_lo, s_hi] subset of [0, 1]
        cands = np.stack([s_lo * lo, s_lo * hi, s_hi * lo, s_hi * hi])
        mu_lo, mu_hi = cands.min(axis=0), cands.max(axis=0)
        W = network.layers[l].W
        mid, rad = 0.5 * (mu_lo + mu_hi), 0.5 * (mu_hi - mu_lo)
        centre = W.T @ mid
        spread = np.abs(W).T @ rad
        pad = REL_MARGIN * (np.abs(W).T @ np.maximum(np.abs(mu_lo), np.abs(mu_hi))) + 1e-15
        lo, hi = centre - spread - pad, centre + spread + pad
    return lams[::-1], (lo, hi)


def interval_jacobian_bound(network: Network, c: np.ndarray, q: float, bounds: LayerBounds) -> float:
    """The interval-Jacobian upper bound on ``||grad (c . y)||_q`` over one box.

    Parameters
    ----------
    network : Network
        The network.
    c : numpy.ndarray
        Output weights.
    q : float
        The gradient's norm.
    bounds : LayerBounds
        Neuron bounds of the box.

    Returns
    -------
    float
        The bound, rounded up.
    """
    _, (lo, hi) = gradient_intervals(network, c, bounds)
    return float(np.linalg.norm(np.maximum(np.abs(lo), np.abs(hi)), ord=q)) * (1 + 1e-9)


def spectral_product_bound(network: Network, rows: np.ndarray) -> float:
    """The product of spectral norms: an upper bound on ``max_x ||C J(x)||_2``.

    Every activation matrix is a 0/1 diagonal (spectral norm <= 1), so
    ``||C W_out D W ... D W_1||_2 <= ||C W_out||_2 prod ||W_l||_2``.

    Parameters
    ----------
    network : Network
        The network.
    rows : numpy.ndarray
        The output rows ``C``, shape (k, m).

    Returns
    -------
    float
        The bound, rounded up.
    """
    total = float(np.linalg.norm(np.atleast_2d(rows) @ network.layers[-1].W, ord=2))
    for layer in network.hidden_layers:
        total *= float(np.linalg.norm(layer.W, ord=2))
    return total * (1 + 1e-9)


def spectral_interval_bound(network: Network, rows: np.ndarray, bounds: LayerBounds) -> float:
    """The interval-Jacobian bound on ``max_x ||C J(x)||_2`` over one box.

    Each row's interval gradient bounds the entries of ``C J``; the spectral norm is
    monotone on nonnegative matrices, so ``||C J||_2 <= || |C J| ||_2 <= ||M||_2`` with ``M``
    the entrywise largest magnitudes.

    Parameters
    ----------
    network : Network
        The network.
    rows : numpy.ndarray
        The output rows ``C``, shape (k, m).
    bounds : LayerBounds
        Neuron bounds of the box.

    Returns
    -------
    float
        The bound, rounded up.
    """
    mags = []
    for c in np.atleast_2d(rows):
        _, (lo, hi) = gradient_intervals(network, c, bounds)
        mags.append(np.maximum(np.abs(lo), np.abs(hi)))
    M = np.stack(mags)
    return min(float(np.linalg.norm(M, ord=2)), float(np.linalg.norm(M))) * (1 + 1e-9)


def batched_jacobian_upper(network: Network, rows: np.ndarray, bounds: LayerBounds, q: float,
                           spectral: bool = False) -> np.ndarray:
    """Interval-Jacobian upper bound of ``max_k ||grad (rows_k . y)||_q`` for every box at once.

    The batched form of `interval_jacobian_bound` (of `spectral_interval_bound` when
    ``spectral``).

    Parameters
    ----------
    network : Network
        The network.
    rows : numpy.ndarray
        Output weights, one row per function.
    bounds : LayerBounds
        Neuron bounds of B boxes.
    q : float
        The gradient's norm.
    spectral : bool, optional
        Bound the spectral norm of the rows' Jacobian instead (the l2 -> l2 constant).

    Returns
    -------
    numpy.ndarray
        Shape (B,).
    """
    B = bounds.batch
    best = np.zeros(B)
    mags = []
    slopes = []
    for l, layer in enumerate(network.hidden_layers):
        slopes.append(layer.act.slope_bounds(bounds.lower[l], bounds.upper[l]))
    for c in rows:
        v = network.layers[-1].W.T @ c
        lo = np.broadcast_to(v, (B, v.shape[0])).copy()
        hi = lo.copy()
        for l in range(network.depth - 1, -1, -1):
            s_lo, s_hi = slopes[l]
            cands = np.stack([s_lo * lo, s_lo * hi, s_hi * lo, s_hi * hi])
            mu_lo, mu_hi = cands.min(axis=0), cands.max(axis=0)
            W = network.layers[l].W
            mid, rad = 0.5 * (mu_lo + mu_hi), 0.5 * (mu_hi - mu_lo)
            centre = mid @ W
            spread = rad @ np.abs(W)
            pad = REL_MARGIN * (np.maximum(np.abs(mu_lo), np.abs(mu_hi)) @ np.abs(W)) + 1e-15
            lo, hi = centre - spread - pad, centre + spread + pad
        mags.append(np.maximum(np.abs(lo), np.abs(hi)))
        norm = np.linalg.norm(mags[-1], ord=q, axis=1)
        best = np.maximum(best, norm * (1 + 1e-9))
    if spectral:
        M = np.stack(mags, axis=1)      # (B, k, d)
        return np.minimum(np.linalg.norm(M, ord=2, axis=(1, 2)), np.linalg.norm(M, axis=(1, 2))) * (1 + 1e-9)
    return best
