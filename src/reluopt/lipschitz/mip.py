"""Exact Lipschitz constants by mixed-integer programming (Sbihi, Couellan and Jan; LipMIP).

The gradient of ``c . y`` on the region of pattern ``z`` is
``W_1^T D_1 W_2^T ... D_K W_{K+1}^T c``. The backward pass ``mu_l = z_l * lambda_l``,
``lambda_{l-1} = W_l^T mu_l`` is linearised with interval bounds on ``lambda``; the dual
norm of the input gradient is the objective, with binaries choosing signs. With
``realisable=True`` the binaries are those of the forward big-M model of the network over
the domain, so only patterns realised by some input count (exact under general position);
with ``realisable=False`` any combination of the unstable neurons counts, the upper-bound
model of the paper. Stable neurons are fixed either way (their bounds are sound).

This is the linearised model: the activation regions and the products ``z * lambda`` are
big-M / McCormick rows, only the l2 objective is quadratic. The paper writes the regions as
quadratic constraints; that formulation, and the l2 -> l2 constant of several outputs, are in
``miqcqp.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..bounds import LayerBounds
from ..errors import UnsupportedError
from ..milp.formulation import MilpModel, build_network_model
from ..network import Network
from ..problem import Domain
from .upper import gradient_intervals


def _empty_model(network: Network, bounds: LayerBounds) -> MilpModel:
    return MilpModel(
        cost=np.zeros(0), offset=0.0, col_lower=np.zeros(0), col_upper=np.zeros(0),
        integrality=np.zeros(0, np.int8), A=sp.csr_matrix((0, 0)), row_lower=np.zeros(0),
        row_upper=np.zeros(0), x_cols=np.zeros(0, np.int64), h_cols=[], z_cols=[],
        y_cols=np.zeros(0, np.int64), network=network, bounds=bounds,
    )


def _rows(model: MilpModel, entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]], lo, hi):
    """Add rows given per-row (cols, values) triplets built as flat arrays."""
    r = np.concatenate([e[0] for e in entries])
    c = np.concatenate([e[1] for e in entries])
    v = np.concatenate([e[2] for e in entries])
    n = len(lo)
    model.add_rows(sp.csr_matrix((v, (r, c)), shape=(n, model.n_cols)), lo, hi)


@dataclass
class Layout:
    """Where the backward pass lives in the model, to write a MIP start from a point.

    Attributes
    ----------
    c : numpy.ndarray
        Output weights.
    q : float
        The gradient's norm.
    z_cols : list of numpy.ndarray
        Binary columns per hidden layer.
    lam, mu : list of numpy.ndarray
        Columns of the backward vectors before and after each activation (-1: none, mu = 0).
    g : numpy.ndarray or None
        Columns of the input gradient.
    obj : tuple
        Columns of the norm objective.
    """

    c: np.ndarray
    q: float
    z_cols: list[np.ndarray]
    lam: list[np.ndarray] = field(default_factory=list)     # per hidden layer
    mu: list[np.ndarray] = field(default_factory=list)      # -1: inactive (mu = 0)
    g: np.ndarray | None = None
    obj: tuple = ()


def build_lipschitz_model(network: Network, domain: Domain, bounds: LayerBounds, c: np.ndarray,
                          q: float, realisable: bool = True):
    """The MILP ``max ||grad (c . y)||_q`` (q in {1, inf}).

    Parameters
    ----------
    network : Network
        The network (no clipped ReLU).
    domain : Domain
        The input domain.
    bounds : LayerBounds
        Its neuron bounds.
    c : numpy.ndarray
        Output weights.
    q : float
        1 or inf.
    realisable : bool, optional
        Tie the pattern to an input (exact); False leaves it free (an upper bound only).

    Returns
    -------
    model : MilpModel
        The model.
    g_cols : numpy.ndarray
        Columns of the input gradient.
    layout : Layout
        Where the backward pass lives, for `mip_start`.
    """
    if network.has_clipped:
        raise UnsupportedError("the Lipschitz MIP does not support clipped ReLU layers")
    if realisable:
        model = build_network_model(network, domain, bounds)
        z_cols = [zc.copy() for zc in model.z_cols]
    else:
        model = _empty_model(network, bounds)
        z_cols = []
        for l in range(network.depth):
            L, U = bounds.lower[l][0], bounds.upper[l][0]
            unstable = (L < 0) & (U > 0)
            cols = np.full(L.shape[0], -1, dtype=np.int64)
            k = int(unstable.sum())
            cols[unstable] = model.add_columns(np.zeros(k), np.ones(k), np.ones(k, np.int8))
            z_cols.append(cols)
    lams, (g_lo, g_hi) = gradient_intervals(network, c, bounds)
    layout = Layout(np.asarray(c, dtype=np.float64), q, z_cols)
    mu_next = None  # mu columns of layer l+1
    for l in range(network.depth - 1, -1, -1):
        L, U = bounds.lower[l][0], bounds.upper[l][0]
        lo, hi = lams[l]
        n = L.shape[0]
        lam = model.add_columns(lo, hi)
        if mu_next is not None:
            # lam_l - W_{l+1}^T mu_{l+1} = 0
            W = network.layers[l + 1].W
            keep = mu_next >= 0
            Wt = sp.coo_matrix(W[keep].T)
            entries = [(np.arange(n), lam, np.ones(n)),
                       (Wt.row, mu_next[keep][Wt.col], -Wt.data)]
            _rows(model, entries, np.zeros(n), np.zeros(n))
        inactive = U <= 0
        active = L >= 0
        unstable = ~(inactive | active)
        mu = np.full(n, -1, dtype=np.int64)
        mu[active] = lam[active]
        idx = np.nonzero(unstable)[0]
        k = idx.size
        if k:
            mlo, mhi = np.minimum(lo[idx], 0.0), np.maximum(hi[idx], 0.0)
            mcols = model.add_columns(mlo, mhi)
            mu[idx] = mcols
            z = z_cols[l][idx]
            local = np.arange(k)
            two = np.concatenate([local, local])
            three = np.concatenate([local, local, local])
            # mu - hi z <= 0 ; mu - lo z >= 0
            _rows(model, [(two, np.concatenate([mcols, z]), np.concatenate([np.ones(k), -hi[idx]]))],
                  np.full(k, -np.inf), np.zeros(k))
            _rows(model, [(two, np.concatenate([mcols, z]), np.concatenate([np.ones(k), -lo[idx]]))],
                  np.zeros(k), np.full(k, np.inf))
            # mu - lam - lo z <= -lo ; mu - lam - hi z >= -hi
            cols3 = np.concatenate([mcols, lam[idx], z])
            _rows(model, [(three, cols3, np.concatenate([np.ones(k), -np.ones(k), -lo[idx]]))],
                  np.full(k, -np.inf), -lo[idx])
            _rows(model, [(three, cols3, np.concatenate([np.ones(k), -np.ones(k), -hi[idx]]))],
                  -hi[idx], np.full(k, np.inf))
        layout.lam.insert(0, lam)       # l descends: layer l goes in front
        layout.mu.insert(0, mu)
        mu_next = mu
    d = network.input_dim
    g = model.add_columns(g_lo, g_hi)
    W = network.layers[0].W
    assert mu_next is not None      # the network has a hidden layer
    keep = mu_next >= 0
    Wt = sp.coo_matrix(W[keep].T)
    _rows(model, [(np.arange(d), g, np.ones(d)), (Wt.row, mu_next[keep][Wt.col], -Wt.data)],
          np.zeros(d), np.zeros(d))
    layout.g = g
    layout.obj = _add_norm_objective(model, g, g_lo, g_hi, q)
    model.stats["lipschitz_binaries"] = model.n_binaries
    return model, g, layout


def mip_start(model: MilpModel, layout: Layout, x: np.ndarray) -> np.ndarray:
    """A full column vector for the region of ``x`` (forward pass, backward pass, norm).

    The solver re-checks it; a start that violates a row by more than its tolerance is
    simply ignored, so this only ever helps the primal side.

    Parameters
    ----------
    model : MilpModel
        The Lipschitz model.
    layout : Layout
        Its layout.
    x : numpy.ndarray
        An input point.

    Returns
    -------
    numpy.ndarray
        The column vector.
    """
    net = model.network
    x = np.asarray(x, dtype=np.float64)
    v = model.point_to_columns(x) if model.x_cols.size else np.zeros(model.n_cols)
    pattern = [(g[0] > 0).astype(np.float64) for g in net.preactivations(x[None])]
    for zc, p in zip(layout.z_cols, pattern, strict=True):
        keep = zc >= 0
        v[zc[keep]] = p[keep]
    lam = net.layers[-1].W.T @ layout.c
    for l in range(net.depth - 1, -1, -1):
        v[layout.lam[l]] = lam
        mu = pattern[l] * lam
        cols = layout.mu[l]
        keep = cols >= 0
        v[cols[keep]] = mu[keep]
        lam = net.layers[l].W.T @ mu
    v[layout.g] = lam
    if layout.q == 1.0:
        idx, t, s = layout.obj
        if len(idx):
            v[t] = np.abs(lam[idx])
            v[s] = (lam[idx] >= 0).astype(np.float64)
    else:
        t, wp, wn = layout.obj
        i = int(np.argmax(np.abs(lam)))
        v[t] = abs(lam[i])
        v[wp] = 0.0
        v[wn] = 0.0
        v[wp[i] if lam[i] >= 0 else wn[i]] = 1.0
    return v


def _add_norm_objective(model: MilpModel, g, g_lo, g_hi, q: float) -> tuple:
    model.cost = np.zeros(model.n_cols)
    mag = np.maximum(np.abs(g_lo), np.abs(g_hi))
    d = g.shape[0]
    if q == 1.0:
        pos, neg = g_lo >= 0, g_hi <= 0
        model.cost[g[pos]] = 1.0
        model.cost[g[neg]] = -1.0
        idx = np.nonzero(~(pos | neg))[0]
        k = idx.size
        if k:
            t = model.add_columns(np.zeros(k), mag[idx], cost=np.ones(k))
            s = model.add_columns(np.zeros(k), np.ones(k), np.ones(k, np.int8))
            M = 2.0 * mag[idx]
            local = np.arange(k)
            three = np.concatenate([local, local, local])
            cols = np.concatenate([t, g[idx], s])
            # t - g + M s <= M ; t + g - M s <= 0
            _rows(model, [(three, cols, np.concatenate([np.ones(k), -np.ones(k), M]))],
                  np.full(k, -np.inf), M)
            _rows(model, [(three, cols, np.concatenate([np.ones(k), np.ones(k), -M]))],
                  np.full(k, -np.inf), np.zeros(k))
            return idx, t, s
        return idx, np.zeros(0, np.int64), np.zeros(0, np.int64)
    if q == np.inf:
        G = float(mag.max())
        t = model.add_columns([0.0], [G], cost=np.ones(1))
        wp = model.add_columns(np.zeros(d), np.ones(d), np.ones(d, np.int8))
        wn = model.add_columns(np.zeros(d), np.ones(d), np.ones(d, np.int8))
        M = mag + G
        local = np.arange(d)
        tt = np.full(d, t[0])
        three = np.concatenate([local, local, local])
        # t - g_i + M_i w+_i <= M_i ; t + g_i + M_i w-_i <= M_i ; sum w = 1
        _rows(model, [(three, np.concatenate([tt, g, wp]), np.concatenate([np.ones(d), -np.ones(d), M]))],
              np.full(d, -np.inf), M)
        _rows(model, [(three, np.concatenate([tt, g, wn]), np.concatenate([np.ones(d), np.ones(d), M]))],
              np.full(d, -np.inf), M)
        _rows(model, [(np.zeros(2 * d, np.int64), np.concatenate([wp, wn]), np.ones(2 * d))],
              [1.0], [1.0])
        return t, wp, wn
    raise UnsupportedError("the linear MIP handles q = 1 or inf; use the MIQCQP for the l2 norm")




def solve_l2_scip(model: MilpModel, g_cols: np.ndarray, g_lo, g_hi, time_limit: float | None):
    """``max ||g||_2^2`` over the linear model with SCIP (a nonconvex MIQCQP).

    Parameters
    ----------
    model : MilpModel
        The model of `build_lipschitz_model` (its objective is replaced).
    g_cols : numpy.ndarray
        Columns of the input gradient.
    g_lo, g_hi : numpy.ndarray
        Their bounds.
    time_limit : float or None
        Seconds.

    Returns
    -------
    tuple
        ``(values, objective, bound, status)`` with objective/bound on the squared norm;
        ``bound`` is inf unless SCIP's status guarantees it, ``status`` starts with
        ``"error"`` when SCIP failed.
    """
    from ..milp.backends.scip import TRUSTED_SCIP_STATUSES, import_scip, scip_model

    what = "the l2 Lipschitz constant (a nonconvex MIQCQP; or use solver='gurobi')"
    pyscipopt = import_scip(what)
    m, xs = scip_model(model, what)
    top = float(np.sum(np.maximum(np.abs(g_lo), np.abs(g_hi)) ** 2))
    t = m.addVar(lb=0.0, ub=top)
    m.addCons(t <= pyscipopt.quicksum(xs[j] * xs[j] for j in g_cols))
    m.setObjective(t, "maximize")
    if time_limit is not None and math.isfinite(time_limit):
        m.setParam("limits/time", max(float(time_limit), 0.1))
    try:
        m.optimize()
    except Exception as exc:  # noqa: BLE001 - pyscipopt raises plain Exception on LP errors
        return None, None, math.inf, f"error: {str(exc).strip() or type(exc).__name__}"
    status = m.getStatus()
    # the dual bound counts only after a status whose bound SCIP guarantees
    bound = float(m.getDualbound()) if status in TRUSTED_SCIP_STATUSES else math.inf
    values, objective = None, None
    if m.getNSols() > 0:
        sol = m.getBestSol()
        values = np.array([m.getSolVal(sol, v) for v in xs])
        objective = float(m.getSolObjVal(sol))
    return values, objective, bound, status
