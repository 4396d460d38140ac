"""The bound-method registry (``compute_bounds``, ``BOUND_METHODS``) and the one bounds container.

Every method's bounds contain the forward values of a dense seeded sample of the box (and a
grid on 2-D inputs); alpha-CROWN and OBBT are never looser than CROWN; an unknown name is a
ProblemError listing the valid ones. The container: node bounds (``bounds.node``) and
``crown_bounds`` share one kernel and agree on a single box, and ``select`` keeps boxes, lines
and output bounds aligned.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import random_network
from reluopt import ProblemError, compute_bounds
from reluopt.bounds import (
    BOUND_METHODS,
    LayerBounds,
    NodeBounds,
    crown_bounds,
    interval_bounds,
    node_bounds,
    output_bounds,
)

TOL = 1e-9


def _sample(lb, ub, n, seed):
    rng = np.random.default_rng(seed)
    x = lb + rng.random((n, lb.size)) * (ub - lb)
    corners = np.where(rng.random((64, lb.size)) < 0.5, lb, ub)     # the extremes of a linear piece
    return np.vstack([x, corners])


def _assert_contains(net, bounds: LayerBounds, x, i=0):
    pre = net.preactivations(x)
    for l in range(net.depth):
        assert np.all(pre[l] >= bounds.lower[l][i] - TOL), f"layer {l} lower"
        assert np.all(pre[l] <= bounds.upper[l][i] + TOL), f"layer {l} upper"
    y = net.forward(x)
    assert np.all(y >= bounds.out_lower[i] - TOL) and np.all(y <= bounds.out_upper[i] + TOL)


@pytest.mark.parametrize("method", BOUND_METHODS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_method_contains_a_dense_sample(method, seed):
    net = random_network([3, 10, 10, 2], seed=seed, scale=2.0)
    lb, ub = -np.ones(3), np.array([1.0, 0.5, 2.0])
    b = compute_bounds(net, lb, ub, method, time_limit=60)
    assert b.method == method and b.batch == 1
    np.testing.assert_array_equal(b.lo[0], lb)
    np.testing.assert_array_equal(b.hi[0], ub)
    _assert_contains(net, b, _sample(lb, ub, 20_000, seed))


@pytest.mark.parametrize("method", BOUND_METHODS)
def test_every_method_contains_a_grid_in_two_dimensions(method):
    net = random_network([2, 8, 8, 1], seed=5, scale=3.0)
    lb, ub = np.array([-2.0, -1.0]), np.array([1.0, 3.0])
    g = np.stack(np.meshgrid(np.linspace(lb[0], ub[0], 151), np.linspace(lb[1], ub[1], 151)), -1).reshape(-1, 2)
    _assert_contains(net, compute_bounds(net, lb, ub, method), g)


def test_positional_call_and_batches():
    net = random_network([2, 6, 6, 1], seed=3)
    lbs = np.array([[-1.0, -1.0], [0.0, 0.0], [0.5, -0.5]])
    ubs = lbs + np.array([[2.0, 2.0], [0.5, 0.5], [0.1, 1.0]])
    for method in ("ibp", "crown", "alpha-crown"):
        b = compute_bounds(net, lbs, ubs, method)
        assert b.batch == 3
        for i in range(3):
            _assert_contains(net, b, _sample(lbs[i], ubs[i], 3000, i), i)
    np.testing.assert_array_equal(compute_bounds(net, lbs[0], ubs[0], "crown").out_upper,
                                  crown_bounds(net, lbs[0], ubs[0]).out_upper)
    with pytest.raises(ProblemError, match="one box"):
        compute_bounds(net, lbs, ubs, "lp-obbt")


def _widths(b: LayerBounds):
    return [U - L for L, U in zip(b.lower, b.upper, strict=True)] + [b.out_upper - b.out_lower]


@pytest.mark.parametrize("method", ["alpha-crown", "lp-obbt", "mip-obbt"])
@pytest.mark.parametrize("seed", [0, 4])
def test_tighter_methods_are_never_looser_than_crown(method, seed):
    net = random_network([3, 10, 10, 2], seed=seed, scale=2.0)
    lb, ub = -np.ones(3), np.ones(3)
    crown = compute_bounds(net, lb, ub, "crown")
    tight = compute_bounds(net, lb, ub, method, time_limit=60)
    for w_crown, w_tight in zip(_widths(crown), _widths(tight), strict=True):
        assert np.all(w_tight <= w_crown + 1e-12)
    # and strictly tighter somewhere on a net this size
    assert sum(float(np.sum(w)) for w in _widths(tight)) < sum(float(np.sum(w)) for w in _widths(crown))


def test_obbt_options_pass_through_the_registry():
    net = random_network([2, 8, 8, 1], seed=7, scale=2.0)
    lb, ub = -np.ones(2), np.ones(2)
    A, b = np.array([[1.0, 1.0]]), np.array([0.0])           # x0 + x1 <= 0: half the box
    cut = compute_bounds(net, lb, ub, "lp-obbt", A=A, b=b)
    plain = compute_bounds(net, lb, ub, "lp-obbt")
    assert all(np.all(wc <= wp + 1e-12) for wc, wp in zip(_widths(cut), _widths(plain), strict=True))
    x = _sample(lb, ub, 20_000, 0)
    _assert_contains(net, cut, x[x.sum(axis=1) <= 0])
    only_outputs = compute_bounds(net, lb, ub, "lp-obbt", layers=[net.depth])
    assert [row["layer"] for row in only_outputs.stats["layers"]] == [net.depth]
    with pytest.raises(ProblemError, match="both A and b"):
        compute_bounds(net, lb, ub, "lp-obbt", A=A)


@pytest.mark.parametrize("bad", ["deeppoly", "CROWN", "", None, 3])
def test_unknown_names_list_the_valid_ones(bad):
    net = random_network([2, 3, 1])
    with pytest.raises(ProblemError, match="unknown bound method") as err:
        compute_bounds(net, -np.ones(2), np.ones(2), bad)
    for name in BOUND_METHODS:
        assert name in str(err.value)


def test_callers_take_their_names_from_the_registry():
    from reluopt.analysis import indicators
    from reluopt.cli import bounds as cli_bounds
    from reluopt.methods import mip

    assert indicators.BOUND_METHODS is BOUND_METHODS
    assert cli_bounds.METHODS is BOUND_METHODS
    assert mip.BOUND_METHODS is BOUND_METHODS


# ----------------------------------------------------------------------------- the container
def test_node_bounds_are_layer_bounds_and_agree_with_crown_on_one_box():
    assert NodeBounds is LayerBounds
    net = random_network([3, 10, 10, 10, 2], seed=2, scale=2.0)
    lo, hi = -np.ones((1, 3)), np.ones((1, 3))
    nb = node_bounds(net, lo, hi)
    crown = crown_bounds(net, lo, hi)
    for L1, U1, L2, U2 in zip(nb.lower, nb.upper, crown.lower, crown.upper, strict=True):
        np.testing.assert_allclose(L1, L2, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(U1, U2, rtol=1e-12, atol=1e-12)
    assert len(nb.lines) == net.depth and not crown.lines
    # the recorded lines are the ones the container recomputes from its bounds
    for rec, fresh in zip(nb.lines, nb.relaxation_lines(net), strict=True):
        for a, b in zip(rec, fresh, strict=True):
            np.testing.assert_array_equal(a, b)
    for rec, fresh in zip(nb.lines, crown.relaxation_lines(net), strict=True):
        for a, b in zip(rec, fresh, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    # node bounds carry sound (interval) output bounds too
    _assert_contains(net, nb, _sample(lo[0], hi[0], 5000, 1))


def test_select_keeps_boxes_lines_and_outputs_aligned():
    net = random_network([2, 6, 6, 1], seed=8)
    rng = np.random.default_rng(0)
    lo = rng.uniform(-1, 0, (5, 2))
    hi = lo + rng.uniform(0.1, 1.0, (5, 2))
    nb = node_bounds(net, lo, hi)
    idx = np.array([4, 1])
    sub = nb.select(idx)
    assert sub.batch == 2 and sub.method == "node"
    np.testing.assert_array_equal(sub.lo, lo[idx])
    np.testing.assert_array_equal(sub.hi, hi[idx])
    np.testing.assert_array_equal(sub.out_upper, nb.out_upper[idx])
    for l in range(net.depth):
        np.testing.assert_array_equal(sub.lower[l], nb.lower[l][idx])
        for a, b in zip(sub.lines[l], nb.lines[l], strict=True):
            np.testing.assert_array_equal(a, b[idx])
    np.testing.assert_array_equal(sub.unstable(net), nb.unstable(net)[idx])
    # output bounds of a sub-batch equal the rows of the full batch's
    W, off = np.ones((1, 1)), np.zeros(1)
    np.testing.assert_array_equal(output_bounds(net, sub, W, off)[0], output_bounds(net, nb, W, off)[0][idx])


def test_bounds_without_boxes_say_so():
    net = random_network([2, 3, 1])
    b = interval_bounds(net, -np.ones(2), np.ones(2))
    bare = LayerBounds(b.lower, b.upper, b.out_lower, b.out_upper, "given")
    assert bare.batch == 1 and bare.select([0]).box_lower is None
    with pytest.raises(ProblemError, match="input boxes"):
        _ = bare.lo
    assert bare.unstable(net).shape == (1,)


def test_every_caller_accepts_every_registry_name():
    import reluopt
    from reluopt import Problem
    from reluopt.analysis.indicators import bound_indicators
    from reluopt.lipschitz import lipschitz

    net = random_network([2, 6, 6, 1], seed=9, scale=2.0)
    lb, ub = -np.ones(2), np.ones(2)
    problem = Problem.build(net, lb, ub, maximize=0)
    values = {m: reluopt.solve(problem, "mip", bounds=m, time_limit=60).value for m in BOUND_METHODS}
    assert max(values.values()) - min(values.values()) < 1e-6
    for m in BOUND_METHODS:
        assert bound_indicators(net, lb, ub, m)["method"] == m
        assert lipschitz(net, (lb, ub), method="bounds", bounds=m, time_limit=60).upper > 0
