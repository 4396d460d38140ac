"""Fit ReLU MLPs to MATLAB's ``peaks`` function and save them as reluopt ``.npz`` models.

peaks has a known global minimum (-6.5511 at (0.228, -1.626)) on [-3, 3]^2, which makes it
a good sanity check: the MIP minimum of a well-fitted surrogate must land near it. Each
model's fit error (held-out RMSE, max error on a 601 x 601 grid) and the surrogate's own grid
minimum are stored in the network's ``meta`` so tests and users can judge the answer.

    python examples/peaks/train_peaks.py            # all models (a few minutes)
    python examples/peaks/train_peaks.py 2-64-64-1  # one architecture
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from reluopt.io import from_sklearn, save_npz

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"
BOX = (-3.0, 3.0)
TRUE_MIN = -6.551133332835841
TRUE_ARGMIN = (0.228279999979237, -1.625531071954464)
ARCHITECTURES = {  # name -> (hidden sizes, L-BFGS iterations)
    "2-64-64-1": ((64, 64), 3000),
    "2-50-50-1": ((50, 50), 3000),
    "2-100-100-1": ((100, 100), 600),
    "2-100-100-100-1": ((100, 100, 100), 500),
    "2-200-200-1": ((200, 200), 400),
}


def peaks(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (3 * (1 - x) ** 2 * np.exp(-x**2 - (y + 1) ** 2)
            - 10 * (x / 5 - x**3 - y**5) * np.exp(-x**2 - y**2)
            - np.exp(-(x + 1) ** 2 - y**2) / 3)


def sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(seed).uniform(*BOX, size=(n, 2))
    return X, peaks(X[:, 0], X[:, 1])


def grid(n: int = 601) -> tuple[np.ndarray, np.ndarray]:
    g = np.linspace(*BOX, n)
    X = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    return X, peaks(X[:, 0], X[:, 1])


def train(name: str, X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray,
          Xg: np.ndarray, yg: np.ndarray) -> dict:
    hidden, iters = ARCHITECTURES[name]
    t0 = time.perf_counter()
    mlp = MLPRegressor(hidden_layer_sizes=hidden, activation="relu", solver="lbfgs", alpha=1e-6,
                       max_iter=iters, max_fun=2 * iters, tol=1e-10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, y)
    seconds = time.perf_counter() - t0
    net = from_sklearn(mlp, label=f"peaks_{name}")
    pg = net.forward(Xg)[:, 0]
    k = int(np.argmin(pg))
    stats = {
        "function": "peaks", "box": list(BOX), "n_train": len(X), "seed": 0,
        "test_rmse": float(np.sqrt(np.mean((net.forward(Xt)[:, 0] - yt) ** 2))),
        "grid_max_abs_error": float(np.max(np.abs(pg - yg))),
        "error_at_true_argmin": float(abs(net.forward(np.array(TRUE_ARGMIN))[0] - TRUE_MIN)),
        "grid_min": float(pg[k]), "grid_argmin": [float(v) for v in Xg[k]],
        "true_min": TRUE_MIN, "true_argmin": list(TRUE_ARGMIN), "train_seconds": round(seconds, 1),
    }
    net = net.with_layers(net.layers)
    net.meta.update(stats)
    path = save_npz(net, MODELS / f"peaks_{name}.npz")
    print(f"{path.name:26s} rmse {stats['test_rmse']:.4f}  max err {stats['grid_max_abs_error']:.3f}  "
          f"grid min {stats['grid_min']:.4f} at ({stats['grid_argmin'][0]:.3f}, {stats['grid_argmin'][1]:.3f})"
          f"  [{seconds:.0f} s]", flush=True)
    return stats


def main(names: list[str]) -> None:
    MODELS.mkdir(exist_ok=True)
    X, y = sample(6000, seed=0)
    Xt, yt = sample(2000, seed=1)
    Xg, yg = grid()
    print(f"true minimum {TRUE_MIN:.4f} at ({TRUE_ARGMIN[0]:.3f}, {TRUE_ARGMIN[1]:.3f})")
    for name in names or list(ARCHITECTURES):
        if name not in ARCHITECTURES:
            sys.exit(f"unknown architecture {name!r}; choose from {', '.join(ARCHITECTURES)}")
        train(name, X, y, Xt, yt, Xg, yg)


if __name__ == "__main__":
    main(sys.argv[1:])
