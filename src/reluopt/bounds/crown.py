"""CROWN (symbolic back-substitution), batched over boxes.

Each unstable neuron is relaxed by two lines that its activation supplies
(``reluopt.activations``): for ReLU ``h = relu(g)``, ``L < 0 < U``, the upper line
``U/(U-L) (g - L)`` and the lower line ``alpha g`` with the adaptive choice
``alpha = 1 if U > -L else 0``. A linear function of a layer is pushed back to the input
through these lines and concretised over the box. The result is intersected with interval
bounds, so it is never looser than IBP.
"""

from __future__ import annotations

import numpy as np

from ..network import Layer, Network
from .core import LayerBounds, as_boxes, outward
from .ibp import activate_interval, affine_interval


def relaxation(layer: Layer, L: np.ndarray, U: np.ndarray, alpha: np.ndarray | None = None):
    """Linear lines ``a_lo g + b_lo <= act(g) <= a_up g + b_up`` valid on ``[L, U]``: the
    layer's activation owns them (``Activation.relaxation``).

    ``alpha`` (same shape as L) overrides the lower slope of the neurons whose lower line is
    free (alpha-CROWN, clipped to the admissible range); by default the adaptive CROWN
    choice is used.
    """
    return layer.act.relaxation(L, U, alpha)


def backsubstitute(network: Network, k: int, spec: np.ndarray, lowers, uppers, alphas=None):
    """Push ``spec @ g_k`` (spec of shape (B, s, n_k)) back to a linear function of ``x``.

    ``k`` indexes ``network.layers`` (``k = depth`` is the output layer). Returns
    ``(Lam, const, mag)``: ``spec @ g_k <= Lam @ x + const`` on the box for every point
    consistent with the bounds, and ``mag`` the magnitude of the summed terms (for the
    rounding margin). Upper-bounding relaxation is chosen per coefficient sign.
    """
    layer = network.layers[k]
    lam = spec @ layer.W                       # (B, s, n_{k-1})
    const = spec @ layer.b                     # (B, s)
    mag = np.abs(spec) @ np.abs(layer.b)
    for j in range(k - 1, -1, -1):
        hidden = network.layers[j]
        alpha = None if alphas is None else alphas[j]
        a_lo, b_lo, a_up, b_up = relaxation(hidden, lowers[j], uppers[j], alpha)
        pos = np.maximum(lam, 0.0)
        neg = np.minimum(lam, 0.0)
        lam_g = pos * a_up[:, None, :] + neg * a_lo[:, None, :]
        shift = np.einsum("bsn,bn->bs", pos, b_up) + np.einsum("bsn,bn->bs", neg, b_lo)
        const = const + shift + lam_g @ hidden.b
        mag = mag + np.abs(shift) + np.abs(lam_g) @ np.abs(hidden.b)
        lam = lam_g @ hidden.W
    return lam, const, mag


def concretise_upper(lam: np.ndarray, const: np.ndarray, mag: np.ndarray, lo, hi):
    """Max of ``lam @ x + const`` over boxes (B, d); returns (value, argmax x, magnitude)."""
    x_star = np.where(lam >= 0, hi[:, None, :], lo[:, None, :])   # (B, s, d)
    value = np.einsum("bsd,bsd->bs", lam, x_star) + const
    scale = np.maximum(np.abs(lo), np.abs(hi))
    magnitude = np.einsum("bsd,bd->bs", np.abs(lam), scale) + mag + np.abs(const)
    return value, x_star, magnitude


def _layer_bounds(network, k, lo, hi, lowers, uppers, ibp_L, ibp_U, alphas=None):
    """CROWN bounds of ``g_k`` for the neurons that interval bounds leave unstable."""
    B = lo.shape[0]
    L, U = ibp_L.copy(), ibp_U.copy()
    layer = network.layers[k]
    if k == 0:
        return L, U  # the first layer's interval bounds are exact
    if k < network.depth:
        rows = np.nonzero(np.any(layer.act.unstable(L, U), axis=0))[0]
    else:
        rows = np.arange(layer.n_out)
    if rows.size == 0:
        return L, U
    n = rows.size
    eye = np.zeros((n, layer.n_out))
    eye[np.arange(n), rows] = 1.0
    spec = np.broadcast_to(np.concatenate([eye, -eye])[None], (B, 2 * n, layer.n_out))
    lam, const, mag = backsubstitute(network, k, spec, lowers, uppers, alphas)
    value, _, magnitude = concretise_upper(lam, const, mag, lo, hi)
    up = value[:, :n]
    low = -value[:, n:]
    low, up = outward(low, up, np.maximum(magnitude[:, :n], magnitude[:, n:]))
    L[:, rows] = np.maximum(L[:, rows], low)
    U[:, rows] = np.minimum(U[:, rows], up)
    return L, U


def crown_bounds(network: Network, lb, ub, alphas=None) -> LayerBounds:
    """CROWN pre-activation bounds of every layer, intersected with interval bounds."""
    lo, hi, _ = as_boxes(network, lb, ub)
    lowers: list[np.ndarray] = []
    uppers: list[np.ndarray] = []
    h_lo, h_hi = lo, hi
    for k, layer in enumerate(network.layers):
        ibp_L, ibp_U = affine_interval(layer, h_lo, h_hi)
        L, U = _layer_bounds(network, k, lo, hi, lowers, uppers, ibp_L, ibp_U, alphas)
        if k == network.depth:
            return LayerBounds(lowers, uppers, L, U, "crown")
        lowers.append(L)
        uppers.append(U)
        h_lo, h_hi = activate_interval(layer, L, U)
    raise AssertionError("unreachable")


def linear_output_bounds(network: Network, lb, ub, C, bounds: LayerBounds, alphas=None):
    """Sound upper bounds of ``C @ y`` over each box, given neuron bounds of those boxes.

    ``C`` has shape (s, m) or (B, s, m). Returns ``(upper (B, s), x_star (B, s, d),
    lam (B, s, d), const (B, s))``, where ``x_star`` maximises the linear bound
    ``lam @ x + const`` (a cheap candidate point for the primal side).
    """
    lo, hi, _ = as_boxes(network, lb, ub)
    C = np.asarray(C, dtype=np.float64)
    if C.ndim == 2:
        C = np.broadcast_to(C[None], (lo.shape[0], *C.shape))
    lam, const, mag = backsubstitute(network, network.depth, C, bounds.lower, bounds.upper, alphas)
    value, x_star, magnitude = concretise_upper(lam, const, mag, lo, hi)
    _, upper = outward(value, value, magnitude)
    # never looser than the interval bounds of the outputs
    Cp, Cn = np.maximum(C, 0), np.minimum(C, 0)
    ibp_upper = (np.einsum("bsm,bm->bs", Cp, bounds.out_upper)
                 + np.einsum("bsm,bm->bs", Cn, bounds.out_lower))
    ibp_mag = np.einsum("bsm,bm->bs", np.abs(C),
                        np.maximum(np.abs(bounds.out_upper), np.abs(bounds.out_lower)))
    _, ibp_upper = outward(ibp_upper, ibp_upper, ibp_mag)
    return np.minimum(upper, ibp_upper), x_star, lam, const
