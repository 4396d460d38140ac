"""The shipped example models load, fit their data, and the MIP's answers on them are right.

Independent truths: the reformer CSV itself (fit error; the best data row the surrogate
deems feasible, which the certified optimum must match or beat), the peaks formula, and
dense grids of the surrogates (no grid point may beat the MIP's optimum or its bound).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from reluopt import Problem
from reluopt.io import load_model, load_npz
from reluopt.methods.mip import solve_mip

ROOT = Path(__file__).resolve().parents[1]
REFORMER = ROOT / "examples" / "reformer" / "reformer.npz"
PEAKS_DIR = ROOT / "examples" / "peaks" / "models"
TRUE_MIN = -6.551133332835841
TOL = 1e-6


def peaks(x, y):
    return (3 * (1 - x) ** 2 * np.exp(-x**2 - (y + 1) ** 2)
            - 10 * (x / 5 - x**3 - y**5) * np.exp(-x**2 - y**2)
            - np.exp(-(x + 1) ** 2 - y**2) / 3)


def grid(lb, ub, n):
    axes = [np.linspace(lo, hi, n) for lo, hi in zip(lb, ub, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(lb))


def reformer_data(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(shared_data / "omlt" / "reformer.csv", newline="") as f:
        rows = list(csv.reader(f))
    header = [h.strip() for h in rows[0]]
    data = np.array([[float(v) for v in r] for r in rows[1:] if r])
    cols = lambda names: data[:, [header.index(c) for c in names]]  # noqa: E731
    return cols(["Bypass Fraction", "NG Steam Ratio"]), cols(["H2", "N2"])


def peaks_model() -> Path:
    """The demo's peaks surrogate (2-64-64-1), else the smallest shipped one."""
    preferred = PEAKS_DIR / "peaks_2-64-64-1.npz"
    if preferred.exists():
        return preferred
    paths = sorted(PEAKS_DIR.glob("peaks_*.npz"), key=lambda p: p.stat().st_size)
    assert paths, f"no shipped peaks model in {PEAKS_DIR}"
    return paths[0]


# ----------------------------------------------------------------------------- reformer
def test_reformer_model_takes_raw_units_and_fits_the_data(shared_data):
    net = load_npz(REFORMER)
    assert (net.input_dim, net.output_dim) == (2, 2)
    assert net.output_names == ("H2", "N2")
    X, Y = reformer_data(shared_data)
    np.testing.assert_allclose(net.meta["box_lb"], X.min(axis=0))
    np.testing.assert_allclose(net.meta["box_ub"], X.max(axis=0))
    err = net.forward(X) - Y  # raw inputs in, raw mole fractions out: scaling is folded in
    assert np.sqrt(np.mean(err**2)) < 1e-3
    assert np.max(np.abs(err)) < 5e-3


def test_reformer_mip_is_feasible_and_beats_every_data_row_and_grid_point(shared_data):
    net = load_npz(REFORMER)
    problem = Problem.build(net, net.meta["box_lb"], net.meta["box_ub"], maximize=0, constraints=["y[1] <= 0.34"])
    res = solve_mip(problem, time_limit=30)
    assert res.status == "optimal"
    y = net.forward(res.x)
    assert y[1] <= 0.34 + TOL
    assert np.all(res.x >= problem.domain.lb - TOL) and np.all(res.x <= problem.domain.ub + TOL)
    assert res.value == pytest.approx(y[0], abs=1e-12)
    # the data's best feasible row (truth): H2 = 0.3316 at (0.1, 1.126)
    X, Y = reformer_data(shared_data)
    ok = Y[:, 1] <= 0.34
    assert Y[ok, 0].max() == pytest.approx(0.3316, abs=1e-4)
    assert res.value == pytest.approx(Y[ok, 0].max(), abs=2e-3)
    # no input the surrogate deems feasible (data rows, a dense grid) beats the optimum or its bound
    cands = np.vstack([X, grid(problem.domain.lb, problem.domain.ub, 301)])
    feas = problem.is_feasible(cands)
    best = problem.objective_values(cands[feas]).max()
    assert res.value >= best - 1e-9
    assert res.bound >= best


def test_solve_reformer_script_reports_the_optimum(shared_data, capsys):
    sys.path.insert(0, str(ROOT / "examples" / "reformer"))
    try:
        import solve_reformer
    finally:
        sys.path.pop(0)
    assert solve_reformer.main(["--time-limit", "30"]) == 0
    out = capsys.readouterr().out
    assert "status optimal" in out and "data's best row   H2 0.3316" in out


# ----------------------------------------------------------------------------- peaks
@pytest.mark.parametrize("path", sorted(PEAKS_DIR.glob("peaks_*.npz")), ids=lambda p: p.stem)
def test_peaks_models_load_and_fit_peaks(path):
    net = load_npz(path)
    assert (net.input_dim, net.output_dim) == (2, 1)
    X = grid([-3, -3], [3, 3], 121)
    err = net.forward(X)[:, 0] - peaks(X[:, 0], X[:, 1])
    rmse = np.sqrt(np.mean(err**2))
    assert rmse < 0.15  # about 1% of peaks' range on the box; a wrong or mis-scaled model is off by ~1
    assert rmse == pytest.approx(net.meta["test_rmse"], rel=0.5)  # agrees with the fit error it was saved with
    assert net.meta["grid_min"] == pytest.approx(TRUE_MIN, abs=0.3)


def test_peaks_mip_near_the_true_minimum_beats_the_grid():
    """Minimise over a box around the true minimiser (small enough to prove in seconds)."""
    net = load_npz(peaks_model())
    lb, ub = np.array([-0.2, -2.0]), np.array([0.6, -1.2])
    problem = Problem.build(net, lb, ub, minimize=0)
    res = solve_mip(problem, time_limit=40)
    assert res.status == "optimal"
    assert np.all(res.x >= lb - TOL) and np.all(res.x <= ub + TOL)
    assert res.value == pytest.approx(net.forward(res.x)[0], abs=1e-12)
    G = grid(lb, ub, 201)
    g = net.forward(G)[:, 0]
    assert res.value <= g.min() + 1e-9
    assert res.bound <= g.min()
    if "grid_argmin" in net.meta and np.all((lb <= net.meta["grid_argmin"]) & (net.meta["grid_argmin"] <= ub)):
        assert res.value <= net.meta["grid_min"] + 1e-9
    # the surrogate's minimiser is a near-minimiser of peaks itself (fit error ~0.2 at most)
    assert res.value == pytest.approx(TRUE_MIN, abs=0.3)
    assert peaks(*res.x) == pytest.approx(TRUE_MIN, abs=0.3)


def test_solve_peaks_script_proves_the_full_box_minimum_by_bab(capsys):
    """Over the whole [-3, 3]^2 box: bab's certified minimum is at most the stored grid minimum."""
    sys.path.insert(0, str(ROOT / "examples" / "peaks"))
    try:
        import solve_peaks
    finally:
        sys.path.pop(0)
    path = peaks_model()
    assert solve_peaks.main([str(path), "--method", "bab", "--time-limit", "30"]) == 0
    out = capsys.readouterr().out
    assert f"{path.stem}" in out and "bab optimal" in out
    value = float(out.split(" min ")[1].split()[0])
    assert value <= load_npz(path).meta["grid_min"] + 1e-4  # printed with 4 decimals


# ----------------------------------------------------------------------------- examples/embed
EMBED = ROOT / "examples" / "embed"


def embed_example(name: str):
    """Import ``examples/embed/<name>.py`` as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"embed_example_{name}", EMBED / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_networks_example_beats_a_grid_of_both_surrogates(capsys):
    """examples/embed/two_networks.py: min max(net1, net2) + cost against a 301 x 301 grid."""
    ex = embed_example("two_networks")
    assert ex.main() == 0
    assert "status Optimal" in capsys.readouterr().out
    r = ex.solve()
    f = lambda X: np.maximum(*(net.forward(X)[:, 0] for net in r["nets"])) + ex.COST * X[:, 0]  # noqa: E731
    x = np.asarray(r["x"])
    assert np.all(x >= np.array(ex.LB) - TOL) and np.all(x <= np.array(ex.UB) + TOL)
    assert r["value"] == pytest.approx(f(x[None, :])[0], abs=1e-6)       # the forward pass agrees
    assert max(r["errors"]) < 1e-6
    best = f(grid(ex.LB, ex.UB, 301)).min()
    assert r["bound"] <= best + 1e-9                                      # a true bound
    assert r["value"] <= best + 1e-4 * abs(best) + 1e-9                   # optimal within HiGHS's gap


def test_adversarial_mnist_example_checked_by_onnxruntime(shared_data, capsys):
    """examples/embed/adversarial_mnist.py: the image found is within the budget, and onnxruntime
    (not reluopt) gives it the margin the MIP reports; random images in the budget do no better."""
    ort = pytest.importorskip("onnxruntime")
    ex = embed_example("adversarial_mnist")
    assert ex.main(["--time-limit", "600"]) == 0     # a safety net: the MIP ends at optimal
    assert "adversarial example found" in capsys.readouterr().out
    net = ex.reluopt.load(ex.NET)
    x0, right = ex.mnist_image(14)
    session = ort.InferenceSession(str(ex.NET))
    logits = lambda X: session.run(None, {session.get_inputs()[0].name: np.atleast_2d(X).astype(np.float32)})[0]  # noqa: E731
    assert int(np.argmax(logits(x0))) == right == 1
    wrong, eps, pixel = 8, 2.0, 0.03
    r = ex.attack(net, x0, right, wrong, eps, pixel, time_limit=600)
    assert r["status"] == "Optimal" and r["error"] < 1e-6
    x = r["x"]
    assert np.abs(x - x0).sum() <= eps + 1e-6 and np.abs(x - x0).max() <= pixel + 1e-7
    assert np.all(x >= -1e-9) and np.all(x <= 1 + 1e-9)
    y = logits(x)[0]
    assert y[wrong] - y[right] == pytest.approx(r["margin"], rel=1e-4, abs=1e-2)   # float32 session
    assert r["margin"] > 0 and int(np.argmax(y)) == wrong
    assert r["bound"] >= r["margin"] - 1e-6
    rng = np.random.default_rng(0)                       # no sampled image in the budget beats the bound
    d = rng.uniform(-pixel, pixel, (200, x0.size)) * (rng.random((200, x0.size)) < eps / (pixel * x0.size) * 2)
    d *= np.minimum(1.0, eps / np.maximum(np.abs(d).sum(axis=1, keepdims=True), 1e-12))
    Y = logits(np.clip(x0 + d, 0, 1))
    assert np.max(Y[:, wrong] - Y[:, right]) <= r["bound"] + 1e-2


def test_peak2d_gurobi_example_against_a_grid(capsys):
    """examples/embed/peak2d_gurobi.py: the optimum of the trained network against a 401 x 401 grid."""
    pytest.importorskip("torch")
    pytest.importorskip("gurobipy")
    ex = embed_example("peak2d_gurobi")
    assert ex.main([]) == 0
    assert "reluopt   optimal" in capsys.readouterr().out
    ex.torch.set_num_threads(1)
    model = ex.train()
    r = ex.optimise(model, ex.add_network_constr, time_limit=60, mip_gap=0.0)
    assert r["status"] == ex.GRB.OPTIMAL and r["error"] < 1e-6
    net = load_model(model)
    assert r["y"] == pytest.approx(net.forward(r["x"])[0], abs=1e-6)
    G = grid([-2, -2], [2, 2], 401)
    with ex.torch.no_grad():
        g = model(ex.torch.tensor(G, dtype=ex.torch.float32)).numpy()[:, 0]   # torch, not reluopt
    assert r["bound"] <= g.min() + 1e-4                  # float32 torch vs float64 model
    assert r["y"] <= g.min() + 1e-4 * abs(g.min()) + 1e-4
