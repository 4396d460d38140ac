"""Batched passes through a network's linear regions, the inner loop of the gradient searches.

Inside a linear region the network is affine: one forward pass gives the slope masks, one
backward pass the gradient of any output rows, one forward pass of a direction the derivative
of every pre-activation along it, and a ratio test the step to the region's first wall. All are
batched over the rows of a matrix (one row per start), so ``ppga`` and ``ppga-lr`` move many
starts for the price of a few matrix products (``benchmarks/PROFILE_local_search.md``).
"""

from __future__ import annotations

import numpy as np

from ..network import Network


def forward_masks(net: Network, X: np.ndarray):
    """One forward pass that also keeps what the other passes need: pre-activations and slopes.

    Parameters
    ----------
    net : Network
        The network.
    X : np.ndarray, shape (n, d)
        Input points, one per row.

    Returns
    -------
    Y : np.ndarray, shape (n, m)
        The outputs.
    G : list of np.ndarray
        Pre-activations per hidden layer, shape (n, n_l).
    S : list of np.ndarray
        Slopes per hidden layer (boolean masks when every slope is 0 or 1, see
        ``Activation.slope``).
    """
    h = X
    G, S = [], []
    for layer in net.layers[:-1]:
        g = h @ layer.W.T + layer.b
        s = layer.act.slope(g)
        h = layer.act.forward(g)
        G.append(g)
        S.append(s)
    last = net.layers[-1]
    return h @ last.W.T + last.b, G, S


def backward(net: Network, S, C: np.ndarray) -> np.ndarray:
    """Gradient of ``C[i] . y`` at each row, given the slope masks ``S``: one backward pass.

    Parameters
    ----------
    net : Network
        The network.
    S : list of np.ndarray
        Slopes per hidden layer at the points (``forward_masks``).
    C : np.ndarray, shape (n, m)
        One output row per point.

    Returns
    -------
    np.ndarray, shape (n, d)
        The gradients (constant inside each point's linear region).
    """
    lam = C @ net.layers[-1].W
    for layer, s in zip(reversed(net.layers[:-1]), reversed(S), strict=True):
        lam = (lam * s) @ layer.W
    return lam


def directional(net: Network, S, D: np.ndarray) -> list[np.ndarray]:
    """Directional derivatives ``dg_l`` of every pre-activation along the rows of ``D``.

    Inside a linear region ``g(x + t u) = g(x) + t dg``, which ``ratio_test`` uses.

    Parameters
    ----------
    net : Network
        The network.
    S : list of np.ndarray
        Slopes per hidden layer at the points (``forward_masks``).
    D : np.ndarray, shape (n, d)
        One direction per point.

    Returns
    -------
    list of np.ndarray
        Per hidden layer, shape (n, n_l).
    """
    out = []
    v = D
    for layer, s in zip(net.layers[:-1], S, strict=True):
        dg = v @ layer.W.T
        out.append(dg)
        v = dg * s
    return out


def ratio_test(net: Network, G, S, dG) -> np.ndarray:
    """Largest step ``t >= 0`` per row before some neuron changes phase: the region's first wall.

    Parameters
    ----------
    net : Network
        The network.
    G : list of np.ndarray
        Pre-activations per hidden layer (``forward_masks``).
    S : list of np.ndarray
        Slopes per hidden layer (unused by the test itself; kept for a uniform call).
    dG : list of np.ndarray
        Their directional derivatives (``directional``).

    Returns
    -------
    np.ndarray, shape (n,)
        ``inf`` where no neuron changes phase along the direction.
    """
    t = np.full(G[0].shape[0], np.inf)
    for layer, g, dg in zip(net.layers[:-1], G, dG, strict=True):
        cand = layer.act.step_to_kink(g, dg)
        t = np.minimum(t, np.min(np.maximum(cand, 0.0), axis=1))
    return t
