"""IBP and CROWN: sampled pre-activations always lie inside the bounds; CROWN never looser."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import random_network
from reluopt import Network, compute_bounds
from reluopt.bounds import crown_bounds, interval_bounds


@st.composite
def net_and_boxes(draw):
    seed = draw(st.integers(0, 10_000))
    d = draw(st.integers(1, 4))
    widths = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))
    m = draw(st.integers(1, 3))
    scale = draw(st.sampled_from([1e-3, 1.0, 3.0, 1e3]))
    net = random_network([d, *widths, m], seed=seed, scale=scale)
    rng = np.random.default_rng(seed)
    B = draw(st.integers(1, 4))
    centre = rng.normal(size=(B, d))
    radius = rng.uniform(0.0, 2.0, size=(B, d)) * draw(st.sampled_from([1e-6, 0.1, 1.0]))
    return net, centre - radius, centre + radius, rng


@settings(max_examples=60, deadline=None)
@given(net_and_boxes())
def test_sampled_preactivations_lie_inside_ibp_and_crown(case):
    net, lb, ub, rng = case
    for method in ("ibp", "crown"):
        b = compute_bounds(net, lb, ub, method)
        for i in range(lb.shape[0]):
            xs = lb[i] + rng.random((300, net.input_dim)) * (ub[i] - lb[i])
            xs = np.vstack([xs, lb[i], ub[i]])
            pre = net.preactivations(xs)
            for l in range(net.depth):
                assert np.all(pre[l] >= b.lower[l][i]), (method, l)
                assert np.all(pre[l] <= b.upper[l][i]), (method, l)
            y = net.forward(xs)
            assert np.all(y >= b.out_lower[i]) and np.all(y <= b.out_upper[i]), method


@settings(max_examples=40, deadline=None)
@given(net_and_boxes())
def test_crown_is_never_looser_than_ibp(case):
    net, lb, ub, _ = case
    ibp, crown = interval_bounds(net, lb, ub), crown_bounds(net, lb, ub)

    def slack(v):  # both bounds carry an outward rounding margin of a few ulps
        return 1e-12 * (1.0 + np.abs(v))

    for l in range(net.depth):
        assert np.all(crown.lower[l] >= ibp.lower[l] - slack(ibp.lower[l]))
        assert np.all(crown.upper[l] <= ibp.upper[l] + slack(ibp.upper[l]))
    assert np.all(crown.out_lower >= ibp.out_lower - slack(ibp.out_lower))
    assert np.all(crown.out_upper <= ibp.out_upper + slack(ibp.out_upper))


def test_crown_is_strictly_tighter_on_a_deep_net_and_counts_stable_neurons():
    net = random_network([3, 20, 20, 20, 1], seed=1)
    lb, ub = np.full(3, -0.2), np.full(3, 0.3)
    ibp, crown = interval_bounds(net, lb, ub), crown_bounds(net, lb, ub)
    w_ibp = ibp.out_upper - ibp.out_lower
    w_crown = crown.out_upper - crown.out_lower
    assert np.all(w_crown < 0.8 * w_ibp)
    assert crown.n_unstable(net) <= ibp.n_unstable(net)
    stab = crown.stability(net)
    assert [s["neurons"] for s in stab] == [20, 20, 20]
    assert all(s["inactive"] + s["active"] + s["unstable"] == 20 for s in stab)


def test_point_box_gives_exact_values():
    net = random_network([2, 6, 6, 2], seed=4)
    x = np.array([0.3, -0.7])
    b = crown_bounds(net, x, x)
    y = net.forward(x)
    assert np.allclose(b.out_lower[0], y, atol=1e-9) and np.allclose(b.out_upper[0], y, atol=1e-9)


def test_badly_scaled_network_bounds_stay_sound():
    rng = np.random.default_rng(0)
    net = Network.from_weights([(rng.normal(size=(8, 2)) * 1e3, rng.normal(size=8) * 1e3),
                                (rng.normal(size=(8, 8)) * 1e-3, rng.normal(size=8) * 1e-3),
                                (rng.normal(size=(1, 8)) * 1e3, np.zeros(1))])
    lb, ub = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    b = crown_bounds(net, lb, ub)
    xs = rng.uniform(-1, 1, size=(20000, 2))
    y = net.forward(xs)[:, 0]
    assert y.min() >= b.out_lower[0, 0] and y.max() <= b.out_upper[0, 0]


def test_unknown_bound_method_is_a_clear_error():
    from reluopt import ProblemError

    with pytest.raises(ProblemError, match="unknown bound method"):
        compute_bounds(random_network([2, 3, 1]), -1, 1, "deeppoly")
