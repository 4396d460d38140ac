"""Embed a network in a Pyomo model (the ``pyomo`` extra): a ``NetworkBlock``.

In OMLT's convention the network lives in a block of its own: ``m.nn = NetworkBlock()`` then
``m.nn.build(network, x)``, or in one call ``add_network_block(m, network, x)``. The block holds
the formulation's columns (``m.nn.v``, an indexed ``Var``), its rows (``m.nn.rows``) and, with
``formulation='sos1'``, one SOS1 constraint per unstable ReLU neuron (``m.nn.sos``), which
solvers with SOS support take (Gurobi, CPLEX, SCIP through their Pyomo interfaces; not HiGHS).
Pyomo has no solver-neutral indicator constraint, so ``'indicator'`` is refused here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ProblemError, SolverError
from .constraints import constraints_on_inputs, resolve_constraints
from .core import EmbeddedNetwork, as_network, check_count, formulate, input_box, new_columns, sequence

try:
    import pyomo.environ as pyo
    from pyomo.core.base.block import BlockData, declare_custom_block
    from pyomo.core.base.var import VarData
except ImportError:  # pragma: no cover - the extra is missing
    raise SolverError("embedding a network in a Pyomo model needs Pyomo: install the 'pyomo' extra "
                      "(pip install reluopt[pyomo])") from None


class PyomoNetwork(EmbeddedNetwork):
    """A network added to a Pyomo model (see `add_network_block`).

    Attributes
    ----------
    block : NetworkBlock
        The block holding the formulation.
    input_vars, output_vars : list of pyomo Var
        The inputs (the user's) and the outputs.
    stats : dict
        Binaries, stable and unstable neurons, largest big-M, bound method, sizes.
    """

    def __init__(self, embedding, input_vars, output_vars, variables, block) -> None:
        super().__init__(embedding, input_vars, output_vars, variables)
        self.block = block

    def _values(self, variables: list) -> np.ndarray:
        values = [v.value for v in variables]
        if any(value is None for value in values):
            raise ProblemError("the Pyomo model has no solution to check: solve it first (with load_solutions)")
        return np.array(values, dtype=np.float64)


def _variables(variables, what: str) -> list:
    if isinstance(variables, pyo.Var) and variables.is_indexed():
        variables = list(variables.values())
    out = sequence(variables, what)
    for v in out:
        if not isinstance(v, VarData):
            raise ProblemError(f"{what} variables must be Pyomo variables (pyo.Var), got {type(v).__name__}")
    return out


def _input_rows(model, xs: list, skip):
    """The active linear constraints of ``model`` (outside ``skip``) on the input variables alone,
    as ``A x <= b``."""
    from pyomo.repn import generate_standard_repn

    where = {id(v): i for i, v in enumerate(xs)}
    rows: list[np.ndarray] = []
    lo: list[float] = []
    hi: list[float] = []
    for con in model.component_data_objects(pyo.Constraint, active=True, descend_into=True):
        if con.parent_block() is skip:
            continue
        repn = generate_standard_repn(con.body, compute_values=True, quadratic=False)
        if not repn.is_linear() or not repn.linear_vars or any(id(v) not in where for v in repn.linear_vars):
            continue
        a = np.zeros(len(xs))
        for v, c in zip(repn.linear_vars, repn.linear_coefs, strict=True):
            a[where[id(v)]] += float(c)
        const = float(repn.constant or 0.0)
        rows.append(a)
        lo.append(-np.inf if con.lb is None else float(pyo.value(con.lb)) - const)
        hi.append(np.inf if con.ub is None else float(pyo.value(con.ub)) - const)
    if not rows:
        return None, None
    return constraints_on_inputs(np.array(rows), lo, hi, list(range(len(xs))))


@declare_custom_block(name="NetworkBlock")
class NetworkBlockData(BlockData):
    """A Pyomo block holding one network's formulation; fill it with `build`."""

    def build(self, network, x, y=None, *, bounds: str = "crown", formulation: str = "bigm",
              bound_options: dict | None = None, input_constraints="model", rescale: bool = False) -> PyomoNetwork:
        """Add ``y = network(x)`` to this block with reluopt's formulation.

        Parameters
        ----------
        network : Network, str or object
            Anything ``reluopt.load`` accepts.
        x : sequence or indexed Var
            The input variables (one per network input), with finite bounds.
        y : sequence or indexed Var, optional
            The output variables; new ones in the block (``outputs``, bounded by reluopt's
            output bounds) when omitted.
        bounds : str, optional
            The neuron bound method, one of ``reluopt.bounds.BOUND_METHODS`` (default 'crown').
        formulation : str, optional
            'bigm' (default) or 'sos1' (for ReLU neurons; see ``reluopt.embed.FORMULATIONS``).
        bound_options : dict, optional
            Options of ``reluopt.compute_bounds``.
        input_constraints : 'model', None or (A, b), optional
            The linear constraints on the inputs that the OBBT bound methods use: 'model'
            (default) reads the model's active linear constraints present now that involve only
            the input variables; None: the box alone; ``(A, b)``: ``A x <= b`` on the inputs.
        rescale : bool, optional
            Formulate the rescaled network (``reluopt.milp.rescale``; the same function).

        Returns
        -------
        PyomoNetwork
            Also stored as ``self.network``; with ``output_vars``, ``stats`` and ``get_error()``.
        """
        if formulation == "indicator":
            raise ProblemError("Pyomo has no solver-neutral indicator constraint; use formulation='sos1' "
                               "(solvers with SOS1) or 'bigm'")
        net = as_network(network)
        xs = _variables(x, "input")
        check_count("input", len(xs), net.input_dim, net)
        ys = None if y is None else _variables(y, "output")
        for v in xs + (ys or []):
            if v.model() is not self.model():
                raise ProblemError(f"variable {v.name} belongs to another Pyomo model than this block")
        if ys is not None:
            check_count("output", len(ys), net.output_dim, net)
        lb, ub = input_box([v.lb for v in xs], [v.ub for v in xs], [v.name for v in xs])
        A, b = resolve_constraints(input_constraints, lambda: _input_rows(self.model(), xs, self), bounds)
        emb = formulate(net, lb, ub, bounds=bounds, formulation=formulation, bound_options=bound_options, A=A, b=b,
                        rescale=rescale)
        mm = emb.model
        fresh = new_columns(emb, ys is not None)

        def var_bounds(_, k):
            lo, hi = mm.col_lower[fresh[k]], mm.col_upper[fresh[k]]
            return (float(lo) if np.isfinite(lo) else None, float(hi) if np.isfinite(hi) else None)

        def domain(_, k):
            return pyo.Binary if mm.integrality[fresh[k]] else pyo.Reals

        self.v = pyo.Var(range(fresh.size), bounds=var_bounds, domain=domain)
        cols: list = [None] * mm.n_cols
        for i, j in enumerate(mm.x_cols):
            cols[j] = xs[i]
        if ys is not None:
            for i, j in enumerate(mm.y_cols):
                cols[j] = ys[i]
        for k, j in enumerate(fresh):
            cols[j] = self.v[k]
        A = mm.A.tocsr()

        def row(_, i):
            s, e = A.indptr[i], A.indptr[i + 1]
            expr = sum(float(c) * cols[j] for j, c in zip(A.indices[s:e], A.data[s:e], strict=True))
            lo, hi = mm.row_lower[i], mm.row_upper[i]
            if np.isfinite(lo) and lo == hi:
                return expr == float(lo)
            return (float(lo) if np.isfinite(lo) else None, expr, float(hi) if np.isfinite(hi) else None)

        self.rows = pyo.Constraint(range(A.shape[0]), rule=row)
        if emb.sos1.size:
            pairs = emb.sos1
            self.sos = pyo.SOSConstraint(range(pairs.shape[0]), sos=1,
                                         rule=lambda _, k: ([cols[pairs[k, 0]], cols[pairs[k, 1]]], [1, 2]))
        self.inputs = xs
        self.outputs = [cols[j] for j in mm.y_cols]
        self.network = PyomoNetwork(emb, xs, self.outputs, cols, self)
        return self.network


#: The block class (``m.nn = NetworkBlock()``), made by Pyomo's ``declare_custom_block``.
NetworkBlock: Any = globals()["NetworkBlock"]


def add_network_block(block, network, x, y=None, *, name: str = "nn", bounds: str = "crown",
                      formulation: str = "bigm", bound_options: dict | None = None, input_constraints="model",
                      rescale: bool = False) -> PyomoNetwork:
    """Add a `NetworkBlock` called ``name`` to ``block`` (a model or block) holding ``y = network(x)``.

    Parameters
    ----------
    block : pyomo Block or ConcreteModel
        Where the network's block goes.
    network, x, y, bounds, formulation, bound_options, input_constraints, rescale
        As in ``NetworkBlock.build``.
    name : str, optional
        The new block's name in ``block``.

    Returns
    -------
    PyomoNetwork
        With ``block``, ``output_vars``, ``stats`` and ``get_error()`` (after a solve).
    """
    if block.component(name) is not None:
        raise ProblemError(f"the Pyomo block already has a component called {name!r}; pass another name")
    blk = NetworkBlock()
    block.add_component(name, blk)
    try:
        return blk.build(network, x, y, bounds=bounds, formulation=formulation, bound_options=bound_options,
                         input_constraints=input_constraints, rescale=rescale)
    except BaseException:
        block.del_component(name)     # leave the user's model as it was
        raise
