"""Neuron bounds: interval arithmetic (IBP) and CROWN, batched over many boxes.

``compute_bounds`` dispatches here, above the kernels, so that ``core`` (which they build on)
imports neither of them.
"""

from ..errors import ProblemError
from ..network import Network
from .core import LayerBounds
from .crown import crown_bounds, linear_output_bounds
from .ibp import interval_bounds

__all__ = ["LayerBounds", "compute_bounds", "crown_bounds", "interval_bounds",
           "linear_output_bounds"]


def compute_bounds(network: Network, lb, ub, method: str = "crown") -> LayerBounds:
    """Bounds of every neuron over the box(es) ``[lb, ub]`` by ``'ibp'`` or ``'crown'``."""
    if method == "ibp":
        return interval_bounds(network, lb, ub)
    if method == "crown":
        return crown_bounds(network, lb, ub)
    raise ProblemError(f"unknown bound method {method!r}; expected 'ibp' or 'crown'")
