"""Input-space splitting: midpoint children, which dimensions may be split, inherited bounds.

Shared by every search that splits the input box (optimisation, verification disjuncts,
Lipschitz constants). Children inherit their parent's neuron bounds, which hold on any sub-box;
they are stored rounded outward to float32 (half the memory on deep frontiers, still sound).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..bounds.core import outward
from ..bounds.node import down32, up32
from .tree import Node, Prior

#: A dimension may be split only while it is at most this many times narrower (relative to the
#: root box) than the node's widest: without the cap a rule can split one dimension forever
#: while the bound waits on another; with it every box shrinks to a point, where CROWN is exact.
MAX_ASPECT = 256.0


def midpoint_children(lo: np.ndarray, hi: np.ndarray, dims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two children per box, split at the middle of dimension ``dims[i]``.

    Parameters
    ----------
    lo, hi : ndarray, shape (K, d)
        The boxes.
    dims : ndarray of int, shape (K,)
        The dimension to split in each box.

    Returns
    -------
    lo2, hi2 : ndarray, shape (2K, d)
        Children ``2i`` (lower half) and ``2i + 1`` (upper half) of box ``i``.
    """
    K = lo.shape[0]
    r = np.arange(K)
    mid = 0.5 * (lo[r, dims] + hi[r, dims])
    lo2 = np.repeat(lo, 2, axis=0)
    hi2 = np.repeat(hi, 2, axis=0)
    hi2[2 * r, dims] = mid
    lo2[2 * r + 1, dims] = mid
    return lo2, hi2


def splittable(widths: np.ndarray, root_width: np.ndarray, max_aspect: float = MAX_ASPECT) -> np.ndarray:
    """Which dimensions a branching rule may split (see ``MAX_ASPECT``).

    Parameters
    ----------
    widths : ndarray, shape (K, d)
        Box widths.
    root_width : ndarray, shape (d,)
        Widths of the root box (dimensions are compared relative to it).
    max_aspect : float

    Returns
    -------
    ndarray of bool, shape (K, d)
    """
    rel = relative_widths(widths, root_width)
    return (widths > 0) & (rel * max_aspect >= np.max(rel, axis=1, keepdims=True))


def relative_widths(widths: np.ndarray, root_width: np.ndarray) -> np.ndarray:
    """Widths relative to the root box's (a zero-width root dimension counts as tiny).

    Parameters
    ----------
    widths : ndarray, shape (K, d)
    root_width : ndarray, shape (d,)

    Returns
    -------
    ndarray, shape (K, d)
    """
    return widths / np.maximum(root_width, 1e-300)


def tie_break(score: np.ndarray, widths: np.ndarray, root_width: np.ndarray) -> np.ndarray:
    """``score`` plus a tiny multiple of the relative width: ties (e.g. a zero linear bound)
    fall back to the widest relative dimension.

    Parameters
    ----------
    score : ndarray, shape (K, d)
    widths : ndarray, shape (K, d)
    root_width : ndarray, shape (d,)

    Returns
    -------
    ndarray, shape (K, d)
    """
    top = np.max(score, axis=1, keepdims=True).clip(1e-300)
    return score + 1e-12 * relative_widths(widths, root_width) * top


def stored_prior(lowers: Sequence[np.ndarray], uppers: Sequence[np.ndarray], i: int) -> Prior:
    """Box ``i``'s neuron bounds, rounded outward to float32, for its children to inherit.

    Parameters
    ----------
    lowers, uppers : sequence of ndarray, shape (B, n_l)
        Pre-activation bounds of a batch of boxes, per hidden layer.
    i : int
        Which box.

    Returns
    -------
    Prior
    """
    return [down32(L[i]) for L in lowers], [up32(U[i]) for U in uppers]


def stack_prior(nodes: Sequence[Node]) -> Prior | None:
    """The inherited neuron bounds of ``nodes`` as float64 batches (one row per node).

    Parameters
    ----------
    nodes : sequence of Node
        All with a prior, or none.

    Returns
    -------
    Prior or None
    """
    first = nodes[0].prior
    if first is None:
        return None
    depth = len(first[0])
    lowers = [np.array([n.prior[0][l] for n in nodes], dtype=np.float64)  # type: ignore[index]
              for l in range(depth)]
    uppers = [np.array([n.prior[1][l] for n in nodes], dtype=np.float64)  # type: ignore[index]
              for l in range(depth)]
    return lowers, uppers


def position(lo: np.ndarray, hi: np.ndarray, A: np.ndarray | None,
             b: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Boxes entirely outside ``A x <= b`` and boxes entirely inside (sound: the min and max of
    ``A x`` over each box rounded outward).

    Parameters
    ----------
    lo, hi : ndarray, shape (B, d)
    A, b : ndarray or None
        Linear input constraints; None for none.

    Returns
    -------
    outside, inside : ndarray of bool, shape (B,)
    """
    B = lo.shape[0]
    if A is None or b is None:
        return np.zeros(B, dtype=bool), np.ones(B, dtype=bool)
    Ap, An = np.maximum(A, 0), np.minimum(A, 0)
    low = lo @ Ap.T + hi @ An.T
    high = hi @ Ap.T + lo @ An.T
    mag = np.abs(lo) @ np.abs(A).T + np.abs(hi) @ np.abs(A).T
    low, high = outward(low, high, mag)
    return np.any(low > b, axis=1), np.all(high <= b, axis=1)
