"""Embed a network in a highspy model (HiGHS, always installed): ``add_network_constr``.

A highspy user holds a ``highspy.Highs`` instance and its variables, made by the modelling API
(``h.addVariable``, ``h.addVariables``: ``highs_var`` objects) or by the low-level one
(``h.addVars``: column indices); both are accepted. The formulation's new columns and rows are
added in one call each (``addVars``, ``addRows``), after the user's, and the outputs are returned
as ``highs_var`` objects usable in ``h.addConstr`` and ``h.maximize`` expressions. HiGHS has no
SOS or indicator constraints: the formulation is big-M.
"""

from __future__ import annotations

import highspy
import numpy as np
import scipy.sparse as sp

from ..errors import ProblemError
from .constraints import constraints_on_inputs, resolve_constraints
from .core import EmbeddedNetwork, as_network, check_count, formulate, input_box, mapped_rows, new_columns, sequence

_INF = highspy.kHighsInf


class HighsNetworkConstr(EmbeddedNetwork):
    """A network added to a highspy model (see `add_network_constr`).

    Attributes
    ----------
    input_vars, output_vars : list of highspy.highs.highs_var
        The inputs (the user's) and the outputs.
    stats : dict
        Binaries, stable and unstable neurons, largest big-M, bound method, sizes.
    """

    def __init__(self, embedding, input_vars, output_vars, variables, highs) -> None:
        super().__init__(embedding, input_vars, output_vars, variables)
        self.highs = highs

    def _values(self, variables: list) -> np.ndarray:
        h = self.highs
        if h.getInfo().primal_solution_status != 2:   # kSolutionStatusFeasible
            raise ProblemError("the HiGHS model has no feasible solution to check: run it first")
        values = np.asarray(h.getSolution().col_value)
        return values[[int(v) for v in variables]]


def _columns(h: highspy.Highs, variables, what: str) -> list[int]:
    cols = []
    n = h.getNumCol()
    for v in sequence(variables, what):
        if isinstance(v, highspy.highs.highs_var):
            try:
                same = v.highs == h
            except ReferenceError:      # its model is gone
                same = False
            if not same:
                raise ProblemError(f"{what} variable {v!r} belongs to another HiGHS model than the one given")
            j = int(v.index)
        elif isinstance(v, (int, np.integer)):
            j = int(v)
        else:
            raise ProblemError(f"{what} variables must be highspy variables (h.addVariable) or column indices, "
                               f"got {type(v).__name__}")
        if not 0 <= j < n:
            raise ProblemError(f"{what} variable {j} is not a column of this HiGHS model ({n} columns)")
        cols.append(j)
    return cols


def _input_rows(h: highspy.Highs, cols: list[int]):
    """The rows of ``h`` on the input columns alone, as ``A x <= b`` (see ``embed.constraints``)."""
    lp = h.getLp()
    if lp.num_row_ == 0:
        return None, None
    am = lp.a_matrix_
    parts = (np.asarray(am.value_), np.asarray(am.index_), np.asarray(am.start_))
    if am.format_ == highspy.MatrixFormat.kRowwise:
        A = sp.csr_matrix(parts, shape=(lp.num_row_, lp.num_col_))
    else:
        A = sp.csc_matrix(parts, shape=(lp.num_row_, lp.num_col_))
    return constraints_on_inputs(A, lp.row_lower_, lp.row_upper_, cols)


def add_network_constr(h: highspy.Highs, network, x, y=None, *, bounds: str = "crown", formulation: str = "bigm",
                       bound_options: dict | None = None, input_constraints="model",
                       rescale: bool = False) -> HighsNetworkConstr:
    """Add ``y = network(x)`` to the HiGHS model ``h`` with reluopt's formulation.

    Parameters
    ----------
    h : highspy.Highs
        The user's model.
    network : Network, str or object
        Anything ``reluopt.load`` accepts (a ``Network``, an ``.onnx``/``.npz`` file, a torch or
        scikit-learn model).
    x : sequence of highs_var or int
        The input variables (one per network input), with finite bounds in ``h``.
    y : sequence of highs_var or int, optional
        The output variables; new ones (bounded by reluopt's output bounds) when omitted.
    bounds : str, optional
        The neuron bound method, one of ``reluopt.bounds.BOUND_METHODS`` (default 'crown').
    formulation : str, optional
        'bigm' (the only one HiGHS takes: it has no SOS or indicator constraints).
    bound_options : dict, optional
        Options of ``reluopt.compute_bounds`` (e.g. ``{"time_limit": 10}`` for OBBT).
    input_constraints : 'model', None or (A, b), optional
        The linear constraints on the inputs that the OBBT bound methods use: 'model' (default)
        reads the rows of ``h`` present now that involve only the input variables; None: the box
        alone; ``(A, b)``: ``A x <= b`` on the network's inputs.
    rescale : bool, optional
        Formulate the rescaled network (``reluopt.milp.rescale``; the same function).

    Returns
    -------
    HighsNetworkConstr
        With ``output_vars``, ``stats`` and ``get_error()`` (after ``h.run()``).
    """
    if formulation != "bigm":
        raise ProblemError(f"HiGHS has no SOS1 or indicator constraints: formulation {formulation!r} needs "
                           "pyscipopt or gurobipy; use formulation='bigm' with HiGHS")
    net = as_network(network)
    xc = _columns(h, x, "input")
    check_count("input", len(xc), net.input_dim, net)
    yc = None if y is None else _columns(h, y, "output")
    if yc is not None:
        check_count("output", len(yc), net.output_dim, net)
    _, _, _, lower, upper, _ = h.getCols(len(xc), np.asarray(xc, dtype=np.int32))
    lb, ub = input_box(lower, upper, [f"column {j} ({h.getColName(j)[1] or 'unnamed'})" for j in xc], _INF)
    A, b = resolve_constraints(input_constraints, lambda: _input_rows(h, xc), bounds)
    emb = formulate(net, lb, ub, bounds=bounds, formulation=formulation, bound_options=bound_options, A=A, b=b,
                    rescale=rescale)
    model = emb.model
    fresh = new_columns(emb, yc is not None)
    start = h.getNumCol()
    colmap = np.empty(model.n_cols, dtype=np.int64)
    colmap[model.x_cols] = xc
    if yc is not None:
        colmap[model.y_cols] = yc
    colmap[fresh] = start + np.arange(fresh.size)
    lo = np.where(np.isfinite(model.col_lower[fresh]), model.col_lower[fresh], -_INF)
    hi = np.where(np.isfinite(model.col_upper[fresh]), model.col_upper[fresh], _INF)
    _ok(h.addVars(int(fresh.size), lo, hi), "addVars")
    integral = np.nonzero(model.integrality[fresh])[0]
    if integral.size:
        _ok(h.changeColsIntegrality(int(integral.size), (start + integral).astype(np.int32),
                                    np.full(integral.size, highspy.HighsVarType.kInteger)), "changeColsIntegrality")
    A = mapped_rows(emb, colmap, start + int(fresh.size))
    row_lo = np.where(np.isfinite(model.row_lower), model.row_lower, -_INF)
    row_hi = np.where(np.isfinite(model.row_upper), model.row_upper, _INF)
    _ok(h.addRows(A.shape[0], row_lo, row_hi, int(A.nnz), A.indptr[:-1].astype(np.int32),
                  A.indices.astype(np.int32), A.data), "addRows")
    variables = [highspy.highs.highs_var(int(j), h) for j in colmap]
    return HighsNetworkConstr(emb, [variables[j] for j in model.x_cols], [variables[j] for j in model.y_cols],
                              variables, h)


def _ok(status, call: str) -> None:
    if status != highspy.HighsStatus.kOk:
        raise ProblemError(f"HiGHS refused the network's formulation ({call} returned {status.name})")
