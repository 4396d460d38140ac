"""Rescaling hidden neurons by positive homogeneity (Plate et al., arXiv 2502.03016).

``relu(s g) = s relu(g)`` for ``s > 0``: scaling row i of ``(W_l, b_l)`` by ``s_i`` and column
i of ``W_{l+1}`` by ``1 / s_i`` leaves the network's function unchanged while multiplying
neuron i's pre-activation, its bounds and hence its big-M coefficients by ``s_i``. Choosing
``s_i`` so that every neuron's bound range ``U_i - L_i`` is about 1 evens out the big-M
coefficients across neurons and layers, which improves the MIP's numerics (the LP
relaxation itself is the same polyhedron, scaled).

Only unstable neurons are scaled (documented choice): stable ones have no big-M (an
equality row or no variable at all), and scaling them, e.g. a neuron whose range a tight
cut-off OBBT shrank to 1e-3, only moves the solver's absolute tolerances: on a thin
feasible set that made HiGHS report a feasible MIP infeasible (a reformer net in the
tractability study). Factors are also capped at ``2^+-MAX_EXP``.

Factors are powers of two (``2^round(-log2(U - L))``): multiplying by them is exact in
floating point, so the rescaled bounds are exactly the scaled bounds and weights lose no
precision. A clipped-ReLU layer has one cap ``tau`` for all its neurons
(``clip(s g, 0, s tau) = s clip(g, 0, tau)``), so it gets one factor for the whole layer
and its cap is scaled with it (``Activation.uniform_scale`` and ``Activation.scaled``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..bounds import LayerBounds
from ..network import Layer, Network

#: Ranges below this are treated as this.
TINY_RANGE = 1e-12
#: Largest |log2| of a factor: keeps rescaled weights far from the solver's "tiny
#: coefficient" threshold (HiGHS drops |a| < 1e-9) and its absolute tolerances meaningful.
MAX_EXP = 20


def scale_factors(network: Network, bounds: LayerBounds, i: int = 0) -> list[np.ndarray]:
    """Per hidden layer, the power-of-two factors that normalise each unstable neuron's bound range.

    Stable neurons get 1; exponents are clipped to ``+-MAX_EXP``.

    Parameters
    ----------
    network : Network
        The network.
    bounds : LayerBounds
        Its neuron bounds.
    i : int, optional
        Which box of ``bounds`` (default the first).

    Returns
    -------
    list of numpy.ndarray
        One factor vector per hidden layer.
    """
    factors = []
    for l, layer in enumerate(network.hidden_layers):
        L, U = bounds.lower[l][i], bounds.upper[l][i]
        unstable = layer.act.unstable(L, U)
        width = np.maximum(U - L, TINY_RANGE)
        if layer.act.uniform_scale:
            # one cap per layer: one factor, from the widest unstable neuron
            width = np.full_like(width, np.max(width[unstable]) if unstable.any() else 1.0)
            unstable = np.ones_like(unstable)
        expo = np.clip(np.round(-np.log2(width)), -MAX_EXP, MAX_EXP)
        factors.append(np.where(unstable, np.exp2(expo), 1.0))
    return factors


def apply_factors(network: Network, factors: list[np.ndarray]) -> Network:
    """The network with hidden neuron i of layer l scaled by ``factors[l][i]`` (same function).

    Parameters
    ----------
    network : Network
        The network.
    factors : list of numpy.ndarray
        Positive factors per hidden layer, e.g. from `scale_factors`.

    Returns
    -------
    Network
        The rescaled network.
    """
    layers: list[Layer] = []
    prev = np.ones(network.input_dim)
    for l, layer in enumerate(network.layers):
        s = factors[l] if l < network.depth else np.ones(layer.n_out)
        W = layer.W * s[:, None] / prev[None, :]
        b = layer.b * s
        params = layer.act.scaled(float(s[0])) if layer.act.uniform_scale else {}
        layers.append(replace(layer, W=W, b=b, **params))
        prev = s
    return network.with_layers(layers)


def rescale(network: Network, bounds: LayerBounds, i: int = 0) -> tuple[Network, list[np.ndarray]]:
    """Rescale ``network`` so that each hidden neuron's bound range is about 1 (better MIP numerics).

    Inputs and outputs are untouched; use `rescale_bounds` for the bounds.

    Parameters
    ----------
    network : Network
        The network.
    bounds : LayerBounds
        Its neuron bounds.
    i : int, optional
        Which box of ``bounds`` (default the first).

    Returns
    -------
    network : Network
        The rescaled network.
    factors : list of numpy.ndarray
        The factors applied, per hidden layer.
    """
    factors = scale_factors(network, bounds, i)
    return apply_factors(network, factors), factors


def rescale_bounds(bounds: LayerBounds, factors: list[np.ndarray]) -> LayerBounds:
    """Bounds of the rescaled network: pre-activations scale by the (positive) factors.

    Exact for power-of-two factors; the pre-activations of the rescaled network can differ
    from the scaled originals only by the usual rounding, which the bounds' outward margin
    (relative 1e-9) already covers.

    Parameters
    ----------
    bounds : LayerBounds
        Bounds of the original network.
    factors : list of numpy.ndarray
        The factors of `rescale`.

    Returns
    -------
    LayerBounds
        Bounds of the rescaled network (``stats["rescaled"]`` set).
    """
    lower = [L * s[None, :] for L, s in zip(bounds.lower, factors, strict=True)]
    upper = [U * s[None, :] for U, s in zip(bounds.upper, factors, strict=True)]
    return LayerBounds(lower, upper, bounds.out_lower.copy(), bounds.out_upper.copy(),
                       bounds.method, {**bounds.stats, "rescaled": True})


def bigm_spread(network: Network, bounds: LayerBounds, i: int = 0) -> dict:
    """Conditioning of the big-M coefficients, which `rescale` is meant to improve.

    Looks at the per-neuron big-M ``max(U, -L)`` of the unstable neurons (neurons whose bounds
    contain a kink).

    Parameters
    ----------
    network : Network
        The network.
    bounds : LayerBounds
        Its neuron bounds.
    i : int, optional
        Which box of ``bounds`` (default the first).

    Returns
    -------
    dict
        ``unstable``, ``max_bigM``, ``min_bigM``, their ``ratio`` and ``log10_spread``.
    """
    ms = []
    for l, layer in enumerate(network.hidden_layers):
        L, U = bounds.lower[l][i], bounds.upper[l][i]
        unstable = layer.act.unstable(L, U)
        ms.append(np.maximum(U, -L)[unstable])
    m = np.concatenate(ms) if ms else np.zeros(0)
    m = m[m > 0]
    if m.size == 0:
        return {"unstable": 0, "max_bigM": 0.0, "min_bigM": 0.0, "ratio": 1.0, "log10_spread": 0.0}
    ratio = float(m.max() / m.min())
    return {"unstable": int(m.size), "max_bigM": float(m.max()), "min_bigM": float(m.min()),
            "ratio": ratio, "log10_spread": float(np.log10(ratio))}


def matrix_spread(model) -> float:
    """Spread of a MILP's constraint coefficients, a measure of its numerical difficulty.

    Parameters
    ----------
    model : MilpModel
        The model.

    Returns
    -------
    float
        log10 of the max/min absolute nonzero coefficient of ``model.A`` (0 when it is empty).
    """
    data = np.abs(model.A.data)
    data = data[data > 0]
    return float(np.log10(data.max() / data.min())) if data.size else 0.0
