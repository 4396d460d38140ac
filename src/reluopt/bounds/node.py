"""Node bounding for input-space branch and bound: batched CROWN tuned for many small boxes.

The same CROWN kernel (``crown.backsubstitute``), relaxation and outward rounding as
``crown_bounds``, with three changes that matter inside a search tree:

* each box bounds only its own unstable neurons (rows padded to the largest count in the
  batch) rather than the union over the batch;
* a child box inherits its parent's neuron bounds (they hold on any sub-box) and intersects
  them with its own, so bounds only tighten down the tree;
* the output bound of a *combination* ``w . y`` also returns the relaxed network's output
  ``v`` at the maximiser, which is a subgradient of the bound w.r.t. ``w`` (the bound is
  convex and piecewise linear in ``w``). Branch and bound uses it to tune Lagrange
  multipliers (rows of a min-objective, output constraints, input constraints) per node.
"""

from __future__ import annotations

import numpy as np

from ..network import Network
from .core import LayerBounds, outward
from .crown import backsubstitute, concretise_upper, relaxation
from .ibp import activate_interval, affine_interval

#: Node bounds are LayerBounds with the boxes and relaxation lines recorded (the name branch and
#: bound has always used).
NodeBounds = LayerBounds


def _unstable_mask(layer, L: np.ndarray, U: np.ndarray) -> np.ndarray:
    return layer.act.unstable(L, U)


def _tighten(network: Network, k: int, layer, L: np.ndarray, U: np.ndarray, lo, hi, lines) -> None:
    """CROWN bounds (in place) of the neurons of layer ``k`` that are unstable in each box.

    Each box gets only its own unstable neurons as rows, padded to the largest count in the
    batch: after a few splits a box has a handful of unstable neurons per layer, so this is
    far cheaper than bounding the union of all boxes' unstable neurons.
    """
    u = _unstable_mask(layer, L, U)
    counts = u.sum(axis=1)
    n_max = int(counts.max(initial=0))
    if n_max == 0:
        return
    B, n = L.shape
    idx = np.argsort(~u, axis=1, kind="stable")[:, :n_max]          # unstable neurons first
    valid = np.arange(n_max)[None, :] < counts[:, None]
    spec = np.zeros((B, n_max, n))
    np.put_along_axis(spec, idx[:, :, None], valid[:, :, None].astype(np.float64), axis=2)
    lam, const, mag, _ = backsubstitute(network, k, np.concatenate([spec, -spec], axis=1), lines)
    value, _, magnitude = concretise_upper(lam, const, mag, lo, hi, points=False)
    low, up = outward(-value[:, n_max:], value[:, :n_max],
                      np.maximum(magnitude[:, :n_max], magnitude[:, n_max:]))
    low = np.where(valid, low, -np.inf)
    up = np.where(valid, up, np.inf)
    np.put_along_axis(L, idx, np.maximum(np.take_along_axis(L, idx, axis=1), low), axis=1)
    np.put_along_axis(U, idx, np.minimum(np.take_along_axis(U, idx, axis=1), up), axis=1)


def node_bounds(network: Network, lo: np.ndarray, hi: np.ndarray, prior=None, tighten: bool = True) -> NodeBounds:
    """CROWN bounds of every hidden layer over boxes ``[lo, hi]``, for the nodes of a search tree.

    Parameters
    ----------
    network : Network
        The network.
    lo, hi : np.ndarray
        The boxes, shape (B, d).
    prior : tuple of lists or None
        ``(lowers, uppers)``: valid bounds on larger boxes (the parents); the result is
        intersected with them and with interval bounds.
    tighten : bool
        False skips the CROWN pass on the hidden layers (interval bounds and the prior only): a
        cheap, looser estimate used to score candidate splits.

    Returns
    -------
    LayerBounds
        Hidden-layer bounds, interval bounds of the outputs, the boxes and the relaxation lines
        (method ``'node'``).
    """
    lowers: list[np.ndarray] = []
    uppers: list[np.ndarray] = []
    lines: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    h_lo, h_hi = lo, hi
    for k, layer in enumerate(network.hidden_layers):
        L, U = affine_interval(layer, h_lo, h_hi)
        if prior is not None:
            L = np.maximum(L, prior[0][k])
            U = np.minimum(U, prior[1][k])
        if k > 0 and tighten:
            _tighten(network, k, layer, L, U, lo, hi, lines)
        # empty intervals (L > U) can only come from round-off on a degenerate box: keep sound
        L = np.minimum(L, U)
        lowers.append(L)
        uppers.append(U)
        lines.append(relaxation(layer, L, U))
        h_lo, h_hi = activate_interval(layer, L, U)
    out_L, out_U = affine_interval(network.layers[-1], h_lo, h_hi)
    return LayerBounds(lowers, uppers, out_L, out_U, "node", box_lower=lo, box_upper=hi, lines=lines)


def with_lower_slope(network: Network, nb: NodeBounds, slope: float) -> list:
    """Another valid relaxation of the node, with lower slope ``slope``, for a second bound.

    Every unstable neuron of an ``optimisable`` activation gets lower slope ``slope``, clipped
    to its admissible range; other layers (e.g. clipped ReLUs) keep their lines.

    Parameters
    ----------
    network : Network
        The network.
    nb : NodeBounds
        A batch of boxes with their neuron bounds and relaxation lines.
    slope : float
        The lower slope, usually 0 or 1.

    Returns
    -------
    list of tuple
        ``(a_lo, b_lo, a_up, b_up)`` per hidden layer, as ``nb.lines``.
    """
    out = []
    for layer, L, U, (a_lo, b_lo, a_up, b_up) in zip(network.hidden_layers, nb.lower, nb.upper, nb.lines,
                                                       strict=True):
        if layer.act.optimisable:
            free, lo, hi = layer.act.lower_slope_range(L, U)
            a_lo = np.where(free, np.clip(slope, lo, hi), a_lo)
        out.append((a_lo, b_lo, a_up, b_up))
    return out


def best_output_bounds(network: Network, nb: NodeBounds, W: np.ndarray, offset: np.ndarray,
                       slopes=(None, 0.0, 1.0)):
    """Upper bounds of ``W_r . y + offset_r`` under several lower-slope choices, the tightest per row.

    A cheap stand-in for alpha-CROWN on the output rows only. The adaptive CROWN slope is often
    the wrong one for the objective: on a plateau where ``y >= bias`` because the last layer's
    active ReLUs have positive weights, slope 0 proves it exactly while slope 1 leaves a gap
    that only shrinks with the box width.

    Parameters
    ----------
    network : Network
        The network.
    nb : NodeBounds
        A batch of boxes with their neuron bounds and relaxation lines.
    W : np.ndarray, shape (B, r, m) or (r, m)
        Output rows.
    offset : np.ndarray, shape (B, r) or (r,)
        Their constants.
    slopes : sequence of float or None
        The lower slopes to try; None is the node's own (adaptive) lines.

    Returns
    -------
    upper : np.ndarray, shape (B, r)
        Sound upper bounds (each the tightest over ``slopes``).
    x_star : np.ndarray, shape (B, r, d)
        The maximisers of the linear bounds that gave them.
    """
    best: list[np.ndarray] | None = None
    for slope in slopes:
        lines = None if slope is None else with_lower_slope(network, nb, slope)
        up, xs, _ = output_bounds(network, nb, W, offset, lines=lines)
        if best is None:
            best = [up, xs]
        else:
            better = up < best[0]
            best[0] = np.where(better, up, best[0])
            best[1] = np.where(better[:, :, None], xs, best[1])
    assert best is not None, "slopes is empty"
    return best[0], best[1]


def output_bounds(network: Network, nb: NodeBounds, W: np.ndarray, offset: np.ndarray,
                  A: np.ndarray | None = None, nu: np.ndarray | None = None,
                  b: np.ndarray | None = None, subgradient: bool = False, lines=None):
    """Sound upper bound of ``W_r . y + offset_r - nu_r . (A x - b)`` over each box.

    The bound equals ``W_r . v + offset_r - nu_r . (A x_star - b)`` up to round-off, where ``v``
    is the relaxed network's output at ``x_star``; it is rounded outward.

    Parameters
    ----------
    network : Network
        The network.
    nb : NodeBounds
        A batch of boxes with their neuron bounds and relaxation lines.
    W : np.ndarray, shape (B, r, m) or (r, m)
        Output rows.
    offset : np.ndarray, shape (B, r) or (r,)
        Their constants.
    A, b : np.ndarray, optional
        Input constraints ``A x <= b`` (needed with ``nu``).
    nu : np.ndarray, shape (B, r, p), optional
        Non-negative Lagrange multipliers of ``A x <= b``.
    subgradient : bool
        Also compute ``v``.
    lines : list of tuple, optional
        Relaxation lines to use instead of ``nb.lines`` (e.g. from ``with_lower_slope``).

    Returns
    -------
    upper : np.ndarray, shape (B, r)
    x_star : np.ndarray, shape (B, r, d)
        Maximisers of the linear bounds over the boxes.
    v : np.ndarray, shape (B, r, m) or None
        The relaxed network's output at ``x_star`` (None unless ``subgradient``).
    """
    lo, hi = nb.lo, nb.hi
    B = lo.shape[0]
    W = np.broadcast_to(W, (B, *W.shape[-2:])) if W.ndim == 2 else W
    lines = nb.lines if lines is None else lines
    lam, const, mag, signs = backsubstitute(network, network.depth, W, lines, keep_signs=subgradient)
    const = const + offset
    mag = mag + np.abs(offset)
    if nu is not None:
        assert A is not None and b is not None, "multipliers nu need the constraints A x <= b"
        lam = lam - nu @ A
        const = const + nu @ b
        mag = mag + np.abs(nu) @ np.abs(b)
    value, x_star, magnitude = concretise_upper(lam, const, mag, lo, hi)
    _, upper = outward(value, value, magnitude)
    v = None
    if subgradient:
        r = W.shape[1]
        h = x_star.reshape(B * r, -1)
        for j, layer in enumerate(network.hidden_layers):
            a_lo, b_lo, a_up, b_up = (np.repeat(t, r, axis=0) for t in lines[j])
            g = h @ layer.W.T + layer.b
            up = signs[j].reshape(B * r, -1)
            h = np.where(up, a_up * g + b_up, a_lo * g + b_lo)
        last = network.layers[-1]
        v = (h @ last.W.T + last.b).reshape(B, r, -1)
    return upper, x_star, v


def down32(a: np.ndarray) -> np.ndarray:
    """Round to float32 towards -inf, to store a lower bound compactly and soundly.

    Parameters
    ----------
    a : np.ndarray
        float64 values.

    Returns
    -------
    np.ndarray of float32
        At most ``a`` entrywise.
    """
    f = a.astype(np.float32)
    return np.where(f > a, np.nextafter(f, np.float32(-np.inf)), f)


def up32(a: np.ndarray) -> np.ndarray:
    """Round to float32 towards +inf, to store an upper bound compactly and soundly.

    Parameters
    ----------
    a : np.ndarray
        float64 values.

    Returns
    -------
    np.ndarray of float32
        At least ``a`` entrywise.
    """
    f = a.astype(np.float32)
    return np.where(f < a, np.nextafter(f, np.float32(np.inf)), f)
