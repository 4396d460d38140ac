"""ReLU-split branch and bound (``bab-relu``, ``reluopt.search.relu_split``) against brute force.

Truth: every full-dimensional linear region of a small net (tests/bruteforce), for one row and
for the max-min of several rows (tests/test_search.maxmin_truth). The beta-CROWN node bound is
checked as a property: for any slopes in range and any multipliers >= 0 it is at least the
largest value at dense sample points of the node's sub-domain.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reluopt
from bruteforce import brute_force
from conftest import random_network
from reluopt import Domain, Network, Problem, ProblemError
from reluopt.bounds.crown import backsubstitute, crown_bounds, linear_output_bounds
from reluopt.network import Layer
from reluopt.problem import MaxMin, Objective, OutputConstraints
from reluopt.search.relu_bounds import lagrangian_bounds, split_bounds
from test_search import maxmin_truth

SLACK = 1e-6


def _problem(net, c=None, sense="max"):
    d = net.input_dim
    c = np.ones(net.output_dim) if c is None else c
    return Problem(net, Domain(-np.ones(d), np.ones(d)), Objective(c, 0.0, sense))


CASES = [  # (sizes, seed, scale): up to 4 hidden layers x 16 neurons, badly scaled ones included
    ([2, 16, 16, 1], 0, 1.0),
    ([2, 8, 8, 8, 8, 1], 1, 1.0),
    ([2, 8, 8, 8, 8, 1], 2, 1e-3),
    ([2, 10, 10, 10, 1], 3, 40.0),
    ([3, 8, 8, 1], 4, 1.0),
]


@pytest.mark.parametrize(("sizes", "seed", "scale"), CASES)
@pytest.mark.parametrize("sense", ["max", "min"])
def test_bab_relu_bound_never_crosses_brute_force_and_optimal_matches(sizes, seed, scale, sense):
    net = random_network(sizes, seed=seed, scale=scale)
    problem = _problem(net, sense=sense)
    d = net.input_dim
    truth = brute_force(net, -np.ones(d), np.ones(d), np.ones(1), sense)
    res = reluopt.solve(problem, "bab-relu", time_limit=300, seed=seed)   # ends at optimal
    tol = SLACK * (1 + abs(truth))
    if sense == "max":
        assert res.bound >= truth - tol
        assert res.value <= truth + tol
    else:
        assert res.bound <= truth + tol
        assert res.value >= truth - tol
    assert res.value == pytest.approx(float(net.forward(res.x[None])[0, 0]), abs=1e-12)
    assert res.status == "optimal"
    assert abs(res.value - truth) <= max(1e-4, 1e-4 * abs(truth)) + tol


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "scale"), [(0, 1.0), (1, 0.05)])
def test_bab_relu_four_by_sixteen_agrees_with_the_mip(seed, scale):
    # the brute force takes minutes on 4 x 16 neurons: the MIP's certified interval is the truth
    net = random_network([2, 16, 16, 16, 16, 1], seed=seed, scale=scale)
    mip = reluopt.solve(_problem(net), "mip", time_limit=120)
    assert mip.status == "optimal"
    res = reluopt.solve(_problem(net), "bab-relu", time_limit=15)
    tol = 1e-6 * (1 + abs(mip.bound))
    assert res.bound >= mip.value - tol
    assert res.value <= mip.bound + tol
    if res.status == "optimal":
        assert res.value == pytest.approx(mip.value, abs=2e-4 * (1 + abs(mip.value)))


@pytest.mark.parametrize("seed", [0, 1])
def test_bab_relu_maxmin_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    net = random_network([2, 8, 8, 3], seed=seed)
    lb, ub = -np.ones(2), np.ones(2)
    C, e = rng.normal(size=(3, 3)), rng.normal(size=3)
    truth = maxmin_truth(net, lb, ub, C, e)
    res = reluopt.solve(Problem(net, Domain(lb, ub), MaxMin(C, e)), "bab-relu", time_limit=20, node_limit=20000)
    assert res.bound >= truth - SLACK * (1 + abs(truth))
    assert res.value <= truth + 1e-9
    assert res.value == pytest.approx(float(np.min(net.forward(res.x[None]) @ C.T + e)), abs=1e-12)


def test_root_bound_without_optimisation_is_crown():
    net = random_network([3, 12, 12, 1], seed=5)
    lo, hi = -np.ones((1, 3)), np.ones((1, 3))
    splits = [np.zeros((1, n), dtype=np.int8) for n in net.hidden_sizes]
    lowers, uppers, empty = split_bounds(net, lo, hi, splits)
    cb = crown_bounds(net, lo[0], hi[0])
    for a, b in zip(lowers, cb.lower, strict=True):
        np.testing.assert_allclose(a, b)
    C = np.ones((1, 1))
    bd = lagrangian_bounds(net, lo, hi, lowers, uppers, splits, C, np.zeros(1), steps=0)
    ref = linear_output_bounds(net, lo, hi, C, cb)[0]
    assert not empty[0]
    assert bd.upper[0, 0] == pytest.approx(ref[0, 0], rel=1e-9)
    # optimising never loosens the root bound
    tuned = lagrangian_bounds(net, lo, hi, lowers, uppers, splits, C, np.zeros(1), steps=20)
    assert tuned.upper[0, 0] <= bd.upper[0, 0]


def test_g_terms_of_the_kernel_add_the_linear_term():
    net = random_network([2, 5, 4, 1], seed=2)
    cb = crown_bounds(net, -np.ones(2), np.ones(2))
    lines = cb.relaxation_lines(net)
    spec = np.ones((1, 1, 1))
    t = [np.zeros((1, 1, 5)), np.full((1, 1, 4), 0.5)]
    lam0, c0, _, _ = backsubstitute(net, 2, spec, lines)
    lam1, c1, _, _ = backsubstitute(net, 2, spec, lines, g_terms=t)
    # 0.5 * sum(g_1) = 0.5 * (1^T W) h_0 + 0.5 * sum(b): pushed back through layer 0's lines
    lamg, cg, _, _ = backsubstitute(net, 1, 0.5 * np.ones((1, 1, 4)), lines)
    np.testing.assert_allclose(lam1 - lam0, lamg, atol=1e-12)
    np.testing.assert_allclose(c1 - c0, cg, atol=1e-12)


@settings(deadline=None, max_examples=30)
@given(seed=st.integers(0, 10_000), depth=st.integers(1, 3), width=st.integers(3, 10),
       n_splits=st.integers(0, 6), log_beta=st.floats(-3, 2), scale=st.sampled_from([1e-2, 1.0, 10.0]))
def test_any_alpha_and_beta_give_a_bound_above_the_subdomain_max(seed, depth, width, n_splits, log_beta, scale):
    rng = np.random.default_rng(seed)
    d = 2
    net = random_network([d] + [width] * depth + [2], seed=seed, scale=scale)
    lo, hi = -np.ones((1, d)), np.ones((1, d))
    X = rng.uniform(-1, 1, size=(4000, d))
    G = net.preactivations(X)
    splits = [np.zeros((1, width), dtype=np.int8) for _ in range(depth)]
    for _ in range(n_splits):
        j, i = rng.integers(depth), rng.integers(width)
        splits[j][0, i] = rng.choice([-1, 1])
    inside = np.ones(len(X), dtype=bool)
    for j in range(depth):
        for i in np.nonzero(splits[j][0])[0]:
            inside &= splits[j][0, i] * G[j][:, i] >= 0
    lowers, uppers, empty = split_bounds(net, lo, hi, splits)
    if inside.any():
        assert not empty[0]
        for j in range(depth):     # neuron bounds hold on the sub-domain
            assert np.all(G[j][inside] >= lowers[j][0] - 1e-9) and np.all(G[j][inside] <= uppers[j][0] + 1e-9)
    C = rng.normal(size=(2, 2))
    e = rng.normal(size=2)
    alpha = [rng.uniform(0, 1, size=(1, 2, width)) for _ in range(depth)]
    beta = [np.abs(rng.normal(size=(1, 2, width))) * 10 ** log_beta for _ in range(depth)]
    for steps in (0, 3):
        bd = lagrangian_bounds(net, lo, hi, lowers, uppers, splits, C, e, alpha, beta, steps=steps)
        if inside.any():
            values = net.forward(X[inside]) @ C.T + e
            assert np.all(bd.upper[0] >= values.max(axis=0) - 1e-9 * (1 + np.abs(values).max()))
        assert all(np.all((a >= 0) & (a <= 1)) for a in bd.alpha)
        assert all(np.all(b >= 0) for b in bd.beta)


def test_batched_nodes_are_bounded_as_if_alone():
    net = random_network([3, 8, 8, 1], seed=7)
    rng = np.random.default_rng(0)
    splits = [rng.integers(-1, 2, size=(4, 8)).astype(np.int8) * (rng.random((4, 8)) < 0.2) for _ in range(2)]
    lo, hi = -np.ones((4, 3)), np.ones((4, 3))
    lowers, uppers, _ = split_bounds(net, lo, hi, splits)
    bd = lagrangian_bounds(net, lo, hi, lowers, uppers, splits, np.ones((1, 1)), np.zeros(1), steps=4)
    for b in range(4):
        one = [S[b:b + 1] for S in splits]
        lw, up, _ = split_bounds(net, lo[:1], hi[:1], one)
        single = lagrangian_bounds(net, lo[:1], hi[:1], lw, up, one, np.ones((1, 1)), np.zeros(1), steps=4)
        assert single.upper[0, 0] == pytest.approx(bd.upper[b, 0], rel=1e-9, abs=1e-12)


def test_bab_relu_refuses_what_it_cannot_take():
    net = random_network([2, 6, 1], seed=0)
    # constraints are taken (Lagrangian terms, node LPs: tests/test_relu_split_constraints.py)
    dom = Domain(-np.ones(2), np.ones(2), A=np.ones((1, 2)), b=np.ones(1))
    cons = OutputConstraints(np.ones((1, 1)), np.ones(1))
    for problem in (Problem(net, dom, Objective(np.ones(1))),
                    Problem(net, Domain(-np.ones(2), np.ones(2)), Objective(np.ones(1)), cons)):
        truth = brute_force(net, -np.ones(2), np.ones(2), np.ones(1), "max", cons.C if problem.constraints else None,
                            cons.e if problem.constraints else None, problem.domain.A, problem.domain.b)
        res = reluopt.solve(problem, "bab-relu", time_limit=30)
        assert res.status == "optimal" and abs(res.value - truth) <= 1e-4 * (1 + abs(truth))
    with pytest.raises(ProblemError, match="bab-relu"):
        reluopt.solve(_problem(net), "bab-relu", no_such_option=1)
    with pytest.raises(ProblemError, match="branching"):
        reluopt.solve(_problem(net), "bab-relu", branching="widest")
    leaky = Network((Layer(np.ones((3, 2)), np.zeros(3), "leaky_relu", None, 0.1),
                     Layer(np.ones((1, 3)), np.zeros(1), "identity")))
    with pytest.raises(ProblemError, match="ReLU"):
        reluopt.solve(_problem(leaky), "bab-relu")


def test_bab_relu_limits_are_anytime_and_sound():
    net = random_network([6, 24, 24, 1], seed=11)
    truth = reluopt.solve(_problem(net), "mip", time_limit=60)
    res = reluopt.solve(_problem(net), "bab-relu", node_limit=40, leaf_mip=False)
    assert res.status in ("node_limit", "optimal")
    assert res.bound >= truth.value - SLACK * (1 + abs(truth.value))
    assert res.value <= truth.bound + SLACK * (1 + abs(truth.bound))
    assert math.isfinite(res.bound)
    babsr = reluopt.solve(_problem(net), "bab-relu", time_limit=5, branching="babsr")
    assert babsr.bound >= truth.value - SLACK * (1 + abs(truth.value))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_node_bound_is_never_below_the_lp_of_the_node(seed):
    # the LP of the node (triangle relaxation on its neuron bounds, split neurons exact with their
    # constraint) is the sound fallback: by weak duality every beta-CROWN bound lies above it
    from reluopt.milp.backends import get_backend
    from reluopt.milp.formulation import build_problem_model
    from reluopt.search.leaf import _inactive_rows

    net = random_network([3, 10, 10, 1], seed=seed)
    rng = np.random.default_rng(seed)
    lo, hi = -np.ones((1, 3)), np.ones((1, 3))
    root = crown_bounds(net, lo[0], hi[0])
    phases = net.preactivations(rng.uniform(-1, 1, size=(1, 3)))     # a point in the sub-domain
    splits = []
    for L, U, g in zip(root.lower, root.upper, phases, strict=True):
        pick = ((L < 0) & (U > 0)) & (rng.random(L.shape) < 0.4)
        splits.append(np.where(pick, np.where(g >= 0, 1, -1), 0).astype(np.int8))
    lowers, uppers, empty = split_bounds(net, lo, hi, splits, (root.lower, root.upper))
    assert not empty[0]
    node = crown_bounds(net, lo[0], hi[0])
    node.lower, node.upper = lowers, uppers
    model = build_problem_model(_problem(net), node).relaxed()
    _inactive_rows(model, net, [S[0] < 0 for S in splits])
    out = get_backend("highs").solve(model, time_limit=30)
    assert out.status == "optimal"
    lp = float(out.bound)
    C = np.ones((1, 1))
    plain = lagrangian_bounds(net, lo, hi, lowers, uppers, splits, C, np.zeros(1), steps=0).upper[0, 0]
    tuned = lagrangian_bounds(net, lo, hi, lowers, uppers, splits, C, np.zeros(1), steps=100).upper[0, 0]
    tol = 1e-6 * (1 + abs(lp))
    assert plain >= lp - tol and tuned >= lp - tol
    assert tuned <= plain


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fsb_estimate_is_the_unrounded_beta_crown_value(seed):
    # estimate_bounds (the FSB score) is lagrangian_bounds' steps=0 value before rounding and the
    # interval cut: never below the certified bound, and equal to it up to the margin when uncut
    from reluopt.search.relu_bounds import estimate_bounds

    net = random_network([3, 10, 10, 2], seed=seed)
    rng = np.random.default_rng(seed)
    B = 6
    lo, hi = -np.ones((B, 3)), np.ones((B, 3))
    splits = [(rng.integers(-1, 2, size=(B, 10)) * (rng.random((B, 10)) < 0.3)).astype(np.int8) for _ in range(2)]
    lowers, uppers, _ = split_bounds(net, lo, hi, splits)
    C, e = rng.normal(size=(2, 2)), rng.normal(size=2)
    alpha = [rng.uniform(0, 1, size=(B, 2, 10)) for _ in range(2)]
    beta = [np.abs(rng.normal(size=(B, 2, 10))) for _ in range(2)]
    est = estimate_bounds(net, lo, hi, lowers, uppers, splits, C, e, alpha, beta)
    bd = lagrangian_bounds(net, lo, hi, lowers, uppers, splits, C, e, alpha, beta, steps=0)
    tol = 1e-7 * (1 + np.abs(est))
    assert est.shape == (B, 2)
    assert np.all(bd.upper <= est + tol)
    # CROWN's own slopes, no multipliers: the interval cut rarely applies, the values agree
    est0 = estimate_bounds(net, lo, hi, lowers, uppers, splits, C, e)
    bd0 = lagrangian_bounds(net, lo, hi, lowers, uppers, splits, C, e, steps=0)
    assert np.all(bd0.upper <= est0 + tol)
    assert np.mean(np.abs(bd0.upper - est0) <= tol) >= 0.5


@pytest.mark.parametrize("seed", [0, 1])
def test_concretise_without_points_matches_the_maximisers(seed):
    from reluopt.bounds.crown import concretise_upper

    rng = np.random.default_rng(seed)
    lam = rng.normal(size=(4, 5, 7)) * 10.0 ** rng.integers(-3, 4, size=(4, 5, 7))
    const, mag = rng.normal(size=(4, 5)), np.abs(rng.normal(size=(4, 5)))
    lo = rng.normal(size=(4, 7))
    hi = lo + np.abs(rng.normal(size=(4, 7)))
    v1, x1, m1 = concretise_upper(lam, const, mag, lo, hi)
    v2, x2, m2 = concretise_upper(lam, const, mag, lo, hi, points=False)
    assert x2 is None and x1.shape == (4, 5, 7)
    np.testing.assert_allclose(v2, v1, rtol=0, atol=1e-12 * float(np.max(m1)))
    np.testing.assert_allclose(m2, m1, rtol=1e-12)
    # and neither is below the brute-force maximum over the box corners' mixes
    X = lo[:, None, :] + rng.random((4, 200, 7)) * (hi - lo)[:, None, :]
    vals = np.einsum("bsd,bnd->bsn", lam, X) + const[:, :, None]
    assert np.all(v2[:, :, None] >= vals - 1e-9 * m2[:, :, None])


def test_relu_relaxation_matches_its_definition():
    from reluopt.activations.relu import ReLU

    rng = np.random.default_rng(3)
    L = rng.normal(size=(30, 20))
    U = L + np.abs(rng.normal(size=(30, 20))) * (rng.random((30, 20)) < 0.8)
    L[0, :3], U[0, :3] = [0.0, -1.0, -1.0], [1.0, 0.0, 1.0]        # kink on a bound, U = -L
    for alpha in (None, rng.uniform(-0.5, 1.5, size=L.shape)):
        a_lo, b_lo, a_up, b_up = ReLU().relaxation(L, U, alpha)
        for i, j in np.ndindex(L.shape):
            lo_, up_ = L[i, j], U[i, j]
            if lo_ >= 0:
                want = (1.0, 0.0, 1.0, 0.0)
            elif up_ <= 0:
                want = (0.0, 0.0, 0.0, 0.0)
            else:
                s = up_ / (up_ - lo_)
                a = float(up_ > -lo_) if alpha is None else min(max(alpha[i, j], 0.0), 1.0)
                want = (a, 0.0, s, -s * lo_)
            assert (a_lo[i, j], b_lo[i, j], a_up[i, j], b_up[i, j]) == pytest.approx(want, abs=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_fsb_children_from_the_parents_lines_equal_the_childrens_own(seed):
    # estimate_splits patches the parents' lines at the split neuron; bounding the children's
    # clamped neuron bounds from scratch (estimate_bounds, the new split's multiplier 0) must
    # give the same scores
    from reluopt.search.relu_bounds import estimate_bounds, estimate_splits

    net = random_network([3, 10, 10, 1], seed=seed)
    rng = np.random.default_rng(seed)
    K, c = 3, 4
    lo, hi = -np.ones((K, 3)), np.ones((K, 3))
    splits = [(rng.integers(-1, 2, size=(K, 10)) * (rng.random((K, 10)) < 0.2)).astype(np.int8) for _ in range(2)]
    lowers, uppers, _ = split_bounds(net, lo, hi, splits)
    C, e = np.ones((1, 1)), np.zeros(1)
    alpha = [rng.uniform(0, 1, size=(K, 1, 10)) for _ in range(2)]
    beta = [np.abs(rng.normal(size=(K, 1, 10))) for _ in range(2)]
    layer, neuron = np.zeros((K, c), dtype=int), np.zeros((K, c), dtype=int)
    for k in range(K):
        free = [(j, i) for j in range(2) for i in range(10) if lowers[j][k, i] < 0 < uppers[j][k, i]]
        pick = rng.choice(len(free), size=c, replace=len(free) < c)
        layer[k], neuron[k] = zip(*[free[p] for p in pick], strict=True)
    got = estimate_splits(net, lo, hi, lowers, uppers, splits, C, e, alpha, beta, layer, neuron)
    for k in range(K):
        for q in range(c):
            for ph, sign in enumerate((1, -1)):
                S = [x[k:k + 1].copy() for x in splits]
                S[layer[k, q]][0, neuron[k, q]] = sign
                Lc = [np.where(Sj > 0, np.maximum(x[k:k + 1], 0), x[k:k + 1]) for Sj, x in zip(S, lowers, strict=True)]
                Uc = [np.where(Sj < 0, np.minimum(x[k:k + 1], 0), x[k:k + 1]) for Sj, x in zip(S, uppers, strict=True)]
                want = estimate_bounds(net, lo[:1], hi[:1], Lc, Uc, S, C, e, [a[k:k + 1] for a in alpha],
                                       [b[k:k + 1] * (splits[j][k:k + 1, None, :] != 0) for j, b in enumerate(beta)])
                assert got[k, q, ph] == pytest.approx(want[0, 0], rel=1e-12, abs=1e-12)
