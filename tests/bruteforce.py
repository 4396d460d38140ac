"""Independent truth for tiny networks: enumerate every full-dimensional linear region
inside a box by depth-first search over neurons with LP feasibility (strict margin)."""

from __future__ import annotations

import math
import time
import traceback

import numpy as np
from scipy.optimize import linprog

from reluopt import Network

MARGIN = 1e-9


def _interior(A_ub, b_ub, lb, ub, normalize: bool = False):
    """Max margin s with A x + s*||a|| <= b inside the box; returns (x, s). ``normalize``: divide
    each row by its norm first (the same LP, but HiGHS's absolute tolerances then mean a distance
    in x: badly scaled rows of norm 1e-6 or 1e6 otherwise give wrong interior points)."""
    d = lb.shape[0]
    if A_ub.shape[0] == 0:
        return 0.5 * (lb + ub), 1.0
    norms = np.linalg.norm(A_ub, axis=1) + 1e-12
    if normalize:
        A_ub, b_ub, norms = A_ub / norms[:, None], b_ub / norms, np.ones_like(norms)
    A = np.hstack([A_ub, norms[:, None]])
    cost = np.zeros(d + 1)
    cost[-1] = -1
    res = linprog(cost, A_ub=A, b_ub=b_ub, bounds=[*zip(lb, ub, strict=True), (None, 1.0)],
                  method="highs")
    if res.status != 0:
        return None, -np.inf
    return res.x[:d], res.x[-1]


def enumerate_regions(net: Network, lb, ub, fast: bool = False):
    """All patterns (list of per-layer 0/1 arrays) of full-dimensional regions in the box,
    each with an interior point. Only for tiny nets (plain ReLU).

    ``fast``: the same regions with far fewer LPs (several times quicker), but the interior
    point is only *a* point with margin > ``MARGIN``, not the most central one: a branch whose
    side the parent's witness point satisfies with margin needs no LP, and a side that the
    box's interval bounds exclude needs none either. The brute force uses it (patterns only).
    """
    lb, ub = np.asarray(lb, float), np.asarray(ub, float)
    if fast:
        return _enumerate_fast(net, lb, ub)
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


def _enumerate_fast(net: Network, lb, ub):
    """``enumerate_regions(fast=True)``: depth-first search carrying a witness point."""
    d = net.input_dim
    out = []
    mid, rad = 0.5 * (lb + ub), 0.5 * (ub - lb)

    def dfs(layer_idx, neuron_idx, pattern, rows, rhs, M, m, xw, sw):
        if layer_idx == net.depth:
            out.append(([p.copy() for p in pattern], xw))
            return
        layer = net.layers[layer_idx]
        A = layer.W @ M
        c = layer.W @ m + layer.b
        i = neuron_idx
        a, ci = A[i], c[i]
        norm = np.linalg.norm(a) + 1e-12
        centre, spread = a @ mid + ci, np.abs(a) @ rad
        at_w = (a @ xw + ci) / norm
        for active in (1, 0):
            if not np.any(a) and ci == 0.0:      # a neuron identically 0 here: one branch, no row
                if active:
                    continue
                new_rows, new_rhs, x, s = rows, rhs, xw, sw
            else:
                sign = -1.0 if active else 1.0   # active: -(A x + c) <= 0
                if (-sign * centre + spread) / norm <= MARGIN:   # the box excludes this side
                    continue
                new_rows = rows + [sign * a]
                new_rhs = rhs + [-sign * ci]
                if min(sw, -sign * at_w) > MARGIN:               # the witness is on this side
                    x, s = xw, min(sw, -sign * at_w)
                else:
                    x, s = _interior(np.array(new_rows), np.array(new_rhs), lb, ub, normalize=True)
                    if x is None or s <= MARGIN:
                        continue
            pattern[layer_idx][i] = active
            if i + 1 < layer.n_out:
                dfs(layer_idx, i + 1, pattern, new_rows, new_rhs, M, m, x, s)
            else:
                slope = pattern[layer_idx].astype(float)
                dfs(layer_idx + 1, 0, pattern, new_rows, new_rhs, A * slope[:, None], c * slope, x, s)

    pattern = [np.zeros(n, dtype=np.int8) for n in net.hidden_sizes]
    dfs(0, 0, pattern, [], [], np.eye(d), np.zeros(d), mid, 1.0)
    return out


def region_optimum(net: Network, pattern, lb, ub, c, sense="max", C=None, e=None, A=None, b=None,
                   normalize: bool = False):
    """Optimum of c.y over one region (an LP); None when empty. ``normalize``: unit-norm rows
    (the same LP, better conditioned for badly scaled nets)."""
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
    rows, rhs = np.vstack(rows), np.concatenate(rhs)
    if normalize:
        norms = np.linalg.norm(rows, axis=1)
        norms[norms == 0] = 1.0
        rows, rhs = rows / norms[:, None], rhs / norms
    res = linprog(s * obj, A_ub=rows, b_ub=rhs,
                  bounds=list(zip(lb, ub, strict=True)), method="highs")
    if res.status != 0:
        return None
    return float(obj @ res.x + c @ t), res.x


_REGIONS: dict = {}


def cached_regions(net: Network, lb, ub, fast: bool = False):
    """``enumerate_regions``, cached: several tests share a net and box (max and min, rules,
    margins, norms). The key is the weights, the activations and the box, so a net that
    only shares weights with another never gets its regions."""
    key = (b"".join(layer.W.tobytes() + layer.b.tobytes() for layer in net.layers),
           tuple((layer.activation, layer.tau, layer.alpha) for layer in net.layers),
           np.asarray(lb, float).tobytes(), np.asarray(ub, float).tobytes(), fast)
    if key not in _REGIONS:
        _REGIONS[key] = enumerate_regions(net, lb, ub, fast=fast)
    return _REGIONS[key]


def brute_force_point(net: Network, lb, ub, c, sense, C=None, e=None, A=None, b=None, fast: bool = False):
    """``(best, x)``: the best objective over every full-dimensional linear region and the LP
    point that attains it; ``(None, None)`` when infeasible."""
    best, best_x = None, None
    for pattern, _ in cached_regions(net, lb, ub, fast):
        r = region_optimum(net, pattern, lb, ub, c, sense, C, e, A, b, normalize=fast)
        if r is not None and (best is None or (r[0] > best if sense == "max" else r[0] < best)):
            best, best_x = r
    return best, best_x


def brute_force(net: Network, lb, ub, c, sense, C=None, e=None, A=None, b=None):
    """Best objective over every full-dimensional linear region (None: infeasible)."""
    return brute_force_point(net, lb, ub, c, sense, C, e, A, b)[0]


# ============================================================================ differential harness
# Random problems (badly scaled nets, tiny/wide boxes, polytopes that cut or empty the box, output
# constraints that may be infeasible), their truth by the brute force above, and a checker that
# compares every certificate a method returns (status, value, x, bound) against it. Used by
# tests/test_differential.py (a fast subset) and benchmarks/differential.py (hundreds of problems).

#: README "Soundness": constraints hold at the returned x up to 1e-6; optimal means the gap
#: |bound - value| is within max(1e-4, 1e-4 |value|); a MIP bound is widened by 1e-6 (1 + |bound|).
FEAS_TOL = 1e-6
GAP_ABS = 1e-4
GAP_REL = 1e-4
#: A bound may fall short of the brute-force optimum by BOUND_SLACK * (1 + |truth|), no more.
BOUND_SLACK = 1e-6
#: Constraint margin (absolute + relative to |rhs|) separating "borderline" from "unsound": an
#: infeasible claim is unsound only if the constraints tightened by this much still have a point;
#: a bound below the truth only if it is also below the optimum of the tightened problem.
TIGHT = 1e-5

#: Hidden-neuron budget per input dimension (the brute force is exponential in it).
SIZES = {"tiny": {2: 9, 3: 7, 4: 6}, "test": {2: 12, 3: 9, 4: 7}, "bench": {2: 26, 3: 18, 4: 13}}


def forward(weights, X) -> np.ndarray:
    """The ReLU network's outputs, computed here (not by reluopt): ``X`` of shape (n, d)."""
    h = np.atleast_2d(np.asarray(X, dtype=np.float64))
    for k, (W, bias) in enumerate(weights):
        h = h @ np.asarray(W).T + np.asarray(bias)
        if k < len(weights) - 1:
            h = np.maximum(h, 0.0)
    return h


class Case:
    """One random problem: ``sense`` of ``c.y + d`` over ``lb <= x <= ub``, ``A x <= b``, ``C y <= e``."""

    def __init__(self, seed, weights, lb, ub, c, d, sense, A=None, b=None, C=None, e=None, tags=None):
        f = lambda v: None if v is None else np.array(v, dtype=np.float64)  # noqa: E731
        self.seed = seed
        self.weights = [(np.array(W, dtype=np.float64), np.array(bb, dtype=np.float64)) for W, bb in weights]
        self.lb, self.ub, self.c = f(lb), f(ub), f(c)
        self.d, self.sense = float(d), sense
        self.A, self.b = (None, None) if A is None else (np.atleast_2d(f(A)), f(b))
        self.C, self.e = (None, None) if C is None else (np.atleast_2d(f(C)), f(e))
        self.tags = dict(tags or {})
        self._net = None

    @property
    def net(self) -> Network:
        if self._net is None:
            self._net = Network.from_weights(self.weights)
        return self._net

    def problem(self):
        from reluopt import Domain, Objective, OutputConstraints, Problem

        cons = None if self.C is None else OutputConstraints(self.C, self.e)
        return Problem(self.net, Domain(self.lb, self.ub, self.A, self.b), Objective(self.c, self.d, self.sense), cons)

    def describe(self) -> str:
        t = self.tags
        parts = [f"seed {self.seed}", self.net.describe(), f"{self.sense}", f"scale={t.get('scale')}",
                 f"layers={','.join(t.get('layers', []))}", f"box={t.get('box')}"]
        if self.A is not None:
            parts.append(f"A={t.get('polytope')}({self.A.shape[0]})")
        if self.C is not None:
            parts.append(f"C={t.get('outcons')}({self.C.shape[0]})")
        return " ".join(parts)

    def to_json(self) -> dict:
        g = lambda v: None if v is None else np.asarray(v).tolist()  # noqa: E731
        return {"seed": self.seed, "weights": [[g(W), g(bb)] for W, bb in self.weights], "lb": g(self.lb),
                "ub": g(self.ub), "c": g(self.c), "d": self.d, "sense": self.sense, "A": g(self.A), "b": g(self.b),
                "C": g(self.C), "e": g(self.e), "tags": self.tags}

    @classmethod
    def from_json(cls, data: dict) -> Case:
        keys = ("seed", "weights", "lb", "ub", "c", "d", "sense", "A", "b", "C", "e", "tags")
        return cls(**{k: data.get(k) for k in keys})

    def snippet(self) -> str:
        """Python that rebuilds this problem (for a bug report)."""
        r = lambda v: np.array2string(np.asarray(v), separator=", ", precision=17, threshold=10**6,  # noqa: E731
                                      max_line_width=10**6).replace("\n", "")
        lines = ["import numpy as np, reluopt",
                 "from reluopt import Domain, Objective, OutputConstraints, Problem, Network",
                 "weights = ["]
        lines += [f"    (np.array({r(W)}), np.array({r(bb)}))," for W, bb in self.weights]
        lines.append("]")
        lines.append("net = Network.from_weights(weights)")
        dom = f"Domain(np.array({r(self.lb)}), np.array({r(self.ub)})"
        if self.A is not None:
            dom += f", np.array({r(self.A)}), np.array({r(self.b)})"
        cons = "None" if self.C is None else f"OutputConstraints(np.array({r(self.C)}), np.array({r(self.e)}))"
        lines.append(f"p = Problem(net, {dom}), Objective(np.array({r(self.c)}), {self.d!r}, {self.sense!r}), {cons})")
        return "\n".join(lines)


def _hidden_widths(rng, d: int, budget: int) -> list[int]:
    n_layers = int(rng.integers(1, 4))
    n_layers = max(1, min(n_layers, budget // 3))
    widths = [int(rng.integers(3, 13)) for _ in range(n_layers)]
    while sum(widths) > budget:
        widths[int(np.argmax(widths))] -= 1
    return widths


def random_case(seed: int, size: str = "test") -> Case:
    """A seeded random problem; ``size`` ('tiny', 'test', 'bench') bounds the hidden neurons."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 5))
    widths = _hidden_widths(rng, d, SIZES[size][d])
    m = int(rng.integers(1, 4))
    tags: dict = {}
    # --- box
    box = str(rng.choice(["unit", "tiny", "wide", "mixed", "flat", "point"], p=[0.46, 0.2, 0.14, 0.13, 0.05, 0.02]))
    centre = rng.normal(size=d)
    half = 10 ** rng.uniform(-1.0, 0.4, size=d)
    if box == "tiny":
        half[int(rng.integers(d))] = 5e-7                     # one side 1e-6 wide
    elif box == "wide":
        half = 10 ** rng.uniform(1.0, 2.0, size=d)
        centre *= 10
    elif box == "mixed":
        half = 10 ** rng.uniform(-3.0, 1.5, size=d)
    elif box == "flat":
        half[int(rng.integers(d))] = 0.0                       # lb == ub on one input
    elif box == "point":
        half[:] = 0.0                                          # lb == ub everywhere
    lb, ub = centre - half, centre + half
    tags["box"] = box
    # --- layers: weights, then biases placed by the pre-activations of box samples
    X = lb + rng.random((512, d)) * (ub - lb)
    H = X
    weights = []
    styles = []
    sizes = [d, *widths]
    for k, n in enumerate(widths):
        W = rng.normal(size=(n, sizes[k])) / np.sqrt(sizes[k])
        G = H @ W.T
        lo, hi = G.min(axis=0), G.max(axis=0)
        spread = np.maximum(hi - lo, 1e-9 * (1 + np.abs(G).max(axis=0)))
        style = str(rng.choice(["plain", "stable", "unstable"], p=[0.5, 0.25, 0.25]))
        if style == "plain":
            bias = -np.median(G, axis=0) + 0.5 * spread * rng.normal(size=n)
        elif style == "stable":      # most neurons with a large bias: always on or always off on the samples
            sign = rng.choice([-1.0, 1.0], size=n)
            bias = np.where(sign > 0, -lo, -hi) + sign * spread * rng.uniform(0.05, 1.0, size=n)
            flip = rng.random(n) < 0.2
            bias[flip] = -np.median(G[:, flip], axis=0)
        else:                        # hyperplanes through the middle of the samples
            q = rng.uniform(0.3, 0.7, size=n)
            bias = -np.array([np.quantile(G[:, i], q[i]) for i in range(n)])
        if n >= 2 and rng.random() < 0.3:     # a near-duplicate neuron
            i, j = rng.choice(n, size=2, replace=False)
            W[j] = W[i] * (1 + 1e-9 * rng.normal(size=sizes[k]))
            bias[j] = bias[i] * (1 + 1e-9 * rng.normal()) + 1e-9 * rng.normal()
            style += "+dup"
        if rng.random() < 0.1:                # a dead neuron: zero row and zero bias (pre-activation == 0)
            i = int(rng.integers(n))
            W[i], bias[i] = 0.0, 0.0
            style += "+dead"
        styles.append(style)
        weights.append((W, bias))
        H = np.maximum(G + bias, 0.0)
    weights.append((rng.normal(size=(m, widths[-1])) / np.sqrt(widths[-1]), 0.5 * rng.normal(size=m)))
    if size == "bench":      # cancelling pairs (own random stream: the smaller sizes' cases stay as they were)
        rng2 = np.random.default_rng([seed, 7])
        for k in range(len(widths)):
            if widths[k] >= 2 and rng2.random() < 0.15:
                # h_j = relu(h_i - delta) and the next layer reads K (h_i - h_j): a ramp of height K delta
                # from two huge contributions that cancel (float32 bounds, big-M conditioning)
                i, j = rng2.choice(widths[k], size=2, replace=False)
                W, bias = weights[k]
                Wn, bn = weights[k + 1]
                K = 10 ** rng2.uniform(2, 5)
                W[j], bias[j] = W[i], bias[i] - (np.abs(W[i]).sum() + abs(bias[i]) + 1e-9) * rng2.uniform(1, 10) / K
                Wn[:, j] = -Wn[:, i] * K
                Wn[:, i] *= K
                styles[k] += "+cancel"
    # --- scaling: per-neuron log-uniform factors 1e-3..1e3
    scale = str(rng.choice(["none", "rescaled", "wild"], p=[0.5, 0.3, 0.2]))
    if scale != "none":
        for k in range(len(widths)):
            s = 10 ** rng.uniform(-3.0, 3.0, size=widths[k])
            W, bias = weights[k]
            weights[k] = (W * s[:, None], bias * s)
            if scale == "rescaled":   # compensated in the next layer: the same function, bad conditioning
                Wn, bn = weights[k + 1]
                weights[k + 1] = (Wn / s[None, :], bn)
    tags["scale"], tags["layers"] = scale, styles
    Y = forward(weights, X)
    # --- input polytope A x <= b
    A = b = None
    poly = str(rng.choice(["none", "cut", "empty", "empty-pair", "slab"], p=[0.6, 0.22, 0.06, 0.06, 0.06]))
    if poly != "none":
        a = rng.normal(size=d)
        amin = a @ centre - np.abs(a) @ half                   # min of a.x over the box
        amax = a @ centre + np.abs(a) @ half
        if poly == "cut":
            A = rng.normal(size=(int(rng.integers(1, 3)), d))
            b = A @ (lb + rng.random(d) * (ub - lb))           # through a random box point
        elif poly == "empty":
            A, b = a[None, :], np.array([amin - (amax - amin) * rng.uniform(1e-3, 0.5) - 1e-4 * (1 + abs(amin))])
        elif poly == "empty-pair":                             # each row cuts the box, together empty
            t1, t2 = sorted(rng.uniform(amin, amax, size=2))
            t1 -= 1e-3 * (amax - amin) + 1e-4 * (1 + abs(t1))
            A, b = np.vstack([a, -a]), np.array([t1, -t2])
        else:                                                  # a thin slab through the box
            t = rng.uniform(amin, amax)
            w = (amax - amin) * 10 ** rng.uniform(-4, -2)
            A, b = np.vstack([a, -a]), np.array([t + w, -t])
    if A is not None and rng.random() < 0.3:                  # badly scaled rows (the same set)
        r = 10 ** rng.uniform(-3.0, 3.0, size=A.shape[0])
        A, b = A * r[:, None], b * r
        poly += "+scaled"
    tags["polytope"] = poly
    feas = np.ones(len(X), dtype=bool) if A is None else np.all(X @ A.T <= b, axis=1)
    # --- output constraints C y <= e
    C = e = None
    outc = str(rng.choice(["none", "feasible", "tight", "infeasible", "contradict", "pinch"],
                          p=[0.58, 0.2, 0.06, 0.06, 0.05, 0.05]))
    if outc != "none":
        k = int(rng.integers(1, 3)) if outc == "feasible" else 1
        C = rng.normal(size=(k, m))
        if rng.random() < 0.3:
            C = np.eye(m)[rng.choice(m, size=k)] * rng.choice([-1.0, 1.0], size=(k, 1))
        Q = (Y[feas] if feas.any() else Y) @ C.T
        qlo, qhi = Q.min(axis=0), Q.max(axis=0)
        span = np.maximum(qhi - qlo, 1e-6 * (1 + np.abs(Q).max(axis=0)))
        if outc == "feasible":                                 # a sampled point satisfies every row
            e = Q[int(rng.integers(len(Q)))] + span * rng.uniform(0.0, 0.3, size=k)
        elif outc == "tight":
            e = qlo + 1e-3 * span
        elif outc == "infeasible":
            e = qlo - span * rng.uniform(0.05, 1.0)
        else:    # contradict: c.y <= t and c.y >= t + gap; pinch: t - w <= c.y <= t (a thin band)
            t = np.quantile(Q[:, 0], rng.uniform(0.2, 0.8))
            gap = 1e-3 * span[0] + 1e-4 * (1 + abs(t))
            if outc == "pinch":
                gap = -span[0] * 10 ** rng.uniform(-6, -2)
            C, e = np.vstack([C[0], -C[0]]), np.array([t, -(t + gap)])
    if C is not None and rng.random() < 0.3:
        r = 10 ** rng.uniform(-3.0, 3.0, size=C.shape[0])
        C, e = C * r[:, None], e * r
        outc += "+scaled"
    tags["outcons"] = outc
    # --- objective
    c = rng.normal(size=m)
    if rng.random() < 0.4:
        c = np.eye(m)[int(rng.integers(m))]
    if rng.random() < 0.15:
        c = c * 10 ** rng.uniform(-3.0, 3.0)
    off = float(rng.normal()) if rng.random() < 0.2 else 0.0
    sense = "max" if rng.random() < 0.5 else "min"
    return Case(seed, weights, lb, ub, c, off, sense, A, b, C, e, tags)


class Truth:
    """Brute-force optimum of a Case, plus the relaxed (constraints loosened by ``FEAS_TOL``, the
    tolerance a returned x may use) and tightened (by ``TIGHT``) variants, computed on demand."""

    def __init__(self, case: Case):
        self.case = case
        self._memo: dict = {}

    def _solve(self, variant: str):
        if variant in self._memo:
            return self._memo[variant]
        k = self.case
        lb, ub, b, e = k.lb, k.ub, k.b, k.e
        if variant == "relaxed":
            lb, ub = lb - FEAS_TOL, ub + FEAS_TOL
            b = None if b is None else b + FEAS_TOL
            e = None if e is None else e + FEAS_TOL
        elif variant == "tight":
            b = None if b is None else b - TIGHT * (1 + np.abs(b))
            e = None if e is None else e - TIGHT * (1 + np.abs(e))
        if np.all(lb == ub):     # a point box: no full-dimensional region, the point is the answer
            x = lb.copy()
            y = forward(k.weights, x[None, :])[0]
            ok = (k.A is None or np.all(k.A @ x <= b)) and (k.C is None or np.all(k.C @ y <= e))
            out = (float(k.c @ y + k.d), x) if ok else (None, None)
            self._memo[variant] = out
            return out
        value, x = brute_force_point(k.net, lb, ub, k.c, k.sense, k.C, e, k.A, b, fast=True)
        out = (None, None) if value is None else (value + k.d, x)
        self._memo[variant] = out
        return out

    @property
    def value(self) -> float | None:
        """The optimum (None: infeasible)."""
        return self._solve("exact")[0]

    @property
    def x(self):
        return self._solve("exact")[1]

    @property
    def feasible(self) -> bool:
        return self.value is not None

    def relaxed(self) -> float | None:
        return self._solve("relaxed")[0]

    def tight(self) -> float | None:
        return self._solve("tight")[0]

    def error(self) -> float:
        """How far the brute force's own point is from its value (forward pass here) or from feasibility,
        in objective units: an estimate of the truth's numerical error (0 when infeasible)."""
        if not self.feasible:
            return 0.0
        x = np.clip(self.x, self.case.lb, self.case.ub)
        val, viol = evaluate(self.case, x)
        return abs(val - self.value) + (0.0 if viol <= FEAS_TOL else math.inf)


def evaluate(case: Case, x) -> tuple[float, float]:
    """``(objective, violation)`` at ``x`` by the forward pass here; violation <= 0 is feasible
    (the box, ``A x <= b`` and ``C y <= e``, each minus a floating-point allowance)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = forward(case.weights, x[None, :])[0]
    fp = 1e-12 * (1 + np.abs(x).max())
    viol = max(float(np.max(case.lb - x)), float(np.max(x - case.ub))) - fp
    if case.A is not None:
        viol = max(viol, float(np.max(case.A @ x - case.b - 1e-12 * (np.abs(case.A) @ np.abs(x) + np.abs(case.b)))))
    if case.C is not None:
        slack = 1e-10 * (np.abs(case.C) @ np.abs(y) + np.abs(case.e))
        viol = max(viol, float(np.max(case.C @ y - case.e - slack)))
    return float(case.c @ y + case.d), viol


# ---------------------------------------------------------------------------- methods and runs
#: call name -> (method, options). "mip-t2": HiGHS with 2 threads; "mip-scip": SCIP.
CALLS = {
    "bab": ("bab", {}),
    "mip": ("mip", {}),
    "mip-t2": ("mip", {"threads": 2}),
    "mip-scip": ("mip", {"solver": "scip"}),
    "auto": ("auto", {}),
    "auto-mip": ("auto", {"exact": "mip"}),
    "bab-noleaf": ("bab", {"leaf_mip": False}),
    "mip-obbt": ("mip", {"bounds": "lp-obbt"}),
    "mip-ibp": ("mip", {"bounds": "ibp"}),
    "mip-rescale": ("mip", {"rescale": True}),
    "bab+inc": ("bab", {}),       # "+inc": warm-started from the best point an earlier call returned
    "mip+inc": ("mip", {}),
    "sampling": ("sampling", {}),
    "sampling-mip": ("sampling-mip", {}),
    "ppga-lr": ("ppga-lr", {}),
    "walk": ("walk", {}),
    "bab-relu": ("bab-relu", {}),
    "pgd": ("pgd", {}),
}
EXACT_CALLS = ("bab", "mip", "auto", "mip-scip")
EXTRA_CALLS = ("mip-t2", "auto-mip", "bab-noleaf", "mip-obbt", "mip-ibp", "mip-rescale", "bab+inc", "mip+inc",
               "sampling", "sampling-mip", "ppga-lr", "walk", "bab-relu", "pgd")
HEURISTICS = ("sampling", "sampling-mip", "ppga-lr", "walk", "pgd")
OUTCOMES = ("optimal", "infeasible", "time_limit", "node_limit", "feasible", "no_solution", "interrupted",
            "refused", "cert_error", "crash")


def random_order(rng, base=EXACT_CALLS, extras=EXTRA_CALLS, n_extra=(0, 3)) -> list[str]:
    """``base`` plus a few ``extras`` (repeats allowed), shuffled."""
    k = int(rng.integers(n_extra[0], n_extra[1] + 1))
    names = list(base) + [str(v) for v in rng.choice(extras, size=k)]
    return [names[i] for i in rng.permutation(len(names))]


def run_call(problem, name: str, *, time_limit: float, heuristic_time: float, seed: int, incumbent=None) -> dict:
    """One ``reluopt.solve`` in this process; errors are outcomes: a ``CertificateError`` (the
    method's own check caught a bad result) is ``cert_error``, any other ``ReluoptError`` a clear
    refusal (``refused``), anything else a ``crash``. ``incumbent`` goes to ``+inc`` calls only."""
    import reluopt
    from reluopt.errors import ReluoptError

    cert_error = getattr(reluopt.errors, "CertificateError", None)
    method, opts = CALLS[name]
    tl = heuristic_time if name in HEURISTICS else time_limit
    rec = {"name": name, "method": method, "options": opts, "seed": seed, "time_limit": tl}
    if name.endswith("+inc") and incumbent is not None:
        opts = {**opts, "incumbent": np.asarray(incumbent, dtype=np.float64)}
        rec["incumbent"] = [float(v) for v in opts["incumbent"]]
    t0 = time.perf_counter()
    try:
        r = reluopt.solve(problem, method=method, time_limit=tl, seed=seed, **opts)
    except Exception as exc:
        if cert_error is not None and isinstance(exc, cert_error):
            kind = "cert_error"
        elif isinstance(exc, ReluoptError):
            kind = "refused"
        else:
            kind = "crash"
        rec.update(outcome=kind, error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - t0)
        if kind == "crash":
            rec["traceback"] = traceback.format_exc()
        return rec
    rec.update(outcome=r.status, status=r.status, value=r.value, bound=r.bound,
               x=None if r.x is None else [float(v) for v in np.asarray(r.x).reshape(-1)],
               seconds=time.perf_counter() - t0,
               solver_status=r.stats.get("solver_status"), warning=r.stats.get("warning"))
    return rec


def _num(v) -> float | None:
    return None if v is None else float(v)


def check_call(case: Case, truth: Truth | None, rec: dict) -> list[tuple[str, str]]:
    """Findings ``(kind, message)`` for one call; kind is ``unsound``, ``borderline`` (explained by
    the constraint tolerances), ``status`` (a false status: ``time_limit`` long before the limit, an
    exact method's ``no_solution`` on a problem with points) or ``truth`` (the brute force itself
    disagrees with a checked point)."""
    if "status" not in rec:
        return []
    out = []
    s = 1.0 if case.sense == "max" else -1.0
    status, value, bound = rec["status"], _num(rec["value"]), _num(rec["bound"])
    if status not in OUTCOMES:
        out.append(("unsound", f"unknown status {status!r}"))
    for what, v in (("value", value), ("bound", bound)):
        if v is not None and math.isnan(v):
            out.append(("unsound", f"NaN {what}"))
    xval = xfeas = None
    if rec["x"] is not None:
        x = np.asarray(rec["x"], dtype=np.float64)
        if x.shape != case.lb.shape or not np.all(np.isfinite(x)):
            out.append(("unsound", f"x has shape {x.shape} or non-finite entries"))
        else:
            xval, viol = evaluate(case, x)
            xfeas = viol <= FEAS_TOL
            rec["x_violation"] = viol
            if not xfeas:
                out.append(("unsound", f"returned x violates the constraints by {viol:.3g} (> {FEAS_TOL:g})"))
            if value is None or abs(value - xval) > 1e-8 * (1 + abs(xval)):
                out.append(("unsound", f"value {value} but the forward pass at x gives {xval!r}"))
        if status == "infeasible":
            out.append(("unsound", "status infeasible together with a point x"))
    elif value is not None:
        out.append(("unsound", "a value without a point x"))
    early = rec.get("seconds", math.inf) < 0.5 * rec.get("time_limit", 0.0)
    if status == "time_limit" and early:
        out.append(("status", f"status time_limit after {rec['seconds']:.2f} s of a {rec['time_limit']:g} s limit"))
    if truth is None:
        return out
    T = truth.value
    err = 2 * truth.error()
    if (status == "no_solution" and early and rec["name"] not in HEURISTICS and T is not None
            and truth.tight() is not None):
        out.append(("status", f"gave up with no_solution after {rec['seconds']:.2f} s of {rec['time_limit']:g} s, "
                              f"but the problem has points (optimum {T!r}, also with {TIGHT:g} margins)"))
    if status == "infeasible" and T is not None:
        tight = truth.tight()
        if tight is not None:
            out.append(("unsound", f"claims infeasible, but the brute force finds {T!r} (a point even with the "
                                   f"constraints tightened by {TIGHT:g}: {tight!r})"))
        else:
            out.append(("borderline", f"claims infeasible; feasible only within {TIGHT:g}: optimum {T!r}"))
    if xfeas and xval is not None:
        if T is None or s * (xval - T) > 1e-7 * (1 + abs(T)) + err:
            relaxed = truth.relaxed()
            if relaxed is None or s * (xval - relaxed) > 1e-7 * (1 + abs(relaxed)) + err:
                out.append(("truth", f"x is feasible (here) with objective {xval!r}, better than the brute-force "
                                     f"optimum {T!r} (relaxed by {FEAS_TOL:g}: {relaxed!r})"))
    if bound is not None and T is not None and not math.isnan(bound):
        slack = BOUND_SLACK * (1 + abs(T)) + err
        if s * (bound - T) < -slack:
            tight = truth.tight()
            msg = (f"bound {bound!r} is on the wrong side of the brute-force optimum {T!r} ({case.sense}; "
                   f"short by {abs(bound - T):.3g}, allowed {slack:.3g})")
            if tight is not None and s * (bound - tight) < -(BOUND_SLACK * (1 + abs(tight)) + err):
                out.append(("unsound", msg))
            else:
                out.append(("borderline", msg + f"; the {TIGHT:g}-tightened optimum is {tight!r}"))
    if status == "optimal":
        if T is None:
            if truth.relaxed() is None:
                out.append(("unsound", "claims optimal, but the brute force finds the problem infeasible"))
            else:
                out.append(("borderline", "optimal on a problem feasible only within the tolerance"))
        elif value is not None and xfeas:
            allowed = max(GAP_ABS, GAP_REL * abs(T)) + 2 * BOUND_SLACK * (1 + abs(T)) + err
            if s * (T - value) > allowed:
                out.append(("unsound", f"claims optimal with value {value!r}, but the brute-force optimum is {T!r} "
                                       f"(off by {abs(T - value):.3g}, allowed {allowed:.3g})"))
    return out


def cross_check(case: Case, recs: list[dict]) -> list[tuple[int, str, str]]:
    """Without a truth: every bound against every feasible point any call returned."""
    s = 1.0 if case.sense == "max" else -1.0
    points = [(i, evaluate(case, r["x"])) for i, r in enumerate(recs) if r.get("x") is not None]
    points = [(i, v) for i, (v, viol) in points if viol <= FEAS_TOL]
    out = []
    for i, r in enumerate(recs):
        bound = _num(r.get("bound"))
        if bound is None or math.isnan(bound):
            continue
        for j, v in points:
            if s * (bound - v) < -BOUND_SLACK * (1 + abs(v)):
                out.append((i, "unsound", f"bound {bound!r} is on the wrong side of call {j}'s ({recs[j]['name']}) "
                                          f"feasible value {v!r}"))
                break
    return out


def run_case(seed: int, *, order: list[str] | None = None, size: str = "test", time_limit: float = 5.0,
             heuristic_time: float = 0.3, case: Case | None = None, truth_limit: float = 1e-4) -> dict:
    """Generate (or take) a case, compute its truth, run ``order`` in this process, check everything.

    Returns a report: case description, truth, calls (each with its findings) and a summary of
    the findings by kind. ``truth_limit``: a truth whose own point misses its value by more than
    ``truth_limit (1 + |truth|)`` is not trusted (only cross-checks then)."""
    rng = np.random.default_rng([seed, 1])
    case = case or random_case(seed, size)
    problem = case.problem()
    order = order or random_order(rng)
    t0 = time.perf_counter()
    truth = Truth(case)
    T = truth.value
    err = truth.error()
    reliable = err <= truth_limit * (1 + abs(T or 0.0))
    truth_seconds = time.perf_counter() - t0
    recs = []
    best = None          # the best point returned so far that reluopt itself calls feasible
    s = 1.0 if case.sense == "max" else -1.0
    for name in order:
        rec = run_call(problem, name, time_limit=time_limit, heuristic_time=heuristic_time,
                       seed=int(rng.integers(0, 2**31 - 1)), incumbent=None if best is None else best[1])
        recs.append(rec)
        if rec.get("x") is not None and rec.get("value") is not None and problem.is_feasible(np.array(rec["x"]))[0]:
            if best is None or s * rec["value"] > s * best[0]:
                best = (rec["value"], rec["x"])
    for rec in recs:
        rec["findings"] = check_call(case, truth if reliable else None, rec)
    if not reliable:
        for i, kind, msg in cross_check(case, recs):
            recs[i]["findings"].append((kind, msg))
    kinds = [k for r in recs for k, _ in r["findings"]]
    kinds += [r["outcome"] for r in recs if r["outcome"] in ("crash", "cert_error")]
    if not reliable:
        kinds.append("unreliable")
    return {"seed": seed, "case": case, "describe": case.describe(), "order": order,
            "truth": {"value": T, "feasible": T is not None, "error": err, "reliable": reliable,
                      "seconds": truth_seconds, "regions": len(cached_regions(case.net, case.lb, case.ub, True))},
            "calls": recs, "kinds": kinds}


def report_text(rep: dict) -> str:
    """Human-readable findings of a run_case report (empty string when there are none)."""
    lines = []
    for i, r in enumerate(rep["calls"]):
        for kind, msg in r["findings"]:
            lines.append(f"  [{kind}] call {i} {r['name']} (seed {r['seed']}): {msg}")
        if r["outcome"] in ("crash", "cert_error"):
            lines.append(f"  [{r['outcome']}] call {i} {r['name']} (seed {r['seed']}): {r['error']}")
    if not lines and rep["truth"]["reliable"]:
        return ""
    note = "" if rep["truth"]["reliable"] else f" (UNRELIABLE: its own point is off by {rep['truth']['error']:.3g})"
    head = f"case {rep['describe']}; order {' -> '.join(rep['order'])}; truth {rep['truth']['value']!r}{note}"
    return "\n".join([head, *lines])
