"""The big-M MILP of a ReLU network, built as sparse matrices in one shot.

Variables, in order: the inputs ``x`` (d), then per hidden layer the post-activations ``h``
of the neurons that are not stably inactive, then one binary ``z`` per unstable neuron
(appended after all ``h``), then the outputs ``y`` (m). Stably inactive neurons have no
variable at all; stably active ones have ``h = W h_prev + b`` as an equality; unstable
ones (bounds ``L < 0 < U``) get

    h >= W h_prev + b,   h <= W h_prev + b - L (1 - z),   h <= U z,   h >= 0.

Other methods extend the model: ``add_columns`` / ``add_rows`` (verification epigraph,
Lipschitz backward pass), fixing binaries through column bounds (neighbourhood MIPs), and
``relaxed`` (LP relaxation).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from ..bounds import LayerBounds
from ..errors import ProblemError, UnsupportedError
from ..network import Network
from ..problem import Domain, Problem


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

    @property
    def n_cols(self) -> int:
        return self.cost.shape[0]

    @property
    def n_rows(self) -> int:
        return self.A.shape[0]

    @property
    def n_binaries(self) -> int:
        return int(np.sum(self.integrality))

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
                       row_upper=self.row_upper.copy(), stats=dict(self.stats))

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
        v[self.y_cols] = net.forward(x)
        return v

    def columns_to_point(self, v) -> np.ndarray:
        return np.asarray(v)[self.x_cols].copy()


def _bounds_for(bounds: LayerBounds, l: int) -> tuple[np.ndarray, np.ndarray]:
    return bounds.lower[l][0], bounds.upper[l][0]


def build_network_model(
    network: Network, domain: Domain, bounds: LayerBounds
) -> MilpModel:
    """The big-M model of ``network`` over ``domain`` with pre-activation ``bounds`` (box 0).

    No objective is set (zero); see ``build_problem_model`` for a whole Problem.
    """
    if network.has_clipped:
        raise UnsupportedError(
            "the MILP formulation does not support clipped ReLU layers yet"
        )
    domain.require_bounded("the MIP formulation")
    d = network.input_dim
    # --- columns: x, then h per layer, then z, then y
    col_lo = [domain.lb]
    col_hi = [domain.ub]
    h_cols: list[np.ndarray] = []
    next_col = d
    masks = []
    for l in range(network.depth):
        L, U = _bounds_for(bounds, l)
        inactive = U <= 0
        active = L >= 0
        unstable = ~(inactive | active)
        keep = ~inactive
        cols = np.full(L.shape[0], -1, dtype=np.int64)
        cols[keep] = np.arange(next_col, next_col + keep.sum())
        next_col += int(keep.sum())
        h_cols.append(cols)
        col_lo.append(np.maximum(L[keep], 0.0))
        col_hi.append(np.maximum(U[keep], 0.0))
        masks.append((active, unstable, L, U))
    z_cols: list[np.ndarray] = []
    for l in range(network.depth):
        _, unstable, _, _ = masks[l]
        cols = np.full(unstable.shape[0], -1, dtype=np.int64)
        cols[unstable] = np.arange(next_col, next_col + unstable.sum())
        next_col += int(unstable.sum())
        z_cols.append(cols)
        col_lo.append(np.zeros(unstable.sum()))
        col_hi.append(np.ones(unstable.sum()))
    m = network.output_dim
    y_cols = np.arange(next_col, next_col + m)
    next_col += m
    col_lo.append(bounds.out_lower[0])
    col_hi.append(bounds.out_upper[0])
    n_cols = next_col
    integrality = np.zeros(n_cols, dtype=np.int8)
    for zc in z_cols:
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
        active, unstable, L, U = masks[l]
        hc = h_cols[l]
        zc = z_cols[l]
        # active: h - W h_prev = b
        for kind, sel in (("active", np.nonzero(active)[0]), ("unstable", np.nonzero(unstable)[0])):
            if sel.size == 0:
                continue
            sub = Wk[sel].tocoo()
            k = sel.size
            local = np.arange(k)
            base_r = np.concatenate([sub.row, local])
            base_c = np.concatenate([src[sub.col], hc[sel]])
            base_v = np.concatenate([-sub.data, np.ones(k)])
            if kind == "active":
                emit(base_r, base_c, base_v, b[sel].copy(), b[sel].copy())
                continue
            Ls, Us = L[sel], U[sel]
            # h - W h_prev >= b
            emit(base_r, base_c, base_v, b[sel].copy(), np.full(k, np.inf))
            # h - W h_prev - L z <= b - L
            emit(np.concatenate([base_r, local]), np.concatenate([base_c, zc[sel]]),
                 np.concatenate([base_v, -Ls]), np.full(k, -np.inf), b[sel] - Ls)
            # h - U z <= 0
            emit(np.concatenate([local, local]), np.concatenate([hc[sel], zc[sel]]),
                 np.concatenate([np.ones(k), -Us]), np.full(k, -np.inf), np.zeros(k))
        prev_cols = hc

    if domain.A is not None:
        coo = sp.coo_matrix(domain.A)
        emit(coo.row, coo.col, coo.data, np.full(domain.A.shape[0], -np.inf), domain.b.copy())

    A = sp.csr_matrix(
        (np.concatenate(rows_v), (np.concatenate(rows_i), np.concatenate(rows_j))),
        shape=(n_rows, n_cols),
    )
    n_stable = sum(int((~masks[l][1]).sum()) for l in range(network.depth))
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
        network=network, bounds=bounds, stats=stats,
    )


def add_output_constraints(model: MilpModel, problem: Problem) -> None:
    """Rows ``C y <= e`` for the problem's output constraints."""
    if problem.constraints is None:
        return
    C = problem.constraints.C
    rows = sp.lil_matrix((C.shape[0], model.n_cols))
    rows[:, model.y_cols] = C
    model.add_rows(rows, -np.inf, problem.constraints.e)


def build_problem_model(problem: Problem, bounds: LayerBounds | None = None) -> MilpModel:
    """The whole problem as ``max``: network, domain, output constraints and objective."""
    from ..bounds import crown_bounds

    if bounds is None:
        problem.domain.require_bounded("the MIP")
        bounds = crown_bounds(problem.network, problem.domain.lb, problem.domain.ub)
    if bounds.batch != 1:
        raise ProblemError("build_problem_model needs bounds of exactly one box")
    model = build_network_model(problem.network, problem.domain, bounds)
    add_output_constraints(model, problem)
    c, d = problem.max_form()
    model.set_objective_on_outputs(c, d)
    return model
