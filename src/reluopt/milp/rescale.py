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

from ..errors import ProblemError
from ..network import Layer, Network

if TYPE_CHECKING:
    from ..bounds import LayerBounds

#: Ranges below this are treated as this.
TINY_RANGE = 1e-12
#: Largest |log2| of a factor: keeps rescaled weights far from the solver's "tiny
#: coefficient" threshold (HiGHS drops |a| < 1e-9) and its absolute tolerances meaningful.
MAX_EXP = 20
#: The rescaling rules by name: ``"pow2-unstable"`` (reluopt's: unstable neurons only, power-of-two
#: factors) and ``"paper"`` (ALGORITHMS.md section 3, Plate et al.: every hidden neuron, exact factor
#: ``1 / (U - L)``).
RESCALE_RULES = ("pow2-unstable", "paper")


def rescale_rule(rescale: bool | str | None) -> str | None:
    """The rule a ``rescale=`` option names, so that callers accept a flag or a rule name alike.

    Parameters
    ----------
    rescale : bool, str or None
        False, None or ``"none"``: no rescaling; True: ``"pow2-unstable"`` (the historical
        meaning of the flag); or a name in ``RESCALE_RULES``.

    Returns
    -------
    str or None
        The rule's name, None for no rescaling.
    """
    if rescale is None or rescale is False or rescale == "none":
        return None
    if rescale is True:
        return "pow2-unstable"
    if isinstance(rescale, str) and rescale in RESCALE_RULES:
        return rescale
    raise ProblemError(f"rescale must be True, False or one of {', '.join(RESCALE_RULES)}; got {rescale!r}")


def scale_factors(network: Network, bounds: LayerBounds, i: int = 0,
                  rule: str = "pow2-unstable") -> list[np.ndarray]:
    """Per hidden layer, the factors that normalise each neuron's bound range (by ``rule``).

    ``"pow2-unstable"``: power-of-two factors (exact in floating point) on unstable neurons only.
    ``"paper"``: see ``paper_scale_factors``.

    Parameters
    ----------
    network : Network
        The network the bounds are of.
    bounds : LayerBounds
        Pre-activation bounds of its hidden neurons.
    i : int
        Which box of ``bounds`` (they may hold a batch).
    rule : str
        A name in ``RESCALE_RULES``.

    Returns
    -------
    list of np.ndarray
        One factor per neuron and hidden layer: for ``"pow2-unstable"`` 1 for stable neurons,
        exponents clipped to ``+-MAX_EXP`` (one factor per layer for a uniformly capped activation).
    """
    if rescale_rule(rule) == "paper":
        return paper_scale_factors(network, bounds, i)
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


def paper_scale_factors(network: Network, bounds: LayerBounds, i: int = 0) -> list[np.ndarray]:
    """Plate et al.'s rule as ALGORITHMS.md section 3 states it: every neuron's range made 1.

    Every hidden neuron, stable or not, gets ``s = 1 / (U - L)`` (not rounded), so each
    scaled pre-activation range ``s (U - L)`` is 1 up to rounding. The only guards: a range
    that is zero, not finite or whose factor would pass ``2^+-MAX_EXP`` keeps the factor
    clipped to that interval (1 for a degenerate range), and a uniformly capped activation
    (clipped ReLU) gets one factor per layer, from its widest neuron.

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
    list of np.ndarray
        One positive factor per neuron and hidden layer.
    """
    factors = []
    for l, layer in enumerate(network.hidden_layers):
        width = np.asarray(bounds.upper[l][i] - bounds.lower[l][i], dtype=np.float64)
        ok = np.isfinite(width) & (width > TINY_RANGE)
        if layer.act.uniform_scale:
            widest = float(np.max(width[ok])) if ok.any() else 1.0
            width, ok = np.full_like(width, widest), np.ones_like(ok)
        s = np.where(ok, 1.0 / np.where(ok, width, 1.0), 1.0)
        factors.append(np.clip(s, 2.0 ** -MAX_EXP, 2.0 ** MAX_EXP))
    return factors


def apply_factors(network: Network, factors: list[np.ndarray]) -> Network:
    """The same function with hidden neuron i of layer l scaled by ``factors[l][i]``.

    Parameters
    ----------
    network : Network
        The network to rescale.
    factors : list of np.ndarray
        Positive factors per hidden layer (as from ``scale_factors``).

    Returns
    -------
    Network
        The next layer's weights divide by the factors, so inputs and outputs are unchanged.
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


def rescale(network: Network, bounds: LayerBounds, i: int = 0,
            rule: str = "pow2-unstable") -> tuple[Network, list[np.ndarray]]:
    """Normalise each hidden neuron's range in ``bounds``, for a better conditioned MIP.

    Inputs and outputs are untouched; use ``rescale_bounds`` for the bounds.

    Parameters
    ----------
    network : Network
        The network the bounds are of.
    bounds : LayerBounds
        Pre-activation bounds of its hidden neurons.
    i : int
        Which box of ``bounds`` (they may hold a batch).
    rule : str
        A name in ``RESCALE_RULES`` (``scale_factors``).

    Returns
    -------
    network : Network
        The rescaled network (same function).
    factors : list of np.ndarray
        The factors applied (``scale_factors``).
    """
    factors = scale_factors(network, bounds, i, rule)
    return apply_factors(network, factors), factors


def rescale_bounds(bounds: LayerBounds, factors: list[np.ndarray]) -> LayerBounds:
    """Bounds of the rescaled network: pre-activations scale by the (positive) factors.

    Exact for power-of-two factors; the pre-activations of the rescaled network can differ
    from the scaled originals only by the usual rounding, which the bounds' outward margin
    (relative 1e-9) already covers. Other factors (rule ``"paper"``) add a few roundings of
    relative size 1e-16 per term to both, far inside that margin.

    Parameters
    ----------
    bounds : LayerBounds
        Bounds of the original network.
    factors : list of np.ndarray
        The factors the network was rescaled by.

    Returns
    -------
    LayerBounds
        Same output bounds; relaxation lines dropped (they belong to the unscaled bounds).
    """
    lower = [L * s[None, :] for L, s in zip(bounds.lower, factors, strict=True)]
    upper = [U * s[None, :] for U, s in zip(bounds.upper, factors, strict=True)]
    # the same boxes; relaxation lines belong to the unscaled bounds, so they are dropped
    return replace(bounds, lower=lower, upper=upper, out_lower=bounds.out_lower.copy(),
                   out_upper=bounds.out_upper.copy(), stats={**bounds.stats, "rescaled": True}, lines=[])
