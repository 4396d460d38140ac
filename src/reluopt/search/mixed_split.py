"""Combined splitting for ReLU-split branch and bound: ``bab-relu`` with ``branching="fsb-mixed"``
or ``"input-first"``.

A ``ReluSplit`` node is a box with some ReLUs fixed to a phase. With these rules each popped
node is split in one of two ways, chosen per node by the same cheap child score:

* **ReLU split** (as ``fsb``): the best candidate neuron by FSB, scored by ``estimate_splits``
  (the parent's lines patched at the neuron);
* **input split**: halve one input dimension of the node's box; the children keep the parent's
  ReLU splits. ``input_split_scores`` takes the ``INPUT_CANDIDATES`` dimensions (among those
  ``boxes.splittable`` allows) with the most first-layer relaxation slack in reach, and scores
  both halves of each: neuron bounds by interval arithmetic on the half box, intersected with
  the parent's and clamped by the splits (no CROWN pass), then the beta-CROWN value of the rows
  at the parent's slopes and multipliers (``estimate_bounds``).

**The rule**: a split's gain is the node's own estimate (same slopes, multipliers and neuron
bounds) minus its worse child's (higher is better; among input dimensions, ties go to the
better child). The node halves its box when ``w`` times the best input split's gain exceeds
the best ReLU split's gain, else it splits the ReLU (``choose_input``); ``w`` is ``MIXED``'s:
``fsb-mixed`` weighs the gains (``w = INPUT_GAIN_WEIGHT``), ``input-first`` halves the box
whenever that gains anything (``w`` infinite) and splits ReLUs only inside boxes where no
halving moves the estimate. The weight is there because the cheap score undervalues input
splits: an input child's deeper neuron bounds are re-tightened by CROWN when it is bounded,
which the score leaves out, and halving keeps paying off further down the tree. Scores only
rank splits: they are unrounded and never bounds. The chosen children are bounded like every
other node, by ``split_bounds`` on their own boxes and splits (input children from the first
hidden layer on, with the parent's neuron bounds as prior) and ``lagrangian_bounds``.

**Soundness.** An input split keeps the invariant "a node's bound holds on its sub-domain and
the open and retired nodes' sub-domains cover the root box": the two halves cover the parent's
box, so the children's sub-domains (half box and the parent's splits) cover the parent's, and
each is a subset of it, so the parent's neuron bounds are valid priors there and the child's
bound (computed on its actual box and splits) holds on it.
"""

from __future__ import annotations

import numpy as np

from ..network import Network
from .boxes import midpoint_children, splittable
from .relu_bounds import estimate_bounds, split_bounds

#: ``fsb-mixed`` halves the box when this many times the input split's estimated gain beats the
#: ReLU split's (see the module docstring; measured in benchmarks/results/relu_split.md, "Issue
#: 15, round 3": at 1 a 10-input net took almost only ReLU splits and its bound lagged input
#: splitting's, at 10 a 30-input net took half input splits and lagged ReLU splitting's).
INPUT_GAIN_WEIGHT = 5.0

#: Input dimensions per node scored by child estimates (``input_split_scores``).
INPUT_CANDIDATES = 3

#: The combined branching rules of ``ReluSplit`` and their input-gain weights.
MIXED = {"fsb-mixed": INPUT_GAIN_WEIGHT, "input-first": np.inf}


def choose_input(input_gain: np.ndarray, relu_gain: np.ndarray, weight: float) -> np.ndarray:
    """Which nodes take their input split rather than their ReLU split (see the module docstring).

    Parameters
    ----------
    input_gain, relu_gain : ndarray, shape (K,)
        Estimated gains (node estimate minus worse child's) of the best split of each kind.
    weight : float
        How many times an input gain counts (``inf``: any positive input gain wins).

    Returns
    -------
    ndarray of bool, shape (K,)
    """
    if np.isinf(weight):
        return input_gain > 0
    return weight * input_gain > relu_gain


def input_split_scores(net: Network, lo: np.ndarray, hi: np.ndarray, prior, splits: list[np.ndarray],
                       C: np.ndarray, e: np.ndarray, alpha, beta, lam0: np.ndarray, root_width: np.ndarray,
                       k: int = INPUT_CANDIDATES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The best input dimension to halve per node, its score and the node's own estimate.

    The ``k`` candidate dimensions per node are those where ``sum_n |lam0_n W0_ni| w_i`` over the
    unstable first-layer neurons ``n`` is largest (how much of the relaxation's slack a cut of
    dimension ``i`` can remove); only they are scored by child estimates.

    Parameters
    ----------
    net : Network
        A ReLU network.
    lo, hi : ndarray, shape (K, d)
        The nodes' boxes.
    prior : tuple of lists
        ``(lowers, uppers)`` of the nodes, per hidden layer (K, n_j), splits applied.
    splits : list of ndarray
        Per hidden layer (K, n_j) in {-1, 0, +1}.
    C, e : ndarray, shapes (s, m) and (s,)
        The objective rows.
    alpha, beta : list of ndarray
        The nodes' slopes and multipliers, per hidden layer (K, s, n_j).
    lam0 : ndarray, shape (K, n_0)
        The nodes' coefficients of the first hidden layer's outputs in their bound.
    root_width : ndarray, shape (d,)
        Widths of the root box (``boxes.splittable`` caps the aspect ratio).
    k : int
        Candidate dimensions scored per node.

    Returns
    -------
    dims : ndarray of int, shape (K,)
        The candidate whose worse half has the lowest estimate.
    worst : ndarray, shape (K,)
        That estimate (a ranking score, not a bound; ``inf`` when no dimension may be split,
        ``-inf`` when both halves are proven empty).
    parent : ndarray, shape (K,)
        The same estimate of the node itself (its slopes, multipliers and neuron bounds).
    """
    K, d = lo.shape
    width = hi - lo
    L0, U0 = prior[0][0], prior[1][0]
    slack = np.abs(lam0) * ((L0 < 0) & (U0 > 0))
    proxy = (slack @ np.abs(net.hidden_layers[0].W)) * width
    ok = splittable(width, root_width)
    proxy = np.where(ok, proxy + 1e-12 * width, -np.inf)
    c = min(k, d)
    cand = np.argsort(-proxy, axis=1)[:, :c]                       # (K, c)
    lo2, hi2 = midpoint_children(np.repeat(lo, c, axis=0), np.repeat(hi, c, axis=0), cand.reshape(-1))

    def rep(x: np.ndarray) -> np.ndarray:     # parent -> its 2c children (candidate, half)
        return np.repeat(x, 2 * c, axis=0)
    S2 = [rep(S) for S in splits]
    lowers, uppers, empty = split_bounds(net, lo2, hi2, S2, ([rep(L) for L in prior[0]], [rep(U) for U in prior[1]]),
                                         start=net.depth)       # interval arithmetic and the prior only
    est = estimate_bounds(net, lo2, hi2, lowers, uppers, S2, C, e, [rep(a) for a in alpha], [rep(b) for b in beta])
    parent = np.min(estimate_bounds(net, lo, hi, prior[0], prior[1], splits, C, e, alpha, beta), axis=1)
    v = np.where(empty, -np.inf, np.min(est, axis=1))
    worst = np.maximum(v[0::2], v[1::2]).reshape(K, c)
    best = np.minimum(v[0::2], v[1::2]).reshape(K, c)
    valid = np.isfinite(np.take_along_axis(proxy, cand, axis=1))
    score = np.where(valid, worst + 1e-9 * np.where(np.isfinite(best), best, 0.0), np.inf)
    pick = np.argmin(score, axis=1)
    r = np.arange(K)
    return cand[r, pick], np.where(score[r, pick] == np.inf, np.inf, worst[r, pick]), parent


def halve(lo: np.ndarray, hi: np.ndarray, dims: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The children's boxes: two copies of each parent's, the pairs of ``rows`` halved.

    Parameters
    ----------
    lo, hi : ndarray, shape (K, d)
        The parents' boxes.
    dims : ndarray of int, shape (K,)
        The dimension to halve (used on ``rows`` only).
    rows : ndarray of bool, shape (K,)
        Which parents take an input split.

    Returns
    -------
    lo2, hi2 : ndarray, shape (2K, d)
        Children ``2k`` and ``2k + 1`` of parent ``k`` (lower and upper half where halved).
    """
    lo2, hi2 = np.repeat(lo, 2, axis=0), np.repeat(hi, 2, axis=0)
    idx = np.nonzero(rows)[0]
    if idx.size:
        a, b = midpoint_children(lo[idx], hi[idx], dims[idx])
        ch = (2 * idx[:, None] + np.array([0, 1])[None, :]).reshape(-1)
        lo2[ch], hi2[ch] = a, b
    return lo2, hi2


def grouped_split_bounds(net: Network, lo: np.ndarray, hi: np.ndarray, splits: list[np.ndarray], prior,
                         groups: list[tuple[np.ndarray, int]]):
    """``split_bounds`` of a batch of children, each group of rows with its own CROWN start.

    Parameters
    ----------
    net : Network
    lo, hi : ndarray, shape (B, d)
    splits : list of ndarray
        Per hidden layer (B, n_j).
    prior : tuple of lists
        ``(lowers, uppers)`` per hidden layer (B, n_j), valid on each child's sub-domain.
    groups : list of (ndarray of int, int)
        Row indices and the ``start`` for them (the rows of all groups cover the batch).

    Returns
    -------
    lowers, uppers : list of ndarray
    empty : ndarray of bool
        As ``split_bounds``.
    """
    lowers = [np.empty_like(L) for L in prior[0]]
    uppers = [np.empty_like(U) for U in prior[1]]
    empty = np.zeros(lo.shape[0], dtype=bool)
    for idx, start in groups:
        if idx.size == 0:
            continue
        Ls, Us, em = split_bounds(net, lo[idx], hi[idx], [S[idx] for S in splits],
                                  ([L[idx] for L in prior[0]], [U[idx] for U in prior[1]]), start=start)
        for j in range(len(lowers)):
            lowers[j][idx], uppers[j][idx] = Ls[j], Us[j]
        empty[idx] = em
    return lowers, uppers, empty
