"""Objectives and output constraints with input terms ``x[i]``, carried as extra network outputs.

Every method handles linear functions of the network outputs only; ``input_form_network``
adds outputs that equal linear forms of the input on a bounded domain, exactly and without a
binary variable, so that ``Problem.build`` can turn ``y[0] - 0.5*x[1]`` into a function of
outputs alone.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .domain import Domain
from .network import Layer, Network


def input_form_network(network: Network, D, domain: Domain) -> Network:
    """``network`` with ``k`` extra outputs ``D @ x`` (``D`` is ``k x n``), exact on ``domain``.

    Each form is carried through the hidden layers by one neuron ``s (D_j x - L_j)``, where
    ``L_j`` is a little below the form's minimum over the box, so the neuron is always active
    (stable: it adds no binary and no branching) and ReLU (or a clipped ReLU, since ``s``
    keeps the carrier below half of the smallest cap) passes it unchanged. This is how an
    objective or an output constraint with input terms becomes one in the outputs only,
    which every method handles.

    Parameters
    ----------
    network : Network
        The user's network.
    D : array_like, shape (k, n)
        One linear form of the input per row.
    domain : Domain
        A bounded domain; the carriers are exact on its box.

    Returns
    -------
    Network
        The same outputs, then the ``k`` forms (``meta["input_forms"] = k``).

    Raises
    ------
    ProblemError
        When the box is unbounded.
    """
    D = np.atleast_2d(np.asarray(D, dtype=np.float64))
    k = D.shape[0]
    if not domain.bounded:
        domain.require_bounded("an objective or output constraint with input terms x[i]")
    lo = np.sum(np.minimum(D * domain.lb, D * domain.ub), axis=1)
    hi = np.sum(np.maximum(D * domain.lb, D * domain.ub), axis=1)
    size = np.abs(D) @ np.maximum(np.abs(domain.lb), np.abs(domain.ub))
    shift = lo - 1e-9 * (1.0 + size)       # margin for round-off: the carrier stays > 0
    # every hidden activation is the identity on [0, top]: keep the carrier below half the top
    tops = [top for layer in network.layers[:-1] if np.isfinite(top := layer.act.identity_window()[1])]
    scale = np.ones(k) if not tops else 0.5 * min(tops) / (hi - shift)
    layers = list(network.layers)
    if len(layers) == 1:
        out = layers[0]
        return _renamed(network, [Layer(np.vstack([out.W, D]), np.concatenate([out.b, np.zeros(k)]), "identity")])
    new = []
    for i, layer in enumerate(layers):
        W, b = layer.W, layer.b
        if i == 0:
            W2 = np.vstack([W, scale[:, None] * D])
            b2 = np.concatenate([b, -scale * shift])
        else:
            W2 = np.zeros((W.shape[0] + k, W.shape[1] + k))
            W2[: W.shape[0], : W.shape[1]] = W
            last = i == len(layers) - 1
            W2[W.shape[0]:, W.shape[1]:] = np.diag(1.0 / scale) if last else np.eye(k)
            b2 = np.concatenate([b, shift if last else np.zeros(k)])
        new.append(replace(layer, W=W2, b=b2))
    return _renamed(network, new)


def _renamed(network: Network, layers) -> Network:
    k = layers[-1].n_out - network.output_dim
    out_names = None
    if network.output_names is not None:
        out_names = (*network.output_names, *(f"input form {j}" for j in range(k)))
    return Network(tuple(layers), network.input_names, out_names, network.source,
                   {**network.meta, "input_forms": k})
