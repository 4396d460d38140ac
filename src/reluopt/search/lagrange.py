"""Lagrangian node bounds for input splitting: one multiplier per objective row, output
constraint and input constraint, tuned per node by Polyak subgradient steps.

For ``max min_j (C_j y + e_j)`` subject to ``C_out y <= e_out`` and ``A x <= b``,
``UB(sum_j lam_j (C_j y + e_j) + sum_k mu_k (e_out_k - C_out_k y) + nu . (b - A x))`` bounds
the node for every ``lam`` in the simplex and ``mu, nu >= 0`` (weak duality). The CROWN bound
of the combination is convex and piecewise linear in the multipliers, and the relaxed
network's output at the bound's maximiser is a subgradient, so a few projected steps per node
(children inherit the multipliers) tighten the bound where one row alone cannot.

ReLU splitting uses the same terms per objective row (``Constraints``): its node bounds
(``relu_bounds.lagrangian_bounds``) optimise ``mu, nu`` by projected Adam together with the
slopes and split multipliers, since its kernel gives their gradients too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..bounds.node import output_bounds


def simplex_projection(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row of ``v`` onto the probability simplex.

    Parameters
    ----------
    v : ndarray, shape (B, s)

    Returns
    -------
    ndarray, shape (B, s)
    """
    n = v.shape[1]
    u = -np.sort(-v, axis=1)
    css = np.cumsum(u, axis=1) - 1.0
    ind = np.arange(1, n + 1)
    cond = u - css / ind > 0
    rho = n - 1 - np.argmax(cond[:, ::-1], axis=1)
    theta = css[np.arange(v.shape[0]), rho] / (rho + 1)
    return np.maximum(v - theta[:, None], 0.0)


def tune_multipliers(network, nb, ub: np.ndarray, mult: np.ndarray | None, *, C: np.ndarray, e: np.ndarray,
                     out_C: np.ndarray | None, out_e: np.ndarray | None, A: np.ndarray | None,
                     b: np.ndarray | None, target: float, live: np.ndarray, steps: int):
    """Polyak subgradient steps on the multipliers of a batch of boxes.

    Parameters
    ----------
    network : Network
    nb : NodeBounds
        Neuron bounds and relaxation lines of the boxes.
    ub : ndarray, shape (B,)
        The boxes' bounds so far (the result is never looser).
    mult : ndarray, shape (B, s + k + p), or None
        Starting multipliers (the parents'); None starts from the uniform ``lam``.
    C, e : ndarray
        Objective rows (s of them).
    out_C, out_e : ndarray or None
        Output constraints ``out_C y <= out_e`` (k rows).
    A, b : ndarray or None
        Input constraints ``A x <= b`` (p rows).
    target : float
        The level a bound needs to reach to drop the node (the Polyak step's target).
    live : ndarray of bool, shape (B,)
        Boxes worth the effort (not proven empty).
    steps : int

    Returns
    -------
    ub : ndarray, shape (B,)
        The tighter bounds.
    mult : ndarray, shape (B, s + k + p)
    x_best : ndarray, shape (B, 1, d), or None
        The maximisers of the best Lagrangian bounds (candidate points), None if no step ran.
    """
    B = ub.shape[0]
    s = C.shape[0]
    k = 0 if out_C is None else out_C.shape[0]
    p = 0 if A is None else A.shape[0]
    if mult is None:
        mult = np.zeros((B, s + k + p))
        mult[:, :s] = 1.0 / s
    if not np.isfinite(target) or not np.any(live & (ub > target)):
        return ub, mult, None
    best_x = None
    Cfull = np.concatenate([C, -out_C]) if out_C is not None else C
    efull = np.concatenate([e, out_e]) if out_e is not None else e
    for _ in range(steps):
        w = mult[:, :s + k] @ Cfull                     # (B, m)
        o = mult[:, :s + k] @ efull                     # (B,)
        nu = mult[:, None, s + k:] if p else None
        up, xs, v = output_bounds(network, nb, w[:, None, :], o[:, None], A, nu, b, subgradient=True)
        val = up[:, 0]
        better = val < ub
        ub = np.where(better, val, ub)
        best_x = xs if best_x is None else np.where(better[:, None, None], xs, best_x)
        # subgradient of the bound w.r.t. the multipliers
        parts = [v[:, 0] @ Cfull.T + efull]
        if A is not None and b is not None:
            parts.append(b - xs[:, 0] @ A.T)
        g = np.concatenate(parts, axis=1)
        gap = np.maximum(val - target, 0.0)
        step = gap / np.maximum(np.sum(g * g, axis=1), 1e-30)
        mult = mult - step[:, None] * g
        mult[:, :s] = simplex_projection(mult[:, :s])
        mult[:, s:] = np.maximum(mult[:, s:], 0.0)
    return ub, mult, best_x


@dataclass
class Constraints:
    """A problem's constraints as Lagrangian terms of ReLU-split node bounds (``relu_bounds``).

    Parameters
    ----------
    C, e : ndarray, shapes (k, m) and (k,)
        Output constraints ``C y <= e`` (``k = 0``: none).
    A, b : ndarray, shapes (p, d) and (p,)
        Input constraints ``A x <= b`` (``p = 0``: none).
    """

    C: np.ndarray
    e: np.ndarray
    A: np.ndarray
    b: np.ndarray

    @classmethod
    def of(cls, problem) -> Constraints | None:
        """The constraints of a ``Problem``, so that ReLU splitting can weigh them in its bounds.

        Parameters
        ----------
        problem : Problem

        Returns
        -------
        Constraints or None
            None when the problem has neither input nor output constraints.
        """
        dom, out = problem.domain, problem.constraints
        if dom.A is None and out is None:
            return None
        m, d = problem.network.output_dim, dom.dim
        return cls(np.zeros((0, m)) if out is None else np.asarray(out.C, dtype=np.float64),
                   np.zeros(0) if out is None else np.asarray(out.e, dtype=np.float64),
                   np.zeros((0, d)) if dom.A is None else np.asarray(dom.A, dtype=np.float64),
                   np.zeros(0) if dom.b is None else np.asarray(dom.b, dtype=np.float64))

    def start(self, mult, N: int, which: str) -> np.ndarray:
        """Warm-start multipliers, (N, k) for ``which='mu'`` or (N, p) for ``'nu'``, clipped to >= 0.

        Parameters
        ----------
        mult : ndarray or None
            The parents' (any shape with N * width entries); None: zeros.
        N : int
            Rows (nodes times objective rows).
        which : str

        Returns
        -------
        ndarray
        """
        width = self.C.shape[0] if which == "mu" else self.A.shape[0]
        if mult is None:
            return np.zeros((N, width))
        return np.maximum(np.asarray(mult, dtype=np.float64).reshape(N, width), 0.0)

    def terms(self, spec: np.ndarray, mu: np.ndarray, nu: np.ndarray):
        """``(C_r - mu C_out, nu A, mu . e_out + nu . b)`` per row: the row to push back, the
        input coefficients to subtract and the constant to add.

        Parameters
        ----------
        spec : ndarray, shape (N, m)
        mu, nu : ndarray, shapes (N, k) and (N, p)

        Returns
        -------
        tuple of ndarray
            Shapes (N, m), (N, d), (N,).
        """
        return spec - mu @ self.C, nu @ self.A, mu @ self.e + nu @ self.b
