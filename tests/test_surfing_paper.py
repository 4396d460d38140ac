"""Surfing in the paper's setup: the shipped MNIST VAE decoder sequences, the restart baseline
run to convergence, and the paper-style comparison."""

import json
from pathlib import Path

import numpy as np
import pytest

from reluopt import Network, ProblemError
from reluopt.inversion.comparison import compare_paper_setup
from reluopt.inversion.restarts import restarts_to_convergence
from reluopt.inversion.surfing import load_checkpoints, surf

SHIPPED = Path(__file__).resolve().parents[1] / "examples" / "surfing" / "checkpoints"


@pytest.mark.parametrize("latent", [2, 5, 8, 10, 20])
def test_shipped_vae_sequences_are_relu_decoders_of_the_right_shape(latent):
    folder = SHIPPED / f"latent{latent}"
    nets = load_checkpoints(folder)
    index = json.loads((folder / "index.json").read_text())
    info = json.loads((folder / "latent_box.json").read_text())
    assert len(nets) == len(index["checkpoints"]) == 15
    epochs = index["epochs"]
    assert epochs[0] == 0 and epochs[-1] == 6 and np.all(np.diff(epochs) > 0) and np.max(np.diff(epochs)) <= 1
    assert info["model"] == "VAE decoder" and info["data"].startswith("MNIST")
    for net in nets:
        assert net.describe() == f"{latent}-64-128-196"
        assert [layer.activation for layer in net.layers] == ["relu", "relu", "identity"]
    # training moved the weights: the last checkpoint decodes differently from the first
    z = np.random.default_rng(0).normal(size=(16, latent))
    assert np.abs(nets[-1].forward(z) - nets[0].forward(z)).mean() > 0.05


def test_surfing_recovers_in_range_targets_on_the_latent5_sequence():
    nets = load_checkpoints(SHIPPED / "latent5")
    rng = np.random.default_rng(7)
    x_star = rng.normal(size=(4, 5))
    targets = nets[-1].forward(x_star)
    results = surf(nets, targets, None, starts=2, steps_per_checkpoint=30, polish_steps=150, lr=0.05, anneal=0.01)
    recovered = 0
    for r, xs, t in zip(results, x_star, targets, strict=True):
        # the value is the forward pass's at the returned latent
        assert r.value == pytest.approx(0.5 * np.sum((nets[-1].forward(r.x) - t) ** 2), rel=1e-12, abs=1e-15)
        recovered += np.linalg.norm(r.x - xs) / np.linalg.norm(xs) < 1e-2
    assert recovered >= 3


def _wavy() -> Network:
    """A 1-input ReLU net with several local minima of (G(x) - t)^2 on [-3, 3]."""
    knots = np.linspace(-2.5, 2.5, 11)
    slopes = np.where(np.arange(11) % 2 == 0, 2.0, -2.0)
    W1 = np.ones((11, 1))
    b1 = -knots
    W2 = np.diff(np.concatenate([[0.0], slopes]))[None, :]
    return Network.from_weights([(W1, b1), (W2, np.array([0.3]))])


def test_restarts_find_the_grid_minimum_and_spend_exactly_the_budget():
    net = _wavy()
    grid = np.linspace(-3, 3, 60001)[:, None]
    target = np.array([[-1.7]])
    values = 0.5 * (net.forward(grid)[:, 0] - target[0, 0]) ** 2
    best_grid = values.min()
    res = restarts_to_convergence(net, target, (-3, 3), budget=3000, lr=0.05, seed=2)[0]
    assert res.stats["gradient_evaluations"] == 3000
    assert res.stats["restarts"] >= 3                     # runs converge well within the budget
    assert res.value == pytest.approx(0.5 * (net.forward(res.x)[0] + 1.7) ** 2, rel=1e-12, abs=1e-15)
    assert res.value <= best_grid + 1e-6
    # one short run from the same kind of start is not enough on this landscape for every seed
    one = [restarts_to_convergence(net, target, (-3, 3), budget=30, lr=0.05, seed=s)[0].value for s in range(8)]
    assert max(one) > best_grid + 1e-3


def test_restarts_reject_bad_settings():
    net = _wavy()
    with pytest.raises(ProblemError, match="budget"):
        restarts_to_convergence(net, [[0.0]], (-1, 1), budget=0)
    with pytest.raises(ProblemError, match="cut"):
        restarts_to_convergence(net, [[0.0]], (-1, 1), budget=5, cut=1.5)


def test_paper_comparison_spends_equal_budgets_and_scores_by_latent_error():
    from test_surfing import generator, interpolated_checkpoints

    G = interpolated_checkpoints(generator(0), generator(1), 4)
    x_star = np.random.default_rng(3).normal(size=(5, 2))
    out = compare_paper_setup(G, x_star, steps_per_checkpoint=40, polish_steps=200, lr=0.02, basin_steps=300)
    assert set(out) == {"surfing", "direct", "restarts"}
    budget = 4 * 40 + 200
    for v in out.values():
        assert v["budget"] == budget
        assert all(r.stats["gradient_evaluations"] == budget for r in v["results"])
        rel = [np.linalg.norm(r.x - xs) / np.linalg.norm(xs) for r, xs in zip(v["results"], x_star, strict=True)]
        assert v["success"] == pytest.approx(np.mean(np.array(rel) < 1e-2))
        assert 0 <= v["basin"] <= 1
    assert out["surfing"]["success"] >= 0.6
