"""The user's linear constraints on a network's inputs, for the neuron bounds of an embedding.

Every embedding call takes ``input_constraints``: 'model' (the default) reads the rows of the
user's model that involve only the network's input variables (each layer reads its own
model's rows and passes them to `constraints_on_inputs`), None uses the box alone, and a pair
``(A, b)`` gives ``A x <= b`` on the inputs directly. The bound methods that take constraints
('lp-obbt', 'mip-obbt') then tighten the neuron bounds over the box intersected with them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import ProblemError


def constraints_on_inputs(A, row_lower, row_upper, input_cols) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The user's rows that involve only the network's input variables, as ``A x <= b``.

    A row ``lo <= a.v <= hi`` whose nonzeros all fall on input columns gives one row ``a.x <= hi``
    and one ``-a.x <= -lo`` for each finite side. A column that feeds several inputs has its
    coefficient put on the first of them (a relaxation of the row: still sound for bounds).

    Parameters
    ----------
    A : scipy.sparse matrix
        The user's rows over the solver's columns.
    row_lower, row_upper : array_like
        Their sides (infinite: none).
    input_cols : sequence of int
        The solver's column of each network input.

    Returns
    -------
    A, b : numpy.ndarray or None
        ``(k, d)`` and ``(k,)``, or both None when no row qualifies.
    """
    A = sp.csr_matrix(A)
    d = len(input_cols)
    where = np.full(A.shape[1], -1, dtype=np.int64)
    for i, j in reversed(list(enumerate(input_cols))):
        where[int(j)] = i
    lo = np.asarray(row_lower, dtype=np.float64)
    hi = np.asarray(row_upper, dtype=np.float64)
    rows, rhs = [], []
    for r in range(A.shape[0]):
        s, e = A.indptr[r], A.indptr[r + 1]
        cols, vals = A.indices[s:e], A.data[s:e]
        nz = vals != 0
        if not nz.any() or np.any(where[cols[nz]] < 0):
            continue
        a = np.zeros(d)
        np.add.at(a, where[cols[nz]], vals[nz])
        if not np.all(np.isfinite(a)):
            continue
        if np.isfinite(hi[r]):
            rows.append(a)
            rhs.append(hi[r])
        if np.isfinite(lo[r]):
            rows.append(-a)
            rhs.append(-lo[r])
    if not rows:
        return None, None
    return np.array(rows), np.array(rhs)


#: The bound methods that use linear constraints on the inputs (the others bound the whole box).
USES_CONSTRAINTS = ("lp-obbt", "mip-obbt")


def resolve_constraints(input_constraints, read_model, bounds: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(A, b)`` from an embedding call's ``input_constraints``: 'model' (``read_model()``), None or a pair.

    The model is read only when the bound method uses constraints (`USES_CONSTRAINTS`).

    Parameters
    ----------
    input_constraints : str, None or tuple
        'model', None or ``(A, b)``.
    read_model : callable
        Returns ``(A, b)`` (or ``(None, None)``) read from the user's model.
    bounds : str
        The bound method.

    Returns
    -------
    A, b : numpy.ndarray or None
    """
    if input_constraints is None:
        return None, None
    if isinstance(input_constraints, str):
        if input_constraints != "model":
            raise ProblemError(f"input_constraints must be 'model', None or a pair (A, b), got {input_constraints!r}")
        return read_model() if bounds in USES_CONSTRAINTS else (None, None)
    try:
        A, b = input_constraints
    except (TypeError, ValueError):
        raise ProblemError("input_constraints must be 'model', None or a pair (A, b) with A x <= b on the "
                           "network's inputs") from None
    return np.atleast_2d(np.asarray(A, dtype=np.float64)), np.asarray(b, dtype=np.float64).reshape(-1)
