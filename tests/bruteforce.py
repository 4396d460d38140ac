"""Independent truth for tiny networks: enumerate every full-dimensional linear region
inside a box by depth-first search over neurons with LP feasibility (strict margin)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from reluopt import Network

MARGIN = 1e-9


def _interior(A_ub, b_ub, lb, ub):
    """Max margin s with A x + s*||a|| <= b inside the box; returns (x, s)."""
    d = lb.shape[0]
    if A_ub.shape[0] == 0:
        return 0.5 * (lb + ub), 1.0
    norms = np.linalg.norm(A_ub, axis=1) + 1e-12
    A = np.hstack([A_ub, norms[:, None]])
    cost = np.zeros(d + 1)
    cost[-1] = -1
    res = linprog(cost, A_ub=A, b_ub=b_ub, bounds=[*zip(lb, ub, strict=True), (None, 1.0)],
                  method="highs")
    if res.status != 0:
        return None, -np.inf
    return res.x[:d], res.x[-1]


def enumerate_regions(net: Network, lb, ub):
    """All patterns (list of per-layer 0/1 arrays) of full-dimensional regions in the box,
    each with an interior point. Only for tiny nets (plain ReLU)."""
    lb, ub = np.asarray(lb, float), np.asarray(ub, float)
    d = net.input_dim
    out = []

    def dfs(layer_idx, neuron_idx, pattern, rows, rhs, M, m):
        if layer_idx == net.depth:
            x, s = _interior(np.array(rows).reshape(-1, d), np.array(rhs), lb, ub)
            if x is not None and s > MARGIN:
                out.append(([p.copy() for p in pattern], x))
            return
        layer = net.layers[layer_idx]
        A = layer.W @ M
        c = layer.W @ m + layer.b
        i = neuron_idx
        for active in (1, 0):
            sign = -1.0 if active else 1.0   # active: -(A x + c) <= 0
            new_rows = rows + [sign * A[i]]
            new_rhs = rhs + [-sign * c[i]]
            x, s = _interior(np.array(new_rows), np.array(new_rhs), lb, ub)
            if x is None or s <= MARGIN:
                continue
            pattern[layer_idx][i] = active
            if i + 1 < layer.n_out:
                dfs(layer_idx, i + 1, pattern, new_rows, new_rhs, M, m)
            else:
                slope = pattern[layer_idx].astype(float)
                dfs(layer_idx + 1, 0, pattern, new_rows, new_rhs, A * slope[:, None], c * slope)

    pattern = [np.zeros(n, dtype=np.int8) for n in net.hidden_sizes]
    dfs(0, 0, pattern, [], [], np.eye(d), np.zeros(d))
    return out


def region_optimum(net: Network, pattern, lb, ub, c, sense="max", C=None, e=None, A=None, b=None):
    """Optimum of c.y over one region (an LP); None when empty."""
    pre, (T, t) = net.region_affine(pattern)
    rows, rhs = [], []
    for (Al, cl), p in zip(pre, pattern, strict=True):
        sign = np.where(np.asarray(p) > 0, -1.0, 1.0)
        rows.append(sign[:, None] * Al)
        rhs.append(-sign * cl)
    if C is not None:
        rows.append(C @ T)
        rhs.append(e - C @ t)
    if A is not None:
        rows.append(A)
        rhs.append(b)
    obj = c @ T
    s = -1.0 if sense == "max" else 1.0
    res = linprog(s * obj, A_ub=np.vstack(rows), b_ub=np.concatenate(rhs),
                  bounds=list(zip(lb, ub, strict=True)), method="highs")
    if res.status != 0:
        return None
    return float(obj @ res.x + c @ t), res.x


_REGIONS: dict = {}


def cached_regions(net: Network, lb, ub):
    """``enumerate_regions``, cached: several tests share a net and box (max and min, rules)."""
    key = (b"".join(layer.W.tobytes() + layer.b.tobytes() for layer in net.layers),
           np.asarray(lb, float).tobytes(), np.asarray(ub, float).tobytes())
    if key not in _REGIONS:
        _REGIONS[key] = enumerate_regions(net, lb, ub)
    return _REGIONS[key]


def brute_force(net: Network, lb, ub, c, sense, C=None, e=None, A=None, b=None):
    """Best objective over every full-dimensional linear region (None: infeasible)."""
    best = None
    for pattern, _ in cached_regions(net, lb, ub):
        r = region_optimum(net, pattern, lb, ub, c, sense, C, e, A, b)
        if r is not None and (best is None or (r[0] > best if sense == "max" else r[0] < best)):
            best = r[0]
    return best
