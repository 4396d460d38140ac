"""Decide VNN-LIB properties by optimisation: is there an input whose outputs are unsafe?

For every (input box, output disjunct) pair we maximise the margin
``min_j (e_j - C_j y(x))`` over the box (see ``verification.property``). A forward-checked point with
margin >= 0 is a counterexample (``sat``); a certified upper bound < 0 on every pair proves
the property (``unsat``); anything else is ``unknown``. Cheap steps run first because most
instances are decided by them: CROWN bounds per atom (with alpha-CROWN on the MIP path),
then falsification (random sampling, then batched sign-gradient ascent on the margin, see
``falsify``). The remaining pairs go to the exact method (``exact``), chosen by the splitting
rule shared with ``auto`` (``methods.portfolio.exact_method``): input-space branch and bound
up to ``BAB_MAX_DIM`` inputs, ReLU-split branch and bound (``bab-relu``) above that on
plain-ReLU networks, otherwise the big-M MIP with an epigraph variable ``t <= margin_j``
solved by a MILP back-end (HiGHS by default).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from ..bounds import LayerBounds, compute_bounds, linear_output_bounds
from ..errors import CertificateError, ProblemError
from ..methods.portfolio import VERIFY_BAB_MAX_DIM as BAB_MAX_DIM
from ..methods.portfolio import exact_method, relu_split_fits
from ..milp.backends import BACKENDS, get_backend
from ..network import Network
from ..result import check_time_limit
from ..search.cluster import scope as cluster_scope
from .exact import run_exact
from .falsify import Found, Pair, confirm
from .falsify import falsify as falsify_pairs
from .property import Property

STATUSES = ("sat", "unsat", "unknown")

#: ``exact`` choices of ``verify``.
EXACT_METHODS = ("auto", "bab", "bab-relu", "mip", "none")

#: Falsification gets at most this fraction of the timeout (and FALSIFY_MAX seconds): the
#: exact methods search for counterexamples too, with a proof of the rest.
FALSIFY_FRACTION = 0.2
FALSIFY_MAX = 10.0

#: Above ``BAB_MAX_DIM`` inputs (ReLU splitting or the MIP), alpha-CROWN gets at most this fraction
#: of the timeout: it tightens the hidden layers' bounds of each box (shared by the MIPs) and
#: then each open pair's output bound.
ALPHA_FRACTION = 0.1


@dataclass
class Verdict:
    """The answer of ``verify``, with a counterexample when ``sat``.

    Parameters
    ----------
    status : str
        ``sat``, ``unsat`` or ``unknown``.
    x, y : numpy.ndarray, optional
        The counterexample and its outputs (``sat`` only).
    seconds : float
        Wall time of the decision.
    method : str
        What decided it (e.g. ``falsification``, ``crown+bab``); empty when unknown.
    stats : dict
        Pair counts, time per phase, the method that closed each pair, the exact runs.
    """

    status: str
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    seconds: float = 0.0
    method: str = ""
    stats: dict = field(default_factory=dict)


def verify(
    network: Network,
    prop: Property,
    *,
    timeout: float,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
    exact: str = "auto",
    falsify: bool = True,
    solver: str = "highs",
    workers=None,
    scheduler=None,
) -> Verdict:
    """Decide whether some input of ``prop``'s boxes makes ``network``'s outputs unsafe.

    Parameters
    ----------
    network : Network
    prop : Property
        From ``load_vnnlib`` / ``parse_vnnlib``; its input and output counts must fit the
        network.
    timeout : float
        Seconds for the whole decision.
    seed : int, default 0
        Seed of the falsification and branch and bound.
    progress : callable, optional
        Called with dicts in ``ProgressLine``'s keys: ``phase``, ``incumbent`` (best margin
        found), ``bound`` (certified upper bound of every pair's margin), ``pairs_open``.
    exact : {'auto', 'bab', 'bab-relu', 'mip', 'none'}, default 'auto'
        The complete method for pairs the fast paths leave open: ``auto`` follows the
        splitting rule (``methods.portfolio.exact_method``: input splitting up to
        ``BAB_MAX_DIM`` inputs, then ReLU splitting on plain-ReLU networks, else the MIP);
        ``none`` stops after the fast paths.
    falsify : bool, default True
        Run the sampling and gradient attack (False exercises the exact methods).
    solver : str, default 'highs'
        The MILP back-end of the MIP (one of ``milp.backends.BACKENDS``).
    workers : int, search.cluster.Cluster or None
        Farm the branch and bound of the exact phase out to a Dask ``LocalCluster`` of this many
        one-thread workers (started only for a search still open after its warm-up), or to a
        ``Cluster``.
    scheduler : str, dask.distributed.Client or None
        The same on an existing cluster: a scheduler address (``tcp://host:8786``) or a Client.

    Returns
    -------
    Verdict
        ``sat`` with a forward-checked counterexample, ``unsat`` when every pair has a
        certified negative bound, else ``unknown``.

    Raises
    ------
    ProblemError
        A property that does not fit the network, a bad ``timeout``, ``exact`` or ``solver``,
        or ``exact='bab-relu'`` on a network whose hidden layers are not all plain ReLU.
    SolverError
        ``solver`` is not installed.
    """
    with cluster_scope(workers, scheduler):
        return _decide(network, prop, timeout=timeout, seed=seed, progress=progress, exact=exact, falsify=falsify,
                       solver=solver)


def _decide(network: Network, prop: Property, *, timeout: float, seed: int, progress, exact: str, falsify: bool,
            solver: str) -> Verdict:
    """The body of ``verify`` (inside its cluster scope)."""
    start = time.perf_counter()
    timeout = check_time_limit(timeout)
    deadline = start + timeout
    if exact not in EXACT_METHODS:
        raise ProblemError(f"unknown exact method {exact!r}; choose from {', '.join(EXACT_METHODS)}")
    if solver not in BACKENDS:
        raise ProblemError(f"unknown MIP solver {solver!r}; choose from {', '.join(BACKENDS)}")
    prop = prop.check(network)
    alpha: set[int] = set()
    if exact == "bab-relu" and not relu_split_fits(network):
        raise ProblemError("exact='bab-relu' needs plain ReLU hidden layers; use exact='bab' or 'mip'")
    kind = (exact_method(network.input_dim, True, relu_split_fits(network), verification=True)
            if exact == "auto" else exact)
    backend = get_backend(solver) if kind == "mip" else None
    rng = np.random.default_rng(seed)
    pairs = [Pair(b, k, box.lb, box.ub, dj)
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
        if kind in ("bab-relu", "mip") and network.input_dim > BAB_MAX_DIM:
            phase("alpha-crown")
            alpha = _alpha_crown(network, pairs, crown, min(deadline, time.perf_counter() + ALPHA_FRACTION * timeout))
            if all(p.closed_by for p in pairs):
                phase(None)
                return finish("unsat", "+".join(sorted({p.closed_by for p in pairs})))
        if falsify:
            phase("falsification")
            budget = min(FALSIFY_FRACTION * timeout, FALSIFY_MAX)
            falsify_pairs(network, [p for p in pairs if not p.closed_by], rng,
                     min(deadline, time.perf_counter() + budget))
        phase(None)
        if exact != "none":
            phase("exact")
            run_exact(network, pairs, crown, backend, deadline, seed, report, stats, relu=kind == "bab-relu",
                      alpha=alpha)
            phase(None)
    except Found as found:
        phase(None)
        return finish("sat", found.method, found.x, found.y)
    if all(p.closed_by for p in pairs):
        methods = sorted({p.closed_by for p in pairs})
        return finish("unsat", "+".join(methods))
    return finish("unknown", "")


def _count(items: Iterable[str]) -> dict:
    out: dict = {}
    for it in items:
        out[it] = out.get(it, 0) + 1
    return out


def _crown(network: Network, pairs: list[Pair], prop: Property) -> dict[int, LayerBounds]:
    """CROWN bounds per box; closes pairs with an atom whose margin is certainly < 0.
    Returns the per-box LayerBounds for the exact phase."""
    lbs = np.array([b.lb for b in prop.boxes])
    ubs = np.array([b.ub for b in prop.boxes])
    bounds = compute_bounds(network, lbs, ubs, "crown")
    out = {}
    for b in range(len(prop.boxes)):
        out[b] = bounds.select([b])
    for p in pairs:
        C = p.dj.C
        if C.shape[0] == 0:   # no output atom: any point of the box is unsafe
            confirm(network, p, ((p.lb + p.ub) / 2)[None, :], "falsification")
        upper, x_star, _, _ = linear_output_bounds(network, p.lb, p.ub, -C, out[p.box])
        ub_margin = p.dj.e + upper[0]           # upper bound of e_j - C_j y
        p.upper = float(np.min(ub_margin))
        if p.upper < 0:
            p.closed_by = "crown"
        else:
            confirm(network, p, x_star[0], "crown-point")
    return out


def _alpha_crown(network: Network, pairs: list[Pair], crown: dict[int, LayerBounds], deadline: float) -> set[int]:
    """Tighter hidden-layer bounds per box with open pairs (they replace ``crown[box]`` for the
    exact phase), then optimised output bounds per open pair; closes pairs certainly below 0.
    Returns the boxes whose ``crown`` entry now holds alpha-CROWN bounds."""
    from ..bounds.alpha import optimise_rows

    done: set[int] = set()
    for b in sorted({p.box for p in pairs if not p.closed_by}):
        if time.perf_counter() > deadline:
            return done
        g = [p for p in pairs if p.box == b and not p.closed_by]
        bounds = compute_bounds(network, g[0].lb, g[0].ub, "alpha-crown", initial=crown[b],
                                time_limit=max(deadline - time.perf_counter(), 1e-3))
        crown[b] = bounds
        done.add(b)
        lowers = [L[0] for L in bounds.lower]
        uppers = [U[0] for U in bounds.upper]
        for p in g:
            if time.perf_counter() > deadline:
                return done
            if p.dj.C.shape[0] == 0:
                continue
            up = optimise_rows(network, network.depth, -p.dj.C, lowers, uppers, p.lb, p.ub,
                               iters=60, deadline=deadline, stop_below=-p.dj.e)
            p.upper = min(p.upper, float(np.min(p.dj.e + up)))
            if p.upper < 0:
                p.closed_by = "alpha-crown"
    return done


def _check_verdict(status: str, pairs: list[Pair], network: Network, x) -> None:
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
