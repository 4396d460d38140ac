"""The l2 -> l2 Lipschitz constant as a MIQCQP over the pattern and a unit direction.

Sbihi, Couellan and Jan (arXiv 2402.01199): the constant of ``x -> C y(x)`` over a domain is
``max ||C J(x) v||_2`` over the inputs ``x`` and the unit directions ``v``. With the pattern
``s_l`` of layer ``l`` the forward directional derivative is ``d_l = W_l e_{l-1}``,
``e_l = s_l * d_l`` (``e_0 = v``), and the objective ``||C W_out e_{L-1}||_2^2`` is a nonconvex
quadratic; ``||v||_2^2 <= 1`` is a convex one. Two formulations of the same value:

- ``"paper"``: the paper's model. The activation region is written as quadratic constraints
  ``(2 s_i - 1) h_i >= 0`` on the pre-activation ``h = W a + b``, the forward pass as
  ``a_i = s_i h_i`` and the direction as ``e_i = s_i d_i``: bilinear, left to the solver's
  spatial branch and bound.
- ``"linearised"``: reluopt's model. The same products of a binary and a bounded variable
  written exactly as linear rows: the big-M forward model (``a >= h``, ``a <= h - L (1 - s)``,
  ``a <= U s``, which implies the region) and McCormick rows for ``e = s d`` with interval
  bounds of ``d`` (from ``|d_1| <= ||W_1[i]||_2``, propagated by interval arithmetic). Only the
  objective and the ball stay quadratic.

Both fix the neurons that are stable under the neuron bounds (sound), declare the same
variable bounds, break the symmetry ``v -> -v`` by ``u_0 >= 0`` (``u = C J v``: flipping ``v``
keeps the objective) and cap the objective by the square of a certified upper bound. Solved
by SCIP (pyscipopt) or Gurobi (NonConvex=2). A dual bound counts only after a status whose
bound the solver guarantees, widened by ``widen``.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..bounds import LayerBounds
from ..bounds.core import REL_MARGIN
from ..errors import ProblemError, SolverError, UnsupportedError
from ..network import Network
from ..problem import Domain

FORMULATIONS = ("linearised", "paper")


def direction_intervals(network: Network, bounds: LayerBounds):
    """Interval bounds of the directional derivatives ``d_l`` for every unit direction ``v``.

    Two sound bounds, the tighter kept per neuron: intervals of ``d`` propagated from
    ``|d_1,i| <= ||W_1[i]||_2``, and ``|d_l,i| <= ||M_l[i]||_2`` with ``M_l`` the entrywise
    magnitudes of an interval Jacobian ``J_l`` (``d_l = J_l v``) propagated forward.

    Parameters
    ----------
    network : Network
        The network.
    bounds : LayerBounds
        Neuron bounds of the domain (stable neurons have slope 0 or 1).

    Returns
    -------
    list of tuple of numpy.ndarray
        ``(lo, hi)`` per hidden layer, and last the output layer's ``W_out e_{L-1}``.
    """
    W = network.layers[0].W
    r = np.linalg.norm(W, axis=1) * (1 + 1e-9) + 1e-15
    lo, hi = -r, r.copy()
    J_lo, J_hi = W.copy(), W.copy()
    out = []
    for l, layer in enumerate(network.hidden_layers):
        out.append((lo, hi))
        s_lo, s_hi = layer.act.slope_bounds(bounds.lower[l][0], bounds.upper[l][0])
        Wn = network.layers[l + 1].W
        lo, hi = _affine_interval(Wn, *_scaled(s_lo, s_hi, lo, hi))
        E_lo, E_hi = _scaled(s_lo[:, None], s_hi[:, None], J_lo, J_hi)
        J_lo, J_hi = _affine_interval(Wn, E_lo, E_hi)
        rad = np.linalg.norm(np.maximum(np.abs(J_lo), np.abs(J_hi)), axis=1) * (1 + 1e-9) + 1e-15
        lo, hi = np.maximum(lo, -rad), np.minimum(hi, rad)
    out.append((lo, hi))
    return out


def _scaled(s_lo, s_hi, lo, hi):
    """The interval of ``s * y`` for ``s`` in ``[s_lo, s_hi]`` and ``y`` in ``[lo, hi]``."""
    cands = np.stack(np.broadcast_arrays(s_lo * lo, s_lo * hi, s_hi * lo, s_hi * hi))
    return cands.min(axis=0), cands.max(axis=0)


def _affine_interval(W: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """The interval of ``W y`` for ``y`` in ``[lo, hi]``, padded outward for rounding."""
    mid, rad = 0.5 * (lo + hi), 0.5 * (hi - lo)
    pad = REL_MARGIN * (np.abs(W) @ np.maximum(np.abs(lo), np.abs(hi))) + 1e-15
    centre, spread = W @ mid, np.abs(W) @ rad
    return centre - spread - pad, centre + spread + pad


class _Scip:
    """The few model calls the builder needs, on pyscipopt."""

    name = "scip"

    def __init__(self, threads: int) -> None:
        from ..milp.backends.scip import import_scip

        self.lib = import_scip("the l2 Lipschitz MIQCQP (or use solver='gurobi')")
        self.m = self.lib.Model()
        self.m.hideOutput()
        self.quicksum = self.lib.quicksum
        self.nvars = 0

    def var(self, lb: float, ub: float, binary: bool = False):
        self.nvars += 1
        return self.m.addVar(lb=float(lb), ub=float(ub), vtype="B" if binary else "C")

    def cons(self, expr) -> None:
        self.m.addCons(expr)

    def maximise_squares(self, u_exprs, top: float) -> None:
        t = self.var(0.0, top)
        self.m.addCons(t <= self.quicksum(e * e for e in u_exprs))
        self.m.setObjective(t, "maximize")

    def solve(self, time_limit: float | None):
        from ..milp.backends.scip import TRUSTED_SCIP_STATUSES

        if time_limit is not None and math.isfinite(time_limit):
            self.m.setParam("limits/time", max(float(time_limit), 0.1))
        try:
            self.m.optimize()
        except Exception as exc:  # noqa: BLE001 - pyscipopt raises plain Exception on LP errors
            return None, math.inf, f"error: {str(exc).strip() or type(exc).__name__}", 0
        status = self.m.getStatus()
        bound = float(self.m.getDualbound()) if status in TRUSTED_SCIP_STATUSES else math.inf
        sol = self.m.getBestSol() if self.m.getNSols() > 0 else None
        value = (lambda v: float(self.m.getSolVal(sol, v))) if sol is not None else None
        return value, bound, str(status), int(self.m.getNNodes())

    def sizes(self) -> dict:
        return {"variables": self.m.getNVars(), "constraints": self.m.getNConss()}


class _Gurobi:
    """The same calls on gurobipy (NonConvex=2); a licence refusal is a SolverError."""

    name = "gurobi"

    def __init__(self, threads: int) -> None:
        from ..milp.backends.gurobi import import_gurobi

        gp = self.gp = import_gurobi()
        try:
            self.env = gp.Env(empty=True)
            self.env.setParam("OutputFlag", 0)
            self.env.start()
            self.m = gp.Model(env=self.env)
            self.m.Params.Threads = threads
            self.m.Params.NonConvex = 2
            self.m.Params.MIPGap = 1e-6
            self.m.Params.MIPGapAbs = 1e-9
        except gp.GurobiError as exc:
            raise SolverError(f"Gurobi refused to start: {exc}") from None
        self.quicksum = gp.quicksum

    def var(self, lb: float, ub: float, binary: bool = False):
        GRB = self.gp.GRB
        return self.m.addVar(lb=float(lb), ub=float(ub), vtype=GRB.BINARY if binary else GRB.CONTINUOUS)

    def cons(self, expr) -> None:
        self.m.addConstr(expr)

    def maximise_squares(self, u_exprs, top: float) -> None:
        self.m.setObjective(self.quicksum(e * e for e in u_exprs), self.gp.GRB.MAXIMIZE)

    def solve(self, time_limit: float | None):
        from ..milp.backends.gurobi import _BOUND_STATUSES, _LICENCE_ERRORS

        gp, m = self.gp, self.m
        if time_limit is not None and math.isfinite(time_limit):
            m.Params.TimeLimit = max(float(time_limit), 1e-3)
        try:
            m.optimize()
        except gp.GurobiError as exc:
            if getattr(exc, "errno", None) in _LICENCE_ERRORS:
                raise SolverError(f"Gurobi refused the l2 Lipschitz MIQCQP: {exc}") from None
            return None, math.inf, f"error: {exc}", 0
        bound = float(m.ObjBound) if m.Status in _BOUND_STATUSES else math.inf
        bound = bound if math.isfinite(bound) and abs(bound) < gp.GRB.INFINITY else math.inf
        value = (lambda v: float(v.X)) if m.SolCount > 0 else None
        return value, bound, f"gurobi:{m.Status}", int(m.NodeCount)

    def sizes(self) -> dict:
        self.m.update()
        return {"variables": self.m.NumVars, "constraints": self.m.NumConstrs + self.m.NumQConstrs}

    def close(self) -> None:
        self.m.dispose()
        self.env.dispose()


def solve_spectral(network: Network, domain: Domain, bounds: LayerBounds, rows: np.ndarray, *,
                   formulation: str = "linearised", solver: str = "scip", time_limit: float | None = None,
                   threads: int = 1, cap: float = math.inf) -> dict:
    """``max ||C J(x) v||_2^2`` over the realised patterns and ``||v||_2 <= 1`` (see the module).

    Parameters
    ----------
    network : Network
        A ReLU network (no clipped ReLU).
    domain : Domain
        The bounded input domain (box and any ``A x <= b``).
    bounds : LayerBounds
        Its neuron bounds (sound; stable neurons are fixed).
    rows : numpy.ndarray
        The output rows ``C``, shape (k, m).
    formulation : {"linearised", "paper"}, optional
        Linear rows for the products of a binary and a variable, or the paper's quadratic ones.
    solver : {"scip", "gurobi"}, optional
        The nonconvex solver.
    time_limit : float or None, optional
        Seconds.
    threads : int, optional
        Solver threads.
    cap : float, optional
        A certified upper bound on the constant (not squared); the objective is capped by its
        square.

    Returns
    -------
    dict
        ``bound`` (a dual bound on the squared constant: inf unless the status guarantees it,
        not yet widened), ``x`` and ``pattern`` (the incumbent, or None), ``objective``,
        ``status``, ``nodes``, ``seconds``, ``build_seconds`` and the model's ``variables``,
        ``binaries`` and ``constraints``.

    Raises
    ------
    ProblemError
        An unknown formulation or solver.
    SolverError
        The solver is missing or refuses the model (e.g. Gurobi's size-limited licence).
    """
    if formulation not in FORMULATIONS:
        raise ProblemError(f"unknown formulation {formulation!r}; choose from {', '.join(FORMULATIONS)}")
    if solver not in ("scip", "gurobi"):
        raise ProblemError(f"the l2 MIQCQP runs on scip or gurobi, not {solver!r}")
    if network.has_clipped:
        raise UnsupportedError("the l2 Lipschitz MIQCQP does not support clipped ReLU layers")
    t0 = time.perf_counter()
    S = _Scip(threads) if solver == "scip" else _Gurobi(threads)
    try:
        return _build_and_solve(S, network, domain, bounds, np.atleast_2d(rows), formulation, time_limit, t0,
                                cap)
    finally:
        if isinstance(S, _Gurobi):
            S.close()


def _build_and_solve(S, network, domain, bounds, C, formulation, time_limit, t0, cap) -> dict:
    paper = formulation == "paper"
    qs = S.quicksum
    d = network.input_dim
    x = [S.var(domain.lb[j], domain.ub[j]) for j in range(d)]
    v = [S.var(-1.0, 1.0) for _ in range(d)]
    if domain.A is not None:
        for a_row, b_i in zip(domain.A, domain.b, strict=True):
            S.cons(qs(float(a) * xj for a, xj in zip(a_row, x, strict=True) if a != 0.0) <= float(b_i))
    S.cons(qs(vj * vj for vj in v) <= 1.0)
    dirs = direction_intervals(network, bounds)
    a_prev, e_prev = list(x), list(v)   # expressions (variables or affine forms) of the previous layer
    s_vars: list[dict] = []
    binaries = 0
    for l, layer in enumerate(network.hidden_layers):
        L, U = bounds.lower[l][0], bounds.upper[l][0]
        dlo, dhi = dirs[l]
        a_next, e_next, s_l = [], [], {}
        for i in range(layer.W.shape[0]):
            w = layer.W[i]
            nz = np.nonzero(w)[0]
            h_expr = qs(float(w[j]) * a_prev[j] for j in nz) + float(layer.b[i])
            d_expr = qs(float(w[j]) * e_prev[j] for j in nz)
            if U[i] <= 0:            # stably inactive
                a_next.append(0.0)
                e_next.append(0.0)
                continue
            if L[i] >= 0:            # stably active
                a_next.append(h_expr)
                e_next.append(d_expr)
                continue
            s = S.var(0.0, 1.0, binary=True)
            binaries += 1
            s_l[i] = s
            h = S.var(L[i], U[i])
            a = S.var(0.0, U[i])
            dv = S.var(dlo[i], dhi[i])
            e = S.var(min(dlo[i], 0.0), max(dhi[i], 0.0))
            S.cons(h == h_expr)
            S.cons(dv == d_expr)
            if paper:
                S.cons(2.0 * s * h - h >= 0.0)      # (2 s - 1) h >= 0: the activation region
                S.cons(a == s * h)
                S.cons(e == s * dv)
            else:
                S.cons(a >= h)
                S.cons(a <= h - float(L[i]) * (1 - s))
                S.cons(a <= float(U[i]) * s)
                S.cons(e <= float(dhi[i]) * s)
                S.cons(e >= float(dlo[i]) * s)
                S.cons(e <= dv - float(dlo[i]) * (1 - s))
                S.cons(e >= dv - float(dhi[i]) * (1 - s))
            a_next.append(a)
            e_next.append(e)
        a_prev, e_prev = a_next, e_next
        s_vars.append(s_l)
    CW = C @ network.layers[-1].W
    u = [qs(float(cw[j]) * e_prev[j] for j in np.nonzero(cw)[0]) for cw in CW]
    olo, ohi = dirs[-1]
    top = float(np.sum((np.abs(C) @ np.maximum(np.abs(olo), np.abs(ohi))) ** 2)) * (1 + 1e-6) + 1e-12
    top = min(top, cap * cap * (1 + 1e-6) + 1e-12)
    if not isinstance(u[0], (int, float)):
        S.cons(u[0] >= 0.0)     # v and -v give the same value
    S.maximise_squares(u, top)
    sizes = S.sizes()
    build = time.perf_counter() - t0
    left = None if time_limit is None else max(float(time_limit) - build, 0.1)
    value, bound, status, nodes = S.solve(left)
    out = {"bound": bound, "status": status, "nodes": nodes, "x": None, "pattern": None, "objective": None,
           "binaries": binaries, "build_seconds": build, "seconds": time.perf_counter() - t0, **sizes}
    if value is not None:
        xs = np.array([value(xj) for xj in x])
        pattern = []
        for l, s_l in enumerate(s_vars):
            p = (bounds.lower[l][0] >= 0).astype(np.int8)
            for i, s in s_l.items():
                p[i] = int(value(s) > 0.5)
            pattern.append(p)
        vs = np.array([value(vj) for vj in v])
        out.update(x=xs, pattern=pattern, direction=vs)
    return out


def run_spectral(search, bounds: LayerBounds, upper: float, *, formulation: str = "linearised",
                 solver: str = "highs", threads: int = 1) -> float:
    """The exact phase of ``lipschitz()`` for the l2 -> l2 constant (or the paper's model).

    Solves `solve_spectral` for all the target's rows at once in the time left; its
    incumbent pattern becomes a witness when the region has an interior point.

    Parameters
    ----------
    search : Search
        The call's state (``exact.Search``); witnesses found are offered to it.
    bounds : LayerBounds
        Neuron bounds of the domain.
    upper : float
        The cheap upper bound, kept when the solve does not beat it.
    formulation : {"linearised", "paper"}, optional
        See `solve_spectral`.
    solver : str, optional
        ``"gurobi"``, or anything else for SCIP.
    threads : int, optional
        Solver threads.

    Returns
    -------
    float
        The certified upper bound.
    """
    from ..milp.backends.base import widen
    from .exact import witness

    target = search.target
    share = max(search.remaining, 0.0)
    if share <= 0.05:
        return upper
    out = solve_spectral(target.network, target.domain, bounds, target.rows, formulation=formulation,
                         solver="gurobi" if solver == "gurobi" else "scip", time_limit=share, threads=threads,
                         cap=upper)
    up = min(upper, math.sqrt(max(widen(out["bound"]), 0.0)))
    search.stats.update({"mip_status": [out["status"]], "mip_nodes": [out["nodes"]],
                         "formulation": formulation,
                         "miqcqp": {k: out[k] for k in ("variables", "constraints", "binaries", "build_seconds",
                                                        "seconds")}})
    if out["x"] is not None:
        search.offer(*witness(target, out["x"], out["pattern"]))
    search.record(f"miqcqp-{formulation}", min(search.upper, up))
    return up
