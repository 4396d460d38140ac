"""An independent truth for general models: enumerate the integer values and every network's
activation pattern, and solve one LP per region (scipy's linprog), written from the test's own
arrays (not from ``reluopt.Model``'s)."""

from __future__ import annotations

from itertools import product

import numpy as np
from scipy.optimize import linprog


def brute_force(lb, ub, integer, nets, A, e, c, d, sense="max"):
    """The optimum of ``sense c.v + d`` s.t. ``A v <= e``, ``lb <= u <= ub``, integrality, where
    ``v = (u, outputs of nets[0], outputs of nets[1], ...)`` and ``nets[k] = (network, F, f)``
    feeds ``network(F v[:n_k] + f)`` with ``F`` over the columns before it. None if infeasible."""
    lb, ub = np.asarray(lb, float), np.asarray(ub, float)
    n = lb.size
    integer = np.asarray(integer, bool)
    ints = np.nonzero(integer)[0]
    sign = 1.0 if sense == "max" else -1.0
    total_hidden = sum(layer.n_out for net, _, _ in nets for layer in net.hidden_layers)
    best = None
    for values in product(*[range(int(lb[i]), int(ub[i]) + 1) for i in ints]):
        lo, hi = lb.copy(), ub.copy()
        lo[ints] = hi[ints] = values
        for pattern in product((0.0, 1.0), repeat=total_hidden):
            bits = iter(pattern)
            T, t = np.eye(n), np.zeros(n)
            rows, rhs = [], []
            for net, F, f in nets:
                F = np.asarray(F, float)
                H_T, H_t = F @ T[: F.shape[1]], F @ t[: F.shape[1]] + f
                for layer in net.hidden_layers:
                    G_T, G_t = layer.W @ H_T, layer.W @ H_t + layer.b
                    s = np.array([next(bits) for _ in range(layer.n_out)])
                    for k in range(layer.n_out):      # active: G >= 0; inactive: G <= 0
                        sk = 1.0 if s[k] else -1.0
                        rows.append(-sk * G_T[k])
                        rhs.append(sk * G_t[k])
                    H_T, H_t = G_T * s[:, None], G_t * s
                last = net.layers[-1]
                T = np.vstack([T, last.W @ H_T])
                t = np.concatenate([t, last.W @ H_t + last.b])
            A_ = np.asarray(A, float).reshape(-1, T.shape[0])
            rows += list(A_ @ T)
            rhs += list(np.asarray(e, float) - A_ @ t)
            obj = sign * (np.asarray(c, float) @ T)
            res = linprog(-obj, A_ub=np.array(rows) if rows else None, b_ub=np.array(rhs) if rhs else None,
                          bounds=list(zip(lo, hi, strict=True)), method="highs")
            if res.status == 0:
                val = sign * (-res.fun + sign * (np.asarray(c, float) @ t + d))
                if best is None or sign * val > sign * best:
                    best = val
    return best
