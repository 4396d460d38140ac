"""Shared pieces of the Lipschitz computations: norms, targets, witnesses.

The local Lipschitz constant of ``f(x) = c . y(x)`` over a domain, for an input norm ``p``,
is ``max ||grad f(x)||_q`` over the linear regions realised in the domain, ``q`` the dual
norm of ``p``. On a region the gradient is constant, so a lower bound needs a point strictly
inside a region (never at a kink, where the gradient is not defined).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ProblemError, UnsupportedError
from ..network import Network
from ..problem import Domain, Problem

NORMS = {"1": 1.0, "2": 2.0, "inf": np.inf}
DUAL = {1.0: np.inf, 2.0: 2.0, np.inf: 1.0}

#: A point counts as strictly inside its region when every hidden pre-activation is at least
#: this far from its kink, relative to the layer's scale.
INTERIOR_TOL = 1e-9


def parse_norm(norm) -> float:
    """The input norm p as a float, from the spellings users type.

    Parameters
    ----------
    norm : int, float or str
        ``1``, ``2``, ``inf`` or their string forms (``"l1"``, ``"linf"``, ...).

    Returns
    -------
    float
        1.0, 2.0 or inf.

    Raises
    ------
    ProblemError
        Any other norm.
    """
    key = str(norm).strip().lower()
    if key in ("infinity", "linf", "l-inf", "np.inf"):
        key = "inf"
    key = {"1.0": "1", "2.0": "2", "l1": "1", "l2": "2"}.get(key, key)
    if key not in NORMS:
        raise ProblemError(f"norm must be 1, 2 or inf, got {norm!r}")
    return NORMS[key]


def dual_norm(p: float) -> float:
    """The dual norm q of p (``1/p + 1/q = 1``), in which gradients are measured.

    Parameters
    ----------
    p : float
        1.0, 2.0 or inf.

    Returns
    -------
    float
        inf, 2.0 or 1.0.
    """
    return DUAL[p]


def vector_norm(v: np.ndarray, q: float) -> np.ndarray:
    """Row-wise q-norm of ``v``.

    Parameters
    ----------
    v : numpy.ndarray
        Shape (n, d) (or (d,)).
    q : float
        The norm.

    Returns
    -------
    numpy.ndarray
        Shape (n,).
    """
    return np.linalg.norm(np.atleast_2d(v), ord=q, axis=1)


@dataclass(frozen=True)
class Target:
    """The functions whose Lipschitz constant is wanted: the rows ``C_k . y + e_k`` of a
    problem's ``MaxMin`` objective, over the problem's input domain.

    The same problem type that optimisation and verification use (a network, a domain, rows
    of the outputs). With several rows ``C`` the constant is that of the vector map
    ``x -> C y(x)``: for p = inf the largest of the rows' l1 gradient norms (the inf -> inf
    operator norm), for p = 2 the largest spectral norm of ``C J(x)`` (l2 -> l2, `spectral`);
    for p = 1 the largest of the rows' constants.

    Parameters
    ----------
    problem : Problem
        Network, bounded domain (with any ``A x <= b``) and a ``MaxMin`` objective.
    p : float
        Input norm (1, 2 or inf); gradients are measured in the dual norm ``q``.
    labels : tuple of str
        One name per row, for reports.
    """

    problem: Problem
    p: float
    labels: tuple[str, ...] = field(default=())

    @property
    def network(self) -> Network:
        """The network."""
        return self.problem.network

    @property
    def domain(self) -> Domain:
        """The input domain."""
        return self.problem.domain

    @property
    def rows(self) -> np.ndarray:
        """The output rows, shape (k, m)."""
        return self.problem.rows()[0]

    @property
    def q(self) -> float:
        """The dual norm of ``p``, in which a row's gradient is measured."""
        return dual_norm(self.p)

    @property
    def spectral(self) -> bool:
        """The l2 -> l2 constant of several rows: the largest spectral norm of ``C J(x)``."""
        return self.p == 2.0 and self.problem.rows()[0].shape[0] > 1

    def gradients(self, x: np.ndarray) -> np.ndarray:
        """Gradients of every row at some points.

        Parameters
        ----------
        x : numpy.ndarray
            Points, shape (n, d).

        Returns
        -------
        numpy.ndarray
            Shape (k, n, d).
        """
        return np.stack([self.network.gradient(x, c) for c in self.rows])

    def norms(self, x: np.ndarray) -> np.ndarray:
        """The constant's local value at each point (a lower bound where the point is interior).

        The largest gradient norm over the rows, or, when `spectral`, the spectral norm of
        the rows' Jacobian ``C J(x)``.

        Parameters
        ----------
        x : numpy.ndarray
            Points, shape (n, d) (or one point).

        Returns
        -------
        numpy.ndarray
            Shape (n,).
        """
        g = self.gradients(np.atleast_2d(x))
        if self.spectral:
            return np.linalg.norm(np.transpose(g, (1, 0, 2)), ord=2, axis=(1, 2))
        return np.max(np.linalg.norm(g, ord=self.q, axis=2), axis=0)


def require_binary_slopes(network: Network) -> None:
    """Refuse networks whose activation slopes are not all 0 or 1.

    The computations here take every activation slope to be 0 or 1 (a pattern is a 0/1
    diagonal, the MIP switches the backward pass with one binary).

    Parameters
    ----------
    network : Network
        The network.

    Raises
    ------
    UnsupportedError
        A hidden layer has another slope (e.g. a leaky ReLU).
    """
    for i, layer in enumerate(network.hidden_layers):
        slopes = layer.act.slope_values
        if not set(slopes) <= {0.0, 1.0}:
            raise UnsupportedError(
                f"the Lipschitz bounds handle activations with slopes 0 or 1 (relu, clipped_relu); hidden "
                f"layer {i} is {layer.activation} with slopes {', '.join(f'{s:g}' for s in slopes)}")


def interior_mask(network: Network, x: np.ndarray, tol: float = INTERIOR_TOL) -> np.ndarray:
    """Which points are strictly inside their linear region (every pre-activation away from a kink).

    Only there is the gradient norm at the point a valid lower bound.

    Parameters
    ----------
    network : Network
        The network.
    x : numpy.ndarray
        Points, shape (n, d).
    tol : float, optional
        Relative distance to a kink that counts as away from it.

    Returns
    -------
    numpy.ndarray
        Boolean mask, shape (n,).
    """
    x = np.atleast_2d(x)
    ok = np.ones(x.shape[0], dtype=bool)
    for layer, g in zip(network.hidden_layers, network.preactivations(x), strict=True):
        scale = tol * (1.0 + np.abs(layer.b) + np.abs(layer.W).sum(axis=1) * np.max(np.abs(x)))
        dist = np.full(g.shape, np.inf)
        for kink in layer.act.kinks:
            dist = np.minimum(dist, np.abs(g - kink))
        ok &= np.all(dist > scale, axis=1)
    return ok


def pattern_of(network: Network, x: np.ndarray) -> list[np.ndarray]:
    """The activation pattern (phase per neuron) of the first point of ``x``.

    Parameters
    ----------
    network : Network
        The network.
    x : numpy.ndarray
        A point (or points; the first is used).

    Returns
    -------
    list of numpy.ndarray
        One int8 phase vector per hidden layer.
    """
    return [p[0].astype(np.int8) for p in network.phase_pattern(np.atleast_2d(x)[:1])]


def interior_point(network: Network, domain: Domain, pattern, margin_floor: float = 0.0):
    """A point of the domain where ``pattern`` holds with the largest margin (an LP).

    Parameters
    ----------
    network : Network
        The network.
    domain : Domain
        The input domain.
    pattern : list of array_like
        A 0/1 pattern per hidden layer.
    margin_floor : float, optional
        Unused (kept for signature compatibility).

    Returns
    -------
    x : numpy.ndarray or None
        The point, None when the LP fails.
    margin : float
        ``margin > 0`` means the region is full-dimensional there and ``x`` is strictly inside
        it (-inf when the LP fails).
    """
    from scipy.optimize import linprog

    pre, _ = network.region_affine(pattern)
    rows, rhs = [], []
    d = network.input_dim
    for (A, c), p in zip(pre, pattern, strict=True):
        sign = np.where(np.asarray(p) > 0, -1.0, 1.0)      # active: -(A x + c) + s <= 0
        norm = np.linalg.norm(A, axis=1) + 1e-12
        rows.append(np.hstack([sign[:, None] * A, norm[:, None]]))
        rhs.append(-sign * c)
    A_ub = np.vstack(rows)
    b_ub = np.concatenate(rhs)
    if domain.A is not None:
        A_ub = np.vstack([A_ub, np.hstack([domain.A, np.zeros((domain.A.shape[0], 1))])])
        b_ub = np.concatenate([b_ub, domain.b])
    cost = np.zeros(d + 1)
    cost[-1] = -1.0
    bounds = list(zip(domain.lb, domain.ub, strict=True)) + [(None, 1.0)]
    res = linprog(cost, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if res.status != 0:
        return None, -np.inf
    return res.x[:d], float(res.x[-1])
