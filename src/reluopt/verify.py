"""Decide VNN-LIB properties by optimisation: is there an input whose outputs are unsafe?

For every (input box, output disjunct) pair we maximise the margin
``min_j (e_j - C_j y(x))`` over the box (see ``io.vnnlib``). A forward-checked point with
margin >= 0 is a counterexample (``sat``); a certified upper bound < 0 on every pair proves
the property (``unsat``); anything else is ``unknown``. Cheap steps run first because most
instances are decided by them: falsification (random sampling, then batched sign-gradient
ascent on the margin), then CROWN bounds per atom. The remaining pairs go to the exact
method: input-space branch and bound (``methods.bab.bab_maximize_min``) when available,
otherwise the big-M MIP with an epigraph variable ``t <= margin_j`` solved by HiGHS.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .bounds import crown_bounds, linear_output_bounds
from .errors import CertificateError, SolverError
from .io.vnnlib import Disjunct, Property
from .network import Network
from .result import check_time_limit

#: A MIP dual bound proves a pair impossible only below ``-MIP_UNSAT_TOL * (1 + scale)``,
#: with ``scale`` the magnitude of the margins on the box: HiGHS works with feasibility
#: tolerances of about 1e-6, so its bound is not exact to the last digit.
MIP_UNSAT_TOL = 1e-6

STATUSES = ("sat", "unsat", "unknown")

#: ``exact='auto'`` uses input-space branch and bound up to this many inputs (it splits the
#: input box, which pays off on ACAS Xu's 5 inputs) and the MIP above (MNIST's 784).
BAB_MAX_DIM = 16

#: Falsification gets at most this fraction of the timeout (and FALSIFY_MAX seconds): the
#: exact methods search for counterexamples too, with a proof of the rest.
FALSIFY_FRACTION = 0.2
FALSIFY_MAX = 10.0

#: On the MIP path (more than ``BAB_MAX_DIM`` inputs), alpha-CROWN gets at most this fraction
#: of the timeout: it tightens the hidden layers' bounds of each box (shared by the MIPs) and
#: then each open pair's output bound.
ALPHA_FRACTION = 0.1

#: With several open pairs, the first round of exact runs gives each this fraction of a
#: fair share of the time (see ``_exact``).
FIRST_ROUND_FRACTION = 0.5


@dataclass
class Verdict:
    """The answer, with a counterexample ``x`` (and its outputs ``y``) when ``sat``."""

    status: str
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    seconds: float = 0.0
    method: str = ""
    stats: dict = field(default_factory=dict)


@dataclass
class _Pair:
    box: int
    index: int
    lb: np.ndarray
    ub: np.ndarray
    dj: Disjunct
    best_x: np.ndarray | None = None
    best_margin: float = -math.inf
    upper: float = math.inf          # certified upper bound of the margin
    closed_by: str = ""              # method that proved the pair impossible


class _Found(Exception):
    """Raised internally when a counterexample is confirmed."""

    def __init__(self, x, y, method):
        super().__init__(method)
        self.x, self.y, self.method = x, y, method


def _bab_function():
    """The branch-and-bound entry point if that module exists (it is optional)."""
    try:
        from .methods.bab import bab_maximize_min
    except ImportError:
        return None
    return bab_maximize_min


def verify(
    network: Network,
    prop: Property,
    *,
    timeout: float,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
    exact: str = "auto",
    falsify: bool = True,
) -> Verdict:
    """Decide ``prop`` on ``network`` within ``timeout`` seconds.

    ``exact`` picks the complete method for pairs the fast paths leave open: ``'auto'``
    (branch and bound up to ``BAB_MAX_DIM`` inputs, else MIP), ``'bab'``, ``'mip'`` or ``'none'``.
    ``falsify=False`` skips the sampling/gradient attack (to exercise the exact methods).
    """
    start = time.perf_counter()
    timeout = check_time_limit(timeout)
    deadline = start + timeout
    prop = prop.check(network)
    rng = np.random.default_rng(seed)
    pairs = [_Pair(b, k, box.lb, box.ub, dj)
             for b, box in enumerate(prop.boxes) for k, dj in enumerate(box.disjuncts)]
    stats: dict = {"pairs": len(pairs), "boxes": len(prop.boxes), "phases": {}}

    def report(phase: str, **extra) -> None:
        """Progress in ``ProgressLine``'s keys: incumbent = best margin found, bound = a
        certified upper bound of every pair's margin (sat needs >= 0, unsat < 0)."""
        if progress is not None:
            n_open = sum(1 for p in pairs if not p.closed_by)
            info = {"method": "verify", "phase": phase, "elapsed": time.perf_counter() - start,
                    "pairs_open": n_open, "pairs": len(pairs),
                    "incumbent": max((p.best_margin for p in pairs), default=-math.inf),
                    "bound": max((p.upper for p in pairs), default=-math.inf)}
            info.update(extra)
            progress(info)

    def finish(status: str, method: str, x=None, y=None) -> Verdict:
        _check_verdict(status, pairs, network, x)
        stats.pop("_phase", None)
        stats["closed_by"] = _count(p.closed_by for p in pairs if p.closed_by)
        stats["best_margin"] = max((p.best_margin for p in pairs), default=-math.inf)
        return Verdict(status, x, y, time.perf_counter() - start, method, stats)

    phase_start = [time.perf_counter()]

    def phase(name: str | None) -> None:
        """Close the running phase's timer (stats['phases']) and open the next one."""
        now = time.perf_counter()
        if stats.get("_phase"):
            stats["phases"][stats["_phase"]] = now - phase_start[0]
        stats["_phase"], phase_start[0] = name, now
        if name:
            report(name)

    try:
        phase("bounds")
        crown = _crown(network, pairs, prop)
        if all(p.closed_by for p in pairs):
            phase(None)
            return finish("unsat", "crown")
        if exact in ("auto", "mip") and network.input_dim > BAB_MAX_DIM:
            phase("alpha-crown")
            _alpha_crown(network, pairs, crown, min(deadline, time.perf_counter() + ALPHA_FRACTION * timeout))
            if all(p.closed_by for p in pairs):
                phase(None)
                return finish("unsat", "+".join(sorted({p.closed_by for p in pairs})))
        if falsify:
            phase("falsification")
            budget = min(FALSIFY_FRACTION * timeout, FALSIFY_MAX)
            _falsify(network, [p for p in pairs if not p.closed_by], rng,
                     min(deadline, time.perf_counter() + budget))
        phase(None)
        if exact != "none":
            phase("exact")
            _exact(network, pairs, crown, exact, deadline, seed, report, stats)
            phase(None)
    except _Found as found:
        phase(None)
        return finish("sat", found.method, found.x, found.y)
    if all(p.closed_by for p in pairs):
        methods = sorted({p.closed_by for p in pairs})
        return finish("unsat", "+".join(methods))
    return finish("unknown", "")


def _count(items) -> dict:
    out: dict = {}
    for it in items:
        out[it] = out.get(it, 0) + 1
    return out


# ----------------------------------------------------------------------------- SAT side
def _confirm(network: Network, pair: _Pair, X: np.ndarray, method: str) -> None:
    """Raise ``_Found`` if a row of X is a counterexample (exact semantics, clipped to the box);
    before that, polish it to a larger margin so the witness survives float32 re-checks."""
    X = _float32_inside(np.clip(np.atleast_2d(X), pair.lb, pair.ub), pair.lb, pair.ub)
    Y = network.forward(X)
    ok = pair.dj.holds(Y)
    margins = pair.dj.margins(Y)
    if np.any(np.isfinite(margins)):
        i = int(np.argmax(margins))
        if margins[i] > pair.best_margin:
            pair.best_margin, pair.best_x = float(margins[i]), X[i].copy()
    if not ok.any():
        return
    idx = np.nonzero(ok)[0]
    i = int(idx[np.argmax(margins[idx])])
    x = _float32_inside(_polish(network, pair, X[i]), pair.lb, pair.ub)
    y = network.forward(x[None, :])[0]
    if not pair.dj.holds(y[None, :])[0]:  # polishing never worsens, but stay safe
        x, y = X[i], Y[i]
    raise _Found(x, y, method)


def _float32_inside(X: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """Round to float32 values still inside the box (where one exists), so a witness read
    back in single precision (ONNX files, VNN-COMP checkers) is the same point."""
    X32 = X.astype(np.float32)
    X32 = np.where(X32 < lb, np.nextafter(X32, np.float32(np.inf)), X32)
    X32 = np.where(X32 > ub, np.nextafter(X32, np.float32(-np.inf)), X32)
    ok = (X32 >= lb) & (X32 <= ub)
    return np.where(ok, X32.astype(np.float64), X)


def _polish(network: Network, pair: _Pair, x: np.ndarray, steps: int = 30) -> np.ndarray:
    """A few small sign-gradient steps that increase the margin (keeps the best point)."""
    dj = pair.dj
    if dj.C.shape[0] == 0:
        return x
    width = pair.ub - pair.lb
    best, best_m = x, dj.margins(network.forward(x[None, :]))[0]
    cur = x.copy()
    for it in range(steps):
        M = dj.e - network.forward(cur[None, :])[0] @ dj.C.T
        g = network.gradient(cur[None, :], -dj.C[int(np.argmin(M))])[0]
        cur = np.clip(cur + 1e-3 * 0.7 ** it * width * np.sign(g), pair.lb, pair.ub)
        m = dj.margins(network.forward(cur[None, :]))[0]
        if m > best_m:
            best, best_m = cur.copy(), m
    return best


def _falsify(network: Network, pairs: list[_Pair], rng, deadline: float) -> None:
    """Random sampling per box, then batched sign-gradient ascent on each pair's margin."""
    d = network.input_dim
    n_samples = 4096 if d <= 16 else 128
    boxes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for p in pairs:
        if p.dj.C.shape[0] == 0:   # no output atom: any point of the box is unsafe
            _confirm(network, p, ((p.lb + p.ub) / 2)[None, :], "falsification")
        if p.box not in boxes:
            X = p.lb + rng.random((n_samples, d)) * (p.ub - p.lb)
            X[0] = (p.lb + p.ub) / 2
            boxes[p.box] = (X, network.forward(X))
    for p in pairs:
        X, Y = boxes[p.box]
        if p.dj.holds(Y).any():
            _confirm(network, p, X, "falsification")
        m = p.dj.margins(Y)
        i = int(np.argmax(m))
        p.best_margin, p.best_x = float(m[i]), X[i].copy()
    for k, p in enumerate(pairs):
        now = time.perf_counter()
        if now > deadline:
            return
        X, _ = boxes[p.box]
        _pgd(network, p, X, rng, now + (deadline - now) / (len(pairs) - k))


def _pgd(network: Network, pair: _Pair, samples: np.ndarray, rng, deadline: float,
         n_starts: int = 48, steps: int = 80) -> None:
    """Projected sign-gradient ascent of ``min_j margin_j`` from the best samples and random
    starts; the step shrinks linearly from 20% of the box width."""
    dj = pair.dj
    width = pair.ub - pair.lb
    m = dj.margins(network.forward(samples))
    top = samples[np.argsort(-m)[: n_starts // 2]]
    rand = pair.lb + rng.random((n_starts - top.shape[0], pair.lb.size)) * width
    X = np.vstack([top, rand])
    for it in range(steps):
        if time.perf_counter() > deadline:
            return
        Y = network.forward(X)
        M = dj.e[None, :] - Y @ dj.C.T
        _confirm_batch(network, pair, X, Y)
        j = np.argmin(M, axis=1)
        G = network.gradient(X, -dj.C[j])
        lr = 0.2 * (1.0 - it / steps) + 1e-3
        noise = rng.normal(scale=0.02 * (1 - it / steps), size=X.shape) * width
        X = np.clip(X + lr * width * np.sign(G) + noise, pair.lb, pair.ub)
    _confirm_batch(network, pair, X, network.forward(X))


def _confirm_batch(network, pair, X, Y) -> None:
    margins = pair.dj.margins(Y)
    i = int(np.argmax(margins))
    if margins[i] > pair.best_margin:
        pair.best_margin, pair.best_x = float(margins[i]), X[i].copy()
    if pair.dj.holds(Y).any():
        _confirm(network, pair, X, "falsification")


# ----------------------------------------------------------------------------- bounds
def _crown(network: Network, pairs: list[_Pair], prop: Property) -> dict:
    """CROWN bounds per box; closes pairs with an atom whose margin is certainly < 0.
    Returns the per-box LayerBounds for the exact phase."""
    lbs = np.array([b.lb for b in prop.boxes])
    ubs = np.array([b.ub for b in prop.boxes])
    bounds = crown_bounds(network, lbs, ubs)
    out = {}
    for b in range(len(prop.boxes)):
        out[b] = bounds.select([b])
    for p in pairs:
        C = p.dj.C
        if C.shape[0] == 0:   # no output atom: any point of the box is unsafe
            _confirm(network, p, ((p.lb + p.ub) / 2)[None, :], "falsification")
        upper, x_star, _, _ = linear_output_bounds(network, p.lb, p.ub, -C, out[p.box])
        ub_margin = p.dj.e + upper[0]           # upper bound of e_j - C_j y
        p.upper = float(np.min(ub_margin))
        if p.upper < 0:
            p.closed_by = "crown"
        else:
            _confirm(network, p, x_star[0], "crown-point")
    return out


def _alpha_crown(network: Network, pairs: list[_Pair], crown: dict, deadline: float) -> None:
    """Tighter hidden-layer bounds per box with open pairs (they replace ``crown[box]`` for the
    MIPs), then optimised output bounds per open pair; closes pairs certainly below 0."""
    from .bounds.alpha import alpha_crown_bounds, optimise_rows

    for b in sorted({p.box for p in pairs if not p.closed_by}):
        if time.perf_counter() > deadline:
            return
        g = [p for p in pairs if p.box == b and not p.closed_by]
        bounds = alpha_crown_bounds(network, g[0].lb, g[0].ub, crown[b], deadline=deadline)
        crown[b] = bounds
        lowers = [L[0] for L in bounds.lower]
        uppers = [U[0] for U in bounds.upper]
        for p in g:
            if time.perf_counter() > deadline:
                return
            if p.dj.C.shape[0] == 0:
                continue
            up = optimise_rows(network, network.depth, -p.dj.C, lowers, uppers, p.lb, p.ub,
                               iters=60, deadline=deadline, stop_below=-p.dj.e)
            p.upper = min(p.upper, float(np.min(p.dj.e + up)))
            if p.upper < 0:
                p.closed_by = "alpha-crown"


# ----------------------------------------------------------------------------- exact
def _exact(network, pairs, crown, exact, deadline, seed, report, stats) -> None:
    """Run the complete method on the open pairs until all are closed or time is up.

    Branch and bound: round 0 runs it per pair (most promising margin first) with
    ``FIRST_ROUND_FRACTION`` of a fair share each when several pairs are open or the only
    one has a single atom; then each box with pairs still open gets one shared splitting
    tree (``verify_split``: plain CROWN bounds, but one tree for all disjuncts, and on
    single-atom disjuncts often faster than the Lagrangian bound); then per-pair rounds
    share what is left (closest to a proof first). Each run starts from scratch. MIP:
    per-pair rounds."""
    wanted = exact == "bab" or (exact == "auto" and network.input_dim <= BAB_MAX_DIM)
    bab = _bab_function() if wanted else None
    if exact == "bab" and bab is None:
        raise SolverError("exact='bab' but reluopt.methods.bab is not available")
    name = "bab" if bab is not None else "mip"
    stats["exact_method"] = name
    runs = stats.setdefault("exact_runs", [])
    for rnd in range(1000):
        todo = [p for p in pairs if not p.closed_by]
        if not todo:
            return
        if rnd == 1 and bab is not None:
            _split_boxes(network, pairs, deadline, report, runs)
            todo = [p for p in pairs if not p.closed_by]
            if not todo:
                return
        if rnd == 0:
            todo.sort(key=lambda p: -p.best_margin)
        else:
            todo.sort(key=lambda p: p.upper)
        # round 0 keeps time for the shared tree when it may pay: several pairs, or one
        # single-atom pair (where plain splitting is often as good as the Lagrangian bound)
        portfolio = bab is not None and (len(todo) > 1 or todo[0].dj.C.shape[0] == 1)
        fraction = FIRST_ROUND_FRACTION if rnd == 0 and portfolio else 1.0
        for k, p in enumerate(todo):
            remaining = deadline - time.perf_counter()
            if remaining <= 0.05:
                return
            share = remaining / (len(todo) - k) * fraction
            label = f"{name} pair {k + 1}/{len(todo)}" + (f" round {rnd + 1}" if rnd else "")
            report(label, box=p.box, disjunct=p.index, time_limit=share)
            t0 = time.perf_counter()
            if bab is not None:
                outcome = _run_bab(bab, network, p, share, seed, _bab_progress(report, label, p))
            else:
                outcome = _run_mip(network, p, crown[p.box], share)
            runs.append({"box": p.box, "disjunct": p.index, "method": name, "round": rnd,
                         "seconds": time.perf_counter() - t0, "outcome": outcome})


def _check_verdict(status: str, pairs: list[_Pair], network: Network, x) -> None:
    """The invariants of a verdict, checked before it leaves ``verify``.

    ``unsat`` needs a certified negative upper bound on every pair's margin and no pair with
    a non-negative margin found; ``sat`` needs a point whose forward pass satisfies one of
    the disjuncts. A violation is a bug, raised as ``CertificateError``, never a verdict.
    """
    if status == "unsat":
        bad = [p for p in pairs if not (p.upper < 0 and p.best_margin < 0)]
        if bad:
            p = bad[0]
            raise CertificateError(f"verify would answer unsat, but disjunct {p.index} of box {p.box} has "
                                   f"certified upper margin {p.upper:.6g} and best margin {p.best_margin:.6g}")
    elif status == "sat":
        y = network.forward(np.atleast_2d(np.asarray(x, dtype=np.float64)))
        if not any(p.dj.holds(y)[0] and np.all(p.lb <= x) and np.all(x <= p.ub) for p in pairs):
            raise CertificateError("verify would answer sat with a point that satisfies no disjunct")


def _split_boxes(network, pairs, deadline, report, runs) -> None:
    """Boxes with open disjuncts: one shared input-splitting tree each (``verify_split``),
    each box getting time in proportion to its open pairs."""
    from .search.disjuncts import split_disjuncts

    by_box: dict[int, list[_Pair]] = {}
    for p in pairs:
        if not p.closed_by:
            by_box.setdefault(p.box, []).append(p)
    groups = list(by_box.values())
    n_open = sum(1 for p in pairs if not p.closed_by)
    for g in groups:
        remaining = deadline - time.perf_counter()
        if remaining <= 0.05:
            return
        share = remaining * len(g) / n_open
        n_open -= len(g)
        label = f"split box {g[0].box} ({len(g)} disjuncts)"
        report(label, time_limit=share)
        t0 = time.perf_counter()

        def on_points(X, g=g):
            _confirm_many(network, g, X, "bab-split")

        def show(info, label=label):
            report(label, **info)

        out = split_disjuncts(network, g[0].lb, g[0].ub, [p.dj for p in g],
                              deadline=time.perf_counter() + share, on_points=on_points, progress=show)
        for p, u in zip(g, out.upper, strict=True):
            p.upper = min(p.upper, float(u))
            if out.status == "unsat" and u < 0:
                p.closed_by = "bab-split"
        runs.append({"box": g[0].box, "disjuncts": len(g), "method": "bab-split", "nodes": out.nodes,
                     "seconds": time.perf_counter() - t0, "outcome": out.status})


def _confirm_many(network: Network, group: list[_Pair], X: np.ndarray, method: str) -> None:
    """``_confirm`` for several pairs on the same box with one forward pass."""
    lb, ub = group[0].lb, group[0].ub
    X = _float32_inside(np.clip(np.atleast_2d(X), lb, ub), lb, ub)
    Y = network.forward(X)
    for p in group:
        margins = p.dj.margins(Y)
        i = int(np.argmax(margins))
        if margins[i] > p.best_margin:
            p.best_margin, p.best_x = float(margins[i]), X[i].copy()
        ok = p.dj.holds(Y)
        if ok.any():
            _confirm(network, p, X[ok], method)


def _bab_progress(report, label: str, p: _Pair):
    """Forward branch and bound's node counts (its incumbent and bound are this pair's)."""
    def show(info: dict) -> None:
        extra = {k: info[k] for k in ("nodes", "open", "nodes_per_s") if k in info}
        if info.get("incumbent") is not None:
            extra["incumbent"] = max(p.best_margin, info["incumbent"])
        report(label, **extra)
    return show


def _run_bab(bab, network, p: _Pair, time_limit: float, seed: int, progress=None) -> str:
    """Branch and bound on ``max min_j (-C_j y + e_j)``; stops at the threshold 0 either way."""
    # no gap tolerance: only the threshold 0 decides (a gap straddling 0 proves nothing)
    kwargs = {"time_limit": time_limit, "stop_above": 0.0, "stop_below": 0.0,
              "abs_gap": 0.0, "rel_gap": 0.0, "progress": progress}
    params = inspect.signature(bab).parameters
    if "seed" in params:
        kwargs["seed"] = seed
    if "incumbent" in params and p.best_x is not None:
        kwargs["incumbent"] = p.best_x
    out = bab(network, p.lb, p.ub, -p.dj.C, p.dj.e, **kwargs)
    x = getattr(out, "x", None)
    if x is not None:
        _confirm(network, p, np.asarray(x, dtype=np.float64), "bab")
    bound = getattr(out, "bound", None)
    if bound is not None and math.isfinite(bound):
        p.upper = min(p.upper, float(bound))
        if bound < 0:
            p.closed_by = "bab"
            return "unsat"
    return str(getattr(out, "status", "unknown"))


def _run_mip(network, p: _Pair, bounds, time_limit: float) -> str:
    """The big-M MIP with an epigraph column ``t <= e_j - C_j y``; maximise ``t``.

    Only the sign of the optimum matters, so ``t`` is bounded below by ``-tol``: the solver
    then prunes every node whose bound is below ``-tol`` (a cut-off) instead of searching
    for the true optimum, and infeasibility of this model (or a dual bound below ``-tol``)
    proves every margin below ``-tol``. Stops as soon as that is certain or an incumbent's
    forward pass is a counterexample. A dual bound seen during the run only stops it; the
    proof is the final, status-checked answer."""
    from .milp.backends import ERROR, get_backend
    from .milp.formulation import build_network_model
    from .problem import Domain

    model = build_network_model(network, Domain(p.lb, p.ub), bounds)
    C, e = p.dj.C, p.dj.e
    scale = float(np.max(np.abs(bounds.out_upper)) + np.max(np.abs(bounds.out_lower))
                  + np.max(np.abs(e), initial=0.0))
    tol = MIP_UNSAT_TOL * (1.0 + scale)
    t_col = model.add_columns([-tol], [max(p.upper, -tol)], cost=[1.0])[0]
    k = C.shape[0]
    rows = sp.lil_matrix((k, model.n_cols))
    rows[:, t_col] = 1.0
    rows[:, model.y_cols] = C
    model.add_rows(rows.tocsr(), -np.inf, e)
    start = None
    if p.best_x is not None and p.best_margin >= -tol:   # else not a point of this model
        start = model.point_to_columns(p.best_x)
        start[t_col] = min(p.best_margin, p.upper)
    found: list[np.ndarray] = []
    dual: list[float] = []

    def on_improvement(obj, values):
        if obj >= -tol and len(values) == model.n_cols:
            x = np.clip(model.columns_to_point(values), p.lb, p.ub)
            if p.dj.holds(network.forward(x[None, :]))[0]:
                found.append(x)

    def on_progress(primal, dual_bound, nodes):
        if dual_bound < -tol:
            dual.append(dual_bound)

    if model.scaling_issue() is not None:   # the solver's answer would prove nothing
        return "unknown"
    out = get_backend("highs").solve(model, time_limit=time_limit, mip_start=start, on_improvement=on_improvement,
                                     on_progress=on_progress, should_stop=lambda: bool(found or dual))
    if found:
        _confirm(network, p, np.array(found), "mip")
    if out.values is not None:
        _confirm(network, p, model.columns_to_point(out.values)[None, :], "mip")
    if out.status == ERROR:   # a failed run proves nothing, whatever its callbacks saw
        return "unknown"
    # every point with margin >= -tol is feasible here (t is only cut off below -tol), so
    # infeasibility or a dual bound below -tol proves all margins < -tol; a bound seen
    # during the run counts only when the run ended with a bound of its own (not abandoned)
    if out.status == "infeasible" or (out.bound is not None and (dual or out.bound < -tol)):
        p.upper = min(p.upper, -tol)
        p.closed_by = "mip"
        return "unsat"
    if out.bound is not None and math.isfinite(out.bound):
        p.upper = min(p.upper, max(out.bound, -tol) + tol)
    return out.status
