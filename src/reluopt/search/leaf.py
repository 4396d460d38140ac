"""Leaf hand-off: solve a node's sub-box exactly with the big-M MIP.

When a node has few unstable neurons left, splitting its box further would chase a constraint
boundary or a flat optimum for many levels; the MIP on the node's own neuron bounds settles it
in one solve. Only a run that ends in a trusted status counts: the MIP's bound is then widened
by ``milp.backends.base.widen`` for the solver's tolerances, and anything else leaves the node open.
``node_lp`` solves the same model's LP relaxation: ReLU splitting's proof that a constrained
node is empty (its Lagrangian bounds never prove that).

Neurons of the last hidden layer whose weight in the objective row is not positive get no
binary (``relaxable``): the objective only wants their output small and nothing else reads it,
so the relaxation ``h >= max(0, g)`` is attained at ``h = relu(g)`` and the MIP's optimum is
unchanged. A relaxation is a valid bound in any case; exactness is what lets the leaf close.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..activations.relu import ReLU
from ..bounds import compute_bounds
from ..milp.backends import get_backend
from ..milp.backends.base import widen
from ..milp.formulation import build_problem_model
from ..problem import FEASIBILITY_TOL, Domain, OutputConstraints, Problem
from .tree import Prior

#: The longest a single leaf MIP may run (seconds): the search keeps the rest of the budget.
LEAF_MIP_MAX_SECONDS = 5.0


@dataclass
class LeafOutcome:
    """What a leaf MIP proved about a node.

    Parameters
    ----------
    bound : float or None
        Certified bound (max form, margin included; ``-inf``: the sub-box is infeasible), or
        None when the solver proved nothing.
    closed : bool
        The solver finished: the node is settled at ``bound``.
    point : ndarray or None
        The solver's best input, to be forward-checked by the caller.
    refused : str or None
        Why the MIP was not run (a badly scaled model: its answer would be no certificate).
    """

    bound: float | None
    closed: bool
    point: np.ndarray | None = None
    refused: str | None = None


def leaf_mip(problem: Problem, lo: np.ndarray, hi: np.ndarray, prior: Prior | None, *, deadline: float,
             abs_gap: float, rel_gap: float, should_stop: Callable[[], bool] | None,
             inactive: list[np.ndarray] | None = None,
             max_seconds: float = LEAF_MIP_MAX_SECONDS, start: np.ndarray | None = None) -> LeafOutcome | None:
    """The big-M MIP of ``problem`` (one objective row, max form) restricted to ``[lo, hi]``.

    Parameters
    ----------
    problem : Problem
        A single-row problem in max form (``Objective(c, d, "max")``), whose MIP bound is
        therefore in max form too.
    lo, hi : ndarray, shape (d,)
        The node's box.
    prior : Prior or None
        The node's inherited neuron bounds; intersected with CROWN's on the sub-box.
    deadline : float
        ``time.perf_counter()`` value the solve must end by.
    abs_gap, rel_gap : float
        The search's gap tolerances (the MIP works to half of them).
    should_stop : callable or None
        Polled by the solver (Ctrl-C).
    inactive : list of ndarray or None
        Per hidden layer, a mask of neurons fixed inactive by a ReLU split: their ``g <= 0``
        becomes a row (the model has no column for a stably inactive neuron, so the bounds
        alone would drop it; active splits hold through ``h = g >= L >= 0``).
    max_seconds : float
        The longest the solve may run (default ``LEAF_MIP_MAX_SECONDS``).
    start : ndarray or None
        An input point in the box, given to the solver as a MIP start (by a forward pass).

    Returns
    -------
    LeafOutcome or None
        None when too little time is left to try.
    """
    remaining = deadline - time.perf_counter()
    if remaining <= 0.05:
        return None
    sub = Problem(problem.network, Domain(lo, hi, problem.domain.A, problem.domain.b), problem.objective,
                  problem.constraints)
    model = _node_model(sub, lo, hi, prior, inactive)
    relax = relaxable(problem)
    if relax is not None:
        z = model.z_cols[-1]
        model.integrality[z[relax & (z >= 0)]] = 0
    issue = model.scaling_issue()
    if issue is not None:
        return LeafOutcome(None, False, refused=f"badly scaled: {issue}")
    mip_start = None if start is None else model.point_to_columns(np.clip(start, lo, hi))
    out = get_backend("highs").solve(model, time_limit=min(remaining, max_seconds),
                                     mip_rel_gap=0.5 * rel_gap, mip_abs_gap=0.5 * abs_gap,
                                     should_stop=should_stop, mip_start=mip_start)
    point = None if out.values is None else model.columns_to_point(out.values)
    if out.status == "infeasible":
        return LeafOutcome(-math.inf, True, point)
    if out.bound is None or not math.isfinite(out.bound):
        return LeafOutcome(None, False, point)
    return LeafOutcome(widen(float(out.bound)), out.status == "optimal", point)


def run_leaf(strategy, node, offer: Callable[[np.ndarray, str], object], source: str, *,
             inactive: list[np.ndarray] | None = None, max_seconds: float = LEAF_MIP_MAX_SECONDS,
             start: np.ndarray | None = None) -> LeafOutcome | None:
    """``leaf_mip`` on a search node with the bookkeeping every tree shares: a refused (badly
    scaled) model turns leaf MIPs off for the run, since its answer would be no certificate; the
    MIP's point is offered; a solve that gave a bound is counted.

    Parameters
    ----------
    strategy : Strategy
        The tree's strategy: ``leaf_problem``, ``search`` (limits), ``cfg`` (``abs_gap``,
        ``rel_gap``, ``leaf_mip``) and ``stats``.
    node : Node
        The node: its box ``lo, hi`` and neuron bounds ``prior``.
    offer : callable
        ``offer(points, source)``: the tree's way to hand a point to the run's tracker.
    source : str
        The label of the offered point (``"bab:leaf-mip"``).
    inactive, max_seconds, start
        As in ``leaf_mip``.

    Returns
    -------
    LeafOutcome or None
        The outcome when it carries a bound; None otherwise (no time, refused, no bound).
    """
    search, cfg = strategy.search, strategy.cfg
    got = leaf_mip(strategy.leaf_problem, node.lo, node.hi, node.prior, deadline=search.limits.deadline,
                   abs_gap=cfg.abs_gap, rel_gap=cfg.rel_gap, should_stop=search.limits.should_stop,
                   inactive=inactive, max_seconds=max_seconds, start=start)
    if got is None:
        return None
    if got.refused is not None:
        cfg.leaf_mip = False
        strategy.stats["leaf_mip_off"] = got.refused
        return None
    if got.point is not None:
        offer(got.point[None, :], source)
    if got.bound is None:
        return None
    strategy.stats["leaf_mip"] += 1
    return got


def node_lp(problem: Problem, lo: np.ndarray, hi: np.ndarray, prior: Prior | None, *, deadline: float,
            should_stop: Callable[[], bool] | None, inactive: list[np.ndarray] | None = None) -> LeafOutcome | None:
    """The LP relaxation of the leaf model (triangle relaxation on the node's neuron bounds,
    split phases and constraints): a proof that a node is empty, or a bound and a point.

    The constraints' right-hand sides are loosened by half of ``FEASIBILITY_TOL`` first, so that
    an ``infeasible`` status proves the exact constraints empty with room for the solver's
    tolerances (and the LP's point still passes the tracker's feasibility test); only
    ``infeasible`` and ``optimal`` count.

    Parameters
    ----------
    problem : Problem
        A single-row problem in max form, with the constraints.
    lo, hi : ndarray, shape (d,)
        The node's box.
    prior : Prior or None
        The node's neuron bounds (valid on its sub-domain).
    deadline : float
        ``time.perf_counter()`` value the solve must end by.
    should_stop : callable or None
        Polled by the solver (Ctrl-C).
    inactive : list of ndarray or None
        As in ``leaf_mip``.

    Returns
    -------
    LeafOutcome or None
        ``bound=-inf`` when the node is empty, a widened LP bound (never ``closed``) when
        optimal; None when there was no time, the model is badly scaled or the LP proved nothing.
    """
    remaining = deadline - time.perf_counter()
    if remaining <= 0.05:
        return None
    dom, out = problem.domain, problem.constraints
    margin = 0.5 * FEASIBILITY_TOL
    sub = Problem(problem.network, Domain(lo, hi, dom.A, None if dom.b is None else dom.b + margin),
                  problem.objective, None if out is None else OutputConstraints(out.C, out.e + margin))
    model = _node_model(sub, lo, hi, prior, inactive).relaxed()
    if model.scaling_issue() is not None:
        return None
    got = get_backend("highs").solve(model, relax=True, time_limit=min(remaining, LEAF_MIP_MAX_SECONDS),
                                     should_stop=should_stop)
    if got.status == "infeasible":
        return LeafOutcome(-math.inf, True)
    if got.status != "optimal" or got.bound is None or not math.isfinite(got.bound):
        return None
    point = None if got.values is None else model.columns_to_point(got.values)
    return LeafOutcome(widen(float(got.bound)), False, point)


def _node_model(sub: Problem, lo: np.ndarray, hi: np.ndarray, prior: Prior | None, inactive):
    """The big-M model of ``sub`` on CROWN's neuron bounds of the box intersected with ``prior``,
    with the rows of the neurons split inactive."""
    bounds = compute_bounds(sub.network, lo, hi, "crown")
    if prior is not None:
        for l, (L, U) in enumerate(zip(*prior, strict=True)):
            bounds.lower[l] = np.maximum(bounds.lower[l], L[None].astype(np.float64))
            bounds.upper[l] = np.minimum(bounds.upper[l], U[None].astype(np.float64))
            bounds.lower[l] = np.minimum(bounds.lower[l], bounds.upper[l])
    model = build_problem_model(sub, bounds)
    if inactive is not None:
        _inactive_rows(model, sub.network, inactive)
    return model


def relaxable(problem: Problem) -> np.ndarray | None:
    """Last-hidden-layer ReLUs whose binaries the leaf MIP can drop without changing its optimum.

    With one objective row (max form) and no output constraints, a neuron whose objective
    weight ``(c W_out)_i`` is at most 0 only wants its output small; its big-M rows without
    integrality keep ``h >= 0, h >= g``, so every optimum has ``h = relu(g)`` (or the weight is 0).

    Parameters
    ----------
    problem : Problem
        A single-row problem in max form.

    Returns
    -------
    ndarray of bool or None
        Mask over the last hidden layer's neurons, or None when the shortcut does not apply
        (output constraints, or a last hidden activation other than ReLU).
    """
    net = problem.network
    if problem.constraints is not None or net.depth == 0 or not isinstance(net.hidden_layers[-1].act, ReLU):
        return None
    c, _ = problem.max_form()
    return np.asarray(c @ net.layers[-1].W <= 0)


def _inactive_rows(model, network, inactive: list[np.ndarray]) -> None:
    """Add ``W_i . h_prev + b_i <= 0`` for the masked neurons of each hidden layer."""
    for j, mask in enumerate(inactive):
        idx = np.nonzero(mask)[0]
        if idx.size == 0:
            continue
        layer = network.layers[j]
        cols = model.x_cols if j == 0 else model.h_cols[j - 1]
        keep = cols >= 0          # stably inactive inputs of this layer are 0: no column
        rows = np.zeros((idx.size, model.n_cols))
        rows[:, cols[keep]] = layer.W[idx][:, keep]
        model.add_rows(rows, np.full(idx.size, -np.inf), -layer.b[idx])
