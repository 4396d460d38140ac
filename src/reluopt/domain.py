"""The input set of a problem: a box ``lb <= x <= ub`` and optionally ``A x <= b``.

``Domain`` checks its arrays once, when it is made, so that every method can trust them (no NaN,
no empty box, matching shapes); ``FEASIBILITY_TOL`` is the tolerance with which a returned point
must meet the input and output constraints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ProblemError

#: Tolerance for output constraints and ``A x <= b`` when checking a returned point.
FEASIBILITY_TOL = 1e-6


def _vector(v, n: int, what: str) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    arr = arr.reshape(-1)
    if arr.shape[0] != n:
        raise ProblemError(f"{what} has length {arr.shape[0]}, expected {n}")
    return arr


@dataclass(frozen=True)
class Domain:
    """The input set: a box ``lb <= x <= ub`` and optionally ``A x <= b``, checked once when made.

    Parameters
    ----------
    lb, ub : array_like, shape (d,)
        The box (infinite entries allowed where a method does not need a bounded box).
    A : array_like, shape (k, d), optional
        Linear input constraints ``A x <= b``; give both ``A`` and ``b`` or neither.
    b : array_like, shape (k,), optional
        Their right-hand sides.

    Raises
    ------
    ProblemError
        On mismatched lengths, NaN bounds, an empty box (``lb > ub``), or non-finite ``A``, ``b``.
    """

    lb: np.ndarray
    ub: np.ndarray
    A: np.ndarray | None = None
    b: np.ndarray | None = None

    def __post_init__(self) -> None:
        lb = np.asarray(self.lb, dtype=np.float64).reshape(-1)
        ub = np.asarray(self.ub, dtype=np.float64).reshape(-1)
        if lb.shape != ub.shape:
            raise ProblemError(f"box bounds have lengths {lb.shape[0]} (lb) and {ub.shape[0]} (ub)")
        if lb.shape[0] == 0:
            raise ProblemError("box is empty (no input dimensions)")
        if np.any(np.isnan(lb)) or np.any(np.isnan(ub)):
            i = int(np.argwhere(np.isnan(lb) | np.isnan(ub))[0][0])
            raise ProblemError(f"box bound of input {i} is NaN")
        bad = np.nonzero(lb > ub)[0]
        if bad.size:
            i = int(bad[0])
            raise ProblemError(f"box is empty: lb[{i}] = {lb[i]} > ub[{i}] = {ub[i]}")
        object.__setattr__(self, "lb", lb)
        object.__setattr__(self, "ub", ub)
        if (self.A is None) != (self.b is None):
            raise ProblemError("give both A and b for linear input constraints A x <= b")
        if self.A is not None:
            A = np.atleast_2d(np.asarray(self.A, dtype=np.float64))
            b = np.asarray(self.b, dtype=np.float64).reshape(-1)
            if A.shape[1] != lb.shape[0]:
                raise ProblemError(
                    f"input constraint matrix A has shape {A.shape}; expected "
                    f"{lb.shape[0]} columns (one per input)"
                )
            if A.shape[0] != b.shape[0]:
                raise ProblemError(f"A has {A.shape[0]} rows but b has {b.shape[0]} entries")
            if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
                raise ProblemError("input constraints A x <= b contain a non-finite value")
            object.__setattr__(self, "A", A)
            object.__setattr__(self, "b", b)

    @property
    def dim(self) -> int:
        return self.lb.shape[0]

    @property
    def bounded(self) -> bool:
        return bool(np.all(np.isfinite(self.lb)) and np.all(np.isfinite(self.ub)))

    def require_bounded(self, who: str) -> None:
        """Fail clearly when a method that needs a bounded box gets an unbounded one.

        Parameters
        ----------
        who : str
            What needs the bounded box, for the message.

        Raises
        ------
        ProblemError
            Naming the first input with an infinite bound.
        """
        if not self.bounded:
            i = int(np.argwhere(~(np.isfinite(self.lb) & np.isfinite(self.ub)))[0][0])
            raise ProblemError(
                f"{who} needs a bounded box, but input {i} has bounds "
                f"[{self.lb[i]}, {self.ub[i]}]"
            )

    def contains(self, x, tol: float = FEASIBILITY_TOL) -> np.ndarray:
        """Say which points lie in the domain (the box and ``A x <= b``), up to ``tol``.

        Parameters
        ----------
        x : array_like, shape (n, d) or (d,)
            The points, one per row.
        tol : float
            Allowed violation of each constraint.

        Returns
        -------
        np.ndarray of bool, shape (n,)
            True for the points inside.
        """
        x = np.atleast_2d(x)
        ok = np.all((x >= self.lb - tol) & (x <= self.ub + tol), axis=1)
        if self.A is not None and self.b is not None:     # both or neither
            ok &= np.all(x @ self.A.T <= self.b + tol, axis=1)
        return ok

    def center(self) -> np.ndarray:
        """The centre of the box, a natural start point for local searches.

        Returns
        -------
        np.ndarray, shape (d,)
            ``(lb + ub) / 2`` (the polytope ``A x <= b`` is not considered).
        """
        return 0.5 * (self.lb + self.ub)
