"""Embed a network in a pyscipopt model (the ``scip`` extra): ``add_network_constr``.

The formulation's columns become SCIP variables named ``{name}.h0[3]`` and so on, its rows
linear constraints; ``formulation='sos1'`` (the default here) adds one SOS1 constraint per
unstable ReLU neuron (``addConsSOS1``), ``'bigm'`` a binary and big-M rows instead,
``'indicator'`` two indicator constraints on its binary (``addConsIndicator``).

Why SOS1 by default on SCIP (and big-M on HiGHS and Gurobi): SCIP branches on the SOS1 pairs
directly and its propagation of them is strong, while on the big-M rows of the same bounds it
proves far less in the same time; benchmarks/results/embed.md has the measurements (the
``reluopt-scip-bigm`` and ``reluopt-scip-sos1`` rows).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import ProblemError
from ..milp.backends.scip import import_scip
from .constraints import constraints_on_inputs, resolve_constraints
from .core import EmbeddedNetwork, as_network, check_count, column_names, formulate, input_box, new_columns, sequence


class ScipNetworkConstr(EmbeddedNetwork):
    """A network added to a pyscipopt model (see `add_network_constr`).

    Attributes
    ----------
    input_vars, output_vars : list of pyscipopt.Variable
        The inputs (the user's) and the outputs.
    stats : dict
        Binaries, stable and unstable neurons, largest big-M, bound method, sizes.
    """

    def __init__(self, embedding, input_vars, output_vars, variables, scip) -> None:
        super().__init__(embedding, input_vars, output_vars, variables)
        self.scip = scip

    def _values(self, variables: list) -> np.ndarray:
        if self.scip.getNSols() == 0:
            raise ProblemError("the SCIP model has no solution to check: optimize it first")
        sol = self.scip.getBestSol()
        return np.array([self.scip.getSolVal(sol, v) for v in variables])


def _variables(pyscipopt, model, variables, what: str) -> list:
    """The variables as a list, each checked to be a variable of ``model``."""
    out = sequence(variables, what)
    own = {v.ptr() for v in model.getVars()}
    for v in out:
        if not isinstance(v, pyscipopt.Variable):
            raise ProblemError(f"{what} variables must be pyscipopt variables (model.addVar), got {type(v).__name__}")
        if v.ptr() not in own:
            raise ProblemError(f"{what} variable {v.name!r} does not belong to the given SCIP model "
                               "(it was made by another pyscipopt.Model)")
    return out


def _input_rows(model, xs: list):
    """The linear constraints of ``model`` on the input variables alone, as ``A x <= b``."""
    where = {v.ptr(): i for i, v in enumerate(xs)}
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    inf = model.infinity()
    for cons in model.getConss():
        if cons.getConshdlrName() != "linear":
            continue
        vs = model.getConsVars(cons)
        if not vs or any(v.ptr() not in where for v in vs):
            continue
        r = len(lo)
        rows += [r] * len(vs)
        cols += [where[v.ptr()] for v in vs]
        vals += [float(c) for c in model.getConsVals(cons)]
        lhs, rhs = model.getLhs(cons), model.getRhs(cons)
        lo.append(-np.inf if lhs <= -inf else lhs)
        hi.append(np.inf if rhs >= inf else rhs)
    if not lo:
        return None, None
    A = sp.csr_matrix((vals, (rows, cols)), shape=(len(lo), len(xs)))
    return constraints_on_inputs(A, lo, hi, list(range(len(xs))))


def add_network_constr(model, network, x, y=None, *, bounds: str = "crown", formulation: str = "sos1",
                       bound_options: dict | None = None, name: str = "nn", input_constraints="model",
                       rescale: bool = False) -> ScipNetworkConstr:
    """Add ``y = network(x)`` to the SCIP model ``model`` with reluopt's formulation.

    Parameters
    ----------
    model : pyscipopt.Model
        The user's model (before ``optimize``).
    network : Network, str or object
        Anything ``reluopt.load`` accepts.
    x : sequence of pyscipopt.Variable
        The input variables (one per network input), with finite bounds.
    y : sequence of pyscipopt.Variable, optional
        The output variables; new ones (bounded by reluopt's output bounds) when omitted.
    bounds : str, optional
        The neuron bound method, one of ``reluopt.bounds.BOUND_METHODS`` (default 'crown').
    formulation : str, optional
        'sos1' (default on SCIP: see the module's note), 'bigm' or 'indicator' (for ReLU neurons;
        see ``reluopt.embed.FORMULATIONS``).
    bound_options : dict, optional
        Options of ``reluopt.compute_bounds``.
    name : str, optional
        Prefix of the new variables' and constraints' names.
    input_constraints : 'model', None or (A, b), optional
        The linear constraints on the inputs that the OBBT bound methods use: 'model' (default)
        reads the model's linear constraints present now that involve only the input variables;
        None: the box alone; ``(A, b)``: ``A x <= b`` on the network's inputs.
    rescale : bool, optional
        Formulate the rescaled network (``reluopt.milp.rescale``; the same function).

    Returns
    -------
    ScipNetworkConstr
        With ``output_vars``, ``stats`` and ``get_error()`` (after ``model.optimize()``).
    """
    pyscipopt = import_scip("embedding a network in a SCIP model")
    net = as_network(network)
    xs = _variables(pyscipopt, model, x, "input")
    check_count("input", len(xs), net.input_dim, net)
    ys = None if y is None else _variables(pyscipopt, model, y, "output")
    if ys is not None:
        check_count("output", len(ys), net.output_dim, net)
    lb, ub = input_box([v.getLbOriginal() for v in xs], [v.getUbOriginal() for v in xs], [v.name for v in xs],
                       model.infinity())
    A, b = resolve_constraints(input_constraints, lambda: _input_rows(model, xs), bounds)
    emb = formulate(net, lb, ub, bounds=bounds, formulation=formulation, bound_options=bound_options, A=A, b=b,
                    rescale=rescale)
    mm = emb.model
    names = column_names(emb, name)
    cols: list = [None] * mm.n_cols
    for i, j in enumerate(mm.x_cols):
        cols[j] = xs[i]
    if ys is not None:
        for i, j in enumerate(mm.y_cols):
            cols[j] = ys[i]
    for j in new_columns(emb, ys is not None):
        lo, hi = mm.col_lower[j], mm.col_upper[j]
        binary = mm.integrality[j] and lo >= 0 and hi <= 1
        vtype = "B" if binary else ("I" if mm.integrality[j] else "C")
        cols[j] = model.addVar(name=names[j], vtype=vtype, lb=float(lo) if np.isfinite(lo) else None,
                               ub=float(hi) if np.isfinite(hi) else None)
    A = mm.A.tocsr()
    for i in range(A.shape[0]):
        s, e = A.indptr[i], A.indptr[i + 1]
        expr = pyscipopt.quicksum(float(v) * cols[j] for j, v in zip(A.indices[s:e], A.data[s:e], strict=True))
        lo, hi = mm.row_lower[i], mm.row_upper[i]
        if np.isfinite(lo) and lo == hi:
            model.addCons(expr == float(lo), name=f"{name}.r{i}")
            continue
        if np.isfinite(lo):
            model.addCons(expr >= float(lo), name=f"{name}.r{i}lo")
        if np.isfinite(hi):
            model.addCons(expr <= float(hi), name=f"{name}.r{i}")
    for k, (h, s) in enumerate(emb.sos1):
        model.addConsSOS1([cols[h], cols[s]], name=f"{name}.sos{k}")
    for k, (z, value, c) in enumerate(emb.indicators):
        model.addConsIndicator(cols[c] <= 0.0, binvar=cols[z], activeone=bool(value), name=f"{name}.ind{k}")
    return ScipNetworkConstr(emb, [cols[j] for j in mm.x_cols], [cols[j] for j in mm.y_cols], cols, model)
