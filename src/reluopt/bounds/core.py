"""LayerBounds: pre-activation bounds of every hidden layer, for one or many boxes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ProblemError
from ..network import Network

#: Relative and absolute outward margin applied to every computed bound, so that floating
#: point round-off in the matrix products can never make a bound cut off a true value.
REL_MARGIN = 1e-9
ABS_MARGIN = 1e-12


def outward(lower: np.ndarray, upper: np.ndarray, magnitude: np.ndarray):
    """Widen ``[lower, upper]`` by a margin proportional to the magnitude of the terms summed."""
    pad = REL_MARGIN * magnitude + ABS_MARGIN
    return lower - pad, upper + pad


def as_boxes(network: Network, lb, ub) -> tuple[np.ndarray, np.ndarray, bool]:
    """Normalise box bounds to shape (B, d); checks dimension, order and finiteness."""
    lb = np.asarray(lb, dtype=np.float64)
    ub = np.asarray(ub, dtype=np.float64)
    single = lb.ndim == 1
    lb, ub = np.atleast_2d(lb), np.atleast_2d(ub)
    d = network.input_dim
    if lb.shape != ub.shape or lb.shape[1] != d:
        raise ProblemError(
            f"box bounds have shapes {lb.shape} and {ub.shape}; the network has {d} inputs"
        )
    if not (np.all(np.isfinite(lb)) and np.all(np.isfinite(ub))):
        raise ProblemError("neuron bounds need a bounded box: an input bound is infinite or NaN")
    if np.any(lb > ub):
        raise ProblemError("box is empty: some lb > ub")
    return lb, ub, single


@dataclass
class LayerBounds:
    """Pre-activation bounds per hidden layer (``lower[l]``, ``upper[l]`` of shape (B, n_l))
    and bounds of the outputs (shape (B, m)). ``method`` says how they were computed."""

    lower: list[np.ndarray]
    upper: list[np.ndarray]
    out_lower: np.ndarray
    out_upper: np.ndarray
    method: str
    stats: dict = field(default_factory=dict)

    @property
    def batch(self) -> int:
        return self.out_lower.shape[0]

    def layer(self, l: int, i: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of hidden layer ``l`` for box ``i`` as 1-D arrays."""
        return self.lower[l][i], self.upper[l][i]

    def select(self, idx) -> LayerBounds:
        """Bounds of a subset of the boxes."""
        return LayerBounds([a[idx] for a in self.lower], [a[idx] for a in self.upper],
                           self.out_lower[idx], self.out_upper[idx], self.method, dict(self.stats))

    def stability(self, network: Network, i: int = 0) -> list[dict]:
        """Per layer: counts of stably inactive, stably active (or saturated) and unstable
        neurons, and the big-M sizes ``max(U, -L)`` of the unstable ones."""
        out = []
        for l, layer in enumerate(network.hidden_layers):
            L, U = self.lower[l][i], self.upper[l][i]
            ph = layer.act.classify(L, U)
            inactive, active, saturated = ph.inactive, ph.linear, ph.saturated
            unstable = ~ph.stable
            out.append({
                "layer": l,
                "neurons": int(L.shape[0]),
                "inactive": int(inactive.sum()),
                "active": int(active.sum()),
                "saturated": int(saturated.sum()),
                "unstable": int(unstable.sum()),
                "sum_range": float(np.sum(U - L)),
                "max_bigM": float(np.max(np.maximum(U, -L)[unstable])) if unstable.any() else 0.0,
            })
        return out

    def n_unstable(self, network: Network, i: int = 0) -> int:
        return sum(s["unstable"] for s in self.stability(network, i))

    def stable_fraction(self, network: Network, i: int = 0) -> float:
        st = self.stability(network, i)
        total = sum(s["neurons"] for s in st)
        return 1.0 - sum(s["unstable"] for s in st) / max(total, 1)
