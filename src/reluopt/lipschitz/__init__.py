"""Local Lipschitz constants of ReLU networks with certified lower and upper bounds.

``lipschitz(net_or_problem, box, norm="inf", method="auto")`` returns a
``LipschitzResult`` with ``lower <= true <= upper``. Methods:

- ``sample``: lower bound from gradient norms at points strictly inside regions, plus a
  local ascent over regions; the cheap upper bounds alongside.
- ``bounds``: the cheap upper bounds only (product of layer norms; interval Jacobian).
- ``mip``: exact for p = inf and p = 1 (HiGHS, or Gurobi with ``solver='gurobi'``), forward
  big-M model + linearised backward pass, warm-started from the sampled witness; the
  solver's best pattern is re-checked strictly inside its region. Its bound meets the witness
  unless the optimum sits where region constraints hold only with equality (e.g. the origin
  of a bias-free net); the gap is then reported, not hidden.
- ``mip-upper``: the same without the realisability constraints (any pattern of the
  unstable neurons): a certified upper bound only. On random 2-16-16-2 nets it was 40-200 %
  above the exact value in every case measured (benchmarks/bench_lipschitz.py).
- ``miqcqp``: p = 2, a nonconvex quadratic objective, solved by SCIP (``scip`` extra) or
  Gurobi (``solver='gurobi'``, NonConvex=2). With several rows (all outputs, or a matrix
  ``c``) the l2 -> l2 constant, the largest spectral norm of ``C J(x)``: the MIQCQP of
  Sbihi, Couellan and Jan over the pattern and a unit direction (``miqcqp.py``), with the
  activation region linearised (``formulation="linearised"``, default) or as the paper's
  quadratic constraints (``formulation="paper"``, also for one row).
- ``bab``: branch and bound over the input box with CROWN bounds and interval Jacobians on
  each sub-box, pattern enumeration on boxes with few unstable neurons and region LPs on
  tiny ones; certified and fast for low input dimension, any norm.
- ``auto``: sample, then branch and bound (input dimension <= 8), or else the exact MIP
  (p in {1, inf}) or the MIQCQP (p = 2) with the remaining time.

Neuron bounds (``bounds=``): CROWN by default, IBP, or LP-OBBT (tighter, paid from the
time limit; on the benchmark it did not speed the exact MIP up: median time ratio ~1).
"""

from __future__ import annotations

import math
import sys
import time
import types
from dataclasses import dataclass, field

import numpy as np

from ..bounds import BOUND_METHODS, LayerBounds, compute_bounds
from ..errors import ProblemError, SolverError, UnsupportedError
from ..network import Network
from ..problem import Domain, MaxMin, Problem
from ..result import check_time_limit, jsonable
from .common import Target, parse_norm, pattern_of, require_binary_slopes
from .exact import Search
from .lower import local_ascent, sample_lower
from .miqcqp import FORMULATIONS
from .upper import interval_jacobian_bound, product_bound, spectral_interval_bound, spectral_product_bound

#: lower and upper closer than ``PROVED_REL_GAP * |upper| + PROVED_ABS_GAP`` count as the exact
#: value. The absolute part matches the MIP's solver margin (``milp.backends.base.SOLVER_MARGIN``), below which
#: a MIP bound cannot separate values; without it a constant-zero network is never "proven".
PROVED_REL_GAP = 1e-5
PROVED_ABS_GAP = 2e-6

METHODS = ("auto", "sample", "bounds", "bab", "mip", "mip-upper", "miqcqp")
SOLVERS = ("highs", "gurobi")

#: ``auto`` uses input-space branch and bound up to this input dimension, the MIP above it.
BAB_MAX_DIM = 8
__all__ = ["FORMULATIONS", "METHODS", "SOLVERS", "LipschitzResult", "lipschitz", "lipschitz_constant"]


@dataclass
class LipschitzResult:
    """Certified bounds ``lower <= L <= upper`` on a Lipschitz constant, with the point behind ``lower``.

    Attributes
    ----------
    lower : float
        A value of the gradient norm at ``x`` (strictly inside its linear region).
    upper : float
        A certified upper bound.
    status : str
        ``"optimal"`` (the gap is closed), ``"time_limit"`` (an exact method stopped) or
        ``"bounds"`` (any other method left a gap).
    norm : str
        The input norm, ``"1"``, ``"2"`` or ``"inf"``.
    method : str
        The method asked for (`METHODS`).
    x : numpy.ndarray or None
        The witness of ``lower``.
    pattern : list or None
        The activation pattern at ``x``, per hidden layer.
    seconds : float
        Wall time.
    stats : dict
        Method details.
    history : list
        ``(seconds, lower, upper, source)`` as the bounds improved.
    """

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
        """The result as a JSON-able dict (infinite bounds become None).

        Returns
        -------
        dict
            The fields, the ``gap`` and the history.
        """
        return {
            "lower": _finite(self.lower), "upper": _finite(self.upper), "gap": _finite(self.gap),
            "status": self.status, "norm": self.norm, "method": self.method,
            "x": None if self.x is None else [float(v) for v in self.x],
            "pattern": None if self.pattern is None else [[int(b) for b in p] for p in self.pattern],
            "seconds": self.seconds, "stats": jsonable(self.stats, nonfinite=lambda _: None),
            "history": [{"seconds": t, "lower": _finite(lo), "upper": _finite(up), "source": s}
                        for t, lo, up, s in self.history],
        }

    def __repr__(self) -> str:    # short: x and the activation pattern are arrays
        x = "None" if self.x is None else f"<{np.asarray(self.x).size} values>"
        return (f"LipschitzResult(status={self.status!r}, norm={self.norm!r}, method={self.method!r}, "
                f"lower={self.lower:.6g}, upper={self.upper:.6g}, gap={self.gap:.3g}, x={x}, "
                f"seconds={self.seconds:.3f})")

    def summary(self) -> str:
        """A few aligned lines for the terminal.

        Returns
        -------
        str
            Status, norm, bounds, gap and time.
        """
        return (f"status  {self.status}\nnorm    {self.norm} (input)\nlower   {self.lower:.10g}\n"
                f"upper   {self.upper:.10g}\ngap     {self.gap:.3g}\nseconds {self.seconds:.3f}")


def _finite(v) -> float | None:
    """JSON has no infinities: an unknown bound is null."""
    return float(v) if v is not None and math.isfinite(v) else None


def _target(net_or_problem, box, norm, output, c, domain_A=None, domain_b=None) -> Target:
    p = parse_norm(norm)
    if isinstance(net_or_problem, Problem):
        problem = net_or_problem
        network, domain = problem.network, problem.domain
        if problem.constraints is not None and problem.constraints.count:
            raise UnsupportedError("the Lipschitz constant is over the input domain only; this problem has "
                                   "output constraints (C y <= e): drop them or pass the Network")
        if box is not None:   # the box overrides the problem's, its A x <= b stays
            lb, ub = (np.broadcast_to(np.asarray(v, dtype=np.float64), (network.input_dim,)) for v in box)
            domain = Domain(lb, ub, domain.A if domain_A is None else domain_A,
                            domain.b if domain_b is None else domain_b)
        if c is None and output is None:
            if isinstance(problem.objective, MaxMin):
                c = problem.objective.C
            elif problem.objective.is_linear:
                c = problem.objective.linear_form()[0]
            else:
                raise UnsupportedError("the Lipschitz constant needs a linear objective c . y; give c= or output=")
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
    require_binary_slopes(network)
    m = network.output_dim
    labels: tuple[str, ...]
    if c is not None:
        rows = np.atleast_2d(np.asarray(c, dtype=np.float64))
        if rows.shape[1] != m:
            raise ProblemError(f"objective c has {rows.shape[1]} entries; the network has {m} outputs")
        labels = ("c",) if rows.shape[0] == 1 else tuple(f"c[{k}]" for k in range(rows.shape[0]))
    elif output is not None:
        if not (0 <= int(output) < m):
            raise ProblemError(f"output index {output} does not exist: the network has {m} outputs")
        rows = np.eye(m)[[int(output)]]
        labels = (f"y[{int(output)}]",)
    elif m == 1:
        rows = np.eye(1)
        labels = ("y[0]",)
    else:
        if p == 1.0:
            raise ProblemError(
                "the vector case (all outputs at once) is defined for the inf and 2 norms; "
                "for p = 1 give one output (output=K, --output K) or an objective (c=..., --objective)"
            )
        rows = np.eye(m)
        labels = tuple(f"y[{k}]" for k in range(m))
    return Target(Problem(network, domain, MaxMin(rows, np.zeros(rows.shape[0]))), p, labels)


def lipschitz(net_or_problem, box=None, *, norm="inf", method: str = "auto", output: int | None = None,
              c=None, time_limit: float | None = 60.0, seed: int = 0, samples: int = 20000,
              bounds: LayerBounds | str | None = None, solver: str = "highs", threads: int = 1,
              A=None, b=None, progress=None, formulation: str = "linearised") -> LipschitzResult:
    """Certified bounds on the local Lipschitz constant of ``c . y`` over a box.

    With neither ``output`` nor ``c`` and several outputs (or a matrix ``c`` of several rows),
    the constant of the vector map: ``max_k ||J_k||_1`` for p = inf, the largest spectral norm
    of ``C J`` for p = 2 (l2 -> l2).

    Parameters
    ----------
    net_or_problem : Network or Problem
        The network, or a problem whose domain is used.
    box : tuple, optional
        ``(lb, ub)`` (scalars or vectors), needed when a Network is given.
    norm : {1, 2, "inf"}, optional
        The input norm p (the gradient is measured in its dual norm).
    method : str, optional
        One of `METHODS` (see the module docstring).
    output : int, optional
        Bound the constant of this output only.
    c : array_like, optional
        Bound the constant of ``c . y`` (a matrix: of ``x -> c y``, see above).
    time_limit : float or None, optional
        Seconds for the whole call.
    seed : int, optional
        Seed of the sampling.
    samples : int, optional
        Number of samples of the lower bound.
    bounds : LayerBounds or str, optional
        Neuron bounds for the MIP and the interval Jacobian: ``"crown"`` (default), ``"ibp"``,
        ``"lp-obbt"`` (LP-based tightening, paid from the time limit) or a ``LayerBounds`` over
        the same box.
    solver : str, optional
        ``"highs"`` or ``"gurobi"`` for the linear MIP (SCIP or ``"gurobi"`` for the l2 MIQCQP).
    threads : int, optional
        Solver threads.
    A, b : array_like, optional
        Extra input constraints ``A x <= b``.
    progress : callable, optional
        Called with a dict (elapsed, method, incumbent, bound, gap, phase) as bounds improve.
    formulation : {"linearised", "paper"}, optional
        The l2 MIQCQP's model of the activation regions (`FORMULATIONS`, see ``miqcqp.py``):
        linear rows (default), or the paper's quadratic constraints.

    Returns
    -------
    LipschitzResult
        The bounds, the witness and the history.

    Raises
    ------
    ProblemError
        An unknown method, solver or norm, or a method that does not handle the norm.
    SolverError
        The l2 MIQCQP is needed and no nonconvex solver is installed.
    """
    if method not in METHODS:
        raise ProblemError(f"unknown Lipschitz method {method!r}; choose from {', '.join(METHODS)}")
    if solver not in SOLVERS:
        raise ProblemError(f"unknown MIP solver {solver!r}; choose from {', '.join(SOLVERS)}")
    if formulation not in FORMULATIONS:
        raise ProblemError(f"unknown formulation {formulation!r}; choose from {', '.join(FORMULATIONS)}")
    limit = check_time_limit(time_limit)   # a bad limit fails before any work
    target = _target(net_or_problem, box, norm, output, c, A, b)
    net = target.network
    p_name = {1.0: "1", 2.0: "2", math.inf: "inf"}[target.p]
    if method == "miqcqp" and target.p != 2.0:
        raise ProblemError("the MIQCQP method is for norm=2; use 'mip' for norm 1 or inf")
    if formulation == "paper" and target.p != 2.0:
        raise ProblemError("the paper's quadratic formulation is the l2 MIQCQP: use it with norm=2")
    if method in ("mip", "mip-upper") and target.p == 2.0:
        raise ProblemError("the linear MIP handles norm 1 or inf; use method='miqcqp' for norm 2")
    if method == "miqcqp" or (method == "auto" and target.p == 2.0 and target.domain.dim > BAB_MAX_DIM):
        require_nonconvex_solver(solver)
    search = Search(target, limit, progress=progress)
    layer_bounds = _resolve_bounds(target, bounds, search)
    search.stats.update({"rows": list(target.labels), "bounds": layer_bounds.method})
    from .exact import run_exact

    # cheap upper bounds, per row (one for the whole matrix in the spectral case)
    if target.spectral:
        prod, ival = spectral_product_bound(net, target.rows), spectral_interval_bound(net, target.rows, layer_bounds)
        uppers = [min(prod, ival)]
        search.stats.update(product_bound=prod, interval_bound=ival)
    else:
        uppers = [min(product_bound(net, r, target.q), interval_jacobian_bound(net, r, target.q, layer_bounds))
                  for r in target.rows]
        search.stats["product_bound"] = max(product_bound(net, r, target.q) for r in target.rows)
        search.stats["interval_bound"] = max(interval_jacobian_bound(net, r, target.q, layer_bounds)
                                             for r in target.rows)
    search.upper = max(uppers)
    search.record("bounds")

    if method != "bounds":
        x, v = sample_lower(target, samples=samples, seed=seed, deadline=search.deadline)
        if x is not None:
            x, v = local_ascent(target, x, v, seed=seed, deadline=search.deadline)
        search.offer(x, v)
        search.record("sample")

    if method == "auto":
        method = "bab" if target.domain.dim <= BAB_MAX_DIM else ("miqcqp" if target.p == 2.0 else "mip")
        search.stats["auto_choice"] = method
    if method == "bab":
        from .bab import lipschitz_bab

        lower, x_best, bab_upper, nodes, _ = lipschitz_bab(target, deadline=search.deadline, lower=search.lower,
                                                           x_lower=search.x, rel_gap=PROVED_REL_GAP,
                                                           abs_gap=PROVED_ABS_GAP)
        search.offer(x_best, lower)
        search.upper = min(search.upper, bab_upper)
        search.stats["nodes"] = nodes
        search.record("bab")
    if method == "miqcqp" and (target.spectral or formulation == "paper"):
        from .miqcqp import run_spectral

        search.upper = min(search.upper, run_spectral(search, layer_bounds, max(uppers), formulation=formulation,
                                                      solver=solver, threads=threads))
    elif method in ("mip", "mip-upper", "miqcqp"):
        exact_upper = run_exact(search, layer_bounds, uppers, realisable=method != "mip-upper",
                                solver=solver, threads=threads)
        search.upper = min(search.upper, exact_upper)
    lower = search.lower
    upper = max(search.upper, lower)  # a witnessed lower bound is a fact; never report upper below it
    if math.isfinite(lower) and upper - lower <= PROVED_REL_GAP * abs(upper) + PROVED_ABS_GAP:
        status = "optimal"          # lower is witnessed, upper is certified: they meet
    elif method in ("mip", "bab", "miqcqp"):
        status = "time_limit"       # exact phase stopped (or its pattern had no interior witness)
    else:
        status = "bounds"
    x_best = search.x
    return LipschitzResult(
        lower=float(lower), upper=float(upper), status=status, norm=p_name, method=method,
        x=x_best, pattern=None if x_best is None else pattern_of(net, x_best),
        seconds=search.elapsed, stats=search.stats, history=search.history,
    )


def require_nonconvex_solver(solver: str = "highs") -> None:
    """Check that the l2 MIQCQP can run: it needs SCIP (pyscipopt), or Gurobi with solver='gurobi'.

    Parameters
    ----------
    solver : str, optional
        The solver asked for.

    Raises
    ------
    SolverError
        The solver's package is missing (the message names the extra to install).
    """
    try:
        if solver == "gurobi":
            import gurobipy  # noqa: F401
        else:
            import pyscipopt  # noqa: F401
    except ImportError:
        raise SolverError(
            "the l2 Lipschitz constant (method 'miqcqp') needs a nonconvex-capable solver: install "
            "the 'scip' extra (pip install reluopt[scip]), or the 'gurobi' extra with solver='gurobi' "
            "(licence needed beyond 2000 variables); or use method='bab' (low input dimension), "
            "'sample' or 'bounds'"
        ) from None


def _resolve_bounds(target: Target, bounds, search: Search) -> LayerBounds:
    """Neuron bounds over the domain: by name (``BOUND_METHODS``; alpha-CROWN and OBBT cost time) or given."""
    net, dom = target.network, target.domain
    if isinstance(bounds, LayerBounds):
        if bounds.batch != 1:
            raise ProblemError("bounds must be LayerBounds of exactly one box (the domain)")
        return bounds
    name = "crown" if bounds is None else str(bounds)
    if name not in BOUND_METHODS:
        raise ProblemError(f"unknown bounds {name!r}; choose from {', '.join(BOUND_METHODS)} (or give LayerBounds)")
    if name in ("ibp", "crown"):
        return compute_bounds(net, dom.lb, dom.ub, name)
    t0 = time.perf_counter()
    # half the budget at most: alpha-CROWN and OBBT stop then; their bounds so far stay valid
    out = compute_bounds(net, dom.lb, dom.ub, name, A=dom.A, b=dom.b,
                         time_limit=max(0.5 * max(search.remaining, 0.0), 0.01))
    search.stats["obbt_seconds" if name.endswith("obbt") else "bounds_seconds"] = time.perf_counter() - t0
    return out


#: The function's non-shadowing name: ``reluopt.lipschitz_constant``.
lipschitz_constant = lipschitz


class _CallableModule(types.ModuleType):
    """This subpackage, callable as its function: ``reluopt.lipschitz(net, box)`` keeps working.

    ``reluopt.lipschitz`` is this subpackage (so ``import reluopt.lipschitz.mip`` and
    ``reluopt.lipschitz.METHODS`` work); calling it calls ``lipschitz_constant``.
    """

    def __call__(self, *args, **kwargs) -> LipschitzResult:
        """Call ``lipschitz_constant`` (see there for the arguments)."""
        return lipschitz_constant(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
