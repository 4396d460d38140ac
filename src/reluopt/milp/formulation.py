"""The big-M MILP of a ReLU network, built as sparse matrices in one shot.

Variables, in order: the inputs ``x`` (d), then per hidden layer the post-activations ``h``
of the neurons that are not stably inactive, then one binary ``z`` per unstable neuron
(appended after all ``h``), then the outputs ``y`` (m). Stably inactive neurons have no
variable at all; stably active ones have ``h = W h_prev + b`` as an equality; unstable
ones (bounds ``L < 0 < U``) get

    h >= W h_prev + b,   h <= W h_prev + b - L (1 - z),   h <= U z,   h >= 0.

Clipped ReLU ``min(max(0, g), tau)``: saturated neurons (``L >= tau``) get a column fixed at
tau; a kink at tau only (``0 <= L < tau < U``) gets one binary ``z2`` (g >= tau) with
``h <= g, h <= tau, h >= g - (U - tau) z2, h >= L + (tau - L) z2``; both kinks get two
binaries ``z2 <= z1`` with ``h <= tau z1, h >= tau z2, h >= g - (U - tau) z2,
h <= g - L (1 - z1)``. Binaries of the second kind live in ``z2_cols`` (before ``y``).

Other methods extend the model: ``add_columns`` / ``add_rows`` (verification epigraph,
Lipschitz backward pass), fixing binaries through column bounds (neighbourhood MIPs), and
``relaxed`` (LP relaxation).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from ..bounds import LayerBounds
from ..errors import ProblemError
from ..network import Network
from ..problem import Domain, Problem

#: Largest bound or right-hand side magnitude a MIP certificate is trusted with.
MAX_MAGNITUDE = 1e7
#: Narrowest non-degenerate input interval a MIP certificate is trusted with.
MIN_INPUT_WIDTH = 1e-5


@dataclass
class MilpModel:
    """``max cost . v + offset`` s.t. ``row_lower <= A v <= row_upper``, column bounds and
    integrality (1 = integer). Index arrays map network quantities to columns (-1: none)."""

    cost: np.ndarray
    offset: float
    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray
    A: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    x_cols: np.ndarray
    h_cols: list[np.ndarray]
    z_cols: list[np.ndarray]
    y_cols: np.ndarray
    network: Network
    bounds: LayerBounds
    stats: dict = field(default_factory=dict)
    #: second binary of clipped-ReLU neurons whose bounds contain tau ("g >= tau"); -1: none
    z2_cols: list[np.ndarray] = field(default_factory=list)

    @property
    def n_cols(self) -> int:
        return self.cost.shape[0]

    @property
    def n_rows(self) -> int:
        return self.A.shape[0]

    @property
    def n_binaries(self) -> int:
        return int(np.sum(self.integrality))

    def scaling_issue(self) -> str | None:
        """Why a MIP solver's answer on this model cannot be trusted as a certificate, or None.

        MIP solvers work to absolute tolerances of about 1e-6 to 1e-9, which mean nothing
        once big-M constants, bounds or right-hand sides exceed ``MAX_MAGNITUDE``, or when an
        input may move by less than ``MIN_INPUT_WIDTH`` (without being fixed): on such models
        their dual bounds and infeasibility proofs were seen to be wrong (SCIP's optimum on a
        box side 1e-6 wide missed the true one by 1e-4), so the MIP refuses them and branch
        and bound solves them without leaf MIPs.
        """
        values = np.concatenate([self.col_lower, self.col_upper, self.row_lower, self.row_upper])
        values = np.abs(values[np.isfinite(values)])
        if values.size and values.max() > MAX_MAGNITUDE:
            return (f"its big-M constants, bounds or right-hand sides reach {values.max():.3g} "
                    f"(above {MAX_MAGNITUDE:.0e}), beyond what the solver's tolerances can certify")
        width = self.col_upper[self.x_cols] - self.col_lower[self.x_cols]
        thin = (width > 0) & (width < MIN_INPUT_WIDTH)
        if thin.any():
            i = int(np.argmax(thin))
            return (f"input {i} may move by {width[i]:.3g} only (below {MIN_INPUT_WIDTH:.0e}, the scale of "
                    "the solver's tolerances); fix it (equal bounds) or widen its interval")
        return None

    # ------------------------------------------------------------------ extension
    def add_columns(self, lower, upper, integrality=None, cost=None) -> np.ndarray:
        """Append columns; returns their indices."""
        lower = np.asarray(lower, dtype=np.float64).reshape(-1)
        upper = np.asarray(upper, dtype=np.float64).reshape(-1)
        k = lower.shape[0]
        start = self.n_cols
        self.col_lower = np.concatenate([self.col_lower, lower])
        self.col_upper = np.concatenate([self.col_upper, upper])
        integ = np.zeros(k, np.int8) if integrality is None else np.asarray(integrality, np.int8)
        self.integrality = np.concatenate([self.integrality, integ])
        self.cost = np.concatenate([self.cost, np.zeros(k) if cost is None else cost])
        self.A = sp.hstack([self.A, sp.csr_matrix((self.n_rows, k))], format="csr")
        return np.arange(start, start + k)

    def add_rows(self, A_rows, lower, upper) -> np.ndarray:
        """Append rows ``lower <= A_rows v <= upper`` (A_rows sparse or dense, n_cols wide)."""
        A_rows = sp.csr_matrix(A_rows)
        if A_rows.shape[1] != self.n_cols:
            raise ValueError(f"rows have {A_rows.shape[1]} columns, model has {self.n_cols}")
        start = self.n_rows
        self.A = sp.vstack([self.A, A_rows], format="csr")
        self.row_lower = np.concatenate([self.row_lower, np.broadcast_to(lower, A_rows.shape[0])])
        self.row_upper = np.concatenate([self.row_upper, np.broadcast_to(upper, A_rows.shape[0])])
        return np.arange(start, self.n_rows)

    def set_objective_on_outputs(self, c, d: float = 0.0) -> None:
        """Maximise ``c . y + d``."""
        self.cost = np.zeros(self.n_cols)
        self.cost[self.y_cols] = np.asarray(c, dtype=np.float64)
        self.offset = float(d)

    def relaxed(self) -> MilpModel:
        """The LP relaxation (a copy with no integrality)."""
        return replace(self, integrality=np.zeros_like(self.integrality),
                       col_lower=self.col_lower.copy(), col_upper=self.col_upper.copy())

    def copy(self) -> MilpModel:
        return replace(self, cost=self.cost.copy(), col_lower=self.col_lower.copy(),
                       col_upper=self.col_upper.copy(), integrality=self.integrality.copy(),
                       A=self.A.copy(), row_lower=self.row_lower.copy(),
                       row_upper=self.row_upper.copy(), stats=dict(self.stats),
                       z2_cols=list(self.z2_cols))

    # ------------------------------------------------------------------ solutions
    def point_to_columns(self, x) -> np.ndarray:
        """A full column vector (e.g. a MIP start) from an input point, by a forward pass."""
        net = self.network
        v = np.zeros(self.n_cols)
        x = np.asarray(x, dtype=np.float64)
        v[self.x_cols] = x
        pre = net.preactivations(x[None, :])
        for l, g in enumerate(pre):
            layer = net.layers[l]
            h = layer.activate(g[0])
            cols = self.h_cols[l]
            keep = cols >= 0
            v[cols[keep]] = h[keep]
            zc = self.z_cols[l]
            zk = zc >= 0
            v[zc[zk]] = (g[0][zk] > 0).astype(np.float64)
            if l < len(self.z2_cols):
                zc = self.z2_cols[l]
                zk = zc >= 0
                v[zc[zk]] = (g[0][zk] >= layer.tau).astype(np.float64)
        v[self.y_cols] = net.forward(x)
        return v

    def columns_to_point(self, v) -> np.ndarray:
        return np.asarray(v)[self.x_cols].copy()


def _bounds_for(bounds: LayerBounds, l: int) -> tuple[np.ndarray, np.ndarray]:
    return bounds.lower[l][0], bounds.upper[l][0]


@dataclass
class _Phases:
    """Which formulation each neuron of a hidden layer gets, from its bounds [L, U].

    ``lower``: one kink at 0 (ReLU big-M, binary z1); ``upper``: one kink at tau (clipped,
    binary z2); ``both``: both kinks (two binaries, z2 <= z1). Everything else is stable.
    """

    inactive: np.ndarray
    linear: np.ndarray
    saturated: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    both: np.ndarray
    L: np.ndarray
    U: np.ndarray
    tau: float

    @property
    def z1(self) -> np.ndarray:
        return self.lower | self.both

    @property
    def z2(self) -> np.ndarray:
        return self.upper | self.both

    @property
    def stable(self) -> np.ndarray:
        return self.inactive | self.linear | self.saturated


def classify(layer, L: np.ndarray, U: np.ndarray) -> _Phases:
    """Phase classification of a hidden layer's neurons (ReLU or clipped ReLU)."""
    inactive = U <= 0
    none = np.zeros_like(inactive)
    if layer.activation != "clipped_relu":
        linear = (L >= 0) & ~inactive
        lower = ~(inactive | linear)
        return _Phases(inactive, linear, none, lower, none, none, L, U, np.inf)
    tau = float(layer.tau)
    saturated = (L >= tau) & ~inactive
    linear = (L >= 0) & (U <= tau) & ~inactive & ~saturated
    rest = ~(inactive | saturated | linear)
    lower = rest & (L < 0) & (U <= tau)
    upper = rest & (L >= 0)
    both = rest & ~lower & ~upper
    return _Phases(inactive, linear, saturated, lower, upper, both, L, U, tau)


def build_network_model(
    network: Network, domain: Domain, bounds: LayerBounds
) -> MilpModel:
    """The big-M model of ``network`` over ``domain`` with pre-activation ``bounds`` (box 0).

    ReLU and clipped ReLU ``min(max(0, g), tau)`` hidden layers. Binaries: ``z_cols`` hold
    the "g > 0" indicator of neurons with a kink at 0 inside their bounds, ``z2_cols`` the
    "g >= tau" indicator of clipped neurons with a kink at tau inside their bounds (two
    binaries when both kinks are, with ``z2 <= z1``). No objective is set (zero); see
    ``build_problem_model`` for a whole Problem.
    """
    domain.require_bounded("the MIP formulation")
    d = network.input_dim
    # --- columns: x, then h per layer, then z1, then z2, then y
    col_lo = [domain.lb]
    col_hi = [domain.ub]
    h_cols: list[np.ndarray] = []
    next_col = d
    phases: list[_Phases] = []
    for l, layer in enumerate(network.hidden_layers):
        L, U = _bounds_for(bounds, l)
        ph = classify(layer, L, U)
        phases.append(ph)
        keep = ~ph.inactive
        cols = np.full(L.shape[0], -1, dtype=np.int64)
        cols[keep] = np.arange(next_col, next_col + keep.sum())
        next_col += int(keep.sum())
        h_cols.append(cols)
        hi_cap = ph.tau if layer.activation == "clipped_relu" else np.inf
        col_lo.append(np.clip(L[keep], 0.0, hi_cap))
        col_hi.append(np.clip(U[keep], 0.0, hi_cap))

    def binary_block(which: str) -> list[np.ndarray]:
        nonlocal next_col
        out = []
        for ph in phases:
            mask = getattr(ph, which)
            cols = np.full(mask.shape[0], -1, dtype=np.int64)
            cols[mask] = np.arange(next_col, next_col + mask.sum())
            next_col += int(mask.sum())
            out.append(cols)
            col_lo.append(np.zeros(mask.sum()))
            col_hi.append(np.ones(mask.sum()))
        return out

    z_cols = binary_block("z1")
    z2_cols = binary_block("z2")
    m = network.output_dim
    y_cols = np.arange(next_col, next_col + m)
    next_col += m
    col_lo.append(bounds.out_lower[0])
    col_hi.append(bounds.out_upper[0])
    n_cols = next_col
    integrality = np.zeros(n_cols, dtype=np.int8)
    for zc in (*z_cols, *z2_cols):
        integrality[zc[zc >= 0]] = 1

    # --- rows, layer by layer, as COO triplets
    rows_i, rows_j, rows_v = [], [], []
    row_lo, row_hi = [], []
    n_rows = 0

    def emit(block_rows, block_cols, vals, lo, hi):
        nonlocal n_rows
        rows_i.append(block_rows + n_rows)
        rows_j.append(block_cols)
        rows_v.append(vals)
        row_lo.append(lo)
        row_hi.append(hi)
        n_rows += lo.shape[0]

    prev_cols = np.arange(d)  # columns of the previous layer's outputs (all kept for x)
    for l, layer in enumerate(network.layers):
        keep_prev = prev_cols >= 0
        Wk = sp.csr_matrix(layer.W[:, keep_prev])
        src = prev_cols[keep_prev]
        b = layer.b
        if l == network.depth:
            # y - W h = b
            sel = np.arange(layer.n_out)
            coo = Wk.tocoo()
            r = np.concatenate([coo.row, sel])
            c = np.concatenate([src[coo.col], y_cols])
            v = np.concatenate([-coo.data, np.ones(m)])
            emit(r, c, v, b.copy(), b.copy())
            break
        ph = phases[l]
        hc, z1, z2 = h_cols[l], z_cols[l], z2_cols[l]

        n = b.shape[0]

        def rows(mask, with_g, extras, lo, hi, hc=hc, Wk=Wk, src=src, n=n):
            """Rows ``h (- W h_prev) + sum(coef * col) in [lo, hi]``, one per neuron of mask.

            ``coef``, ``lo`` and ``hi`` are scalars or per-neuron arrays of the layer."""
            sel = np.nonzero(mask)[0]
            k = sel.size
            if k == 0:
                return
            local = np.arange(k)
            r, c, v = [local], [hc[sel]], [np.ones(k)]
            if with_g:
                sub = Wk[sel].tocoo()
                r.append(sub.row)
                c.append(src[sub.col])
                v.append(-sub.data)
            for cols, coef in extras:
                r.append(local)
                c.append(cols[sel])
                v.append(np.broadcast_to(np.asarray(coef, np.float64), (n,))[sel])
            emit(np.concatenate(r), np.concatenate(c), np.concatenate(v),
                 np.broadcast_to(np.asarray(lo, np.float64), (n,))[sel].copy(),
                 np.broadcast_to(np.asarray(hi, np.float64), (n,))[sel].copy())

        L, U, tau = ph.L, ph.U, ph.tau
        inf = np.inf
        # linear: h - W h_prev = b
        rows(ph.linear, True, [], b, b)
        # kink at 0 only (ReLU): h >= g, h <= g - L (1 - z1), h <= U z1
        rows(ph.lower, True, [], b, inf)
        rows(ph.lower, True, [(z1, -L)], -inf, b - L)
        rows(ph.lower, False, [(z1, -U)], -inf, 0.0)
        if ph.upper.any() or ph.both.any():
            # kink at tau only: h <= g, h >= g - (U - tau) z2, h >= L + (tau - L) z2 (h <= tau: column)
            rows(ph.upper, True, [], -inf, b)
            rows(ph.upper, True, [(z2, U - tau)], b, inf)
            rows(ph.upper, False, [(z2, -(tau - L))], L, inf)
            # both kinks: h <= tau z1, h >= tau z2, h >= g - (U - tau) z2, h <= g - L (1 - z1)
            rows(ph.both, False, [(z1, -tau)], -inf, 0.0)
            rows(ph.both, False, [(z2, -tau)], 0.0, inf)
            rows(ph.both, True, [(z2, U - tau)], b, inf)
            rows(ph.both, True, [(z1, -L)], -inf, b - L)
        # and z2 <= z1
        sel = np.nonzero(ph.both)[0]
        if sel.size:
            k = sel.size
            local = np.arange(k)
            emit(np.concatenate([local, local]), np.concatenate([z2[sel], z1[sel]]),
                 np.concatenate([np.ones(k), -np.ones(k)]), np.full(k, -np.inf), np.zeros(k))
        prev_cols = hc

    if domain.A is not None:
        coo = sp.coo_matrix(domain.A)
        emit(coo.row, coo.col, coo.data, np.full(domain.A.shape[0], -np.inf), domain.b.copy())

    A = sp.csr_matrix(
        (np.concatenate(rows_v), (np.concatenate(rows_i), np.concatenate(rows_j))),
        shape=(n_rows, n_cols),
    )
    n_stable = sum(int(ph.stable.sum()) for ph in phases)
    stats = {
        "binaries": int(integrality.sum()),
        "stable_neurons": n_stable,
        "hidden_neurons": network.n_hidden,
        "columns": n_cols,
        "rows": n_rows,
        "nonzeros": int(A.nnz),
        "bounds": bounds.method,
    }
    return MilpModel(
        cost=np.zeros(n_cols), offset=0.0,
        col_lower=np.concatenate(col_lo), col_upper=np.concatenate(col_hi),
        integrality=integrality, A=A,
        row_lower=np.concatenate(row_lo), row_upper=np.concatenate(row_hi),
        x_cols=np.arange(d), h_cols=h_cols, z_cols=z_cols, y_cols=y_cols,
        network=network, bounds=bounds, stats=stats, z2_cols=z2_cols,
    )


def add_output_constraints(model: MilpModel, problem: Problem) -> None:
    """Rows ``C y <= e`` for the problem's output constraints."""
    if problem.constraints is None:
        return
    C = problem.constraints.C
    rows = sp.lil_matrix((C.shape[0], model.n_cols))
    rows[:, model.y_cols] = C
    model.add_rows(rows, -np.inf, problem.constraints.e)


def build_problem_model(problem: Problem, bounds: LayerBounds | None = None,
                        rescale: bool = False) -> MilpModel:
    """The whole problem as ``max``: network, domain, output constraints and objective.

    ``rescale=True`` builds the model of the rescaled network (``reluopt.analysis.rescale``:
    each hidden neuron's bound range normalised by a power of two). It computes the same
    function, so ``x`` and ``y`` columns mean the same; only ``h`` columns are scaled, and
    ``model.network`` / ``model.bounds`` are the rescaled ones (MIP starts stay consistent).
    """
    from ..bounds import crown_bounds

    if bounds is None:
        problem.domain.require_bounded("the MIP")
        bounds = crown_bounds(problem.network, problem.domain.lb, problem.domain.ub)
    if bounds.batch != 1:
        raise ProblemError("build_problem_model needs bounds of exactly one box")
    network = problem.network
    if rescale:
        from ..analysis.rescale import rescale as _rescale
        from ..analysis.rescale import rescale_bounds

        network, factors = _rescale(network, bounds)
        bounds = rescale_bounds(bounds, factors)
    model = build_network_model(network, problem.domain, bounds)
    model.stats["rescaled"] = bool(rescale)
    add_output_constraints(model, problem)
    c, d = problem.max_form()
    model.set_objective_on_outputs(c, d)
    return model
