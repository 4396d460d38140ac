"""Input splitting's tuned lower slopes and the leaf MIP without the binaries of neurons the
objective wants small, against the brute force over linear regions (tests/bruteforce.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reluopt
from bruteforce import brute_force
from conftest import random_network
from reluopt import Network, Problem
from reluopt.bounds.node import best_output_bounds, node_bounds
from reluopt.methods.bab import bab_maximize_min
from reluopt.problem import Objective
from reluopt.result import OPTIMAL
from reluopt.search.leaf import leaf_mip, relaxable
from reluopt.search.relu_bounds import lagrangian_bounds


def _scaled(sizes, seed, scale):
    base = random_network(sizes, seed=seed)
    return Network.from_weights([(scale * layer.W, scale * layer.b) for layer in base.layers])


@settings(deadline=None, max_examples=25, derandomize=True)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 3), width=st.integers(2, 8), depth=st.integers(1, 2),
       scale=st.sampled_from([1e-3, 1.0, 40.0]), sense=st.sampled_from(["max", "min"]),
       steps=st.sampled_from([1, 3, 10]), nodes=st.integers(1, 40))
def test_bab_with_tuned_slopes_never_crosses_brute_force(seed, d, width, depth, scale, sense, steps, nodes):
    """Any node budget and any number of slope steps: the certified bound is on the right
    side of the brute-force optimum (it may stop anywhere, with slopes in any state)."""
    net = _scaled([d] + [width] * depth + [1], seed, scale)
    rng = np.random.default_rng(seed)
    lb = -rng.uniform(0.2, 1.0, size=d)
    ub = rng.uniform(0.2, 1.0, size=d)
    truth = brute_force(net, lb, ub, np.ones(1), sense)
    sign = 1.0 if sense == "max" else -1.0
    out = bab_maximize_min(net, lb, ub, [[sign]], [0.0], node_limit=nodes, slope_steps=steps, leaf_mip=False)
    assert out.bound >= sign * truth - 1e-9 * (1 + abs(truth))
    assert out.value is None or out.value <= out.bound


@pytest.mark.parametrize("seed", range(4))
def test_tuned_slopes_reach_the_fixed_slopes_bound_or_better_and_stay_sound(seed):
    """Per box, the tuned bound (random warm starts in [0, 1]) is never below the box's true
    maximum, and tuning from CROWN's slopes is never looser than CROWN's slopes."""
    net = random_network([2, 12, 1], seed=seed)
    rng = np.random.default_rng(seed)
    centre = rng.uniform(-1, 1, size=(6, 2))
    rad = rng.uniform(0.05, 1.0, size=(6, 2))
    lo, hi = centre - rad, centre + rad
    nb = node_bounds(net, lo, hi)
    splits = [np.zeros(L.shape, dtype=np.int8) for L in nb.lower]
    C, e = np.ones((1, 1)), np.zeros(1)
    fixed, _ = best_output_bounds(net, nb, C, e, slopes=(None,))
    warm = [rng.uniform(0, 1, size=(6, 1, L.shape[1])) for L in nb.lower]
    tuned_warm = lagrangian_bounds(net, lo, hi, nb.lower, nb.upper, splits, C, e, warm, steps=5, scores=False)
    tuned = lagrangian_bounds(net, lo, hi, nb.lower, nb.upper, splits, C, e, steps=0, scores=False)
    assert np.all(tuned.upper <= fixed + 1e-9 * (1 + np.abs(fixed)))
    for i in range(6):
        truth = brute_force(net, lo[i], hi[i], np.ones(1), "max")
        assert tuned_warm.upper[i, 0] >= truth - 1e-9 * (1 + abs(truth))


@pytest.mark.parametrize("sizes,seed", [([2, 10, 1], 0), ([3, 8, 1], 1), ([2, 6, 6, 1], 2), ([2, 8, 3], 3)])
@pytest.mark.parametrize("sense", ["max", "min"])
def test_leaf_mip_without_the_small_neurons_binaries_is_exact(sizes, seed, sense):
    """Dropping the binaries of last-layer neurons with non-positive objective weight keeps the
    MIP's optimum: the leaf's bound equals the brute force (and is never below it)."""
    net = random_network(sizes, seed=seed)
    d = sizes[0]
    lb, ub = -np.ones(d), np.ones(d)
    c = np.random.default_rng(seed).normal(size=net.output_dim)
    sign = 1.0 if sense == "max" else -1.0
    problem = Problem(net, reluopt.Domain(lb, ub), Objective(sign * c, 0.0, "max"))
    free = relaxable(problem)
    assert free is not None and 0 < free.sum() < net.hidden_sizes[-1]
    got = leaf_mip(problem, lb, ub, None, deadline=math.inf, abs_gap=1e-7, rel_gap=1e-7, should_stop=None)
    truth = sign * brute_force(net, lb, ub, c, sense)
    assert got is not None and got.closed
    assert got.bound >= truth - 1e-9 * (1 + abs(truth))
    assert got.bound == pytest.approx(truth, abs=1e-5 * (1 + abs(truth)))
    assert float(problem.objective_values(got.point[None])[0]) == pytest.approx(truth, abs=1e-5 * (1 + abs(truth)))


def test_relaxable_only_for_one_relu_row_without_output_constraints():
    net = random_network([2, 6, 2], seed=0)
    box = (-np.ones(2), np.ones(2))
    plain = Problem.build(net, *box, maximize=0)
    assert relaxable(plain) is not None
    constrained = Problem.build(net, *box, maximize=0, constraints=["y[1] <= 0"])
    assert relaxable(constrained) is None


@pytest.mark.parametrize("steps", [0, 3])
def test_bab_with_and_without_slopes_is_exact(steps):
    net = random_network([2, 16, 1], seed=5)
    lb, ub = -np.ones(2), np.ones(2)
    problem = Problem.build(net, lb, ub, maximize=0)
    truth = brute_force(net, lb, ub, np.ones(1), "max")
    res = reluopt.solve(problem, "bab", time_limit=60, abs_gap=1e-6, rel_gap=1e-6, slope_steps=steps)
    assert res.status == OPTIMAL
    assert res.value == pytest.approx(truth, abs=1e-5)
    assert res.bound >= truth - 1e-9


def test_whole_box_mip_caps_the_frontier_and_closes(monkeypatch):
    """With leaf MIPs due at once, the whole box (few binaries) goes to the MIP: the search
    ends optimal at the brute-force optimum, its bound on the right side."""
    from reluopt.search import input_split

    monkeypatch.setattr(input_split, "LEAF_AFTER_NODES", 1)
    net = random_network([3, 14, 1], seed=7)
    lb, ub = -np.ones(3), np.ones(3)
    problem = Problem.build(net, lb, ub, maximize=0)
    truth = brute_force(net, lb, ub, np.ones(1), "max")
    # leaf_unstable=0: no node is a leaf, only the whole box goes to the MIP
    res = reluopt.solve(problem, "bab", time_limit=60, slope_steps=0, grad_steps=0, region_steps=0, leaf_unstable=0)
    assert res.stats["root_mip"] == "closed"
    assert res.status == OPTIMAL
    assert res.bound >= truth - 1e-9 * (1 + abs(truth))
    assert res.value == pytest.approx(truth, abs=2e-4)


def test_frontier_cap_lowers_open_and_retired_bounds():
    from reluopt.search.tree import FROZEN, Frontier, Node

    f = Frontier()
    for b in (3.0, 1.0, 2.0):
        f.push(Node(np.zeros(1), np.ones(1), b))
    f.retire(2.5, FROZEN)
    f.cap(1.5)
    assert f.bound() == 1.5
    assert sorted(n.bound for n in f.pop(3)) == [1.0, 1.5, 1.5]


def test_negative_slope_steps_is_a_clear_error():
    net = random_network([2, 4, 1], seed=0)
    with pytest.raises(reluopt.ProblemError, match="slope_steps"):
        reluopt.solve(Problem.build(net, -np.ones(2), np.ones(2), maximize=0), "bab", slope_steps=-1)
