"""What a VNN-LIB property means: input boxes and linear unsafe sets (the data model).

A VNN-LIB file's formula (read by ``reluopt.verification.load_vnnlib``) describes the
*counterexamples*; grouped by input box it is

    Property.boxes = (InputBox(lb, ub, disjuncts=(Disjunct(C, e), ...)), ...)

meaning the unsafe set is the union over boxes and their disjuncts of
``{x in [lb, ub] : C y(x) <= e}``. The decision maximises, per disjunct, the *margin*
``min_j (e_j - C_j y)``: a point with margin >= 0 (``> 0`` on strict atoms) is a
counterexample; a certified upper bound < 0 on every (box, disjunct) proves the property.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ProblemError


@dataclass(frozen=True)
class Disjunct:
    """One conjunction of output atoms: unsafe where ``C y <= e`` (``< e`` where strict).

    Parameters
    ----------
    C : numpy.ndarray
        ``(k, m)`` atom rows over the ``m`` outputs.
    e : numpy.ndarray
        ``(k,)`` right-hand sides.
    strict : numpy.ndarray
        ``(k,)`` bool, true for ``<`` atoms.
    lines : tuple of int
        Source line of each atom (for messages).
    """

    C: np.ndarray            # (k, m)
    e: np.ndarray            # (k,)
    strict: np.ndarray       # (k,) bool
    lines: tuple[int, ...] = ()

    def margins(self, y: np.ndarray) -> np.ndarray:
        """Per point, the smallest margin ``min_j (e_j - C_j y)``: how far the conjunction is from failing.

        Parameters
        ----------
        y : np.ndarray, shape (n, m) or (m,)
            Network outputs, one row per point.

        Returns
        -------
        np.ndarray, shape (n,)
            >= 0 where every atom holds (up to strictness); +inf for a disjunct without atoms.
        """
        y = np.atleast_2d(y)
        if self.C.shape[0] == 0:
            return np.full(y.shape[0], np.inf)
        return np.min(self.e[None, :] - y @ self.C.T, axis=1)

    def holds(self, y: np.ndarray) -> np.ndarray:
        """Whether each point satisfies every atom, with exact VNN-LIB semantics (no tolerance).

        Parameters
        ----------
        y : np.ndarray, shape (n, m) or (m,)
            Network outputs, one row per point.

        Returns
        -------
        np.ndarray of bool, shape (n,)
            Strict atoms need a positive margin, the others a non-negative one.
        """
        y = np.atleast_2d(y)
        if self.C.shape[0] == 0:
            return np.ones(y.shape[0], dtype=bool)
        m = self.e[None, :] - y @ self.C.T
        ok = np.where(self.strict[None, :], m > 0, m >= 0)
        return np.all(ok, axis=1)


@dataclass(frozen=True)
class InputBox:
    """An input box and the output disjuncts that are unsafe on it.

    Parameters
    ----------
    lb, ub : numpy.ndarray
        The box's bounds (finite, ``lb <= ub``).
    disjuncts : tuple of Disjunct
        The unsafe sets on the box; a point is a counterexample when it satisfies one.
    """

    lb: np.ndarray
    ub: np.ndarray
    disjuncts: tuple[Disjunct, ...]


@dataclass
class Property:
    """A parsed VNN-LIB property: the union of ``box x disjunct`` unsafe sets.

    Parameters
    ----------
    n_inputs, n_outputs : int
        Variables ``X_i`` and ``Y_j`` the property declares.
    boxes : tuple of InputBox
        The unsafe sets grouped by input box.
    source : str
        The file it came from (for messages).
    var_lines : dict
        ``(kind, index) -> line`` where each variable is first declared or used.
    """

    n_inputs: int
    n_outputs: int
    boxes: tuple[InputBox, ...]
    source: str = ""
    var_lines: dict = field(default_factory=dict)

    @property
    def n_pairs(self) -> int:
        """Number of (box, disjunct) pairs: the sub-problems ``verify`` decides."""
        return sum(len(b.disjuncts) for b in self.boxes)

    def check(self, network) -> Property:
        """Bind the property to ``network``, so its atoms have one column per output.

        Parameters
        ----------
        network : Network
            Its input count must equal ``n_inputs`` and its output count be at least
            ``n_outputs``.

        Returns
        -------
        Property
            ``self``, or a copy whose ``C`` matrices are padded with zero columns when the
            property names fewer outputs than the network has.

        Raises
        ------
        ProblemError
            The counts do not fit (naming the variable's line).
        """
        where = f"{self.source}: " if self.source else ""
        d, m = network.input_dim, network.output_dim
        if self.n_inputs > d:
            line = self.var_lines.get(("X", d), "?")
            raise ProblemError(
                f"{where}line {line}: X_{d} is beyond the network's inputs (it has {d} inputs, "
                f"X_0..X_{d - 1}); the property uses {self.n_inputs}")
        if self.n_inputs < d:
            raise ProblemError(
                f"{where}the property declares {self.n_inputs} inputs (X_0..X_{self.n_inputs - 1})"
                f" but the network has {d}; X_{self.n_inputs} has no bounds")
        if self.n_outputs > m:
            line = self.var_lines.get(("Y", m), "?")
            raise ProblemError(
                f"{where}line {line}: Y_{m} is beyond the network's outputs (it has {m} outputs, "
                f"Y_0..Y_{m - 1})")
        if self.n_outputs == m:
            return self
        pad = m - self.n_outputs
        boxes = tuple(
            InputBox(b.lb, b.ub, tuple(
                Disjunct(np.hstack([dj.C, np.zeros((dj.C.shape[0], pad))]), dj.e, dj.strict, dj.lines)
                for dj in b.disjuncts))
            for b in self.boxes)
        return Property(self.n_inputs, m, boxes, self.source, self.var_lines)

    def is_counterexample(self, x: np.ndarray, y: np.ndarray) -> bool:
        """Whether ``(x, y)`` is a counterexample under the exact VNN-LIB semantics.

        Parameters
        ----------
        x, y : numpy.ndarray
            An input and its outputs.

        Returns
        -------
        bool
            True when ``x`` lies in some box and ``y`` satisfies one of its disjuncts exactly.
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64).reshape(1, -1)
        for box in self.boxes:
            if np.all(x >= box.lb) and np.all(x <= box.ub):
                if any(dj.holds(y)[0] for dj in box.disjuncts):
                    return True
        return False
