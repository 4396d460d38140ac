import numpy as np
import pytest

from reluopt import Domain, LeastSquares, Network, Problem, ProblemError, solve
from reluopt.inversion.surfing import direct, gradient_budget, load_checkpoints, surf


def generator(seed: int, sizes=(2, 24, 24, 12)) -> Network:
    """An expansive random ReLU generator (benign landscape: the paper's G_0)."""
    rng = np.random.default_rng(seed)
    return Network.from_weights([
        (rng.normal(size=(sizes[i + 1], sizes[i])) / np.sqrt(sizes[i + 1]), np.zeros(sizes[i + 1]))
        for i in range(len(sizes) - 1)
    ])


def interpolated_checkpoints(start: Network, end: Network, n: int) -> list[Network]:
    """A synthetic training path: weights moving linearly from ``start`` to ``end``."""
    nets = []
    for s in np.linspace(0.0, 1.0, n):
        nets.append(Network.from_weights([
            ((1 - s) * a.W + s * b.W, (1 - s) * a.b + s * b.b)
            for a, b in zip(start.layers, end.layers, strict=True)
        ]))
    return nets


def test_surfing_reaches_the_known_minimiser():
    G = interpolated_checkpoints(generator(0), generator(1), 5)
    rng = np.random.default_rng(3)
    x_star = rng.uniform(-1, 1, size=(6, 2))
    targets = G[-1].forward(x_star)
    results = surf(G, targets, (-2, 2), starts=4, steps_per_checkpoint=150, polish_steps=400, lr=0.02)
    hits = 0
    for r, xs, t in zip(results, x_star, targets, strict=True):
        # the reported value is the forward-pass value on G_T
        assert r.value == pytest.approx(0.5 * np.sum((G[-1].forward(r.x) - t) ** 2), rel=1e-12, abs=1e-15)
        assert len(r.stats["path"]) == len(G) + 1
        hits += r.value < 1e-8 and np.linalg.norm(r.x - xs) < 1e-3
    assert hits >= 5


def test_compressed_sensing_and_budget_accounting():
    G = interpolated_checkpoints(generator(2), generator(3), 4)
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 12)) / np.sqrt(6)
    x_star = rng.uniform(-1, 1, size=(3, 2))
    targets = G[-1].forward(x_star) @ A.T
    s = surf(G, targets, (-2, 2), A=A, starts=3, steps_per_checkpoint=100, polish_steps=200, lr=0.02)
    steps = gradient_budget(len(G), 100, 200)
    d = direct(G[-1], targets, (-2, 2), A=A, starts=3, steps=steps, lr=0.02)
    assert s[0].stats["gradient_evaluations"] == d[0].stats["gradient_evaluations"] == 3 * steps
    for r, t in zip(s + d, np.vstack([targets, targets]), strict=True):
        y = G[-1].forward(r.x)
        assert r.value == pytest.approx(0.5 * np.sum((A @ y - t) ** 2), rel=1e-12, abs=1e-15)
        assert np.all(r.x >= -2) and np.all(r.x <= 2)


def test_seeds_make_runs_repeatable():
    G = interpolated_checkpoints(generator(0), generator(1), 3)
    t = G[-1].forward(np.array([[0.3, -0.2]]))
    a = surf(G, t, (-1, 1), seed=7, steps_per_checkpoint=20, polish_steps=20)
    b = surf(G, t, (-1, 1), seed=7, steps_per_checkpoint=20, polish_steps=20)
    c = surf(G, t, (-1, 1), seed=8, steps_per_checkpoint=20, polish_steps=20)
    np.testing.assert_array_equal(a[0].x, b[0].x)
    assert not np.array_equal(a[0].x, c[0].x)


def test_checkpoint_folder_order(tmp_path):
    from reluopt.io import save_npz

    G = interpolated_checkpoints(generator(0), generator(1), 3)
    for i, net in enumerate(G):
        save_npz(net, tmp_path / f"ckpt_{i * 10}.npz")   # 0, 10, 20: numeric, not lexical order
    loaded = load_checkpoints(tmp_path)
    x = np.array([[0.1, 0.2]])
    for a, b in zip(loaded, G, strict=True):
        np.testing.assert_allclose(a.forward(x), b.forward(x))


def test_problem_interface_and_exact_methods_decline():
    G = interpolated_checkpoints(generator(0), generator(1), 3)
    t = G[-1].forward(np.array([0.5, -0.5]))
    problem = Problem(G[-1], Domain(-np.ones(2), np.ones(2)), LeastSquares(t))
    r = solve(problem, "surfing", checkpoints=G, steps_per_checkpoint=100, polish_steps=300, lr=0.02)
    assert r.value == pytest.approx(problem.objective_values(r.x)[0])
    r2 = solve(problem, "adam", time_limit=5, steps=300)
    assert r2.value == pytest.approx(problem.objective_values(r2.x)[0])
    with pytest.raises(ProblemError, match="least squares"):
        problem.max_form()


@pytest.mark.parametrize("case, message", [
    ("empty", "checkpoint list is empty"),
    ("shapes", "different shapes"),
    ("target", "target has 5 entries"),
    ("A", "measurement matrix A has shape"),
])
def test_bad_input(case, message):
    G = [generator(0), generator(1)]
    t = np.zeros((1, 12))
    kwargs = {}
    if case == "empty":
        G = []
    elif case == "shapes":
        G = [generator(0), generator(1, sizes=(2, 10, 12))]
    elif case == "target":
        t = np.zeros((1, 5))
    else:
        kwargs["A"] = np.zeros((4, 7))
        t = np.zeros((1, 4))
    with pytest.raises(ProblemError, match=message):
        surf(G, t, (-1, 1), **kwargs)


def test_shipped_digits_decoder_checkpoints():
    """The shipped latent-4 decoder sequence loads in order, decodes digits, and Surfing
    inverts in-range targets on it."""
    import json
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "examples" / "surfing" / "checkpoints" / "latent4"
    nets = load_checkpoints(folder)
    info = json.loads((folder / "latent_box.json").read_text())
    assert len(nets) == 11 and nets[-1].describe() == "4-128-128-64"
    assert info["val_mse"] < 0.03
    box = (np.array(info["lb"]), np.array(info["ub"]))
    rng = np.random.default_rng(1)
    x_star = rng.uniform(box[0], box[1], size=(8, 4))
    results = surf(nets, nets[-1].forward(x_star), box, starts=4, steps_per_checkpoint=50, polish_steps=200)
    solved = sum(r.value < 1e-6 for r in results)
    assert solved >= 6
    # the first checkpoint is the random initialisation: far worse on the same targets
    assert np.median([r.stats["path"][0] for r in results]) > 100 * max(np.median([r.value for r in results]), 1e-12)
