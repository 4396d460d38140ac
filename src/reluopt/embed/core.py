"""The part of the embedding every modelling layer shares: one solver-neutral formulation.

``formulate`` turns a network and the bounds of its input variables (read from the user's
model) into an ``Embedding``: reluopt's big-M ``MilpModel`` (``milp.formulation``) with neuron
bounds from ``reluopt.bounds.compute_bounds`` and stable neurons removed, and, on request,
SOS1 pairs or indicator constraints in place of the big-M rows of unstable ReLU neurons. Each
modelling layer (``embed.highspy``, ``embed.pyscipopt``, ``embed.gurobipy``, ``embed.pyomo``)
translates that one formulation column by column and row by row, mapping the input columns to
the user's variables. ``EmbeddedNetwork`` is the object every layer returns.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from ..activations import ReLU
from ..bounds import LayerBounds, check_method, compute_bounds
from ..errors import ProblemError, ReluoptError
from ..io import load_model
from ..milp.formulation import MilpModel, build_network_model
from ..milp.rescale import rescale as _rescale
from ..milp.rescale import rescale_bounds
from ..network import Network
from ..problem import Domain

#: The formulations of an unstable ReLU neuron: big-M rows with a binary (default), an SOS1
#: pair ``(h, s)`` with ``h - s = W h_prev + b`` (no binary), or that pair with a binary whose
#: value switches on ``h <= 0`` or ``s <= 0`` as indicator constraints.
FORMULATIONS = ("bigm", "sos1", "indicator")


@dataclass
class Embedding:
    """One network's formulation, ready to be put into a modelling layer.

    Attributes
    ----------
    model : MilpModel
        Columns, rows and integrality (``x_cols`` are the user's input variables, ``y_cols``
        the outputs); no objective.
    sos1 : numpy.ndarray
        ``(k, 2)`` column pairs of which at most one may be nonzero.
    indicators : numpy.ndarray
        ``(k, 3)`` rows ``(binary, value, column)``: ``binary == value`` implies ``column <= 0``.
    formulation : str
        One of `FORMULATIONS`.
    stats : dict
        ``binaries``, ``hidden_neurons``, ``stable_neurons``, ``unstable_neurons``,
        ``largest_big_m`` (the largest big-M constant of the big-M form; the sos1 and indicator
        forms bound their variables by it instead), ``bounds`` (method), ``formulation``,
        ``sos1``, ``indicators``, ``columns``, ``rows`` and ``scaling_issue`` (None, or why the
        solver's tolerances may not make its answer exact; also warned about).
    """

    model: MilpModel
    sos1: np.ndarray
    indicators: np.ndarray
    formulation: str
    stats: dict = field(default_factory=dict)

    @property
    def network(self) -> Network:
        """The network modelled."""
        return self.model.network

    @property
    def bounds(self) -> LayerBounds:
        """The neuron bounds behind the formulation."""
        return self.model.bounds


def as_network(network, trust_pickle: bool = False) -> Network:
    """A reluopt ``Network`` from anything ``reluopt.load`` accepts.

    Parameters
    ----------
    network : Network, str, os.PathLike or object
        A network, a file (``.onnx``, ``.npz``, ...) or a model in memory (torch, scikit-learn, ONNX).
    trust_pickle : bool, optional
        Passed to ``reluopt.load`` (only for pickled files you trust).

    Returns
    -------
    Network
    """
    if isinstance(network, Network):
        return network
    try:
        return load_model(network, trust_pickle=trust_pickle)
    except ReluoptError as exc:
        raise ProblemError(f"cannot embed this network: {exc}") from exc


def check_count(what: str, given: int, expected: int, network: Network) -> None:
    """A ProblemError when ``given`` variables are passed where the network has ``expected``.

    Parameters
    ----------
    what : str
        'input' or 'output'.
    given, expected : int
        Counts of variables passed and of network inputs or outputs.
    network : Network
        For the message.
    """
    if given != expected:
        raise ProblemError(f"the network has {expected} {what}s ({network.input_dim} inputs, {network.output_dim} "
                           f"outputs) but {given} {what} variables were given")


def input_box(lower, upper, names, infinity: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """The input box from the user's variable bounds, or a ProblemError naming each unbounded one.

    Parameters
    ----------
    lower, upper : array_like
        The variables' bounds as the modelling layer reports them (None: none).
    names : list of str
        The variables' names, for the message.
    infinity : float, optional
        The layer's infinity: a bound of at least this magnitude counts as none.

    Returns
    -------
    lb, ub : numpy.ndarray
    """
    lb = np.array([-np.inf if v is None else float(v) for v in lower], dtype=np.float64)
    ub = np.array([np.inf if v is None else float(v) for v in upper], dtype=np.float64)
    lb[lb <= -infinity] = -np.inf
    ub[ub >= infinity] = np.inf
    bad = np.nonzero(~(np.isfinite(lb) & np.isfinite(ub)))[0]
    if bad.size:
        listed = ", ".join(f"{names[i]} [{lb[i]:g}, {ub[i]:g}]" for i in bad[:5])
        more = f" and {bad.size - 5} more" if bad.size > 5 else ""
        raise ProblemError(
            f"the network's inputs need finite bounds, but {bad.size} input variable(s) have none: {listed}{more}; "
            "set lower and upper bounds on these variables (the range of the training data is a natural choice)")
    if np.any(lb > ub):
        i = int(np.argmax(lb > ub))
        raise ProblemError(f"input variable {names[i]} has an empty range [{lb[i]:g}, {ub[i]:g}]")
    return lb, ub


def formulate(network: Network, lb, ub, *, bounds: str = "crown", formulation: str = "bigm",
              bound_options: dict | None = None, A=None, b=None, rescale: bool = False) -> Embedding:
    """The tightest formulation reluopt has of ``network`` over the input box ``[lb, ub]``.

    Parameters
    ----------
    network : Network
        The network.
    lb, ub : array_like
        The input box (finite), read from the user's variables.
    bounds : str, optional
        A bound method of ``reluopt.bounds.BOUND_METHODS`` (default 'crown').
    formulation : str, optional
        One of `FORMULATIONS`; 'sos1' and 'indicator' apply to ReLU layers (other
        activations keep their big-M rows).
    bound_options : dict, optional
        Keyword options of ``compute_bounds`` (``time_limit``, ``iters``, ...).
    A, b : array_like, optional
        Linear constraints ``A x <= b`` of the user's model on the network's inputs alone; the
        bound methods that take constraints ('lp-obbt', 'mip-obbt') tighten the neuron bounds
        over the box intersected with them, the others ignore them (their bounds hold on the
        whole box). They are not added to the formulation: they are the user's rows already.
    rescale : bool, optional
        Formulate the rescaled network (``milp.rescale``: each unstable neuron's bound range
        normalised by a power of two; the same function, so inputs and outputs mean the same).

    Returns
    -------
    Embedding
    """
    if formulation not in FORMULATIONS:
        raise ProblemError(f"unknown formulation {formulation!r}; choose from {', '.join(FORMULATIONS)}")
    check_method(bounds)
    domain = Domain(lb, ub, A, b)
    layer_bounds = compute_bounds(network, domain.lb, domain.ub, bounds, A=domain.A, b=domain.b,
                                  **(bound_options or {}))
    if rescale:
        network, factors = _rescale(network, layer_bounds)
        layer_bounds = rescale_bounds(layer_bounds, factors)
    model = build_network_model(network, Domain(domain.lb, domain.ub), layer_bounds)
    binary = np.nonzero(model.integrality)[0]
    big_m = float(np.abs(model.A[:, binary].data).max()) if binary.size and model.A[:, binary].nnz else 0.0
    issue = model.scaling_issue()
    if issue is not None:
        warnings.warn(f"reluopt embedding: the solver's answer may not be exact: {issue}", stacklevel=3)
    sos1 = np.zeros((0, 2), dtype=np.int64)
    indicators = np.zeros((0, 3), dtype=np.int64)
    if formulation != "bigm":
        model, sos1, indicators = _complementarity(model, formulation)
    hidden = network.n_hidden
    stable = int(model.stats["stable_neurons"])
    stats = {
        "formulation": formulation,
        "bounds": layer_bounds.method,
        "binaries": int(model.integrality.sum()),
        "hidden_neurons": hidden,
        "stable_neurons": stable,
        "unstable_neurons": hidden - stable,
        "largest_big_m": big_m,
        "sos1": int(sos1.shape[0]),
        "indicators": int(indicators.shape[0]),
        "columns": model.n_cols,
        "rows": model.n_rows,
        "scaling_issue": issue,
        "input_constraints": 0 if domain.A is None else int(domain.A.shape[0]),
        "rescaled": bool(rescale),
    }
    return Embedding(model, sos1, indicators, formulation, stats)


def _complementarity(model: MilpModel, formulation: str) -> tuple[MilpModel, np.ndarray, np.ndarray]:
    """Replace the big-M rows of unstable ReLU neurons by ``h - s = W h_prev + b`` with
    ``0 <= s <= -L`` and either SOS1 ``(h, s)`` (binaries dropped) or indicators on the binary."""
    net = model.network
    A = model.A.tocsc()
    drop_rows: list[np.ndarray] = []
    z_relu: list[np.ndarray] = []
    new: list[tuple[int, int, int, float]] = []     # (h column, layer, neuron, L) per unstable ReLU neuron
    for l, layer in enumerate(net.hidden_layers):
        zc = model.z_cols[l]
        if type(layer.act) is not ReLU or not (zc >= 0).any():
            continue
        sel = np.nonzero(zc >= 0)[0]
        sub = A[:, zc[sel]]
        drop_rows.append(sub.indices)
        z_relu.append(zc[sel])
        L = model.bounds.lower[l][0]
        new.extend((int(model.h_cols[l][i]), l, int(i), float(L[i])) for i in sel)
    if not new:
        return model, np.zeros((0, 2), np.int64), np.zeros((0, 3), np.int64)
    keep_rows = np.ones(model.n_rows, dtype=bool)
    keep_rows[np.concatenate(drop_rows)] = False
    out = replace(model, A=model.A[keep_rows], row_lower=model.row_lower[keep_rows],
                  row_upper=model.row_upper[keep_rows], stats=dict(model.stats))
    k = len(new)
    s_cols = out.add_columns(np.zeros(k), np.array([-L for *_, L in new]))
    rows_i, rows_j, rows_v, rhs = [], [], [], np.zeros(k)
    for r, (h, l, i, _) in enumerate(new):
        prev = model.x_cols if l == 0 else model.h_cols[l - 1]
        keep = prev >= 0
        w = net.layers[l].W[i, keep]
        nz = w != 0
        rows_i += [r] * (2 + int(nz.sum()))
        rows_j += [h, int(s_cols[r]), *prev[keep][nz].tolist()]
        rows_v += [1.0, -1.0, *(-w[nz]).tolist()]
        rhs[r] = net.layers[l].b[i]
    out.add_rows(sp.csr_matrix((rows_v, (rows_i, rows_j)), shape=(k, out.n_cols)), rhs, rhs)
    h_cols = np.array([h for h, *_ in new], dtype=np.int64)
    z = np.concatenate(z_relu)
    if formulation == "sos1":
        out, remap = _drop_columns(out, z)
        return out, np.stack([remap(h_cols), remap(s_cols)], axis=1), np.zeros((0, 3), np.int64)
    indicators = np.concatenate([np.stack([z, np.zeros(k, np.int64), h_cols], axis=1),
                                 np.stack([z, np.ones(k, np.int64), s_cols], axis=1)])
    return out, np.zeros((0, 2), np.int64), indicators


def _drop_columns(model: MilpModel, drop: np.ndarray):
    """``model`` without the columns ``drop`` (which no row may use), its index arrays remapped,
    and the function that maps old column indices to new ones (-1: dropped)."""
    keep = np.ones(model.n_cols, dtype=bool)
    keep[drop] = False
    index = np.cumsum(keep) - 1

    def remap(cols: np.ndarray) -> np.ndarray:
        return np.where((cols >= 0) & keep[np.maximum(cols, 0)], index[np.maximum(cols, 0)], -1)

    out = replace(model, cost=model.cost[keep], col_lower=model.col_lower[keep], col_upper=model.col_upper[keep],
                  integrality=model.integrality[keep], A=model.A[:, keep].tocsr(),
                  x_cols=remap(model.x_cols), h_cols=[remap(c) for c in model.h_cols],
                  z_cols=[remap(c) for c in model.z_cols], y_cols=remap(model.y_cols),
                  z2_cols=[remap(c) for c in model.z2_cols], stats=dict(model.stats))
    return out, remap


class EmbeddedNetwork:
    """A network added to a user's model: its variables, statistics and ``get_error()``.

    Each modelling layer subclasses it and says how to read a variable's value after a solve.

    Parameters
    ----------
    embedding : Embedding
        The formulation added.
    input_vars, output_vars : list
        The user's input variables and the output variables (the user's or new ones).
    variables : list
        One variable per column of ``embedding.model``.
    """

    def __init__(self, embedding: Embedding, input_vars: list, output_vars: list, variables: list) -> None:
        self.embedding = embedding
        self.input_vars = input_vars
        self.output_vars = output_vars
        self.variables = variables

    @property
    def network(self) -> Network:
        """The network embedded."""
        return self.embedding.network

    @property
    def stats(self) -> dict:
        """Statistics: binaries, stable and unstable neurons, largest big-M, bound method, sizes."""
        return self.embedding.stats

    @property
    def bounds(self) -> LayerBounds:
        """The neuron bounds reluopt computed from the input variables' bounds."""
        return self.embedding.bounds

    def _values(self, variables: list) -> np.ndarray:
        """The values of ``variables`` in the model's current solution (raises when there is none)."""
        raise NotImplementedError

    def input_values(self) -> np.ndarray:
        """The input variables' values in the model's solution.

        Returns
        -------
        numpy.ndarray
        """
        return self._values(self.input_vars)

    def output_values(self) -> np.ndarray:
        """The output variables' values in the model's solution.

        Returns
        -------
        numpy.ndarray
        """
        return self._values(self.output_vars)

    def get_error(self) -> float:
        """After a solve: the largest ``|y - f(x)|`` between the model's outputs and the
        network's forward pass at the model's inputs.

        Returns
        -------
        float
        """
        x = self.input_values()
        y = self.output_values()
        return float(np.max(np.abs(y - self.network.forward(x)), initial=0.0))

    def __repr__(self) -> str:
        s = self.stats
        return (f"<{type(self).__name__}: {self.network.input_dim} inputs, {self.network.output_dim} outputs, "
                f"{s['formulation']} with {s['bounds']} bounds, {s['binaries']} binaries, "
                f"{s['stable_neurons']}/{s['hidden_neurons']} stable neurons, largest big-M {s['largest_big_m']:.3g}>")


def new_columns(embedding: Embedding, outputs_given: bool) -> np.ndarray:
    """The columns of ``embedding.model`` that need a new variable (all but the user's ones).

    Parameters
    ----------
    embedding : Embedding
    outputs_given : bool
        Whether the user passed the output variables.

    Returns
    -------
    numpy.ndarray
        Column indices, increasing.
    """
    model = embedding.model
    mask = np.ones(model.n_cols, dtype=bool)
    mask[model.x_cols] = False
    if outputs_given:
        mask[model.y_cols] = False
    return np.nonzero(mask)[0]


def column_names(embedding: Embedding, prefix: str) -> list[str]:
    """A name per column of ``embedding.model`` by its role: ``prefix.h0[3]`` (post-activation of
    neuron 3 of hidden layer 0), ``.z0[3]`` / ``.w0[3]`` (its binaries), ``.s0[3]`` (its slack in
    the sos1 and indicator forms), ``.y[1]`` (output), ``.x[0]`` (input).

    Parameters
    ----------
    embedding : Embedding
    prefix : str

    Returns
    -------
    list of str
    """
    model = embedding.model
    names = [f"{prefix}.v[{j}]" for j in range(model.n_cols)]

    def label(cols: np.ndarray, tag: str) -> None:
        for i, j in enumerate(cols):
            if j >= 0:
                names[int(j)] = f"{prefix}.{tag}[{i}]"

    label(model.x_cols, "x")
    label(model.y_cols, "y")
    for l in range(len(model.h_cols)):
        label(model.h_cols[l], f"h{l}")
        label(model.z_cols[l], f"z{l}")
        if l < len(model.z2_cols):
            label(model.z2_cols[l], f"w{l}")
    slack = embedding.sos1[:, 1] if embedding.sos1.size else embedding.indicators[embedding.indicators[:, 1] == 1, 2]
    where = {}
    for l, cols in enumerate(model.h_cols):
        for i, j in enumerate(cols):
            if j >= 0:
                where[int(j)] = (l, i)
    partner = embedding.sos1[:, 0] if embedding.sos1.size else embedding.indicators[embedding.indicators[:, 1] == 0, 2]
    for h, s in zip(partner, slack, strict=True):
        l, i = where[int(h)]
        names[int(s)] = f"{prefix}.s{l}[{i}]"
    return names


def mapped_rows(embedding: Embedding, colmap: np.ndarray, n_solver_cols: int) -> sp.csr_matrix:
    """The rows of ``embedding.model`` over the solver's columns (``colmap[j]``: the solver's
    column of model column ``j``); repeated variables have their coefficients summed.

    Parameters
    ----------
    embedding : Embedding
    colmap : numpy.ndarray
    n_solver_cols : int

    Returns
    -------
    scipy.sparse.csr_matrix
    """
    A = embedding.model.A.tocsr()
    out = sp.csr_matrix((A.data, np.asarray(colmap, dtype=np.int64)[A.indices], A.indptr),
                        shape=(A.shape[0], n_solver_cols))
    out.sum_duplicates()
    return out


def sequence(variables, what: str) -> list:
    """The variables a user passed as one flat list (a sequence, an array, a dict's values or one
    variable).

    Parameters
    ----------
    variables : object
    what : str
        'input' or 'output', for the message.

    Returns
    -------
    list
    """
    if isinstance(variables, dict):
        return list(variables.values())
    if isinstance(variables, np.ndarray):
        return list(variables.reshape(-1))
    if hasattr(variables, "tolist") and hasattr(variables, "shape"):   # e.g. gurobipy's MVar
        return list(np.asarray(variables.tolist(), dtype=object).reshape(-1))
    if isinstance(variables, (list, tuple)):
        return list(variables)
    try:
        return list(variables)
    except TypeError:
        return [variables]
