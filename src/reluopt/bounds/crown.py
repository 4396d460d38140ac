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
    """Linear lines ``a_lo g + b_lo <= act(g) <= a_up g + b_up`` valid on ``[L, U]``.

    The layer's activation owns them (``Activation.relaxation``).

    Parameters
    ----------
    layer : Layer
        Its activation gives the lines.
    L, U : np.ndarray
        Pre-activation bounds.
    alpha : np.ndarray, optional
        Same shape as ``L``: overrides the lower slope of the neurons whose lower line is free
        (alpha-CROWN, clipped to the admissible range); by default the adaptive CROWN choice.

    Returns
    -------
    tuple of np.ndarray
        ``(a_lo, b_lo, a_up, b_up)``, each shaped like ``L``.
    """
    return layer.act.relaxation(L, U, alpha)


def _gemm(a: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``a @ W`` for a (B, s, n) stack as one 2-D product."""
    B, s, n = a.shape
    return (a.reshape(B * s, n) @ W).reshape(B, s, W.shape[1])


def backsubstitute(network: Network, k: int, spec: np.ndarray, lines, keep_signs: bool = False,
                   g_terms=None):
    """Push ``spec @ g_k`` back to a linear function of ``x`` through the relaxation lines: the
    one CROWN kernel (crown_bounds, alpha-CROWN, OBBT and the node bounds of branch and bound).

    Every matrix product is one 2-D GEMM over all boxes and rows (``(B*s, n) @ W``), which is
    several times faster than a stack of small products for batches of small boxes. The
    upper-bounding line is chosen per coefficient sign.

    Parameters
    ----------
    network : Network
        The network.
    k : int
        Index into ``network.layers`` (``k = depth`` is the output layer).
    spec : np.ndarray
        Rows to bound, shape (B, s, n_k).
    lines : list of tuple
        Per hidden layer ``j < k`` the relaxation ``(a_lo, b_lo, a_up, b_up)``, each (B, n_j)
        (``LayerBounds.relaxation_lines``).
    keep_signs : bool
        Also return where the upper lines were used (for subgradients).
    g_terms : list or None
        Per hidden layer ``j < k``, None or coefficients (broadcastable to (B, s, n_j)) of
        ``g_j`` added to the linear function (beta-CROWN's Lagrangian terms of split
        constraints): the result then bounds ``spec @ g_k + sum_j g_terms[j] . g_j``.

    Returns
    -------
    tuple
        ``(Lam, const, mag, signs)``: ``spec @ g_k <= Lam @ x + const`` (Lam (B, s, d), const
        (B, s)) for every point consistent with the lines; ``mag`` (B, s) the magnitude of the
        summed terms (for the rounding margin); ``signs[j]`` (B, s, n_j) True where the upper
        line of hidden layer ``j`` was used (only with ``keep_signs``, else None entries).
    """
    layer = network.layers[k]
    lam = _gemm(spec, layer.W)
    const = spec @ layer.b
    mag = np.abs(spec) @ np.abs(layer.b)
    signs: list[np.ndarray | None] = [None] * k
    for j in range(k - 1, -1, -1):
        hidden = network.layers[j]
        a_lo, b_lo, a_up, b_up = lines[j]
        pos = np.maximum(lam, 0.0)
        # pos * a_up + neg * a_lo with fewer passes over the (B, s, n) stack (the hot loop)
        lam_g = lam * a_lo[:, None, :]
        lam_g += pos * (a_up - a_lo)[:, None, :]
        if g_terms is not None and g_terms[j] is not None:
            lam_g = lam_g + g_terms[j]
        shift = np.einsum("bsn,bn->bs", pos, b_up)
        if np.any(b_lo):            # only clipped ReLUs have lower lines with an offset
            shift += np.einsum("bsn,bn->bs", lam - pos, b_lo)
        const = const + shift + lam_g @ hidden.b
        mag = mag + np.abs(shift) + np.abs(lam_g) @ np.abs(hidden.b)
        if keep_signs:
            signs[j] = lam > 0
        lam = _gemm(lam_g, hidden.W)
    return lam, const, mag, signs


def concretise_upper(lam: np.ndarray, const: np.ndarray, mag: np.ndarray, lo, hi, points: bool = True):
    """Max of ``lam @ x + const`` over boxes, the last step of a CROWN bound.

    Parameters
    ----------
    lam : np.ndarray, shape (B, s, d)
        Linear coefficients per box and row.
    const : np.ndarray, shape (B, s)
        Constants.
    mag : np.ndarray, shape (B, s)
        Magnitude of the terms already summed into ``const`` (for ``outward``).
    lo, hi : np.ndarray, shape (B, d)
        The boxes.
    points : bool
        Also return the maximisers. Without them the value is ``lam . mid + |lam| . rad``
        (batched products, no (B, s, d) temporaries): the same number up to round-off far
        below ``outward``'s margin.

    Returns
    -------
    value : np.ndarray, shape (B, s)
        The maxima (not yet rounded outward).
    x_star : np.ndarray, shape (B, s, d), or None
        A maximiser per box and row (None unless ``points``).
    magnitude : np.ndarray, shape (B, s)
        For ``outward``.
    """
    if not points:
        absl = np.abs(lam)
        mid = (0.5 * (lo + hi))[:, :, None]
        rad_scale = np.stack([0.5 * (hi - lo), np.maximum(np.abs(lo), np.abs(hi))], axis=2)   # (B, d, 2)
        rs = absl @ rad_scale
        value = (lam @ mid)[:, :, 0] + rs[:, :, 0] + const
        return value, None, rs[:, :, 1] + mag + np.abs(const)
    x_star = np.where(lam >= 0, hi[:, None, :], lo[:, None, :])   # (B, s, d)
    value = np.einsum("bsd,bsd->bs", lam, x_star) + const
    scale = np.maximum(np.abs(lo), np.abs(hi))
    magnitude = np.einsum("bsd,bd->bs", np.abs(lam), scale) + mag + np.abs(const)
    return value, x_star, magnitude


def _layer_bounds(network, k, lo, hi, lines, ibp_L, ibp_U):
    """CROWN bounds of ``g_k`` for the neurons that interval bounds leave unstable in some box
    (all rows of the output layer), intersected with the interval bounds ``ibp_L, ibp_U``."""
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
    lam, const, mag, _ = backsubstitute(network, k, spec, lines)
    value, _, magnitude = concretise_upper(lam, const, mag, lo, hi, points=False)
    up = value[:, :n]
    low = -value[:, n:]
    low, up = outward(low, up, np.maximum(magnitude[:, :n], magnitude[:, n:]))
    L[:, rows] = np.maximum(L[:, rows], low)
    U[:, rows] = np.minimum(U[:, rows], up)
    return L, U


def crown_bounds(network: Network, lb, ub, alphas=None) -> LayerBounds:
    """CROWN pre-activation bounds of every layer over each box, intersected with interval bounds.

    Parameters
    ----------
    network : Network
        The network.
    lb, ub : array_like
        One box (d,) or a batch of boxes (B, d).
    alphas : list of np.ndarray or None
        Lower slopes per hidden layer (alpha-CROWN); None for the adaptive CROWN choice.

    Returns
    -------
    LayerBounds
        Bounds of shape (B, n_l) per hidden layer and (B, m) for the outputs, with the boxes.
    """
    lo, hi, _ = as_boxes(network, lb, ub)
    lowers: list[np.ndarray] = []
    uppers: list[np.ndarray] = []
    lines: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    h_lo, h_hi = lo, hi
    for k, layer in enumerate(network.layers):
        ibp_L, ibp_U = affine_interval(layer, h_lo, h_hi)
        L, U = _layer_bounds(network, k, lo, hi, lines, ibp_L, ibp_U)
        if k == network.depth:
            # the lines are not kept: callers may tighten the bounds in place afterwards
            return LayerBounds(lowers, uppers, L, U, "crown", box_lower=lo, box_upper=hi)
        lowers.append(L)
        uppers.append(U)
        lines.append(relaxation(layer, L, U, None if alphas is None else alphas[k]))
        h_lo, h_hi = activate_interval(layer, L, U)
    raise AssertionError("unreachable")


def linear_output_bounds(network: Network, lb, ub, C, bounds: LayerBounds, alphas=None):
    """Sound upper bounds of ``C @ y`` over each box, given neuron bounds of those boxes.

    Never looser than the interval bounds of the outputs.

    Parameters
    ----------
    network : Network
        The network.
    lb, ub : array_like, shape (d,) or (B, d)
        The boxes.
    C : array_like, shape (s, m) or (B, s, m)
        Output rows.
    bounds : LayerBounds
        Neuron bounds of those boxes.
    alphas : list of np.ndarray, optional
        Lower slopes per hidden layer (alpha-CROWN); None for the adaptive choice.

    Returns
    -------
    upper : np.ndarray, shape (B, s)
    x_star : np.ndarray, shape (B, s, d)
        Maximiser of the linear bound ``lam @ x + const`` (a cheap candidate point for the
        primal side).
    lam : np.ndarray, shape (B, s, d)
    const : np.ndarray, shape (B, s)
    """
    lo, hi, _ = as_boxes(network, lb, ub)
    C = np.asarray(C, dtype=np.float64)
    if C.ndim == 2:
        C = np.broadcast_to(C[None], (lo.shape[0], *C.shape))
    lam, const, mag, _ = backsubstitute(network, network.depth, C,
                                        bounds.relaxation_lines(network, alphas))
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
