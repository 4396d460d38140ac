"""Surfing against its baselines at an equal gradient budget, over batches of targets.

``compare_at_equal_budget`` runs Surfing (``inversion.surfing.surf``), Adam directly on the
last checkpoint (``direct``) and Adam with random restarts on the same targets with the same
number of gradient evaluations per start, and scores them; ``relative_errors`` measures how
well a signal is recovered. Used by ``reluopt surf --compare`` and ``benchmarks/bench_surfing.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..network import Network
from ..parallel import one_blas_thread
from ..result import Result
from .surfing import direct, gradient_budget, load_checkpoints, surf


@one_blas_thread
def compare_at_equal_budget(checkpoints, targets, box, *, A=None, x_star=None, y_true=None, starts: int = 4,
                            steps_per_checkpoint: int = 50, polish_steps: int = 200,
                            restarts: int = 4, lr: float = 0.05, anneal: float = 1.0, reset: bool = True,
                            seed: int = 0, success_value: float = 1e-6, success_distance: float = 1e-3,
                            best_tol: float = 1e-4) -> dict:
    """Surfing vs direct Adam on ``G_T`` vs random restarts, at the same gradient budget.

    Returns ``{method: {"results": [...], "success": rate, "median_value": ...}}``. A run
    succeeds when its objective is below ``success_value``, or (with ``x_star`` known) its
    latent is within ``success_distance`` of ``x_star``. ``y_true`` (k, m): the signals behind
    the targets (e.g. a digit before compression); adds ``median_rel_error``, the median of
    ``||G_T(x) - y_true|| / ||y_true||``. ``best_rate``: the share of targets on which the
    method's value is within ``best_tol * (1 + best)`` of the best value any method found
    (the only success measure when the global minimum is unknown, e.g. held-out digits).

    Parameters
    ----------
    checkpoints, targets, box, A, starts, steps_per_checkpoint, polish_steps, lr, anneal, reset, seed
        As for ``surf``; the baselines get the same budget (``gradient_budget``).
    x_star : array_like, optional
        (k, d) known minimisers of the targets.
    y_true : array_like, optional
        (k, m) signals behind the targets.
    restarts : int, default 4
        Restarts of the third method.
    success_value, success_distance, best_tol : float
        The success criteria above.

    Returns
    -------
    dict
        ``{method: {"results", "success", "median_value", "best_rate", "gradient_evaluations"}}``
        (and ``"median_rel_error"`` with ``y_true``).
    """
    nets = load_checkpoints(checkpoints)
    steps = gradient_budget(len(nets), steps_per_checkpoint, polish_steps)
    runs = {
        "surfing": surf(nets, targets, box, A=A, starts=starts, steps_per_checkpoint=steps_per_checkpoint,
                        polish_steps=polish_steps, lr=lr, anneal=anneal, reset=reset, seed=seed),
        "direct": direct(nets[-1], targets, box, A=A, starts=starts, steps=steps, lr=lr, anneal=anneal,
                         anneal_steps=polish_steps, seed=seed),
        f"restarts{restarts}": direct(nets[-1], targets, box, A=A, starts=starts, steps=steps,
                                      restarts=restarts, lr=lr, anneal=anneal, anneal_steps=polish_steps,
                                      seed=seed),
    }
    best = np.min([[r.value for r in results] for results in runs.values()], axis=0)
    out = {}
    for name, results in runs.items():
        values = np.array([r.value for r in results])
        ok = values < success_value
        if x_star is not None:
            xs = np.atleast_2d(x_star)
            dist = np.linalg.norm(np.array([r.x for r in results]) - xs, axis=1)
            ok |= dist < success_distance
        out[name] = {"results": results, "success": float(np.mean(ok)),
                     "median_value": float(np.median(values)),
                     "best_rate": float(np.mean(values <= best + best_tol * (1.0 + best))),
                     "gradient_evaluations": results[0].stats["gradient_evaluations"]}
        if y_true is not None:
            out[name]["median_rel_error"] = float(np.median(relative_errors(nets[-1], results, y_true)))
    return out


def relative_errors(network: Network, results: Sequence[Result], y_true) -> np.ndarray:
    """``||G(x) - y|| / ||y||`` per result: how well the signal is recovered (not just measured).

    Parameters
    ----------
    network : Network
        The generator ``G``.
    results : sequence of Result
        One per target, with a latent ``x``.
    y_true : array_like
        (k, m) the true signals.

    Returns
    -------
    numpy.ndarray
        (k,) relative errors.
    """
    Y = np.atleast_2d(np.asarray(y_true, dtype=np.float64))
    G = network.forward(np.array([r.x for r in results]))
    return np.linalg.norm(G - Y, axis=1) / np.maximum(np.linalg.norm(Y, axis=1), 1e-300)


@one_blas_thread
def compare_paper_setup(checkpoints, x_star, *, A=None, steps_per_checkpoint: int = 30, polish_steps: int = 150,
                        lr: float = 0.05, anneal: float = 0.01, seed: int = 0, success_rel: float = 1e-2,
                        basin_rel: float = 1e-3, basin_steps: int = 1000) -> dict:
    """Surfing against Adam on ``G_T`` and against restarts run to convergence, the paper's way.

    One run per target (no parallel starts), latents unconstrained, starts drawn from the
    standard normal (the VAE prior), targets ``y = A G_T(x*)`` with known ``x*``. Every method
    has the same gradient budget per target (``gradient_budget``): Surfing spends it on the
    checkpoints and a polish on ``G_T``, ``direct`` on one long run on ``G_T`` (its last
    ``polish_steps`` annealed as Surfing's polish is), ``restarts`` on runs from fresh starts,
    each to convergence (``inversion.restarts``). Success, as in the paper: the relative
    error of the latent ``||x - x*|| / ||x*||`` is below ``success_rel``. ``basin``: the
    returned point, polished by the same ``basin_steps`` annealed steps for every method
    (not charged to the budget), ends within ``basin_rel`` of ``x*``: whether the method
    landed in the global minimiser's basin, whatever its final accuracy.

    Parameters
    ----------
    checkpoints : sequence of Network or path
        ``G_0 ... G_T``.
    x_star : array_like
        (k, d) the latents behind the targets.
    A : array_like, optional
        (m, n) measurement matrix (compressed sensing); the identity if None.
    steps_per_checkpoint, polish_steps, lr, anneal, seed
        Surfing's schedule (as for ``surf``); the baselines get its total budget.
    success_rel, basin_rel : float
        Thresholds on the relative latent error.
    basin_steps : int
        Steps of the common annealed polish behind ``basin``.

    Returns
    -------
    dict
        ``{method: {"results", "success", "basin", "median_value", "median_rel_error",
        "budget"}}``, plus ``"median_restarts"`` for ``restarts``.
    """
    from .adam import Adam
    from .restarts import restarts_to_convergence
    from .surfing import _descend, _prepare

    nets = load_checkpoints(checkpoints)
    net_T = nets[-1]
    X = np.atleast_2d(np.asarray(x_star, dtype=np.float64))
    Y = net_T.forward(X)
    targets = Y if A is None else Y @ np.atleast_2d(A).T
    budget = gradient_budget(len(nets), steps_per_checkpoint, polish_steps)
    runs = {
        "surfing": surf(nets, targets, None, A=A, starts=1, steps_per_checkpoint=steps_per_checkpoint,
                        polish_steps=polish_steps, lr=lr, anneal=anneal, seed=seed),
        "direct": direct(net_T, targets, None, A=A, starts=1, steps=budget, lr=lr, anneal=anneal,
                         anneal_steps=polish_steps, seed=seed),
        "restarts": restarts_to_convergence(net_T, targets, None, A=A, budget=budget, lr=lr, seed=seed),
    }
    T, A2, a, lb, ub = _prepare(net_T, targets, A, None, None)
    scale = np.maximum(np.linalg.norm(X, axis=1), 1e-300)
    out: dict = {}
    for name, results in runs.items():
        xs = np.array([r.x for r in results])
        rel = np.linalg.norm(xs - X, axis=1) / scale
        polished, _ = _descend(net_T, xs.copy(), T, A2, a, lb, ub, basin_steps, Adam(0.01), np.inf, anneal=0.01)
        rel_polished = np.linalg.norm(polished - X, axis=1) / scale
        out[name] = {"results": results, "success": float(np.mean(rel < success_rel)),
                     "basin": float(np.mean(rel_polished < basin_rel)),
                     "median_value": float(np.median([r.value for r in results])),
                     "median_rel_error": float(np.median(rel)), "budget": budget}
        if name == "restarts":
            out[name]["median_restarts"] = float(np.median([r.stats["restarts"] for r in results]))
    return out
