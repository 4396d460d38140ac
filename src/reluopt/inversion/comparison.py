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
