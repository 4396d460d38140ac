"""The exact phase: one MIP (p in {1, inf}, HiGHS or Gurobi) or MIQCQP (p = 2, SCIP) per
target row, with the solver's dual bound traced over time and every incumbent pattern
turned into an interior witness when it has one.

Kept apart from ``lipschitz()`` so the driver only chains phases; the state that the
phases share (best lower bound and its witness, history) lives in ``Search``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..bounds import LayerBounds
from ..tracker import Tracker
from .common import Target, interior_mask, interior_point, pattern_of

#: The solver's bound is recorded in the history at most this often (seconds).
TRACE_EVERY = 1.0


class Search(Tracker):
    """The state of one ``lipschitz()`` call: the shared tracker, read as bounds of a constant.

    ``lower`` (the incumbent value: the gradient norm at a witness ``x`` strictly inside a
    region) and ``upper`` (the certified bound) are the tracker's value and bound.

    Parameters
    ----------
    target : Target
    time_limit : float or None
    progress : callable or None
    """

    def __init__(self, target: Target, time_limit: float | None, progress: Callable | None = None) -> None:
        super().__init__("lipschitz", "max", time_limit, progress)
        self.target = target
        self.stats: dict = {}

    @property
    def deadline(self) -> float:
        """``time.perf_counter()`` value at which the time limit is reached."""
        return self.start + self.time_limit

    @property
    def lower(self) -> float:
        """The best witnessed gradient norm (``-inf`` before the first)."""
        return -math.inf if self.value is None else self.value

    @property
    def upper(self) -> float:
        """The certified upper bound (``inf`` before the first)."""
        return math.inf if self.bound is None else self.bound

    @upper.setter
    def upper(self, value: float) -> None:
        self.bound = float(value)

    def offer(self, x, value: float) -> None:
        """Keep a witness ``x`` with gradient norm ``value`` if it raises the lower bound.

        Parameters
        ----------
        x : ndarray or None
        value : float
        """
        if x is not None and value > self.lower:
            self.x, self.value = np.asarray(x, dtype=np.float64), float(value)

    def record(self, source: str, upper: float | None = None, **extra) -> None:
        """Add a history entry (and a progress report) for a phase.

        Parameters
        ----------
        source : str
            ``phase`` or ``phase:row``.
        upper : float or None
            The upper bound to show (default the certified one; a solver's running bound
            while it works).
        **extra
            Added to the progress report.
        """
        up = self.upper if upper is None else upper
        now = self.elapsed
        self.history.append((now, self.lower, up, source))
        if self.progress:
            gap = (up - self.lower) / max(abs(up), 1e-12) if math.isfinite(self.lower) and math.isfinite(up) else None
            self.progress({"elapsed": now, "method": source.split(":")[0], "incumbent": self.lower,
                           "bound": up, "gap": gap, "phase": source, **extra})


def run_exact(search: Search, bounds: LayerBounds, uppers: list[float], *, realisable: bool,
              solver: str = "highs", threads: int = 1) -> float:
    """Solve the exact (or free-pattern) model for every row in the time left.

    Parameters
    ----------
    search : Search
        The call's state; witnesses found are offered to it.
    bounds : LayerBounds
        Neuron bounds of the domain.
    uppers : list of float
        Cheap upper bounds per row, kept when a solve does not beat them.
    realisable : bool
        Solve the exact model (patterns realised by an input); False solves the free-pattern
        relaxation, which only gives an upper bound.
    solver : str, optional
        ``"highs"`` or ``"gurobi"`` (SCIP for the l2 norm unless ``"gurobi"``).
    threads : int, optional
        Solver threads.

    Returns
    -------
    float
        The certified upper bound (max over rows).
    """
    from ..milp.backends import get_backend
    from ..milp.backends.base import widen
    from .mip import build_lipschitz_model, mip_start, solve_l2_scip

    target = search.target
    net, dom = target.network, target.domain
    rows = list(target.rows)
    use_l2 = target.p == 2.0
    done: list[float] = []
    for k, row in enumerate(rows):
        share = max(search.remaining, 0.0) / (len(rows) - k)
        if share <= 0.05:
            done.append(uppers[k])
            continue
        label = f"{'miqcqp' if use_l2 else ('mip' if realisable else 'mip-upper')}:{target.labels[k]}"
        model, g_cols, layout = build_lipschitz_model(net, dom, bounds, row, 1.0 if use_l2 else target.q,
                                                      realisable)
        issue = model.scaling_issue()
        if issue is not None:   # the solver's bound would not be a certificate: keep the cheaper one
            search.stats.setdefault("mip_refused", []).append(issue)
            done.append(uppers[k])
            continue
        search.stats.setdefault("mip_columns", []).append(model.n_cols)
        search.stats.setdefault("mip_binaries", []).append(model.n_binaries)
        if use_l2:
            from .upper import gradient_intervals

            if solver == "gurobi":   # a quadratic objective: beyond the linear back-end interface
                from ..milp.backends.gurobi import solve_gurobi

                out = solve_gurobi(model, time_limit=share, threads=threads, squares=g_cols)
                values, bnd, st = out.values, (math.inf if out.bound is None else out.bound), out.status
            else:
                _, (glo, ghi) = gradient_intervals(net, row, bounds)
                values, _, bnd, st = solve_l2_scip(model, g_cols, glo, ghi, share)
            up_k = math.sqrt(max(widen(bnd), 0.0))
            search.stats.setdefault("mip_status", []).append(str(st))
        else:
            start = None
            if search.x is not None and dom.contains(search.x[None], tol=0.0)[0]:
                start = mip_start(model, layout, search.x)
            last = [-math.inf]

            def trace(primal, dual, nodes, _label=label, _k=k, _last=last):
                now = search.elapsed
                if not math.isfinite(dual) or abs(dual) >= 1e30 or now - _last[0] < TRACE_EVERY:
                    return
                _last[0] = now
                up_now = max((*done, min(uppers[_k], widen(dual))))
                search.record(_label, min(search.upper, up_now), nodes=nodes)

            out = get_backend(solver).solve(model, time_limit=share, mip_rel_gap=1e-6, mip_abs_gap=1e-9,
                                            mip_start=start, threads=threads, on_progress=trace)
            search.stats.setdefault("mip_status", []).append(out.status)
            search.stats.setdefault("mip_nodes", []).append(out.nodes)
            values = out.values
            up_k = widen(out.bound) if out.bound is not None else math.inf
            if out.status == "optimal" and out.bound is None and out.objective is not None:
                up_k = widen(out.objective)
        done.append(min(uppers[k], up_k))
        if values is not None and realisable and model.x_cols.size:
            search.offer(*witness(target, model.columns_to_point(values), pattern_from_solution(model, bounds, values)))
        search.record(label, min(search.upper, max(done)))
    return max(done) if done else math.inf


def pattern_from_solution(model, bounds: LayerBounds, values: np.ndarray) -> list[np.ndarray]:
    """The activation pattern the solver chose.

    Stable neurons by their bounds, unstable ones by their binaries (at a kink the point alone
    does not tell which side was used).

    Parameters
    ----------
    model : MilpModel
        The Lipschitz model.
    bounds : LayerBounds
        Its neuron bounds.
    values : numpy.ndarray
        The solution's column vector.

    Returns
    -------
    list of numpy.ndarray
        One int8 0/1 vector per hidden layer.
    """
    pattern = []
    for l, zc in enumerate(model.z_cols):
        p = (bounds.lower[l][0] >= 0).astype(np.int8)
        has = zc >= 0
        p[has] = (values[zc[has]] > 0.5).astype(np.int8)
        pattern.append(p)
    return pattern


def witness(target: Target, x: np.ndarray, pattern: list[np.ndarray]):
    """A point strictly inside the region of ``pattern`` and its gradient norm, or None.

    Tries ``x`` itself, then the most interior point of the region (an LP); the point's own
    pattern is re-checked by a forward pass.

    Parameters
    ----------
    target : Target
        What is bounded.
    x : numpy.ndarray
        The solver's point.
    pattern : list of numpy.ndarray
        The solver's pattern.

    Returns
    -------
    x : numpy.ndarray or None
        The witness.
    value : float
        Its gradient norm (-inf without a witness).
    """
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
