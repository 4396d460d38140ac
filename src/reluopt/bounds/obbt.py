"""Optimisation-based bound tightening (OBBT): LP- and MIP-based, layer by layer.

For each hidden layer ``k`` in turn, and each neuron of it that is still unstable, minimise
and maximise its pre-activation ``g_k,i`` over the relaxation of the layers before it, built
with the bounds already tightened (plus the domain's ``A x <= b`` and, optionally, an
objective cut-off ``c.y + d >= value`` from an incumbent, which then needs the whole
network in the model). The output layer is tightened last. Tighter bounds make more neurons
stable (the big-M formulation drops their binaries) and shrink the big-M of the others.

One HiGHS model per layer (per chunk of neurons when run in parallel): the pre-activations
``g_k`` are columns of the model, and each LP only changes the objective (two cost entries,
``changeColsCost``) and re-solves with the simplex method from a warm basis. Every neuron
starts from the layer's root basis (a feasible basis found once), and its max LP continues
from its min LP's basis: the result of a neuron therefore does not depend on which other
neurons share its model, so serial, process and Dask runs give bit-identical bounds.

Soundness (the documented choice): the solver's objective value is NOT used. From the
solver's row duals ``y`` (any vector, optimal or not) a valid bound follows by weak duality:
for ``min c.v`` s.t. ``rl <= A v <= ru``, ``cl <= v <= cu``,

    c.v = y.(A v) + r.v  >=  sum_i min(y_i rl_i, y_i ru_i) + sum_j min(r_j cl_j, r_j cu_j),

with ``r = c - A^T y`` recomputed in numpy (entries of ``y`` whose needed side is infinite
are set to 0 first). The sum is widened outward by ``bounds.core.outward`` with the magnitude
of every term, including the rounding of ``r``. An inexact or stopped LP only gives a looser
bound, never a wrong one. The MIP variant (``mode='mip'``) first runs the certified LP pass
on the layer, then one MIP per still-unstable neuron with a time limit; it uses the MIP's
dual bound (sound at a time-out too, up to solver tolerances), widened by
``MIP_TOL * (1 + |bound| + ||w||_1 max|h|)`` since a branch-and-bound dual bound cannot be
recomputed from one dual vector. Results are always intersected with the initial bounds
(CROWN by default), so OBBT is never looser than them.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..errors import ProblemError
from ..network import Network
from ..problem import Domain
from ..result import StopFlag, interrupt_handled, interrupt_requested, interruptible
from .core import LayerBounds
from .crown import _layer_bounds, relaxation
from .ibp import activate_interval, affine_interval
from .obbt_worker import (
    MIP_TOL,
    _layer_model,  # noqa: F401  (re-exported: tests build one layer's model)
    _solve_chunk,
    _StopFile,
    _Task,
    _unstable,
    dual_lower_bound,
)

__all__ = ["MIP_TOL", "dual_lower_bound", "incumbent_cutoff", "obbt_bounds"]


# ----------------------------------------------------------------------------- driver
def _as_domain(network: Network, domain, ub) -> Domain:
    if isinstance(domain, Domain):
        if ub is not None:
            raise ProblemError("give either a Domain or lb, ub to obbt_bounds, not both")
        dom = domain
    else:
        if ub is None:
            raise ProblemError("obbt_bounds needs a Domain or both lb and ub")
        dom = Domain(domain, ub)
    if dom.dim != network.input_dim:
        raise ProblemError(f"domain has {dom.dim} inputs, the network has {network.input_dim}")
    dom.require_bounded("OBBT")
    return dom


def _cutoff(network: Network, objective_cutoff):
    if objective_cutoff is None:
        return None
    try:
        c, d, value = objective_cutoff
    except (TypeError, ValueError):
        raise ProblemError("objective_cutoff must be (c, d, value) meaning c.y + d >= value") from None
    c = np.asarray(c, dtype=np.float64).reshape(-1)
    if c.shape[0] != network.output_dim:
        raise ProblemError(f"objective_cutoff c has {c.shape[0]} entries, the network has "
                           f"{network.output_dim} outputs")
    if not (np.all(np.isfinite(c)) and math.isfinite(d) and math.isfinite(value)):
        raise ProblemError("objective_cutoff must be finite")
    return c, float(d), float(value)


def incumbent_cutoff(problem, x, margin: float = 1e-6) -> tuple[np.ndarray, float, float]:
    """``objective_cutoff`` for ``obbt_bounds`` from a feasible point ``x`` of ``problem``.

    Only inputs at least as good as ``x`` (in the max form ``c.y + d``) are kept, relaxed by
    ``margin * (1 + |value|)`` so that ``x`` itself stays feasible under solver tolerances.
    The bounds it gives are valid for the optimisation problem only (every optimum is at
    least as good as ``x``), not for the whole domain.

    Parameters
    ----------
    problem : Problem
        The problem being optimised.
    x : array_like, shape (d,)
        A feasible point of it.
    margin : float
        Relative slack of the cutoff.

    Returns
    -------
    c : np.ndarray
    d : float
    value : float
        The cutoff ``c . y + d >= value``.

    Raises
    ------
    ProblemError
        When ``x`` is not feasible.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if not problem.is_feasible(x[None, :])[0]:
        raise ProblemError("incumbent_cutoff needs a feasible point of the problem")
    c, d = problem.max_form()
    value = float(c @ problem.network.forward(x[None, :])[0] + d)
    return c, float(d), value - margin * (1.0 + abs(value))


def obbt_bounds(
    network: Network,
    domain,
    ub=None,
    *,
    initial: LayerBounds | None = None,
    mode: str = "lp",
    time_limit_per_neuron: float | None = None,
    objective_cutoff=None,
    executor=None,
    layers=None,
    chunks_per_worker: int = 2,
    time_limit: float | None = None,
) -> LayerBounds:
    """Tightened pre-activation (and output) bounds over ``domain`` by LP or MIP OBBT.

    Limits: ``time_limit`` seconds for the whole run: every LP/MIP gets HiGHS's time limit
    from the time left, none starts after it. Ctrl-C stops within about a second (the flag
    is polled between LPs and by HiGHS's interrupt callback inside them). Either way the
    result is sound partial bounds: each neuron keeps its last certified bounds (the initial
    ones if it was not reached), ``stats['stopped']`` is ``'time_limit'`` or
    ``'interrupted'`` (None when complete) and ``stats['skipped']`` counts the neurons not
    reached. After Ctrl-C the later layers are not refreshed; inside an ``interruptible``
    block (a method run) the partial bounds are returned, else ``KeyboardInterrupt`` is
    raised once the workers have stopped. An LP whose run fails or ends other than optimal
    leaves its neuron's bound as it was (``stats['errors']``, ``stats['not_optimal']``).
    Stats: wall time, and summed over workers the model-building, LP/MIP solve and
    certificate times.

    Parameters
    ----------
    network : Network
        The network.
    domain : Domain or array_like
        A Domain (box and optional ``A x <= b``), or ``lb`` with ``ub`` next.
    ub : array_like, optional
        The box's upper bounds when ``domain`` is ``lb``.
    initial : LayerBounds, optional
        Bounds to start from and never loosen (default CROWN), of exactly one box.
    mode : {'lp', 'mip'}
        Bound each neuron over the LP relaxation or the MIP.
    time_limit_per_neuron : float, optional
        Caps each MIP, and each LP.
    objective_cutoff : tuple (c, d, value), optional
        Adds ``c.y + d >= value`` (only points at least as good as an incumbent; see
        ``incumbent_cutoff``).
    executor : optional
        See ``reluopt.parallel.get_executor`` (None: serial).
    layers : iterable of int, optional
        Indices to tighten (hidden layers ``0..depth-1``, ``depth`` = outputs; default all).
    chunks_per_worker : int
        A layer's neurons are cut into ``workers * chunks_per_worker`` tasks (more evens out the load).
    time_limit : float, optional
        Seconds for the whole run.

    Returns
    -------
    LayerBounds
        Sound bounds, never looser than ``initial``, with the run's ``stats``.

    Raises
    ------
    ProblemError
        On a bad mode, limit, layer index, cutoff or ``initial``.
    """
    from ..parallel import SerialExecutor, chunk, get_executor
    from .crown import crown_bounds

    if mode not in ("lp", "mip"):
        raise ProblemError(f"OBBT mode must be 'lp' or 'mip', got {mode!r}")
    if time_limit_per_neuron is not None and not time_limit_per_neuron > 0:
        raise ProblemError(f"time_limit_per_neuron must be > 0, got {time_limit_per_neuron}")
    if time_limit is not None and not time_limit > 0:
        raise ProblemError(f"time_limit must be > 0, got {time_limit}")
    dom = _as_domain(network, domain, ub)
    cutoff = _cutoff(network, objective_cutoff)
    start = time.perf_counter()
    deadline = None if time_limit is None or math.isinf(time_limit) else time.time() + float(time_limit)
    depth = network.depth
    todo = set(range(depth + 1)) if layers is None else {int(k) for k in layers}
    bad = [k for k in todo if not 0 <= k <= depth]
    if bad:
        raise ProblemError(f"layers {bad} do not exist: hidden layers are 0..{depth - 1}, "
                           f"{depth} is the output layer")
    handled = interrupt_handled()      # an enclosing method returns its best on Ctrl-C
    ex = get_executor(executor)
    owned = ex is not executor
    serial = isinstance(ex, SerialExecutor)
    flag = StopFlag() if serial else _StopFile()
    with interruptible(flag):
        if initial is None:
            initial = crown_bounds(network, dom.lb, dom.ub)
        if initial.batch != 1:
            raise ProblemError("obbt_bounds needs initial bounds of exactly one box")
        lower = [L[0].copy() for L in initial.lower]
        upper = [U[0].copy() for U in initial.upper]
        out_lower, out_upper = initial.out_lower[0].copy(), initial.out_upper[0].copy()
        lo, hi = dom.lb[None], dom.ub[None]
        per_layer = []
        totals = {"build_seconds": 0.0, "solve_seconds": 0.0, "certify_seconds": 0.0, "solves": 0,
                  "iterations": 0, "not_optimal": 0, "time_limits": 0, "interrupts": 0, "errors": 0,
                  "skipped": 0}
        stopped = None
        try:
            for k in range(depth + 1):
                if interrupt_requested():
                    stopped = "interrupted"
                    break               # the later layers keep their initial bounds
                is_out = k == depth
                L, U = (out_lower, out_upper) if is_out else (lower[k], upper[k])
                if k > 0:
                    # CROWN again with the tightened earlier layers: cheap, and fewer LPs after
                    # (also after the time limit: it costs about one CROWN pass in all)
                    h_lo, h_hi = activate_interval(network.layers[k - 1], lower[k - 1][None],
                                                   upper[k - 1][None])
                    iL, iU = affine_interval(network.layers[k], h_lo, h_hi)
                    lines = [relaxation(layer, a[None], b[None])
                             for layer, a, b in zip(network.layers[:k], lower[:k], upper[:k], strict=True)]
                    cL, cU = _layer_bounds(network, k, lo, hi, lines, iL, iU)
                    L[:] = np.maximum(L, cL[0])
                    U[:] = np.minimum(U, cU[0])
                if k not in todo or (k == 0 and dom.A is None and cutoff is None):
                    continue   # the first layer's interval bounds are exact over a box
                targets = (np.arange(L.shape[0]) if is_out
                           else np.nonzero(_unstable(network.layers[k], L, U))[0])
                row = {"layer": k, "targets": int(targets.size)}
                passes = [False, True] if mode == "mip" else [False]
                for mip in passes:
                    if mip and not is_out:
                        targets = targets[_unstable(network.layers[k], L[targets], U[targets])]
                    if targets.size == 0:
                        continue
                    if interrupt_requested() or (deadline is not None and time.time() >= deadline):
                        stopped = stopped or ("interrupted" if interrupt_requested() else "time_limit")
                        totals["skipped"] += int(targets.size)
                        row["skipped"] = row.get("skipped", 0) + int(targets.size)
                        continue
                    n_chunks = 1 if ex.workers <= 1 else ex.workers * max(1, int(chunks_per_worker))
                    tasks = [_Task(network, dom, [a.copy() for a in lower], [a.copy() for a in upper],
                                   out_lower.copy(), out_upper.copy(), k,
                                   np.asarray(part), mip, time_limit_per_neuron, cutoff, deadline,
                                   flag.path if isinstance(flag, _StopFile) else None)
                             for part in chunk(list(targets), n_chunks)]
                    try:
                        results = ex.map(_solve_chunk, tasks)
                    except Exception:
                        # Ctrl-C in a worker pool can break the pool: the layer keeps its bounds
                        if not interrupt_requested():
                            raise
                        stopped = "interrupted"
                        totals["skipped"] += int(targets.size)
                        break
                    for res in results:
                        newL = np.maximum(L[res.neurons], res.lower)
                        newU = np.minimum(U[res.neurons], res.upper)
                        ok = newL <= newU   # crossing only if the set is empty: keep the old ones
                        L[res.neurons[ok]] = newL[ok]
                        U[res.neurons[ok]] = newU[ok]
                        for key in totals:
                            totals[key] += res.stats.get(key, 0)
                        if "root_status" in res.stats:
                            row["root_status"] = res.stats["root_status"]
                        if res.stats.get("skipped"):
                            row["skipped"] = row.get("skipped", 0) + res.stats["skipped"]
                        if res.stats.get("stopped") and stopped != "interrupted":
                            stopped = res.stats["stopped"]
                    row["mip_solved" if mip else "lp_solved"] = int(targets.size) - int(row.get("skipped", 0))
                if not is_out:
                    row["unstable_after"] = int(_unstable(network.layers[k], L, U).sum())
                per_layer.append(row)
        finally:
            if owned:
                ex.close()
            if isinstance(flag, _StopFile):     # a parallel run's stop file
                flag.remove()
        if interrupt_requested():   # Ctrl-C, or an enclosing run was told to stop
            stopped = "interrupted"
    if stopped == "interrupted" and not handled:
        raise KeyboardInterrupt   # no caller returns a best-so-far: behave as Ctrl-C does
    method = "mip-obbt" if mode == "mip" else "lp-obbt"
    stats = {**totals, "seconds": time.perf_counter() - start, "executor": ex.name,
             "initial": initial.method, "layers": per_layer, "mode": mode, "stopped": stopped}
    return LayerBounds([a[None] for a in lower], [a[None] for a in upper],
                       out_lower[None], out_upper[None], method, stats, box_lower=lo, box_upper=hi)
