"""Neuron bounds over input boxes: one container, one CROWN kernel, one registry of methods.

``LayerBounds`` (``core``) holds the bounds of every layer for one or many boxes;
``compute_bounds`` (``registry``) maps a method name (``BOUND_METHODS``: ibp, crown,
alpha-crown, lp-obbt, mip-obbt) to its code; ``crown.backsubstitute`` is the CROWN kernel
that crown_bounds, alpha-CROWN, OBBT and the node bounds of branch and bound (``node``) share.
"""

from .core import LayerBounds
from .crown import backsubstitute, crown_bounds, linear_output_bounds
from .ibp import interval_bounds
from .node import NodeBounds, best_output_bounds, down32, node_bounds, output_bounds, up32, with_lower_slope
from .registry import BOUND_METHODS, check_method, compute_bounds

__all__ = ["BOUND_METHODS", "LayerBounds", "NodeBounds", "backsubstitute", "best_output_bounds", "check_method",
           "compute_bounds", "crown_bounds", "down32", "interval_bounds", "linear_output_bounds", "node_bounds",
           "output_bounds", "up32", "with_lower_slope"]
