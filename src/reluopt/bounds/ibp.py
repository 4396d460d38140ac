"""Interval bound propagation, batched over boxes."""

from __future__ import annotations

import numpy as np

from ..network import Layer, Network
from .core import LayerBounds, as_boxes, outward


def activate_interval(layer: Layer, L: np.ndarray, U: np.ndarray):
    """Image of ``[L, U]`` under the layer's (monotone) activation.

    Parameters
    ----------
    layer : Layer
        Its activation is applied.
    L, U : np.ndarray
        Pre-activation bounds (batched rows).

    Returns
    -------
    lo, hi : np.ndarray
        Bounds of the activations.
    """
    return layer.act.interval(L, U)


def affine_interval(layer: Layer, lo: np.ndarray, hi: np.ndarray):
    """Sound bounds of ``W h + b`` for ``h`` in ``[lo, hi]`` (batched rows), rounded outward.

    Parameters
    ----------
    layer : Layer
        Gives ``W`` and ``b``.
    lo, hi : np.ndarray, shape (B, n_in)
        Bounds of ``h``.

    Returns
    -------
    lower, upper : np.ndarray, shape (B, n_out)
    """
    mid = 0.5 * (lo + hi)
    rad = 0.5 * (hi - lo)
    centre = mid @ layer.W.T + layer.b
    spread = rad @ np.abs(layer.W).T
    magnitude = np.abs(mid) @ np.abs(layer.W).T + spread + np.abs(layer.b)
    return outward(centre - spread, centre + spread, magnitude)


def interval_bounds(network: Network, lb, ub) -> LayerBounds:
    """Interval bounds of every layer over each box: instant, and the loosest of the methods.

    Parameters
    ----------
    network : Network
        The network.
    lb, ub : array_like
        One box (d,) or a batch of boxes (B, d).

    Returns
    -------
    LayerBounds
        Bounds of shape (B, n_l) per hidden layer and (B, m) for the outputs, with the boxes.
    """
    lo, hi, _ = as_boxes(network, lb, ub)
    box_lo, box_hi = lo, hi
    lowers, uppers = [], []
    for layer in network.hidden_layers:
        L, U = affine_interval(layer, lo, hi)
        lowers.append(L)
        uppers.append(U)
        lo, hi = activate_interval(layer, L, U)
    oL, oU = affine_interval(network.layers[-1], lo, hi)
    return LayerBounds(lowers, uppers, oL, oU, "ibp", box_lower=box_lo, box_upper=box_hi)
