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

That is the rule ``"pow2-unstable"``. The rule ``"paper"`` (``paper_scale_factors``) is the one
ALGORITHMS.md section 3 states for Plate et al.: every hidden neuron, stable or not, scaled by
the exact factor ``1 / (U - L)``. ``rescale=`` of ``build_problem_model`` and ``solve_mip``
takes either name (True means ``"pow2-unstable"``); benchmarks/study_plate.py compares them.
"""

from __future__ import annotations

import numpy as np

from ..bounds import LayerBounds
from ..milp.rescale import (
    MAX_EXP,
    RESCALE_RULES,
    TINY_RANGE,
    apply_factors,
    paper_scale_factors,
    rescale,
    rescale_bounds,
    rescale_rule,
    scale_factors,
)
from ..network import Network

__all__ = ["MAX_EXP", "RESCALE_RULES", "TINY_RANGE", "apply_factors", "bigm_spread", "matrix_spread",
           "paper_scale_factors", "rescale", "rescale_bounds", "rescale_rule", "scale_factors"]


def bigm_spread(network: Network, bounds: LayerBounds, i: int = 0) -> dict:
    """Conditioning of the big-M coefficients, which a badly scaled MIP suffers from.

    The per-neuron big-M is ``max(U, -L)`` of the unstable neurons (neurons whose bounds
    contain a kink).

    Parameters
    ----------
    network : Network
        The network the bounds are of.
    bounds : LayerBounds
        Pre-activation bounds of its hidden neurons.
    i : int
        Which box of ``bounds`` (they may hold a batch).

    Returns
    -------
    dict
        ``unstable`` (count), ``max_bigM``, ``min_bigM``, ``ratio`` (max/min) and
        ``log10_spread``; a ratio of 1 without unstable neurons.
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
    """The spread of a MIP's constraint coefficients, a measure of how badly it is scaled.

    Parameters
    ----------
    model : MilpModel
        A built formulation.

    Returns
    -------
    float
        log10 of the max/min absolute nonzero coefficient of its constraint matrix (0 if none).
    """
    data = np.abs(model.A.data)
    data = data[data > 0]
    return float(np.log10(data.max() / data.min())) if data.size else 0.0
