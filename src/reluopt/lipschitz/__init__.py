"""Local Lipschitz constants of ReLU networks with certified lower and upper bounds.

``lipschitz(net_or_problem, box, norm="inf", method="auto")`` returns a
``LipschitzResult`` with ``lower <= true <= upper``. Methods:

- ``sample``: lower bound from gradient norms at points strictly inside regions, plus a
  local ascent over regions; the cheap upper bounds alongside.
- ``bounds``: the cheap upper bounds only (product of layer norms; interval Jacobian).
- ``mip``: exact for p = inf and p = 1 (HiGHS), forward big-M model + linearised backward
  pass; the witness of the solver's best pattern is re-checked strictly inside its region.
- ``mip-upper``: the same without the realisability constraints (any pattern of the
  unstable neurons): a certified upper bound, often equal to the exact value.
- ``miqcqp``: p = 2, a nonconvex quadratic objective, solved by SCIP (``scip`` extra).
- ``bab``: branch and bound over the input box with CROWN bounds and interval Jacobians on
  each sub-box; certified and fast for low input dimension, any norm.
- ``auto``: sample, then branch and bound (input dimension <= 8), or else the exact MIP
  (p in {1, inf}) or the MIQCQP (p = 2, if SCIP is installed) with the remaining time.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..bounds import LayerBounds, crown_bounds
from ..errors import ProblemError
from ..milp.highs import solve_highs
from ..network import Network
from ..problem import Domain, Problem
from ..result import check_time_limit
from .common import Target, interior_point, parse_norm, pattern_of
from .lower import local_ascent, sample_lower
from .mip import build_lipschitz_model, solve_l2_scip, widen
from .upper import interval_jacobian_bound, product_bound

#: lower and upper closer than this (relative) count as the exact value.
PROVED_REL_GAP = 1e-5

METHODS = ("auto", "sample", "bounds", "bab", "mip", "mip-upper", "miqcqp")

#: ``auto`` uses input-space branch and bound up to this input dimension, the MIP above it.
BAB_MAX_DIM = 8
__all__ = ["METHODS", "LipschitzResult", "lipschitz"]


@dataclass
class LipschitzResult:
    """``lower <= L <= upper``; ``x`` witnesses ``lower`` strictly inside its region."""

    lower: float
    upper: float
    status: str              # optimal | time_limit | bounds
    norm: str
    method: str
    x: np.ndarray | None = None
    pattern: list | None = None
    seconds: float = 0.0
    stats: dict = field(default_factory=dict)
    history: list = field(default_factory=list)

    @property
    def gap(self) -> float:
        if not (math.isfinite(self.lower) and math.isfinite(self.upper)):
            return math.inf
        return (self.upper - self.lower) / max(abs(self.upper), 1e-12)

    def to_dict(self) -> dict:
        return {
            "lower": self.lower if math.isfinite(self.lower) else None,
            "upper": self.upper if math.isfinite(self.upper) else None,
            "gap": self.gap if math.isfinite(self.gap) else None,
            "status": self.status, "norm": self.norm, "method": self.method,
            "x": None if self.x is None else [float(v) for v in self.x],
            "pattern": None if self.pattern is None else [[int(b) for b in p] for p in self.pattern],
            "seconds": self.seconds, "stats": self.stats,
            "history": [{"seconds": t, "lower": lo, "upper": up, "source": s}
                        for t, lo, up, s in self.history],
        }

    def summary(self) -> str:
        return (f"status  {self.status}\nnorm    {self.norm} (input)\nlower   {self.lower:.10g}\n"
                f"upper   {self.upper:.10g}\ngap     {self.gap:.3g}\nseconds {self.seconds:.3f}")


def _target(net_or_problem, box, norm, output, c, domain_A=None, domain_b=None) -> Target:
    p = parse_norm(norm)
    if isinstance(net_or_problem, Problem):
        problem = net_or_problem
        network, domain = problem.network, problem.domain
        if c is None and output is None:
            c = problem.objective.c
    elif isinstance(net_or_problem, Network):
        network = net_or_problem
        if box is None:
            raise ProblemError("give a box (lb, ub) for the Lipschitz constant of a network")
        lb, ub = box
        n = network.input_dim
        lb = np.broadcast_to(np.asarray(lb, dtype=np.float64), (n,)) if np.ndim(lb) == 0 else lb
        ub = np.broadcast_to(np.asarray(ub, dtype=np.float64), (n,)) if np.ndim(ub) == 0 else ub
        domain = Domain(lb, ub, domain_A, domain_b)
        if domain.dim != n:
            raise ProblemError(f"box has {domain.dim} dimensions but the network has {n} inputs")
    else:
        raise ProblemError("lipschitz() takes a Network (with a box) or a Problem")
    domain.require_bounded("the Lipschitz constant")
    m = network.output_dim
    labels: tuple[str, ...]
    if c is not None:
        rows = np.atleast_2d(np.asarray(c, dtype=np.float64))
        if rows.shape[1] != m:
            raise ProblemError(f"objective c has {rows.shape[1]} entries; the network has {m} outputs")
        labels = ("c",)
    elif output is not None:
        if not (0 <= int(output) < m):
            raise ProblemError(f"output index {output} does not exist: the network has {m} outputs")
        rows = np.eye(m)[[int(output)]]
        labels = (f"y[{int(output)}]",)
    elif m == 1:
        rows = np.eye(1)
        labels = ("y[0]",)
    else:
        if p != np.inf:
            raise ProblemError(
                "the vector case (all outputs at once) is defined for the inf norm; "
                "for p = 1 or 2 give output=K or an objective c"
            )
        rows = np.eye(m)
        labels = tuple(f"y[{k}]" for k in range(m))
    return Target(network, domain, rows, p, labels)


def lipschitz(net_or_problem, box=None, *, norm="inf", method: str = "auto", output: int | None = None,
              c=None, time_limit: float | None = 60.0, seed: int = 0, samples: int = 20000,
              bounds: LayerBounds | None = None, A=None, b=None, progress=None) -> LipschitzResult:
    """Certified bounds on the local Lipschitz constant of ``c . y`` over a box.

    ``box`` is ``(lb, ub)`` (scalars or vectors) when a Network is given. With neither
    ``output`` nor ``c`` and several outputs, the vector case ``max_k ||J_k||_1`` (p = inf)
    is computed.
    """
    if method not in METHODS:
        raise ProblemError(f"unknown Lipschitz method {method!r}; choose from {', '.join(METHODS)}")
    limit = check_time_limit(time_limit)
    start = time.perf_counter()
    deadline = start + limit
    target = _target(net_or_problem, box, norm, output, c, A, b)
    net, dom = target.network, target.domain
    p_name = {1.0: "1", 2.0: "2", math.inf: "inf"}[target.p]
    if method == "miqcqp" and target.p != 2.0:
        raise ProblemError("the MIQCQP method is for norm=2; use 'mip' for norm 1 or inf")
    if method in ("mip", "mip-upper") and target.p == 2.0:
        raise ProblemError("the linear MIP handles norm 1 or inf; use method='miqcqp' for norm 2")
    if bounds is None:
        bounds = crown_bounds(net, dom.lb, dom.ub)
    history: list = []
    stats: dict = {"rows": list(target.labels), "bounds": bounds.method}

    def elapsed() -> float:
        return time.perf_counter() - start

    # cheap upper bounds, per row
    uppers = []
    for row in target.rows:
        uppers.append(min(product_bound(net, row, target.q),
                          interval_jacobian_bound(net, row, target.q, bounds)))
    stats["product_bound"] = max(product_bound(net, r, target.q) for r in target.rows)
    stats["interval_bound"] = max(interval_jacobian_bound(net, r, target.q, bounds)
                                  for r in target.rows)
    upper = max(uppers)
    history.append((elapsed(), None, upper, "bounds"))

    lower, x_best = -math.inf, None
    if method != "bounds":
        x_best, lower = sample_lower(target, samples=samples, seed=seed, deadline=deadline)
        if x_best is not None:
            x_best, lower = local_ascent(target, x_best, lower, seed=seed, deadline=deadline)
        history.append((elapsed(), lower, upper, "sample"))
        if progress:
            progress({"elapsed": elapsed(), "lower": lower, "upper": upper})

    if method == "auto":
        method = "bab" if dom.dim <= BAB_MAX_DIM else ("miqcqp" if target.p == 2.0 else "mip")
        stats["auto_choice"] = method
    if method == "bab":
        from .bab import lipschitz_bab

        lower, x_best, bab_upper, nodes, _ = lipschitz_bab(target, deadline=deadline, lower=lower,
                                                           x_lower=x_best)
        upper = min(upper, bab_upper)
        stats["nodes"] = nodes
        history.append((elapsed(), lower, upper, "bab"))
    if method in ("mip", "mip-upper", "miqcqp"):
        exact_uppers = []
        rows = list(target.rows)
        for k, row in enumerate(rows):
            remaining = max(deadline - time.perf_counter(), 0.0) / (len(rows) - k)
            if remaining <= 0.05:
                exact_uppers.append(uppers[k])
                continue
            use_l2 = target.p == 2.0
            realisable = method != "mip-upper"
            model, g_cols = build_lipschitz_model(net, dom, bounds, row,
                                                  1.0 if use_l2 else target.q, realisable)
            if use_l2:
                from .upper import gradient_intervals

                _, (glo, ghi) = gradient_intervals(net, row, bounds)
                values, obj, bnd, st = solve_l2_scip(model, g_cols, glo, ghi, remaining)
                up_k = math.sqrt(max(widen(bnd), 0.0))
            else:
                out = solve_highs(model, time_limit=remaining, mip_rel_gap=1e-6, mip_abs_gap=1e-9)
                values = out.values
                up_k = widen(out.bound) if out.bound is not None else math.inf
                if out.status == "optimal" and out.bound is None and out.objective is not None:
                    up_k = widen(out.objective)
            exact_uppers.append(min(uppers[k], up_k))
            if values is not None and realisable and model.x_cols.size:
                wx, wv = _witness(target, model.columns_to_point(values),
                                  _pattern_from_solution(model, bounds, values))
                if wv > lower:
                    x_best, lower = wx, wv
            history.append((elapsed(), lower, max(exact_uppers), f"{method}:{target.labels[k]}"))
        upper = min(upper, max(exact_uppers)) if exact_uppers else upper
    upper = max(upper, lower)  # a witnessed lower bound is a fact; never report upper below it
    if math.isfinite(lower) and upper - lower <= PROVED_REL_GAP * max(abs(upper), 1e-12):
        status = "optimal"          # lower is witnessed, upper is certified: they meet
    elif method in ("mip", "bab", "miqcqp"):
        status = "time_limit"       # exact phase stopped (or its pattern had no interior witness)
    else:
        status = "bounds"
    return LipschitzResult(
        lower=float(lower), upper=float(upper), status=status, norm=p_name, method=method,
        x=x_best, pattern=None if x_best is None else pattern_of(net, x_best),
        seconds=elapsed(), stats=stats, history=history,
    )


def _pattern_from_solution(model, bounds: LayerBounds, values: np.ndarray) -> list[np.ndarray]:
    """The activation pattern the solver chose: stable neurons by their bounds, unstable
    ones by their binaries (at a kink the point alone does not tell which side was used)."""
    pattern = []
    for l, zc in enumerate(model.z_cols):
        p = (bounds.lower[l][0] >= 0).astype(np.int8)
        has = zc >= 0
        p[has] = (values[zc[has]] > 0.5).astype(np.int8)
        pattern.append(p)
    return pattern


def _witness(target: Target, x: np.ndarray, pattern: list[np.ndarray]):
    """A point strictly inside the region of ``pattern`` and its gradient norm, or None.

    Tries ``x`` itself, then the most interior point of the region (an LP); the point's own
    pattern is re-checked by a forward pass.
    """
    from .common import interior_mask

    net = target.network
    for candidate in (x, None):
        if candidate is None:
            candidate, margin = interior_point(net, target.domain, pattern)
            if candidate is None or margin <= 0:
                return None, -math.inf
            candidate = np.clip(candidate, target.domain.lb, target.domain.ub)
        if not (interior_mask(net, candidate[None])[0]
                and target.domain.contains(candidate[None], tol=0.0)[0]):
            continue
        if all(np.array_equal(a, b) for a, b in zip(pattern_of(net, candidate), pattern, strict=True)):
            return candidate, float(target.norms(candidate[None])[0])
    return None, -math.inf
