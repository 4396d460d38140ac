"""Embed a network in a gurobipy model (the ``gurobi`` extra): ``add_network_constr``.

In gurobi-machinelearning's convention (``add_predictor_constr(model, predictor, x, y)``): the
formulation's columns become Gurobi variables named ``{name}.h0[3]`` and so on, its rows one
matrix constraint per sense (``addMConstr``); ``formulation='sos1'`` adds one SOS1 constraint per
unstable ReLU neuron, ``'indicator'`` two indicator constraints on its binary. The pip wheel's
licence is size-limited (2000 variables and constraints): larger models fail at ``optimize()``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import ProblemError
from ..milp.backends.gurobi import import_gurobi
from .constraints import constraints_on_inputs, resolve_constraints
from .core import EmbeddedNetwork, as_network, check_count, column_names, formulate, input_box, new_columns, sequence


class GurobiNetworkConstr(EmbeddedNetwork):
    """A network added to a gurobipy model (see `add_network_constr`).

    Attributes
    ----------
    input_vars, output_vars : list of gurobipy.Var
        The inputs (the user's) and the outputs.
    stats : dict
        Binaries, stable and unstable neurons, largest big-M, bound method, sizes.
    """

    def __init__(self, embedding, input_vars, output_vars, variables, gurobi) -> None:
        super().__init__(embedding, input_vars, output_vars, variables)
        self.gurobi = gurobi

    @property
    def output(self) -> list:
        """The output variables (gurobi-machinelearning's name)."""
        return self.output_vars

    def _values(self, variables: list) -> np.ndarray:
        if self.gurobi.SolCount == 0:
            raise ProblemError("the Gurobi model has no solution to check: optimize it first")
        return np.array(self.gurobi.getAttr("X", variables), dtype=np.float64)


def _variables(gp, model, variables, what: str) -> list:
    """The variables as a list, each checked to be a variable of ``model`` (after ``model.update()``)."""
    out = sequence(variables, what)
    own = model.getVars()
    for v in out:
        if not isinstance(v, gp.Var):
            raise ProblemError(f"{what} variables must be gurobipy variables (model.addVar, addVars, addMVar), "
                               f"got {type(v).__name__}")
        j = v.index
        if not (0 <= j < len(own) and own[j].sameAs(v)):
            raise ProblemError(f"{what} variable {_name(v)} does not belong to the given Gurobi model "
                               "(it was made by another gp.Model, or removed)")
    return out


def _name(v) -> str:
    try:
        return repr(v.VarName)
    except Exception:   # noqa: BLE001 - a variable of another model may refuse its attributes
        return repr(v)


def _input_rows(model, xs: list):
    """The linear constraints of ``model`` on the input variables alone, as ``A x <= b``."""
    constrs = model.getConstrs()
    if not constrs:
        return None, None
    A = model.getA()
    sense = np.array(model.getAttr("Sense", constrs))
    rhs = np.array(model.getAttr("RHS", constrs), dtype=np.float64)
    lo = np.where(sense == "<", -np.inf, rhs)
    hi = np.where(sense == ">", np.inf, rhs)
    return constraints_on_inputs(A, lo, hi, [v.index for v in xs])


def add_network_constr(model, network, x, y=None, *, bounds: str = "crown", formulation: str = "bigm",
                       bound_options: dict | None = None, name: str = "nn", input_constraints="model",
                       rescale: bool = False) -> GurobiNetworkConstr:
    """Add ``y = network(x)`` to the Gurobi model ``model`` with reluopt's formulation.

    Parameters
    ----------
    model : gurobipy.Model
        The user's model.
    network : Network, str or object
        Anything ``reluopt.load`` accepts.
    x : list of gurobipy.Var, MVar or tupledict
        The input variables (one per network input), with finite bounds.
    y : list of gurobipy.Var, MVar or tupledict, optional
        The output variables; new ones (bounded by reluopt's output bounds) when omitted.
    bounds : str, optional
        The neuron bound method, one of ``reluopt.bounds.BOUND_METHODS`` (default 'crown').
    formulation : str, optional
        'bigm' (default), 'sos1' or 'indicator' (for ReLU neurons; see ``reluopt.embed.FORMULATIONS``).
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
    GurobiNetworkConstr
        With ``output_vars`` (also ``output``), ``stats`` and ``get_error()`` (after ``optimize()``).
    """
    gp = import_gurobi()
    net = as_network(network)
    model.update()                     # bounds of variables added since the last update
    xs = _variables(gp, model, x, "input")
    check_count("input", len(xs), net.input_dim, net)
    ys = None if y is None else _variables(gp, model, y, "output")
    if ys is not None:
        check_count("output", len(ys), net.output_dim, net)
    lb, ub = input_box(model.getAttr("LB", xs), model.getAttr("UB", xs), model.getAttr("VarName", xs),
                       gp.GRB.INFINITY)
    A, b = resolve_constraints(input_constraints, lambda: _input_rows(model, xs), bounds)
    emb = formulate(net, lb, ub, bounds=bounds, formulation=formulation, bound_options=bound_options, A=A, b=b,
                    rescale=rescale)
    mm = emb.model
    names = column_names(emb, name)
    fresh = new_columns(emb, ys is not None)
    lo, hi = mm.col_lower[fresh], mm.col_upper[fresh]
    integral = mm.integrality[fresh] > 0
    vtype = [gp.GRB.BINARY if b and lo[k] >= 0 and hi[k] <= 1 else (gp.GRB.INTEGER if b else gp.GRB.CONTINUOUS)
             for k, b in enumerate(integral)]
    new = model.addVars(int(fresh.size), lb=np.where(np.isfinite(lo), lo, -gp.GRB.INFINITY).tolist(),
                        ub=np.where(np.isfinite(hi), hi, gp.GRB.INFINITY).tolist(), vtype=vtype,
                        name=[names[j] for j in fresh])
    cols: list = [None] * mm.n_cols
    for i, j in enumerate(mm.x_cols):
        cols[j] = xs[i]
    if ys is not None:
        for i, j in enumerate(mm.y_cols):
            cols[j] = ys[i]
    for k, j in enumerate(fresh):
        cols[j] = new[k]
    v = gp.MVar.fromlist(cols)
    A = sp.csr_matrix(mm.A)
    rlo, rhi = mm.row_lower, mm.row_upper
    eq = np.isfinite(rlo) & np.isfinite(rhi) & (rlo == rhi)
    up = np.isfinite(rhi) & ~eq
    dn = np.isfinite(rlo) & ~eq
    for mask, sense, rhs, tag in ((eq, "=", rlo, "eq"), (up, "<", rhi, "le"), (dn, ">", rlo, "ge")):
        if mask.any():
            model.addMConstr(A[mask], v, sense, rhs[mask], name=f"{name}.{tag}")
    for h, s in emb.sos1:
        model.addSOS(gp.GRB.SOS_TYPE1, [cols[h], cols[s]], [1.0, 2.0])
    for k, (z, value, c) in enumerate(emb.indicators):
        model.addGenConstrIndicator(cols[z], bool(value), cols[c], gp.GRB.LESS_EQUAL, 0.0, name=f"{name}.ind{k}")
    model.update()
    return GurobiNetworkConstr(emb, [cols[j] for j in mm.x_cols], [cols[j] for j in mm.y_cols], cols, model)
