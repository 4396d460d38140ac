"""The one place that maps a bound method's name to its code: ``compute_bounds``.

Every caller that lets a user pick a bound method by name (the MIP, the analysis indicators, the
Lipschitz bounds, the ``reluopt bounds`` CLI) asks here, and lists ``BOUND_METHODS`` in its
choices and error messages.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import ProblemError
from ..network import Network
from .core import LayerBounds, as_boxes

#: The bound methods, cheapest first: interval arithmetic, CROWN, CROWN with optimised lower
#: slopes, LP-based and MIP-based optimisation-based bound tightening.
BOUND_METHODS = ("ibp", "crown", "alpha-crown", "lp-obbt", "mip-obbt")


def check_method(method) -> str:
    """The bound method's name, or a ProblemError listing the valid ones.

    Parameters
    ----------
    method : str
        A name from ``BOUND_METHODS``.

    Returns
    -------
    str
        ``method`` itself.
    """
    if not isinstance(method, str) or method not in BOUND_METHODS:
        raise ProblemError(f"unknown bound method {method!r}; choose from {', '.join(BOUND_METHODS)}")
    return method


def compute_bounds(network: Network, lb, ub, method: str = "crown", *, A=None, b=None,
                   initial: LayerBounds | None = None, time_limit: float | None = None,
                   time_limit_per_neuron: float | None = None, executor=None, objective_cutoff=None,
                   layers=None, iters: int = 30) -> LayerBounds:
    """Sound bounds of every neuron and output of ``network`` over the box(es) ``[lb, ub]``.

    Options a method does not use are ignored: its bounds hold on the whole box, hence also on
    any subset of it (``A x <= b``, an objective cut-off).

    Parameters
    ----------
    network : Network
        The network.
    lb, ub : array_like
        One box (d,) or, for 'ibp', 'crown' and 'alpha-crown', a batch of boxes (B, d).
    method : str
        One of ``BOUND_METHODS``: 'ibp' (interval arithmetic), 'crown' (default), 'alpha-crown'
        (CROWN with lower slopes optimised per neuron and output), 'lp-obbt' or 'mip-obbt'
        (``reluopt.bounds.obbt.obbt_bounds``: one box only).
    A, b : array_like or None
        Input constraints ``A x <= b`` (both or neither); used by the OBBT methods.
    initial : LayerBounds or None
        Bounds of the same box(es) to start from and never loosen (alpha-crown and OBBT;
        default CROWN).
    time_limit : float or None
        Seconds for alpha-crown and OBBT: they stop early with sound partial bounds.
    time_limit_per_neuron : float or None
        OBBT: cap of each LP / MIP.
    executor : None, int, str or Executor
        OBBT: where the LPs run (``reluopt.parallel.get_executor``; an int is a worker count).
    objective_cutoff : tuple or None
        OBBT: ``(c, d, value)`` keeps only inputs with ``c.y + d >= value``
        (``reluopt.bounds.obbt.incumbent_cutoff``).
    layers : iterable of int or None
        OBBT: the layers to tighten (hidden ``0..depth-1``, ``depth`` = outputs; default all).
    iters : int
        alpha-crown: gradient steps per layer.

    Returns
    -------
    LayerBounds
        Bounds of shape (B, n_l) per hidden layer and (B, m) for the outputs; ``method`` names
        the method, ``stats`` holds its statistics.
    """
    check_method(method)
    if A is not None or b is not None:
        if A is None or b is None:
            raise ProblemError("give both A and b for linear input constraints A x <= b")
    if method == "ibp":
        from .ibp import interval_bounds

        return interval_bounds(network, lb, ub)
    if method == "crown":
        from .crown import crown_bounds

        return crown_bounds(network, lb, ub)
    if method == "alpha-crown":
        return _alpha_crown(network, lb, ub, initial, time_limit, iters)
    return _obbt(network, lb, ub, method, A, b, initial, time_limit, time_limit_per_neuron, executor,
                 objective_cutoff, layers)


def _alpha_crown(network: Network, lb, ub, initial: LayerBounds | None, time_limit: float | None,
                 iters: int) -> LayerBounds:
    """alpha-CROWN per box: the hidden layers (``alpha_crown_bounds``), then each output's
    lower and upper bound with its own slopes (``optimise_rows``), intersected with CROWN."""
    from .alpha import alpha_crown_bounds, optimise_rows
    from .crown import crown_bounds

    if time_limit is not None and not time_limit > 0:
        raise ProblemError(f"time_limit must be > 0, got {time_limit}")
    lo, hi, _ = as_boxes(network, lb, ub)
    start = time.perf_counter()
    deadline = None if time_limit is None else start + float(time_limit)
    base = crown_bounds(network, lo, hi) if initial is None else initial
    if base.batch != lo.shape[0]:
        raise ProblemError(f"initial bounds have {base.batch} boxes, the query {lo.shape[0]}")
    m = network.output_dim
    spec = np.concatenate([np.eye(m), -np.eye(m)])
    parts = []
    for i in range(lo.shape[0]):
        box = base.select([i])
        out = alpha_crown_bounds(network, lo[i], hi[i], box, iters=iters, deadline=deadline)
        lowers = [L[0] for L in out.lower]
        uppers = [U[0] for U in out.upper]
        if network.depth > 0 and all(layer.act.optimisable for layer in network.hidden_layers):
            up = optimise_rows(network, network.depth, spec, lowers, uppers, lo[i], hi[i], iters=iters,
                               deadline=deadline)
            out_lower = np.maximum(box.out_lower[0], -up[m:])
            out_upper = np.minimum(box.out_upper[0], up[:m])
            keep = out_lower <= out_upper      # crossing only through round-off: keep CROWN's
            out_lower = np.where(keep, out_lower, box.out_lower[0])
            out_upper = np.where(keep, out_upper, box.out_upper[0])
        else:
            out_lower, out_upper = box.out_lower[0], box.out_upper[0]
        parts.append((out.lower, out.upper, out_lower, out_upper))
    lower = [np.concatenate([p[0][l] for p in parts]) for l in range(network.depth)]
    upper = [np.concatenate([p[1][l] for p in parts]) for l in range(network.depth)]
    return LayerBounds(lower, upper, np.stack([p[2] for p in parts]), np.stack([p[3] for p in parts]),
                       "alpha-crown", {"seconds": time.perf_counter() - start, "initial": base.method},
                       box_lower=lo, box_upper=hi)


def _obbt(network: Network, lb, ub, method: str, A, b, initial, time_limit, time_limit_per_neuron, executor,
          objective_cutoff, layers) -> LayerBounds:
    """LP- or MIP-OBBT over the one box ``[lb, ub]`` (with ``A x <= b``)."""
    from ..problem import Domain
    from .obbt import obbt_bounds

    lo, hi, _ = as_boxes(network, lb, ub)
    if lo.shape[0] != 1:
        raise ProblemError(f"{method} bounds one box at a time; got {lo.shape[0]} boxes")
    domain = Domain(lo[0], hi[0], A, b)
    return obbt_bounds(network, domain, initial=initial, mode=method.split("-")[0], time_limit=time_limit,
                       time_limit_per_neuron=time_limit_per_neuron, executor=executor,
                       objective_cutoff=objective_cutoff, layers=layers)
