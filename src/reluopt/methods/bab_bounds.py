"""Node bounding for input-space branch and bound: moved to ``reluopt.bounds``.

A thin re-export kept while ``methods/bab.py`` and ``verify_split.py`` import these names from
here: the CROWN kernel ``backsubstitute`` lives in ``reluopt.bounds.crown``, the node bounds in
``reluopt.bounds.node``, and ``NodeBounds`` is ``reluopt.bounds.LayerBounds``. New code imports
them from ``reluopt.bounds``.
"""

from __future__ import annotations

from ..bounds.crown import backsubstitute
from ..bounds.node import (
    NodeBounds,
    best_output_bounds,
    down32,
    node_bounds,
    output_bounds,
    up32,
    with_lower_slope,
)

__all__ = ["NodeBounds", "backsubstitute", "best_output_bounds", "down32", "node_bounds", "output_bounds",
           "up32", "with_lower_slope"]
