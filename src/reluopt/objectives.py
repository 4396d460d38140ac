"""The objectives a Problem can have: what a method maximises or minimises over the outputs.

``Objective`` is ``c . y + d`` (max or min); ``MaxMin`` is the worst of several affine rows
(``max min_r (C_r . y + e_r)``: VNN-LIB disjuncts, robust objectives, Lipschitz targets);
``LeastSquares`` is ``1/2 ||A y + a - t||^2`` (inversion). Each answers for itself: its sense,
the outputs it reads, its values and gradients, and whether it is linear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ProblemError
from .network import Network


@dataclass(frozen=True)
class Objective:
    """``sense`` ('max' or 'min') of ``c . y + d``: the linear objective every method takes.

    Parameters
    ----------
    c : array_like, shape (m,)
        One coefficient per network output (finite).
    d : float
        The constant.
    sense : {'max', 'min'}
        Whether to maximise or minimise.

    Raises
    ------
    ProblemError
        On another sense or a non-finite coefficient.
    """

    c: np.ndarray
    d: float = 0.0
    sense: str = "max"
    is_linear = True        # a class constant (no field): every method takes a linear objective

    def __post_init__(self) -> None:
        if self.sense not in ("max", "min"):
            raise ProblemError(f"objective sense must be 'max' or 'min', got {self.sense!r}")
        c = np.asarray(self.c, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(c)) or not np.isfinite(self.d):
            raise ProblemError("objective coefficients must be finite")
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "d", float(self.d))

    @property
    def sign(self) -> float:
        return 1.0 if self.sense == "max" else -1.0

    def n_outputs(self) -> int:
        """How many network outputs this objective reads (``Problem`` checks it against the network).

        Returns
        -------
        int
        """
        return self.c.shape[0]

    def linear_form(self) -> tuple[np.ndarray, float]:
        """``(c, d)`` of ``c . y + d`` in the user's sense (``Problem.max_form`` applies the sign).

        Returns
        -------
        c : np.ndarray, shape (m,)
        d : float
        """
        return self.c, self.d

    def values(self, Y: np.ndarray) -> np.ndarray:
        """``c . y + d`` per row of the outputs ``Y``, in the user's sense.

        Parameters
        ----------
        Y : array_like, shape (n, m) or (m,)
            Network outputs, one row per point.

        Returns
        -------
        np.ndarray, shape (n,)
        """
        return np.atleast_2d(Y) @ self.c + self.d

    def input_gradient(self, network: Network, x: np.ndarray) -> np.ndarray:
        """Gradient of ``c . y(x) + d`` with respect to ``x``, without a separate forward pass.

        Parameters
        ----------
        network : Network
            The network whose outputs the objective reads.
        x : np.ndarray, shape (n, d)
            Input points, one per row.

        Returns
        -------
        np.ndarray, shape (n, d)
            One gradient per point, in the user's sense (a subgradient at a ReLU kink).
        """
        return network.gradient(x, self.c)


@dataclass(frozen=True)
class MaxMin:
    """Maximise the smallest of several affine functions of the outputs, ``min_r (C_r . y + e_r)``.

    The shape of a worst case: the margins of a VNN-LIB disjunct (the property is violated
    where every margin is >= 0), or a robust objective over several outputs. One row is an
    ordinary linear objective. Branch and bound (``bab``) takes it; methods that need a single
    linear objective refuse it with a ``ProblemError``.

    Parameters
    ----------
    C : array_like, shape (r, m)
        One row of output coefficients per affine function.
    e : array_like, shape (r,)
        The constant of each row.
    """

    C: np.ndarray
    e: np.ndarray

    def __post_init__(self) -> None:
        C = np.atleast_2d(np.asarray(self.C, dtype=np.float64))
        e = np.asarray(self.e, dtype=np.float64).reshape(-1)
        if C.ndim != 2 or C.shape[0] == 0 or C.shape[0] != e.shape[0]:
            raise ProblemError(f"objective rows: C has shape {C.shape} and e has {e.shape[0]} entries; "
                               "expected (r, outputs) and r entries, r >= 1")
        if not (np.all(np.isfinite(C)) and np.all(np.isfinite(e))):
            raise ProblemError("objective rows: C or e contain a non-finite value")
        object.__setattr__(self, "C", C)
        object.__setattr__(self, "e", e)

    @property
    def sense(self) -> str:
        """Always ``'max'``: the worst case is maximised."""
        return "max"

    @property
    def is_linear(self) -> bool:
        """One row is a linear objective; several are not."""
        return self.C.shape[0] == 1

    def n_outputs(self) -> int:
        """How many network outputs the rows read (``Problem`` checks it against the network).

        Returns
        -------
        int
        """
        return self.C.shape[1]

    def linear_form(self) -> tuple[np.ndarray, float]:
        """``(c, d)`` of the single row; several rows are refused with a pointer to ``bab``.

        Returns
        -------
        c : ndarray, shape (m,)
        d : float
        """
        if self.C.shape[0] > 1:
            raise ProblemError(
                f"this method needs one linear objective, but the objective is the minimum of "
                f"{self.C.shape[0]} rows; use method='bab' (input-space branch and bound) or 'pgd'"
            )
        return self.C[0].copy(), float(self.e[0])

    @property
    def sign(self) -> float:
        """``+1``: the objective is already in max form."""
        return 1.0

    def values(self, Y: np.ndarray) -> np.ndarray:
        """The worst row, ``min_r (C_r . y + e_r)``, per row of the outputs ``Y``.

        Parameters
        ----------
        Y : array_like, shape (n, m) or (m,)
            Network outputs, one row per point.

        Returns
        -------
        np.ndarray, shape (n,)
        """
        return np.min(np.atleast_2d(Y) @ self.C.T + self.e, axis=1)

    def output_gradient(self, Y: np.ndarray) -> np.ndarray:
        """A supergradient with respect to ``y``: the coefficients of the smallest row, per point.

        Parameters
        ----------
        Y : array_like, shape (n, m) or (m,)
            Network outputs, one row per point.

        Returns
        -------
        np.ndarray, shape (n, m)
        """
        return self.C[np.argmin(np.atleast_2d(Y) @ self.C.T + self.e, axis=1)]

    def input_gradient(self, network: Network, x: np.ndarray) -> np.ndarray:
        """A supergradient of ``min_r (C_r . y(x) + e_r)`` w.r.t. ``x`` per row of ``x`` (n, d).

        Parameters
        ----------
        network : Network
        x : ndarray, shape (n, d)

        Returns
        -------
        ndarray, shape (n, d)
        """
        return network.gradient(x, self.output_gradient(network.forward(x)))


@dataclass(frozen=True)
class LeastSquares:
    """Minimise ``1/2 ||A y + a - t||^2`` (``A`` defaults to the identity, ``a`` to zero).

    Used to invert a generative network (find the latent whose image is ``t``) and for
    compressed sensing (``A`` a measurement matrix with fewer rows than outputs). It is not
    linear, so only the gradient-based methods take it.

    Parameters
    ----------
    t : array_like, shape (k,)
        The target (measurements).
    A : array_like, shape (k, m), optional
        Measurement matrix; None for the identity (``k = m``).
    a : array_like, shape (k,), optional
        Offset; None for zero.

    Raises
    ------
    ProblemError
        On mismatched shapes or a non-finite entry.
    """

    t: np.ndarray
    A: np.ndarray | None = None
    a: np.ndarray | None = None
    is_linear = False       # only the gradient-based methods and the exact miqp take least squares

    def __post_init__(self) -> None:
        t = np.asarray(self.t, dtype=np.float64).reshape(-1)
        object.__setattr__(self, "t", t)
        if self.A is not None:
            A = np.atleast_2d(np.asarray(self.A, dtype=np.float64))
            if A.shape[0] != t.shape[0]:
                raise ProblemError(
                    f"measurement matrix A has shape {A.shape} but the target has {t.shape[0]} "
                    f"entries; A needs {t.shape[0]} rows"
                )
            object.__setattr__(self, "A", A)
        a = np.zeros(t.shape[0]) if self.a is None else np.asarray(self.a, dtype=np.float64).reshape(-1)
        if a.shape != t.shape:
            raise ProblemError(f"offset a has {a.shape[0]} entries, the target has {t.shape[0]}")
        object.__setattr__(self, "a", a)
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(a))
                and (self.A is None or np.all(np.isfinite(self.A)))):
            raise ProblemError("least-squares target, A or a contain a non-finite value")

    @property
    def sense(self) -> str:
        """Always ``'min'``: a least-squares objective is minimised."""
        return "min"

    @property
    def sign(self) -> float:
        return -1.0

    def linear_form(self) -> tuple[np.ndarray, float]:
        """Refuse (a ``ProblemError`` naming the methods that take least squares): not linear.

        Returns
        -------
        tuple of (np.ndarray, float)
            Never: the signature of ``Objective.linear_form``, which callers use alike.

        Raises
        ------
        ProblemError
            Always.
        """
        raise ProblemError(
            "this method needs an objective linear in the outputs, but the objective is "
            "least squares; use a gradient-based method (surfing, adam) or the exact miqp (SCIP)"
        )

    def n_outputs(self) -> int:
        """How many network outputs this objective reads (``Problem`` checks it against the network).

        Returns
        -------
        int
        """
        return self.t.shape[0] if self.A is None else self.A.shape[1]

    def residual(self, Y: np.ndarray) -> np.ndarray:
        """The residual ``A y + a - t`` per row of the outputs ``Y``, of which the value is half the square.

        Parameters
        ----------
        Y : array_like, shape (n, m) or (m,)
            Network outputs, one row per point.

        Returns
        -------
        np.ndarray, shape (n, k)
        """
        Y = np.atleast_2d(Y)
        AY = Y if self.A is None else Y @ self.A.T
        return AY + self.a - self.t

    def values(self, Y: np.ndarray) -> np.ndarray:
        """``1/2 ||A y + a - t||^2`` per row of the outputs ``Y``.

        Parameters
        ----------
        Y : array_like, shape (n, m) or (m,)
            Network outputs, one row per point.

        Returns
        -------
        np.ndarray, shape (n,)
        """
        return 0.5 * np.sum(self.residual(Y) ** 2, axis=1)

    def output_gradient(self, Y: np.ndarray) -> np.ndarray:
        """The gradient ``A^T (A y + a - t)`` of the value with respect to ``y``, per point.

        Parameters
        ----------
        Y : array_like, shape (n, m) or (m,)
            Network outputs, one row per point.

        Returns
        -------
        np.ndarray, shape (n, m)
        """
        r = self.residual(Y)
        return r if self.A is None else r @ self.A

    def input_gradient(self, network: Network, x: np.ndarray) -> np.ndarray:
        """Gradient of ``1/2 ||A y(x) + a - t||^2`` with respect to ``x``, per point.

        Parameters
        ----------
        network : Network
            The network whose outputs the objective reads.
        x : np.ndarray, shape (n, d)
            Input points, one per row.

        Returns
        -------
        np.ndarray, shape (n, d)
        """
        return network.gradient(x, self.output_gradient(network.forward(x)))
