"""Fit a ReLU MLP to OMLT's auto-thermal reformer data and save it as ``reformer.npz``.

The classic surrogate-optimisation case from OMLT's notebooks: 2,800 simulated operating
points, inputs Bypass Fraction and NG Steam Ratio, outputs the H2 and N2 mole fractions
(``y[0]`` = H2, ``y[1]`` = N2). Inputs and outputs are standardised for training and the
scaling is folded into the first and last layers, so the saved network takes raw inputs and
returns raw mole fractions: the box and the constraint ``N2 <= 0.34`` are stated in the
engineer's units. The architecture (4 hidden layers of 10 ReLUs) is the one of OMLT's
notebook.

    python examples/reformer/train_reformer.py   # about 10 s; overwrites reformer.npz
"""

from __future__ import annotations

import csv
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from reluopt.io import from_sklearn, save_npz
from reluopt.network import Layer

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1].parent / "shared" / "data" / "omlt" / "reformer.csv"
MODEL = HERE / "reformer.npz"
INPUTS = ("Bypass Fraction", "NG Steam Ratio")
OUTPUTS = ("H2", "N2")
N2_MAX = 0.34
HIDDEN = (10, 10, 10, 10)
SEED = 0


def load_data(path: Path = DATA) -> tuple[np.ndarray, np.ndarray]:
    """``(X, Y)`` with the columns named in ``INPUTS`` and ``OUTPUTS`` (raw units)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = [h.strip() for h in rows[0]]
    missing = [c for c in (*INPUTS, *OUTPUTS) if c not in header]
    if missing:
        raise SystemExit(f"{path}: missing columns {missing}; found {header}")
    data = np.array([[float(v) for v in r] for r in rows[1:] if r], dtype=np.float64)
    cols = lambda names: data[:, [header.index(c) for c in names]]  # noqa: E731
    return cols(INPUTS), cols(OUTPUTS)


def best_feasible_row(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The data row with the largest H2 among those with N2 <= N2_MAX."""
    ok = Y[:, 1] <= N2_MAX
    i = int(np.argmax(np.where(ok, Y[:, 0], -np.inf)))
    return X[i], Y[i]


def main() -> None:
    X, Y = load_data()
    rng = np.random.default_rng(SEED)
    perm = rng.permutation(len(X))
    test, train = perm[: len(X) // 5], perm[len(X) // 5:]
    ym, ys = Y[train].mean(axis=0), Y[train].std(axis=0)
    pipe = Pipeline([
        ("scale", StandardScaler()),
        ("mlp", MLPRegressor(hidden_layer_sizes=HIDDEN, activation="relu", solver="lbfgs", alpha=1e-5,
                             max_iter=5000, max_fun=10000, tol=1e-10, random_state=SEED)),
    ])
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X[train], (Y[train] - ym) / ys)
    seconds = time.perf_counter() - t0
    net = from_sklearn(pipe, label="reformer")  # input scaling folded by the importer
    last = net.layers[-1]  # fold the output scaling: y = ys * out + ym
    net = net.with_layers((*net.layers[:-1], Layer(last.W * ys[:, None], last.b * ys + ym, "identity")))
    # sanity: the folded network reproduces the pipeline in raw units
    assert np.allclose(net.forward(X[test]), pipe.predict(X[test]) * ys + ym, atol=1e-9)
    err = net.forward(X[test]) - Y[test]
    x_best, y_best = best_feasible_row(X, Y)
    meta = {
        "data": "omlt/reformer.csv", "inputs": list(INPUTS), "outputs": list(OUTPUTS),
        "box_lb": X.min(axis=0).tolist(), "box_ub": X.max(axis=0).tolist(),
        "hidden": list(HIDDEN), "seed": SEED, "n_train": len(train), "n_test": len(test),
        "test_rmse": np.sqrt(np.mean(err**2, axis=0)).tolist(),
        "test_max_abs_error": np.max(np.abs(err), axis=0).tolist(),
        "n2_max": N2_MAX, "data_best_feasible_x": x_best.tolist(), "data_best_feasible_y": y_best.tolist(),
        "train_seconds": round(seconds, 1),
    }
    net = type(net)(net.layers, INPUTS, OUTPUTS, "examples/reformer/reformer.npz", {**net.meta, **meta})
    save_npz(net, MODEL)
    rmse = ", ".join(f"{n} {v:.2e}" for n, v in zip(OUTPUTS, meta["test_rmse"], strict=True))
    print(f"{MODEL.name}: {net.describe()}  held-out RMSE {rmse}  [{seconds:.1f} s]")
    print(f"data's best feasible row: H2 {y_best[0]:.4f} (N2 {y_best[1]:.4f}) at "
          f"({x_best[0]:.3f}, {x_best[1]:.3f}); surrogate there: H2 {net.forward(x_best)[0]:.4f}, "
          f"N2 {net.forward(x_best)[1]:.4f}")


if __name__ == "__main__":
    main()
