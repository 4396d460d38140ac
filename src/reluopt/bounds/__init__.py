"""Neuron bounds: interval arithmetic (IBP) and CROWN, batched over many boxes."""

from .core import LayerBounds, compute_bounds
from .crown import crown_bounds, linear_output_bounds
from .ibp import interval_bounds

__all__ = ["LayerBounds", "compute_bounds", "crown_bounds", "interval_bounds",
           "linear_output_bounds"]
