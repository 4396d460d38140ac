"""Surfing (Song, Fan and Lafferty, NeurIPS 2019): optimise over the checkpoints of training.

To minimise ``f_T(x) = 1/2 ||A G_T(x) + a - t||^2`` for a trained generative ReLU network
``G_T``, keep the checkpoints ``G_0 ... G_T`` saved during training. ``f_0`` (random
initialisation) has a benign landscape: minimise it from random starts, then follow the
minimiser through the checkpoints with a fixed number of Adam steps on each ``f_t``,
warm-started at the previous solution, and polish on ``G_T``.

Baselines at the same number of gradient evaluations: Adam directly on ``G_T`` from the same
number of random starts (``direct``), and with more, shorter random restarts (``restarts``).
Everything is batched: rows are (target, start) pairs, one matrix call per step.
``inversion.comparison`` runs the three side by side.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..certificate import certified_method, check_option_names, option_names
from ..errors import ProblemError
from ..network import Network
from ..parallel import one_blas_thread
from ..problem import Domain, LeastSquares, Problem
from ..result import FEASIBLE, Result, check_time_limit
from .adam import Adam


# ----------------------------------------------------------------------------- inputs
def load_checkpoints(source) -> list[Network]:
    """Checkpoints from a list of Networks, or a folder of ``.npz`` files.

    A folder may hold ``index.json`` (``{"checkpoints": ["ckpt_000.npz", ...]}``, in training
    order); otherwise files are ordered by the numbers in their names.

    Parameters
    ----------
    source : str, pathlib.Path or sequence of Network
        A folder of ``.npz`` checkpoints, or the networks themselves, in training order.

    Returns
    -------
    list of Network
        The checkpoints ``G_0 ... G_T``, validated (``validate_checkpoints``).

    Raises
    ------
    ProblemError
        For a missing folder, an unreadable index, or checkpoints that do not match.
    """
    if isinstance(source, str | Path):
        from ..io import load_npz

        folder = Path(source)
        if not folder.is_dir():
            raise ProblemError(f"checkpoint folder {folder} does not exist")
        index = folder / "index.json"
        if index.exists():
            try:
                names = json.loads(index.read_text())["checkpoints"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ProblemError(f"{index}: cannot read the checkpoint list ({exc})") from None
            files = [folder / n for n in names]
        else:
            files = sorted(folder.glob("*.npz"),
                           key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)])
        nets = [load_npz(f) for f in files]
    else:
        nets = list(source)
    validate_checkpoints(nets)
    return nets


def validate_checkpoints(nets: Sequence[Network]) -> None:
    """Check that the checkpoints are Networks of one shape: Surfing steps through them in turn.

    Parameters
    ----------
    nets : sequence of Network
        The checkpoints.

    Raises
    ------
    ProblemError
        For an empty list, a non-Network, or two checkpoints of different shapes.
    """
    if len(nets) == 0:
        raise ProblemError("the checkpoint list is empty: Surfing needs at least one network")
    for i, net in enumerate(nets):
        if not isinstance(net, Network):
            raise ProblemError(f"checkpoint {i} is a {type(net).__name__}, not a Network")
    shape0 = [nets[0].input_dim, *nets[0].hidden_sizes, nets[0].output_dim]
    for i, net in enumerate(nets[1:], start=1):
        shape = [net.input_dim, *net.hidden_sizes, net.output_dim]
        if shape != shape0:
            raise ProblemError(
                f"checkpoints have different shapes: checkpoint 0 is {'-'.join(map(str, shape0))}, "
                f"checkpoint {i} is {'-'.join(map(str, shape))}"
            )


def _targets(targets, network: Network, A) -> np.ndarray:
    T = np.atleast_2d(np.asarray(targets, dtype=np.float64))
    rows = network.output_dim if A is None else np.asarray(A).shape[0]
    if A is not None:
        A = np.atleast_2d(np.asarray(A))
        if A.shape[1] != network.output_dim:
            raise ProblemError(
                f"measurement matrix A has shape {A.shape}; it needs {network.output_dim} columns "
                "(one per network output)"
            )
    if T.shape[1] != rows:
        raise ProblemError(
            f"target has {T.shape[1]} entries; expected {rows} "
            f"({'rows of A' if A is not None else 'network outputs'})"
        )
    if not np.all(np.isfinite(T)):
        raise ProblemError("a target contains a non-finite value")
    return T


# ----------------------------------------------------------------------------- engine
def _values(net: Network, x, T, A, a) -> np.ndarray:
    Y = net.forward(x)
    R = (Y if A is None else Y @ A.T) + a - T
    return 0.5 * np.sum(R**2, axis=1)


def _grad(net: Network, x, T, A, a) -> np.ndarray:
    Y = net.forward(x)
    R = (Y if A is None else Y @ A.T) + a - T
    return net.gradient(x, R if A is None else R @ A)


def _descend(net, x, T, A, a, lb, ub, steps, opt: Adam, deadline, anneal: float = 1.0,
             anneal_steps: int | None = None, reset: bool = True) -> tuple[np.ndarray, int]:
    """``steps`` projected Adam steps; over the last ``anneal_steps`` (default: all) the step
    size decays geometrically to ``anneal * lr``.

    Why anneal: Adam's steps do not shrink with the gradient, so at a constant step size the
    iterate jitters at distance ~lr from the minimiser. Every method anneals its final phase
    the same way (Surfing's polish, the last stretch of each direct run), so budgets stay
    comparable.
    """
    if reset:
        opt.reset(x.shape)
    base = opt.lr
    n_anneal = steps if anneal_steps is None else min(max(int(anneal_steps), 0), steps)
    first = steps - n_anneal
    done = 0
    try:
        for k in range(steps):
            if time.perf_counter() >= deadline:
                break
            opt.lr = base if k < first else base * anneal ** ((k - first) / max(n_anneal - 1, 1))
            x = np.clip(opt.step(x, _grad(net, x, T, A, a)), lb, ub)
            done += 1
    finally:
        opt.lr = base
    return x, done


def _starts(rng, n_targets, starts, lb, ub):
    """Random starts in the latent box: Gaussian clipped when the box is wide."""
    d = lb.shape[0]
    x = rng.normal(size=(n_targets * starts, d))
    finite = np.isfinite(lb) & np.isfinite(ub)
    x[:, finite] = rng.uniform(lb[finite], ub[finite], size=(n_targets * starts, int(finite.sum())))
    return x


def _pick(values: np.ndarray, n_targets: int, starts: int) -> np.ndarray:
    """Index of the best start of each target."""
    return np.argmin(values.reshape(n_targets, starts), axis=1) + np.arange(n_targets) * starts


def _results(method, net_T, xs, T, A, a, path, evals, seconds, extra=None) -> list[Result]:
    out = []
    values = _values(net_T, xs, T, A, a)
    for k in range(xs.shape[0]):
        stats = {"gradient_evaluations": int(evals), "path": [float(v) for v in path[k]]}
        if extra:
            stats.update(extra)
        out.append(Result(status=FEASIBLE, method=method, sense="min", x=xs[k].copy(),
                          value=float(values[k]), bound=0.0,
                          history=[(seconds, float(values[k]), 0.0, method)], stats=stats,
                          seconds=seconds))
    return out


@one_blas_thread
def surf(checkpoints, targets, box, *, A=None, a=None, starts: int = 4, steps_per_checkpoint: int = 100,
         polish_steps: int = 200, lr: float = 0.05, anneal: float = 1.0, reset: bool = True, seed: int = 0,
         time_limit: float | None = None) -> list[Result]:
    """Surfing over ``checkpoints`` (Networks or a folder), one Result per target.

    Each Result's ``stats['path']`` holds the objective of the chosen start after each
    checkpoint (the last entry is ``G_T``).

    Parameters
    ----------
    checkpoints : sequence of Network or path
        ``G_0 ... G_T`` (see ``load_checkpoints``).
    targets : array_like
        (k, r): k targets ``t``.
    box : tuple or None
        ``(lb, ub)`` of the latent (scalars or vectors); None for no bounds.
    A : array_like, optional
        (r, m) measurement matrix; the identity if None.
    a : array_like, optional
        (r,) offset; zero if None.
    starts : int, default 4
        Random starts per target.
    steps_per_checkpoint : int, default 100
        Adam steps on each checkpoint.
    polish_steps : int, default 200
        Final steps on ``G_T``.
    lr : float, default 0.05
        Adam's step size.
    anneal : float, default 1.0
        The polish's step size decays geometrically to ``anneal * lr``.
    reset : bool, default True
        Reset Adam's moments at each checkpoint.
    seed : int, default 0
        Seed of the starts.
    time_limit : float, optional
        Seconds; steps stop when it is reached.

    Returns
    -------
    list of Result
        One per target: status ``feasible``, the best start's latent and objective on ``G_T``.
    """
    nets = load_checkpoints(checkpoints)
    limit = check_time_limit(time_limit)
    start = time.perf_counter()
    deadline = start + limit
    net_T = nets[-1]
    T, A, a, lb, ub = _prepare(net_T, targets, A, a, box)
    k = T.shape[0]
    rng = np.random.default_rng(seed)
    x = _starts(rng, k, starts, lb, ub)
    TT = np.repeat(T, starts, axis=0)
    opt = Adam(lr)
    path = []
    evals = 0
    for net in nets:
        x, done = _descend(net, x, TT, A, a, lb, ub, steps_per_checkpoint, opt, deadline,
                           reset=reset or net is nets[0])
        evals += done
        path.append(_values(net, x, TT, A, a))
    x, done = _descend(net_T, x, TT, A, a, lb, ub, polish_steps, opt, deadline, anneal=anneal, reset=reset)
    evals += done
    final = _values(net_T, x, TT, A, a)
    path.append(final)
    best = _pick(final, k, starts)
    paths = np.stack(path, axis=1)[best]
    return _results("surfing", net_T, x[best], T, A, a, paths, evals * starts,
                    time.perf_counter() - start, {"checkpoints": len(nets), "starts": starts})


@one_blas_thread
def direct(network: Network, targets, box, *, A=None, a=None, starts: int = 4, steps: int = 500,
           restarts: int = 1, lr: float = 0.05, anneal: float = 1.0, anneal_steps: int | None = None,
           seed: int = 0,
           time_limit: float | None = None) -> list[Result]:
    """Adam directly on ``G_T``: ``starts`` starts, each split into ``restarts`` fresh random
    restarts of ``steps // restarts`` steps; the best point per target is kept. The gradient
    budget is ``starts * steps`` per target, as for Surfing with the same numbers. The last
    ``anneal_steps`` steps (split over the restarts; default a fifth) anneal the step size to
    ``anneal * lr``, as Surfing's polish does.

    Parameters
    ----------
    network : Network
        ``G_T``.
    targets, box, A, a, starts, lr, anneal, seed, time_limit
        As for ``surf``.
    steps : int, default 500
        Adam steps per start, over all restarts.
    restarts : int, default 1
        Fresh random restarts per start.
    anneal_steps : int, optional
        Steps at the end of the budget over which the step size decays.

    Returns
    -------
    list of Result
        One per target, method ``direct`` (or ``restarts<n>``).

    Raises
    ------
    ProblemError
        For ``restarts < 1`` or targets, ``A``, ``a`` of the wrong shape.
    """
    if restarts < 1:
        raise ProblemError("restarts must be at least 1")
    limit = check_time_limit(time_limit)
    start = time.perf_counter()
    deadline = start + limit
    T, A, a, lb, ub = _prepare(network, targets, A, a, box)
    k = T.shape[0]
    rng = np.random.default_rng(seed)
    TT = np.repeat(T, starts, axis=0)
    opt = Adam(lr)
    tail = steps // 5 if anneal_steps is None else anneal_steps
    best_x = None
    best_v = np.full(k * starts, np.inf)
    evals = 0
    for _ in range(restarts):
        x = _starts(rng, k, starts, lb, ub)
        x, done = _descend(network, x, TT, A, a, lb, ub, steps // restarts, opt, deadline, anneal=anneal,
                           anneal_steps=tail // restarts)
        evals += done
        v = _values(network, x, TT, A, a)
        better = v < best_v
        best_x = x if best_x is None else np.where(better[:, None], x, best_x)
        best_v = np.minimum(best_v, v)
    idx = _pick(best_v, k, starts)
    assert best_x is not None       # restarts >= 1
    method = "direct" if restarts == 1 else f"restarts{restarts}"
    return _results(method, network, best_x[idx], T, A, a, best_v[idx][:, None], evals * starts,
                    time.perf_counter() - start, {"starts": starts, "restarts": restarts})


def gradient_budget(n_checkpoints: int, steps_per_checkpoint: int, polish_steps: int) -> int:
    """Gradient evaluations per start of Surfing; give ``direct`` this many ``steps``.

    Parameters
    ----------
    n_checkpoints, steps_per_checkpoint, polish_steps : int
        Surfing's schedule.

    Returns
    -------
    int
        ``n_checkpoints * steps_per_checkpoint + polish_steps``.
    """
    return n_checkpoints * steps_per_checkpoint + polish_steps


def _prepare(network, targets, A, a, box):
    T = _targets(targets, network, A)
    if A is not None:
        A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    a = np.zeros(T.shape[1]) if a is None else np.asarray(a, dtype=np.float64).reshape(-1)
    if a.shape[0] != T.shape[1]:
        raise ProblemError(f"offset a has {a.shape[0]} entries, the target has {T.shape[1]}")
    if box is None:
        lb, ub = np.full(network.input_dim, -np.inf), np.full(network.input_dim, np.inf)
    else:
        lo, hi = box
        d = Domain(np.broadcast_to(np.asarray(lo, float), (network.input_dim,)),
                   np.broadcast_to(np.asarray(hi, float), (network.input_dim,)))
        lb, ub = d.lb, d.ub
    return T, A, a, lb, ub


# ----------------------------------------------------------------------------- registry entries
def least_squares_objective(problem: Problem, method: str, hint: str = "") -> LeastSquares:
    """The problem's ``LeastSquares`` objective, or a clear error for a method that needs one.

    Parameters
    ----------
    problem : Problem
        The problem given to an inversion method.
    method : str
        The method's name, for the message.
    hint : str, optional
        What to do instead, appended to the message.

    Returns
    -------
    LeastSquares
        ``problem.objective``.

    Raises
    ------
    ProblemError
        When the objective is linear.
    """
    obj = problem.objective
    if not isinstance(obj, LeastSquares):   # the one check of the objective's type in inversion/
        raise ProblemError(f"{method} minimises a least-squares objective; "
                           f"{hint or 'build the Problem with LeastSquares'}")
    return obj


#: ``surf`` options that ``solve_surfing`` sets from the problem itself.
_SET_BY_PROBLEM = frozenset({"A", "a", "seed", "time_limit"})


@certified_method
def solve_surfing(problem: Problem, *, checkpoints=None, time_limit: float | None = None, seed: int = 0,
                  progress=None, **options) -> Result:
    """Surfing on a least-squares Problem whose network is the last checkpoint.

    The registry's ``method="surfing"``: ``surf`` on the problem's target, with its box as
    the latent box; the answer is re-evaluated on the problem's own network.

    Parameters
    ----------
    problem : Problem
        A problem with a ``LeastSquares`` objective; its network is ``G_T``.
    checkpoints : list of Network or path
        The training checkpoints ``G_0 ... G_T`` (required).
    time_limit : float or None
        Seconds.
    seed : int, default 0
        Seed of the random starts.
    progress : callable, optional
        Accepted for the common method interface; Surfing reports no progress.
    **options
        Options of ``surf``: ``starts``, ``steps_per_checkpoint``, ``polish_steps``, ``lr``,
        ``anneal``, ``reset``.

    Returns
    -------
    Result
        Status ``feasible``: the best latent found, and its objective on the problem's network.

    Raises
    ------
    ProblemError
        For a linear objective, missing checkpoints or an option ``surf`` does not take.
    """
    valid = (option_names(surf) or frozenset()) - {"checkpoints", "targets", "box"} - _SET_BY_PROBLEM
    check_option_names("surfing", options, valid | {"checkpoints", "time_limit", "seed", "progress"})
    obj = least_squares_objective(problem, "surfing")
    if checkpoints is None:
        raise ProblemError("surfing needs checkpoints=[G_0, ..., G_T] (Networks or a folder)")
    res = surf(checkpoints, obj.t[None], (problem.domain.lb, problem.domain.ub), A=obj.A, a=obj.a,
               seed=seed, time_limit=time_limit, **options)[0]
    value = float(problem.objective_values(res.x)[0])   # re-check on the problem's own network
    if not math.isclose(value, res.value, rel_tol=1e-9, abs_tol=1e-12):
        res.stats["note"] = "the problem's network differs from the last checkpoint"
    res.value = value
    return res
