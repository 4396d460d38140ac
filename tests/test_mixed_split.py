"""Combined splitting (``bab-relu`` with ``branching="fsb-mixed"`` or ``"input-first"``,
``search.mixed_split``) against brute force.

Truth: every full-dimensional linear region of a small net (tests/bruteforce) and, for the
node bounds, dense samples of each node's sub-domain (its box and its ReLU splits).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reluopt
from bruteforce import brute_force
from conftest import random_network
from reluopt import Domain, Problem
from reluopt.problem import MaxMin, Objective
from reluopt.search.mixed_split import halve, input_split_scores
from reluopt.search.relu_bounds import lagrangian_bounds, split_bounds
from test_search import maxmin_truth

SLACK = 1e-6

CASES = [  # (sizes, seed, scale): 2-4 inputs, up to 2 x 8 hidden, a badly scaled one
    ([2, 8, 8, 1], 0, 1.0),
    ([3, 8, 8, 1], 1, 1.0),
    ([4, 8, 8, 1], 2, 1.0),
    ([4, 8, 1], 3, 1.0),
    ([2, 8, 8, 1], 4, 1e-3),
    ([3, 6, 6, 1], 5, 30.0),
]


def _box(d, rng=None):
    if rng is None:
        return -np.ones(d), np.ones(d)
    lo = rng.uniform(-2, 1, size=d)
    return lo, lo + rng.uniform(0.05, 2, size=d)


@pytest.mark.parametrize(("sizes", "seed", "scale"), CASES)
@pytest.mark.parametrize(("sense", "branching"), [("max", "fsb-mixed"), ("min", "fsb-mixed"), ("max", "input-first")])
def test_mixed_tree_optimum_equals_brute_force_and_bound_never_crosses_it(sizes, seed, scale, sense, branching):
    net = random_network(sizes, seed=seed, scale=scale)
    lb, ub = _box(net.input_dim)
    truth = brute_force(net, lb, ub, np.ones(1), sense)
    res = reluopt.solve(Problem(net, Domain(lb, ub), Objective(np.ones(1), 0.0, sense)), "bab-relu",
                        time_limit=300, seed=seed, branching=branching)
    tol = SLACK * (1 + abs(truth))
    if sense == "max":
        assert res.bound >= truth - tol and res.value <= truth + tol
    else:
        assert res.bound <= truth + tol and res.value >= truth - tol
    assert res.value == pytest.approx(float(net.forward(res.x[None])[0, 0]), abs=1e-12)
    assert res.status == "optimal"
    assert abs(res.value - truth) <= max(1e-4, 1e-4 * abs(truth)) + tol


def test_mixed_tree_maxmin_matches_brute_force():
    rng = np.random.default_rng(7)
    net = random_network([2, 8, 8, 3], seed=7)
    lb, ub = -np.ones(2), np.ones(2)
    C, e = rng.normal(size=(3, 3)), rng.normal(size=3)
    truth = maxmin_truth(net, lb, ub, C, e)
    res = reluopt.solve(Problem(net, Domain(lb, ub), MaxMin(C, e)), "bab-relu", time_limit=30, node_limit=20000,
                        branching="fsb-mixed")
    assert res.bound >= truth - SLACK * (1 + abs(truth))
    assert res.value <= truth + 1e-9
    assert res.value == pytest.approx(float(np.min(net.forward(res.x[None]) @ C.T + e)), abs=1e-12)


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 10_000), d=st.integers(2, 4), depth=st.integers(1, 2), width=st.integers(3, 8),
       scale=st.sampled_from([1e-2, 1.0, 10.0]), nodes=st.integers(1, 80), sense=st.sampled_from(["max", "min"]),
       branching=st.sampled_from(["fsb-mixed", "input-first"]))
def test_mixed_tree_bound_holds_at_any_node_limit(seed, d, depth, width, scale, nodes, sense, branching):
    # stopped anywhere (node limit, no leaf MIP), the tree's bound is never beaten by the truth
    rng = np.random.default_rng(seed)
    net = random_network([d] + [width] * depth + [1], seed=seed, scale=scale)
    lb, ub = _box(d, rng)
    c = rng.choice([-1.0, 1.0], size=1)
    truth = brute_force(net, lb, ub, c, sense)
    res = reluopt.solve(Problem(net, Domain(lb, ub), Objective(c, 0.0, sense)), "bab-relu", node_limit=nodes,
                        seed=seed, branching=branching, leaf_mip=False)
    tol = SLACK * (1 + abs(truth))
    if sense == "max":
        assert res.bound >= truth - tol and res.value <= truth + tol
    else:
        assert res.bound <= truth + tol and res.value >= truth - tol
    assert np.all(res.x >= lb) and np.all(res.x <= ub)
    assert res.value == pytest.approx(float(net.forward(res.x[None])[0] @ c), abs=1e-12)


def test_input_splits_and_relu_splits_both_happen():
    net = random_network([4, 8, 8, 1], seed=2)
    lb, ub = _box(4)
    problem = Problem(net, Domain(lb, ub), Objective(np.ones(1), 0.0, "max"))
    mixed = reluopt.solve(problem, "bab-relu", time_limit=60, branching="fsb-mixed", leaf_mip=False)
    assert mixed.stats["input_splits"] > 0 and mixed.stats["relu_splits"] > 0
    assert mixed.status == "optimal"
    truth = brute_force(net, lb, ub, np.ones(1), "max")
    assert abs(mixed.value - truth) <= 1e-4 * (1 + abs(truth)) and mixed.bound >= truth - SLACK * (1 + abs(truth))
    plain = reluopt.solve(problem, "bab-relu", node_limit=50, leaf_mip=False)
    assert "input_splits" not in plain.stats
    first = reluopt.solve(problem, "bab-relu", node_limit=50, branching="input-first", leaf_mip=False)
    assert first.stats["input_splits"] >= first.stats["relu_splits"] and first.stats["input_splits"] > 0


def test_choose_input_weighs_the_gains():
    from reluopt.search.mixed_split import MIXED, choose_input

    gi, gr = np.array([0.1, 0.1, 0.0, -1.0]), np.array([0.3, 0.6, 0.5, -2.0])
    assert choose_input(gi, gr, 5.0).tolist() == [True, False, False, False]
    assert choose_input(gi, gr, np.inf).tolist() == [True, True, False, False]
    assert choose_input(gi, gr, 1.0).tolist() == [False, False, False, True]
    assert set(MIXED) == {"fsb-mixed", "input-first"}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_input_split_children_bounds_hold_on_their_subdomains(seed):
    # the children the mixed tree builds for an input split: a half box, the parent's splits and
    # neuron bounds as prior; their certified bound is above every sampled point of the half
    rng = np.random.default_rng(seed)
    net = random_network([3, 8, 8, 1], seed=seed)
    lo, hi = -np.ones((1, 3)), np.ones((1, 3))
    X = rng.uniform(-1, 1, size=(6000, 3))
    G = net.preactivations(X)
    splits = [np.zeros((1, 8), dtype=np.int8) for _ in range(2)]
    for _ in range(3):
        j, i = rng.integers(2), rng.integers(8)
        splits[j][0, i] = rng.choice([-1, 1])
    lowers, uppers, _ = split_bounds(net, lo, hi, splits)
    C, e = np.ones((1, 1)), np.zeros(1)
    bd = lagrangian_bounds(net, lo, hi, lowers, uppers, splits, C, e, steps=3)
    dims, worst, parent = input_split_scores(net, lo, hi, (lowers, uppers), splits, C, e, bd.alpha, bd.beta,
                                             bd.lam_h[0][:, 0, :], hi[0] - lo[0])
    assert dims.shape == worst.shape == parent.shape == (1,)
    lo2, hi2 = halve(lo, hi, dims, np.array([True]))
    assert np.all(lo2[0] == lo[0]) and np.all(hi2[1] == hi[0])
    assert hi2[0, dims[0]] == lo2[1, dims[0]] == 0.0
    S2 = [np.repeat(S, 2, axis=0) for S in splits]
    L2, U2, empty = split_bounds(net, lo2, hi2, S2, ([np.repeat(x, 2, axis=0) for x in lowers],
                                                     [np.repeat(x, 2, axis=0) for x in uppers]))
    kid = lagrangian_bounds(net, lo2, hi2, L2, U2, S2, C, e, [np.repeat(a, 2, axis=0) for a in bd.alpha],
                            [np.repeat(b, 2, axis=0) for b in bd.beta], steps=3)
    inside = np.ones(len(X), dtype=bool)
    for j in range(2):
        for i in np.nonzero(splits[j][0])[0]:
            inside &= splits[j][0, i] * G[j][:, i] >= 0
    y = net.forward(X)[:, 0]
    for k in range(2):
        sub = inside & np.all(X >= lo2[k], axis=1) & np.all(X <= hi2[k], axis=1)
        if sub.any():
            assert not empty[k]
            assert kid.upper[k, 0] >= y[sub].max() - 1e-9
            for j in range(2):
                assert np.all(G[j][sub] >= L2[j][k] - 1e-9) and np.all(G[j][sub] <= U2[j][k] + 1e-9)
