"""Rescaling by positive homogeneity: same function, normalised ranges, sound rescaled
bounds, better-conditioned big-M, and the same MIP optimum through build_problem_model."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import random_network
from reluopt.analysis.rescale import (
    MAX_EXP,
    bigm_spread,
    matrix_spread,
    rescale,
    rescale_bounds,
    scale_factors,
)
from reluopt.bounds import crown_bounds
from reluopt.milp.backends.highs import solve_highs
from reluopt.milp.formulation import build_problem_model, classify
from reluopt.problem import Problem
from test_clipped import clipped_network


def _wide_net(seed=0):
    """A net whose neurons have very different scales (as trained nets often do)."""
    net = random_network([3, 12, 12, 12, 2], seed=seed)
    rng = np.random.default_rng(seed)
    layers = list(net.layers)
    for l in range(3):
        s = 10.0 ** rng.uniform(-2, 2, size=layers[l].n_out)
        nxt = layers[l + 1]
        layers[l] = type(layers[l])(layers[l].W * s[:, None], layers[l].b * s, "relu")
        layers[l + 1] = type(nxt)(nxt.W / s[None, :], nxt.b, nxt.activation, nxt.tau)
    return net.with_layers(layers)


@pytest.mark.parametrize("make", [_wide_net, lambda seed: clipped_network([3, 8, 8, 2], seed, 0.7)])
def test_same_function_and_sound_bounds(make):
    net = make(1)
    lb, ub = -np.ones(3), np.ones(3)
    bounds = crown_bounds(net, lb, ub)
    scaled, factors = rescale(net, bounds)
    X = np.random.default_rng(0).uniform(lb, ub, size=(5000, 3))
    y, ys = net.forward(X), scaled.forward(X)
    assert np.all(np.abs(ys - y) <= 1e-9 * (1 + np.abs(y)))
    for s in factors:
        assert np.all(s > 0) and np.all(np.log2(s) == np.round(np.log2(s)))   # powers of two
    sb = rescale_bounds(bounds, factors)
    n_unstable = 0
    for l, g in enumerate(scaled.preactivations(X)):
        assert np.all(g >= sb.lower[l][0]) and np.all(g <= sb.upper[l][0])
        L, U = bounds.lower[l][0], bounds.upper[l][0]
        unstable = ~classify(net.layers[l], L, U).stable
        if net.layers[l].activation == "relu":
            width = sb.upper[l][0] - sb.lower[l][0]
            # unstable neurons normalised to within sqrt 2; stable ones (no big-M) untouched
            assert np.all((width[unstable] > 0.7) & (width[unstable] <= 1.42))
            assert np.all(factors[l][~unstable] == 1.0)
        n_unstable += int(unstable.sum())
    assert n_unstable > 0


def test_bigm_spread_shrinks_and_the_mip_optimum_is_unchanged():
    net = _wide_net(2)
    lb, ub = -np.ones(3), np.ones(3)
    bounds = crown_bounds(net, lb, ub)
    scaled, factors = rescale(net, bounds)
    before = bigm_spread(net, bounds)
    after = bigm_spread(scaled, rescale_bounds(bounds, factors))
    assert before["unstable"] == after["unstable"] > 0
    assert after["log10_spread"] < before["log10_spread"] - 1.0
    assert after["ratio"] < 8.0
    problem = Problem.build(net, lb, ub, maximize=0)
    plain = build_problem_model(problem, bounds)
    model = build_problem_model(problem, bounds, rescale=True)
    assert model.stats["rescaled"] and not plain.stats["rescaled"]
    assert matrix_spread(model) < matrix_spread(plain)
    out_p = solve_highs(plain, mip_rel_gap=1e-9, mip_abs_gap=1e-9)
    out_s = solve_highs(model, mip_rel_gap=1e-9, mip_abs_gap=1e-9)
    assert out_p.status == out_s.status == "optimal"
    assert abs(out_p.objective - out_s.objective) < 1e-6 * (1 + abs(out_p.objective))
    # x and y mean the same in both models; MIP starts from an input stay feasible
    x = model.columns_to_point(out_s.values)
    assert abs(net.forward(x)[0] - out_s.objective) < 1e-6 * (1 + abs(out_s.objective))
    v = model.point_to_columns(x)
    Av = model.A @ v
    assert np.all(Av >= model.row_lower - 1e-7) and np.all(Av <= model.row_upper + 1e-7)


def test_factors_are_capped_and_tiny_ranges_stay_sane():
    net = random_network([2, 6, 1], seed=3)
    bounds = crown_bounds(net, -np.ones(2), np.ones(2))
    bounds.lower[0][0][:] = -1e-9          # not true bounds of this net:
    bounds.upper[0][0][:] = 1e-9           # only the factor rule is under test
    s = scale_factors(net, bounds)[0]
    assert np.all(s == 2.0 ** MAX_EXP)


def test_acasxu_spread(shared_data):
    onnx = pytest.importorskip("reluopt.io.onnx")
    net = onnx.load_onnx(shared_data / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    lb = np.array([0.6, -0.5, -0.5, 0.45, -0.5])
    ub = np.array([0.679857769, 0.5, 0.5, 0.5, -0.45])
    bounds = crown_bounds(net, lb, ub)
    scaled, factors = rescale(net, bounds)
    X = np.random.default_rng(0).uniform(lb, ub, size=(2000, 5))
    assert np.allclose(scaled.forward(X), net.forward(X), rtol=1e-9, atol=1e-9)
    before = bigm_spread(net, bounds)
    after = bigm_spread(scaled, rescale_bounds(bounds, factors))
    assert after["log10_spread"] < before["log10_spread"]
