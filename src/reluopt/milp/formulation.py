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

Each activation owns its rows (``Activation.milp`` in ``reluopt.activations``); this module
assembles them, for all neurons of a layer at once, into one sparse matrix.

Other methods extend the model: ``add_columns`` / ``add_rows`` (verification epigraph,
Lipschitz backward pass), fixing binaries through column bounds (neighbourhood MIPs), and
``relaxed`` (LP relaxation).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from ..activations import MilpLayer, Phases
from ..errors import ProblemError
from ..network import Network
from ..problem import Domain, Problem

if TYPE_CHECKING:   # milp sits below bounds: it takes the bounds it is given
    from ..bounds import LayerBounds

#: Largest bound or right-hand side magnitude a MIP certificate is trusted with.
MAX_MAGNITUDE = 1e7
#: Narrowest non-degenerate input interval a MIP certificate is trusted with.
MIN_INPUT_WIDTH = 1e-5


@dataclass
class MilpModel:
    """``max cost . v + offset`` s.t. ``row_lower <= A v <= row_upper``, column bounds and
    integrality (1 = integer). Index arrays map network quantities to columns (-1: none).

    Attributes
    ----------
    cost, offset, col_lower, col_upper, integrality, A, row_lower, row_upper
        The model, in the solver-neutral form every back-end loads (``A`` scipy CSR).
    x_cols, h_cols, z_cols, y_cols, z2_cols
        Columns of the inputs, of each hidden layer's outputs and binaries, of the outputs.
    network, bounds, stats
        The network modelled, the neuron bounds of its big-M constants, statistics.
    """

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
        once coefficients, big-M constants, bounds or right-hand sides exceed ``MAX_MAGNITUDE``
        (HiGHS called a feasible model with weights of 3e9 infeasible), or when an
        input may move by less than ``MIN_INPUT_WIDTH`` (without being fixed): on such models
        their dual bounds and infeasibility proofs were seen to be wrong (SCIP's optimum on a
        box side 1e-6 wide missed the true one by 1e-4), so the MIP refuses them and branch
        and bound solves them without leaf MIPs.

        Returns
        -------
        str or None
        """
        values = np.concatenate([self.col_lower, self.col_upper, self.row_lower, self.row_upper, self.A.data])
        values = np.abs(values[np.isfinite(values)])
        if values.size and values.max() > MAX_MAGNITUDE:
            return (f"its coefficients, big-M constants, bounds or right-hand sides reach {values.max():.3g} "
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
        """Append columns; returns their indices.

        Parameters
        ----------
        lower, upper, integrality, cost : array_like
            Their bounds, integrality (default continuous) and costs (default 0).

        Returns
        -------
        numpy.ndarray
        """
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
        """Append rows ``lower <= A_rows v <= upper`` (A_rows sparse or dense, n_cols wide).

        Parameters
        ----------
        A_rows, lower, upper : array_like

        Returns
        -------
        numpy.ndarray
            Their row indices.
        """
        A_rows = sp.csr_matrix(A_rows)
        if A_rows.shape[1] != self.n_cols:
            raise ValueError(f"rows have {A_rows.shape[1]} columns, model has {self.n_cols}")
        start = self.n_rows
        self.A = sp.vstack([self.A, A_rows], format="csr")
        self.row_lower = np.concatenate([self.row_lower, np.broadcast_to(lower, A_rows.shape[0])])
        self.row_upper = np.concatenate([self.row_upper, np.broadcast_to(upper, A_rows.shape[0])])
        return np.arange(start, self.n_rows)

    def set_objective_on_outputs(self, c, d: float = 0.0) -> None:
        """Maximise ``c . y + d``.

        Parameters
        ----------
        c : array_like
        d : float, optional
        """
        self.cost = np.zeros(self.n_cols)
        self.cost[self.y_cols] = np.asarray(c, dtype=np.float64)
        self.offset = float(d)

    def relaxed(self) -> MilpModel:
        """The LP relaxation (a copy with no integrality).

        Returns
        -------
        MilpModel
        """
        return replace(self, integrality=np.zeros_like(self.integrality),
                       col_lower=self.col_lower.copy(), col_upper=self.col_upper.copy())

    def copy(self) -> MilpModel:
        """A copy whose arrays can be changed (the network and bounds are shared).

        Returns
        -------
        MilpModel
        """
        return replace(self, cost=self.cost.copy(), col_lower=self.col_lower.copy(),
                       col_upper=self.col_upper.copy(), integrality=self.integrality.copy(),
                       A=self.A.copy(), row_lower=self.row_lower.copy(),
                       row_upper=self.row_upper.copy(), stats=dict(self.stats),
                       z2_cols=list(self.z2_cols))

    # ------------------------------------------------------------------ solutions
    def point_to_columns(self, x) -> np.ndarray:
        """A full column vector (e.g. a MIP start) from an input point, by a forward pass.

        Parameters
        ----------
        x : array_like

        Returns
        -------
        numpy.ndarray
        """
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
            phase = layer.act.phase(g[0])
            # binary k of a neuron says "above kink k": z1 "g > 0", z2 "g >= tau"
            for k, zcols in enumerate((self.z_cols, self.z2_cols)):
                if l < len(zcols):
                    zc = zcols[l]
                    zk = zc >= 0
                    v[zc[zk]] = (phase[zk] > k).astype(np.float64)
        v[self.y_cols] = net.forward(x)
        return v

    def columns_to_point(self, v) -> np.ndarray:
        """The input point of a full column vector ``v``.

        Parameters
        ----------
        v : array_like

        Returns
        -------
        numpy.ndarray
        """
        return np.asarray(v)[self.x_cols].copy()


def _bounds_for(bounds: LayerBounds, l: int) -> tuple[np.ndarray, np.ndarray]:
    return bounds.lower[l][0], bounds.upper[l][0]


def classify(layer, L: np.ndarray, U: np.ndarray) -> Phases:
    """Phase classification of a hidden layer's neurons (``Activation.classify``).

    Parameters
    ----------
    layer : Layer
    L, U : numpy.ndarray
        Its pre-activation bounds.

    Returns
    -------
    Phases
    """
    return layer.act.classify(L, U)


def build_network_model(
    network: Network, domain: Domain, bounds: LayerBounds
) -> MilpModel:
    """The big-M model of ``network`` over ``domain`` with pre-activation ``bounds`` (box 0).

    Any hidden activation of ``reluopt.activations`` (its ``milp`` gives the rows). Binaries:
    ``z_cols`` hold the "g > 0" indicator of neurons with a kink at 0 inside their bounds,
    ``z2_cols`` the "g >= tau" indicator of clipped neurons with a kink at tau inside their
    bounds (two binaries when both kinks are, with ``z2 <= z1``). No objective is set (zero); see
    ``build_problem_model`` for a whole Problem.

    Parameters
    ----------
    network : Network
    domain : Domain
    bounds : LayerBounds

    Returns
    -------
    MilpModel
    """
    domain.require_bounded("the MIP formulation")
    d = network.input_dim
    # --- columns: x, then h per layer, then z1, then z2, then y
    col_lo = [domain.lb]
    col_hi = [domain.ub]
    h_cols: list[np.ndarray] = []
    next_col = d
    blocks: list[MilpLayer] = []
    for l, layer in enumerate(network.hidden_layers):
        L, U = _bounds_for(bounds, l)
        blk = layer.act.milp(L, U)
        blocks.append(blk)
        keep = blk.keep
        cols = np.full(L.shape[0], -1, dtype=np.int64)
        cols[keep] = np.arange(next_col, next_col + keep.sum())
        next_col += int(keep.sum())
        h_cols.append(cols)
        col_lo.append(blk.h_lower[keep])
        col_hi.append(blk.h_upper[keep])
    phases = [blk.phases for blk in blocks]

    def binary_block(kind: int) -> list[np.ndarray]:
        nonlocal next_col
        out = []
        for blk in blocks:
            mask = blk.binaries[kind]
            cols = np.full(mask.shape[0], -1, dtype=np.int64)
            cols[mask] = np.arange(next_col, next_col + mask.sum())
            next_col += int(mask.sum())
            out.append(cols)
            col_lo.append(np.zeros(mask.sum()))
            col_hi.append(np.ones(mask.sum()))
        return out

    z_cols = binary_block(0)
    z2_cols = binary_block(1)
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
            emit(np.concatenate([coo.row, sel]), np.concatenate([src[coo.col], y_cols]),
                 np.concatenate([-coo.data, np.ones(m)]), b.copy(), b.copy())
            break
        hc, zs = h_cols[l], (z_cols[l], z2_cols[l])
        n = b.shape[0]

        def per_neuron(value, sel, n=n):
            return np.broadcast_to(np.asarray(value, np.float64), (n,))[sel]

        for part in blocks[l].rows:
            # h_coef h - g_coef (W h_prev + b) + sum coef z in [lo, hi], one row per neuron
            sel = np.nonzero(part.mask)[0]
            k = sel.size
            if k == 0:
                continue
            local = np.arange(k)
            r: list[np.ndarray] = []
            c: list[np.ndarray] = []
            v: list[np.ndarray] = []
            if part.h_coef:
                r.append(local)
                c.append(hc[sel])
                v.append(np.full(k, float(part.h_coef)))
            lo, hi = per_neuron(part.lo, sel).copy(), per_neuron(part.hi, sel).copy()
            if np.any(part.g_coef):
                sub = Wk[sel].tocoo()
                r.append(sub.row)
                c.append(src[sub.col])
                gc = per_neuron(part.g_coef, sel)
                v.append(-sub.data * gc[sub.row])
                lo = lo + gc * b[sel]
                hi = hi + gc * b[sel]
            for kind, coef in part.z:
                r.append(local)
                c.append(zs[kind][sel])
                v.append(per_neuron(coef, sel))
            emit(np.concatenate(r), np.concatenate(c), np.concatenate(v), lo, hi)
        prev_cols = hc

    if domain.A is not None and domain.b is not None:     # both or neither
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
    """Rows ``C y <= e`` for the problem's output constraints.

    Parameters
    ----------
    model : MilpModel
        Changed in place.
    problem : Problem
    """
    if problem.constraints is None:
        return
    C = problem.constraints.C
    rows = sp.lil_matrix((C.shape[0], model.n_cols))
    rows[:, model.y_cols] = C
    model.add_rows(rows, -np.inf, problem.constraints.e)


def build_problem_model(problem: Problem, bounds: LayerBounds, rescale: bool | str = False) -> MilpModel:
    """The whole problem as ``max``: network, domain, output constraints and objective.

    ``rescale`` builds the model of the rescaled network (``reluopt.analysis.rescale``): True or
    ``"pow2-unstable"`` normalises each unstable neuron's bound range by a power of two,
    ``"paper"`` every neuron's by ``1 / (U - L)``. It computes the same function, so ``x`` and
    ``y`` columns mean the same; only ``h`` columns are scaled, and ``model.network`` /
    ``model.bounds`` are the rescaled ones (MIP starts stay consistent).

    Parameters
    ----------
    problem : Problem
    bounds : LayerBounds, optional
        Of one box (default: CROWN on the domain).
    rescale : bool or str, optional
        False, True or a name in ``milp.rescale.RESCALE_RULES``.

    Returns
    -------
    MilpModel
    """
    if bounds is None:
        raise ProblemError("build_problem_model needs neuron bounds of the domain, e.g. "
                           "reluopt.compute_bounds(network, lb, ub, 'crown')")
    if bounds.batch != 1:
        raise ProblemError("build_problem_model needs bounds of exactly one box")
    from .rescale import rescale as _rescale
    from .rescale import rescale_bounds, rescale_rule

    network, rule = problem.network, rescale_rule(rescale)
    if rule is not None:
        network, factors = _rescale(network, bounds, rule=rule)
        bounds = rescale_bounds(bounds, factors)
    model = build_network_model(network, problem.domain, bounds)
    model.stats["rescaled"] = rule is not None
    model.stats["rescale"] = rule or "none"
    add_output_constraints(model, problem)
    c, d = problem.max_form()
    model.set_objective_on_outputs(c, d)
    return model
