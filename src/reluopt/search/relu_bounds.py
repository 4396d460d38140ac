"""Node bounds for ReLU-split branch and bound: CROWN with split phases, then beta-CROWN.

A node is the root box with some hidden ReLUs fixed to a phase (``splits[j][b, i]``: +1 active,
``g >= 0``; -1 inactive, ``g <= 0``; 0 free). Its sub-domain is the set of box points whose
pre-activations satisfy every split. The bound of ``max C_r . y + e_r`` over it comes in two
steps, batched over nodes (and rows) through the one CROWN kernel (``bounds.crown``):

* **neuron bounds** (``split_bounds``): interval bounds, intersected with the parent's (valid on
  a larger sub-domain), clamped by the splits (``L := max(L, 0)`` active, ``U := min(U, 0)``
  inactive), then CROWN on each node's unstable neurons from the layer after the shallowest new
  split. A clamped neuron's relaxation is its phase's exact line (``h = g`` or ``h = 0``). Every
  bound holds for every point of the node's sub-domain; ``L > U`` therefore proves it empty.
* **objective bound** (``lagrangian_bounds``): for ``beta >= 0`` per split neuron and lower
  slopes ``alpha`` in [0, 1] for the unstable ones, the kernel bounds
  ``C_r . y + e_r + sum_ji beta_ji s_ji g_ji`` over the relaxed network on the box.

Soundness, for ANY ``beta >= 0`` and ``alpha`` in [0, 1] (the optimiser's state is irrelevant):
let ``x`` be in the node's sub-domain. (1) Each neuron bound holds at ``x`` (above), so the true
``(g(x), h(x))`` satisfy every relaxation line: the chord above ``relu`` on ``[L, U]``, the line
``alpha g <= relu(g)`` for any ``alpha`` in [0, 1], the exact ``h = 0`` of an inactive split, and
for an active split ``h <= g`` and ``h >= alpha g`` (``h = g >= 0`` there; ``alpha = 1`` is exact,
a smaller one helps where the relaxation lets ``g`` go negative).
(2) ``s_ji g_ji(x) >= 0`` for every split neuron, hence ``beta_ji s_ji g_ji(x) >= 0`` and
``f_r(x) <= f_r(x) + sum beta s g(x)``. (3) The kernel's back-substitution, with the upper line
where a coefficient is positive and the lower line where it is negative, bounds that sum at
every point satisfying the lines, and its maximum over the box bounds it at ``x``; the result is
rounded outward. So ``max_{sub-domain} f_r <= bound_r``. The optimiser (projected Adam on the
bound, gradients by the envelope rule at the bound's maximiser) only picks ``alpha, beta``; the
reported number is recomputed by the kernel for the chosen ones (``_sound``), and clipping
keeps them in range. An empty sub-domain makes the statement vacuous, so it is fine too.

Constraints (``Constraints``: output rows ``C_out y <= e_out``, input rows ``A x <= b``): the
kernel bounds ``C_r . y + e_r + sum beta s g + mu . (e_out - C_out y) + nu . (b - A x)`` for
multipliers ``mu, nu >= 0`` per node and row, optimised with ``alpha, beta``. Let ``x`` be in the
node's *feasible* sub-domain (the sub-domain above intersected with both constraint sets).
(1) and (3) hold as before: the ``mu`` terms change only the row pushed back through the lines
(``C_r - mu C_out``, a linear function of ``y``), and the ``nu`` terms add ``-nu A`` to the
input coefficients and ``nu . b`` to the constant before the maximum over the box. (2) now
also has ``mu . (e_out - C_out y(x)) >= 0`` and ``nu . (b - A x) >= 0`` at ``x``, so
``f_r(x)`` is at most the Lagrangian there, hence at most the bound: valid for ANY
``mu, nu >= 0``. The round-off of ``C_r - mu C_out`` and of ``nu A`` enters the outward
margin (their magnitudes times ``|y|``'s interval bound and the box's). A Lagrangian bound
that is very low does not prove the node empty: emptiness is left to ``split_bounds``
(``L > U``) and to a status-checked LP (``relu_split``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..bounds.core import outward
from ..bounds.crown import backsubstitute, concretise_upper, relaxation
from ..bounds.ibp import activate_interval, affine_interval
from ..bounds.node import _tighten
from ..network import Network
from .lagrange import Constraints


def split_bounds(net: Network, lo: np.ndarray, hi: np.ndarray, splits: list[np.ndarray], prior=None,
                 start: int = 1, slopes=None) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Pre-activation bounds of every hidden layer on each node's sub-domain.

    Parameters
    ----------
    net : Network
        A ReLU network.
    lo, hi : ndarray, shape (B, d)
        The box of each node.
    splits : list of ndarray
        Per hidden layer, (B, n_j) int8: +1 active, -1 inactive, 0 free.
    prior : tuple of lists or None
        ``(lowers, uppers)`` (B, n_j) valid on each node's sub-domain (the parent's bounds).
    start : int
        CROWN is run on the layers from ``start`` on (the earlier ones keep prior and intervals:
        their bounds do not depend on splits at or after ``start - 1``).
    slopes : list of ndarray or None
        Lower slopes per hidden layer (B, n_j) for the intermediate CROWN passes (e.g. the
        parent's optimised ones); None: ``split_lines``' defaults.

    Returns
    -------
    lowers, uppers : list of ndarray
        Per hidden layer (B, n_j), the splits applied (``L <= U`` enforced on empty nodes).
    empty : ndarray of bool, shape (B,)
        Nodes proven to hold no point (some ``L > U``).
    """
    lowers: list[np.ndarray] = []
    uppers: list[np.ndarray] = []
    lines: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    empty = np.zeros(lo.shape[0], dtype=bool)
    h_lo, h_hi = lo, hi
    for k, layer in enumerate(net.hidden_layers):
        L, U = affine_interval(layer, h_lo, h_hi)
        if prior is not None:
            L = np.maximum(L, prior[0][k])
            U = np.minimum(U, prior[1][k])
        S = splits[k]
        L = np.where(S > 0, np.maximum(L, 0.0), L)
        U = np.where(S < 0, np.minimum(U, 0.0), U)
        if k >= max(start, 1):
            _tighten(net, k, layer, L, U, lo, hi, lines)
        empty |= np.any(L > U, axis=1)
        L = np.minimum(L, U)
        lowers.append(L)
        uppers.append(U)
        lines.append(split_lines(layer, L, U, S, slopes[k] if slopes is not None else None))
        h_lo, h_hi = activate_interval(layer, L, U)
    return lowers, uppers, empty


def split_lines(layer, L: np.ndarray, U: np.ndarray, S: np.ndarray, alpha=None):
    """The relaxation lines of a layer on a node: CROWN's, except that an active split neuron's
    lower line is ``alpha g`` (``alpha`` in [0, 1], valid as ``g >= 0`` on the sub-domain; by
    default 0, like an unstable neuron with ``U <= -L``): its upper line ``h <= g`` stays exact.

    Parameters
    ----------
    layer : Layer
    L, U : ndarray, shape (B, n)
        Neuron bounds with the splits applied.
    S : ndarray, shape (B, n)
        The splits (+1 active, -1 inactive, 0 free).
    alpha : ndarray or None
        Lower slopes of free and active-split neurons (None: CROWN's adaptive choice, 0 on
        active splits).

    Returns
    -------
    tuple
        ``(a_lo, b_lo, a_up, b_up)``, each (B, n).
    """
    a_lo, b_lo, a_up, b_up = relaxation(layer, L, U, alpha)
    a_act = 0.0 if alpha is None else np.clip(alpha, 0.0, 1.0)
    return np.where(S > 0, a_act, a_lo), b_lo, a_up, b_up


@dataclass
class Bounded:
    """The objective bounds of a batch of nodes (``lagrangian_bounds``).

    Parameters
    ----------
    upper : ndarray, shape (B, s)
        Certified upper bound per node and objective row.
    x_star : ndarray, shape (B, s, d)
        Box points maximising each row's linear bound (candidates for the incumbent).
    alpha, beta : list of ndarray
        Per hidden layer (B, s, n_j): the slopes and multipliers used (warm starts).
    lam_h : list of ndarray
        Per hidden layer (B, s, n_j): the coefficients of ``h_j`` in the back-substitution of
        each row (branching scores).
    mu, nu : ndarray or None
        (B, s, k) and (B, s, p): the constraints' multipliers used (None without constraints).
    """

    upper: np.ndarray
    x_star: np.ndarray
    alpha: list[np.ndarray]
    beta: list[np.ndarray]
    lam_h: list[np.ndarray]
    mu: np.ndarray | None = None
    nu: np.ndarray | None = None


def _rep(a: np.ndarray, s: int) -> np.ndarray:
    return np.repeat(a, s, axis=0)


def _value_grad(net, lo, hi, spec, fixed, alpha, beta, grads: bool = True, x_terms=None):
    """Unrounded bounds of the rows ``spec`` (N, m) and their gradients in ``alpha, beta``.

    ``fixed[j] = (a_lo0, a_up, b_up, free, sgn)`` (each (N, n_j)). At the box corner ``x*``
    maximising the linear bound, the bound is the relaxed network's value there, so its
    derivative is ``lam_ji g_ji(x*)`` in a used lower slope and ``s_ji g_ji(x*)`` in ``beta_ji``.
    ``x_terms`` (N, d) is subtracted from the input coefficients (``nu A``). Also returned: the
    relaxed output ``y`` at ``x*`` (the derivative in the row; None without ``grads``) and the
    input coefficients before ``x_terms``.
    """
    K = net.depth
    out = net.layers[K]
    lam = spec @ out.W
    const = spec @ out.b
    saved: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [(spec, spec, spec)] * K   # filled top-down
    for j in range(K - 1, -1, -1):
        a_lo0, a_up, b_up, free, sgn = fixed[j]
        a_lo = np.where(free, alpha[j], a_lo0)
        pos = lam > 0
        lam_g = np.where(pos, lam * a_up, lam * a_lo) + beta[j] * sgn
        const = const + np.einsum("nk,nk->n", np.where(pos, lam, 0.0), b_up) + lam_g @ net.layers[j].b
        saved[j] = (lam, pos, a_lo)
        lam = lam_g @ net.layers[j].W
    lam_x = lam
    if x_terms is not None:
        lam = lam - x_terms
    x_star = np.where(lam >= 0, hi, lo)
    value = np.einsum("nd,nd->n", lam, x_star) + const
    ga: list[np.ndarray] = []
    gb: list[np.ndarray] = []
    lam_h: list[np.ndarray] = []
    if not grads:
        return value, ga, gb, x_star, lam_h, None, lam_x
    h = x_star
    for j in range(K):
        a_lo0, a_up, b_up, free, sgn = fixed[j]
        lam_j, pos, a_lo = saved[j]
        g = h @ net.layers[j].W.T + net.layers[j].b
        ga.append(np.where(~pos & free, lam_j * g, 0.0))
        gb.append(sgn * g)
        lam_h.append(lam_j)
        h = np.where(pos, a_up * g + b_up, a_lo * g)
    return value, ga, gb, x_star, lam_h, h @ out.W.T + out.b, lam_x


def _sound(net, lo, hi, lowers, uppers, spec, e, fixed, alpha, beta, cons=None, mu=None, nu=None):
    """Outward-rounded bounds of ``spec_n . y + e_n + sum beta s g`` (the kernel; any params),
    plus the constraints' terms ``mu . (e_out - C_out y) + nu . (b - A x)`` with ``cons``.

    The lines are ``split_lines``' for the slopes ``alpha`` (clipped to [0, 1]), built from the
    parts in ``fixed`` that do not depend on them."""
    lines = [(np.where(free, np.clip(a, 0.0, 1.0), a_lo0), np.zeros_like(a_lo0), a_up, b_up)
             for (a_lo0, a_up, b_up, free, _), a in zip(fixed, alpha, strict=True)]
    terms = [(b * f[4])[:, None, :] for b, f in zip(beta, fixed, strict=True)]
    y_lo, y_hi = affine_interval(net.layers[-1], *activate_interval(net.hidden_layers[-1], lowers[-1], uppers[-1]))
    if cons is None:
        lam, const, mag, _ = backsubstitute(net, net.depth, spec[:, None, :], lines, g_terms=terms)
    else:
        row, x_terms, c0 = cons.terms(spec, mu, nu)
        lam, const, mag, _ = backsubstitute(net, net.depth, row[:, None, :], lines, g_terms=terms)
        y_abs = np.maximum(np.abs(y_lo), np.abs(y_hi))
        scale = np.maximum(np.abs(lo), np.abs(hi))
        # the round-off of the row and of nu A: their magnitudes times |y| and |x|
        extra = (np.einsum("nm,nm->n", np.abs(spec) + np.abs(mu) @ np.abs(cons.C), y_abs)
                 + np.einsum("nd,nd->n", np.abs(nu) @ np.abs(cons.A), scale)
                 + np.abs(mu) @ np.abs(cons.e) + np.abs(nu) @ np.abs(cons.b))
        lam = lam - x_terms[:, None, :]
        const = const + c0[:, None]
        mag = mag + extra[:, None]
    value, x_star, magnitude = concretise_upper(lam, const, mag, lo, hi)
    _, upper = outward(value[:, 0] + e, value[:, 0] + e, magnitude[:, 0] + np.abs(e))
    # never looser than the interval bounds of the rows (the Lagrangian terms are >= 0 there)
    ibp = np.einsum("nm,nm->n", np.maximum(spec, 0), y_hi) + np.einsum("nm,nm->n", np.minimum(spec, 0), y_lo) + e
    mag_ibp = np.einsum("nm,nm->n", np.abs(spec), np.maximum(np.abs(y_lo), np.abs(y_hi))) + np.abs(e)
    _, ibp = outward(ibp, ibp, mag_ibp)
    return np.minimum(upper, ibp), x_star[:, 0, :]


def _setup(net, lo, lowers, uppers, splits, C, alpha, beta):
    """The rows of every node (``N = B s`` of them), the slope-independent parts of the lines
    and the clipped warm starts, for ``lagrangian_bounds`` and ``estimate_bounds``."""
    B = lo.shape[0]
    s = C.shape[0]
    N = B * s
    fixed, a, bt = [], [], []
    for j, layer in enumerate(net.hidden_layers):
        L, U = _rep(lowers[j], s), _rep(uppers[j], s)
        sgn = _rep(splits[j], s).astype(np.float64)
        a_lo0, _, a_up, b_up = split_lines(layer, L, U, sgn)
        free = ((L < 0) & (U > 0)) | (sgn > 0)      # active splits: h >= alpha g too
        fixed.append((a_lo0, a_up, b_up, free, sgn))
        a.append(a_lo0.copy() if alpha is None else np.clip(alpha[j].reshape(N, -1).astype(np.float64), 0, 1))
        b0 = np.zeros_like(a_lo0) if beta is None else beta[j].reshape(N, -1).astype(np.float64)
        bt.append(np.where(sgn != 0, np.maximum(b0, 0.0), 0.0))
    return np.tile(C, (B, 1)), fixed, a, bt


def estimate_bounds(net: Network, lo: np.ndarray, hi: np.ndarray, lowers, uppers, splits, C: np.ndarray,
                    e: np.ndarray, alpha=None, beta=None) -> np.ndarray:
    """The beta-CROWN value of each node's rows at the given slopes, unrounded: a branching
    score (FSB), not a bound (``lagrangian_bounds`` certifies).

    Parameters
    ----------
    net : Network
    lo, hi : ndarray, shape (B, d)
    lowers, uppers, splits : list of ndarray
        As in ``lagrangian_bounds``.
    C, e : ndarray, shapes (s, m) and (s,)
    alpha, beta : list of ndarray or None
        Per hidden layer (B, s, n_j), as in ``lagrangian_bounds``.

    Returns
    -------
    ndarray, shape (B, s)
        Equal to ``lagrangian_bounds(..., steps=0).upper`` up to round-off when that is not
        cut by the interval bound.
    """
    s = C.shape[0]
    spec, fixed, a, bt = _setup(net, lo, lowers, uppers, splits, C, alpha, beta)
    value = _value_grad(net, _rep(lo, s), _rep(hi, s), spec, fixed, a, bt, grads=False)[0]
    return (value + np.tile(e, lo.shape[0])).reshape(lo.shape[0], s)


def estimate_splits(net: Network, lo: np.ndarray, hi: np.ndarray, lowers, uppers, splits, C: np.ndarray,
                    e: np.ndarray, alpha, beta, layer: np.ndarray, neuron: np.ndarray, cons=None, mu=None,
                    nu=None) -> np.ndarray:
    """``estimate_bounds`` of both children of each (parent, candidate neuron), built from the
    parents' lines: a child's lines are its parent's except at the split neuron (active:
    ``h = g`` above, a free slope below; inactive: ``h = 0``), so the relaxation is computed
    once per parent rather than once per child. A branching score, not a bound.

    Parameters
    ----------
    net : Network
    lo, hi : ndarray, shape (K, d)
        The parents' boxes.
    lowers, uppers, splits : list of ndarray
        The parents' neuron bounds and splits, per hidden layer (K, n_j).
    C, e : ndarray, shapes (s, m) and (s,)
    alpha, beta : list of ndarray
        The parents' slopes and multipliers, per hidden layer (K, s, n_j).
    layer, neuron : ndarray of int, shape (K, c)
        The candidate neurons of each parent (unstable ones).
    cons : Constraints or None
        The problem's constraints: the parents' Lagrangian terms are kept in the scores.
    mu, nu : ndarray or None
        The parents' multipliers, (K, s, k) and (K, s, p) (None: zeros).

    Returns
    -------
    ndarray, shape (K, c, 2)
        The smallest row estimate of the active (0) and inactive (1) child.
    """
    K, c = layer.shape
    s = C.shape[0]
    spec, fixed, a, bt = _setup(net, lo, lowers, uppers, splits, C, alpha, beta)
    reps = 2 * c                                      # each parent row becomes 2c child rows
    rows = np.arange(K * reps * s).reshape(K, c, 2, s)
    pos = np.broadcast_to(np.array([1.0, -1.0])[None, None, :, None], rows.shape)
    lay = np.broadcast_to(layer[:, :, None, None], rows.shape)
    neu = np.broadcast_to(neuron[:, :, None, None], rows.shape)

    def grow(x):      # (K s, n) -> (K 2c s, n): rows ordered (parent, candidate, phase, row)
        return np.repeat(x.reshape(K, 1, s, -1), reps, axis=1).reshape(K * reps * s, -1)
    child_fixed, child_a, child_b = [], [], []
    for j, (a_lo0, a_up, b_up, free, sgn) in enumerate(fixed):
        parts = [grow(x) for x in (a_lo0, a_up, b_up, free, sgn)]
        hit = lay == j
        r, n, p = rows[hit], neu[hit], pos[hit]
        parts[0][r, n] = 0.0
        parts[1][r, n] = np.where(p > 0, 1.0, 0.0)
        parts[2][r, n] = 0.0
        parts[3][r, n] = p > 0
        parts[4][r, n] = p
        child_fixed.append(tuple(parts))
        child_a.append(grow(a[j]))
        child_b.append(grow(bt[j]))
    lo_n = np.repeat(lo, reps * s, axis=0)
    hi_n = np.repeat(hi, reps * s, axis=0)
    spec_n, x_terms, c0 = np.tile(C, (K * reps, 1)), None, 0.0
    if cons is not None:
        def grow_m(x):      # the same for multipliers (their width may be 0)
            return np.repeat(x.reshape(K, 1, s, x.shape[1]), reps, axis=1).reshape(K * reps * s, x.shape[1])
        spec_n, x_terms, c0 = cons.terms(spec_n, grow_m(cons.start(mu, K * s, "mu")),
                                         grow_m(cons.start(nu, K * s, "nu")))
    value = _value_grad(net, lo_n, hi_n, spec_n, child_fixed, child_a, child_b, grads=False, x_terms=x_terms)[0]
    return np.min((value + c0 + np.tile(e, K * reps)).reshape(K, c, 2, s), axis=3)


def lagrangian_bounds(net: Network, lo: np.ndarray, hi: np.ndarray, lowers, uppers, splits, C: np.ndarray,
                      e: np.ndarray, alpha=None, beta=None, *, steps: int = 5, lr: float = 0.1,
                      cons: Constraints | None = None, mu=None, nu=None, scores: bool = True) -> Bounded:
    """Certified bounds of ``C_r . y + e_r`` on each node's (feasible) sub-domain, by beta-CROWN.

    Parameters
    ----------
    net : Network
    lo, hi : ndarray, shape (B, d)
        The nodes' boxes.
    lowers, uppers : list of ndarray
        ``split_bounds`` of the nodes (splits applied).
    splits : list of ndarray
        Per hidden layer (B, n_j) in {-1, 0, +1}.
    C, e : ndarray, shapes (s, m) and (s,)
        The objective rows.
    alpha, beta : list of ndarray or None
        Warm starts per hidden layer (B, s, n_j); None: CROWN's adaptive slopes and zero.
    steps : int
        Projected Adam steps (0: the warm start as it is).
    lr : float
        Step of ``alpha``; ``beta``'s is ``lr`` times the magnitude of its neuron's coefficient,
        ``mu``'s and ``nu``'s ``lr`` times the row's magnitude over the constraint's.
    cons : Constraints or None
        The problem's constraints: their multipliers are optimised too.
    mu, nu : ndarray or None
        Warm starts (B, s, k) and (B, s, p) (None: zeros).
    scores : bool
        False skips recomputing ``lam_h`` at the tuned parameters (they are then the warm
        start's): callers that do not branch on them save a pass.

    Returns
    -------
    Bounded
        Valid for any optimiser state: see the module docstring.
    """
    B, d = lo.shape
    s = C.shape[0]
    er = np.tile(e, B)
    lo_n, hi_n = _rep(lo, s), _rep(hi, s)
    spec, fixed, a, bt = _setup(net, lo, lowers, uppers, splits, C, alpha, beta)
    N = spec.shape[0]
    nh = len(a)
    mult: list[np.ndarray] = []        # [mu, nu] with constraints
    if cons is not None:
        mult = [cons.start(mu, N, "mu"), cons.start(nu, N, "nu")]
    best_a = [x.copy() for x in a]
    best_b = [x.copy() for x in bt]
    best_m = [x.copy() for x in mult]
    best = np.full(N, np.inf)
    m1 = [np.zeros_like(x) for x in a + bt + mult]
    m2 = [np.zeros_like(x) for x in a + bt + mult]
    scale: list[np.ndarray] = []
    lam_h: list[np.ndarray] = []

    def run(a, bt, mult):
        if cons is None:
            return (*_value_grad(net, lo_n, hi_n, spec, fixed, a, bt), 0.0)
        row, x_terms, c0 = cons.terms(spec, mult[0], mult[1])
        return (*_value_grad(net, lo_n, hi_n, row, fixed, a, bt, x_terms=x_terms), c0)

    for it in range(steps + 1):
        value, ga, gb, x_star, lh, y, lam_x, c0 = run(a, bt, mult)
        value = value + c0
        better = value < best
        if it == 0 or np.any(better):
            best = np.where(better, value, best)
            for j in range(nh):
                best_a[j] = np.where(better[:, None], a[j], best_a[j])
                best_b[j] = np.where(better[:, None], bt[j], best_b[j])
            for q in range(len(mult)):
                best_m[q] = np.where(better[:, None], mult[q], best_m[q])
        if it == 0:
            lam_h = lh
            scale = [np.abs(x) + 1e-3 * (np.max(np.abs(x), axis=1, keepdims=True) + 1e-12) for x in lh]
            if cons is not None:      # a multiplier's natural size: the row's magnitude over the constraint's
                scale.append(np.abs(spec).sum(axis=1, keepdims=True) / (np.abs(cons.C).sum(axis=1) + 1e-12))
                scale.append(np.abs(lam_x).sum(axis=1, keepdims=True) / (np.abs(cons.A).sum(axis=1) + 1e-12))
        if it == steps:
            break
        params, grad = a + bt + mult, ga + gb
        if cons is not None:
            grad = grad + [cons.e - y @ cons.C.T, cons.b - x_star @ cons.A.T]
        for q in range(len(params)):
            m1[q] = 0.9 * m1[q] + 0.1 * grad[q]
            m2[q] = 0.999 * m2[q] + 0.001 * grad[q] ** 2
            step = lr * (m1[q] / (1 - 0.9 ** (it + 1))) / (np.sqrt(m2[q] / (1 - 0.999 ** (it + 1))) + 1e-12)
            if q >= nh:
                step = step * scale[q - nh]
            params[q] = params[q] - step
        a = [np.clip(x, 0.0, 1.0) for x in params[:nh]]
        bt = [np.where(f[4] != 0, np.maximum(x, 0.0), 0.0) for x, f in zip(params[nh:2 * nh], fixed, strict=True)]
        mult = [np.maximum(x, 0.0) for x in params[2 * nh:]]
    Ls = [_rep(L, s) for L in lowers]
    Us = [_rep(U, s) for U in uppers]
    mu_b, nu_b = (best_m[0], best_m[1]) if cons is not None else (None, None)
    upper, x_star = _sound(net, lo_n, hi_n, Ls, Us, spec, er, fixed, best_a, best_b, cons, mu_b, nu_b)
    if steps > 0 and scores:
        lam_h = run(best_a, best_b, best_m)[4]
    return Bounded(upper.reshape(B, s), x_star.reshape(B, s, d), [x.reshape(B, s, -1) for x in best_a],
                   [x.reshape(B, s, -1) for x in best_b], [x.reshape(B, s, -1) for x in lam_h],
                   None if mu_b is None else mu_b.reshape(B, s, mu_b.shape[1]),
                   None if nu_b is None else nu_b.reshape(B, s, nu_b.shape[1]))
