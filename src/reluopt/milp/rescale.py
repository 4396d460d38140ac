"""Rescaling hidden neurons by positive homogeneity, for a better-conditioned big-M model.

The method and its choices are described in ``reluopt.analysis.rescale`` (which re-exports
these functions next to its conditioning measures). It lives here because the MIP
formulation (``build_problem_model(..., rescale=True)``) applies it, and ``milp`` sits below
``analysis`` and ``bounds`` in the package layering.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from ..network import Layer, Network

if TYPE_CHECKING:
    from ..bounds import LayerBounds

#: Ranges below this are treated as this.
TINY_RANGE = 1e-12
#: Largest |log2| of a factor: keeps rescaled weights far from the solver's "tiny
#: coefficient" threshold (HiGHS drops |a| < 1e-9) and its absolute tolerances meaningful.
MAX_EXP = 20


def scale_factors(network: Network, bounds: LayerBounds, i: int = 0) -> list[np.ndarray]:
    """Per hidden layer, the power-of-two factors normalising each unstable neuron's bound
    range (1 for stable neurons; exponents clipped to ``+-MAX_EXP``)."""
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
    """The network with hidden neuron i of layer l scaled by ``factors[l][i]`` (same function)."""
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
    """``(rescaled network, factors)`` normalising each hidden neuron's range in ``bounds``
    (box ``i``). Inputs and outputs are untouched; use ``rescale_bounds`` for the bounds."""
    factors = scale_factors(network, bounds, i)
    return apply_factors(network, factors), factors


def rescale_bounds(bounds: LayerBounds, factors: list[np.ndarray]) -> LayerBounds:
    """Bounds of the rescaled network: pre-activations scale by the (positive) factors.

    Exact for power-of-two factors; the pre-activations of the rescaled network can differ
    from the scaled originals only by the usual rounding, which the bounds' outward margin
    (relative 1e-9) already covers."""
    lower = [L * s[None, :] for L, s in zip(bounds.lower, factors, strict=True)]
    upper = [U * s[None, :] for U, s in zip(bounds.upper, factors, strict=True)]
    # the same boxes; relaxation lines belong to the unscaled bounds, so they are dropped
    return replace(bounds, lower=lower, upper=upper, out_lower=bounds.out_lower.copy(),
                   out_upper=bounds.out_upper.copy(), stats={**bounds.stats, "rescaled": True}, lines=[])
