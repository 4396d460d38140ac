"""ReLU-split branch and bound (``bab-relu``) with input constraints ``A x <= b`` and output
constraints ``C_out y <= e_out``, against brute force.

Truth: every full-dimensional linear region of a tiny net, one LP per region with the
constraints (``scipy.optimize.linprog``, tests/bruteforce.brute_force); ``None`` when no
region holds a feasible point. The Lagrangian node bound is checked as a property: for any
slopes in range and any multipliers ``beta, mu, nu >= 0`` it is at least the largest value at
dense sample points of the node's feasible sub-domain.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reluopt
from bruteforce import brute_force, run_case
from conftest import random_network
from reluopt import Domain, Problem
from reluopt.methods.portfolio import BAB_MAX_DIM, choose_exact
from reluopt.problem import MaxMin, Objective, OutputConstraints
from reluopt.search.lagrange import Constraints
from reluopt.search.relu_bounds import lagrangian_bounds, split_bounds

SLACK = 1e-6
GAP = 1e-4

CASES = [([2, 8, 1], 0), ([2, 8, 8, 1], 1), ([3, 6, 6, 2], 2), ([2, 8, 8, 2], 3), ([3, 8, 8, 1], 4),
         ([2, 6, 6, 3], 5)]


def _case(sizes, seed, out_slack=(0.05, 0.5)):
    """A net, a box and constraints that a random point of the box satisfies (so feasible):
    two input rows and one output row, each with a random slack at that point."""
    net = random_network(sizes, seed=seed)
    rng = np.random.default_rng(seed + 100)
    d, m = net.input_dim, net.output_dim
    lb, ub = -np.ones(d), np.ones(d)
    x0 = rng.uniform(-0.8, 0.8, size=d)
    A = rng.normal(size=(2, d))
    b = A @ x0 + rng.uniform(0.05, 0.5, size=2)
    C = rng.normal(size=(1, m))
    e = C @ net.forward(x0[None])[0] + rng.uniform(*out_slack, size=1)
    c = rng.normal(size=m)
    return net, lb, ub, c, A, b, C, e


def _problem(net, lb, ub, c, A, b, C, e, sense="max"):
    return Problem(net, Domain(lb, ub, A, b), Objective(c, 0.0, sense), OutputConstraints(C, e))


def _check(res, problem, truth, sense):
    """``optimal`` at the brute-force optimum, a feasible forward-checked point, a bound on the
    right side of the truth."""
    s = 1.0 if sense == "max" else -1.0
    tol = SLACK * (1 + abs(truth))
    assert res.status == "optimal", res.status
    assert s * (res.bound - truth) >= -tol, (res.bound, truth)
    assert problem.is_feasible(res.x[None])[0]
    assert res.value == pytest.approx(float(problem.objective_values(res.x)[0]), rel=1e-12, abs=1e-12)
    allowed = max(GAP, GAP * abs(truth)) + 2 * tol
    assert abs(res.value - truth) <= allowed, (res.value, truth)


@pytest.mark.parametrize(("sizes", "seed"), CASES)
@pytest.mark.parametrize("leaf_mip", [True, False])
def test_constrained_optimum_matches_brute_force(sizes, seed, leaf_mip):
    net, lb, ub, c, A, b, C, e = _case(sizes, seed)
    sense = "max" if seed % 2 == 0 else "min"
    problem = _problem(net, lb, ub, c, A, b, C, e, sense)
    truth = brute_force(net, lb, ub, c, sense, C, e, A, b)
    assert truth is not None
    res = reluopt.solve(problem, "bab-relu", time_limit=120, seed=seed, leaf_mip=leaf_mip)
    _check(res, problem, truth, sense)


@pytest.mark.parametrize(("sizes", "seed"), CASES[:4])
def test_maxmin_rows_with_constraints(sizes, seed):
    # a MaxMin objective: the brute force of max min_r is the max over t of t <= each row, i.e.
    # the largest value over the regions; checked here against a dense grid's feasible points
    net, lb, ub, _, A, b, C, e = _case(sizes, seed)
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(2, net.output_dim))
    problem = Problem(net, Domain(lb, ub, A, b), MaxMin(rows, np.zeros(2)), OutputConstraints(C, e))
    res = reluopt.solve(problem, "bab-relu", time_limit=120, seed=seed, leaf_mip=False)
    assert res.status in ("optimal", "feasible")
    g = np.linspace(-1, 1, 161)
    X = np.stack(np.meshgrid(*[g] * net.input_dim), axis=-1).reshape(-1, net.input_dim)
    feasible = problem.is_feasible(X, 0.0)
    best = float(np.max(problem.objective_values(X[feasible])))
    assert res.bound >= best - SLACK * (1 + abs(best))
    assert problem.is_feasible(res.x[None])[0]
    assert res.value >= best - 0.05 * (1 + abs(best))     # the grid is only a lower estimate


@pytest.mark.parametrize(("sizes", "seed"), CASES)
@pytest.mark.parametrize("leaf_mip", [True, False])
def test_infeasible_constraints_end_infeasible(sizes, seed, leaf_mip):
    # the output row is pushed below its minimum over the input-feasible set (by brute force):
    # no point satisfies both, although each set alone is non-empty
    net, lb, ub, c, A, b, C, _ = _case(sizes, seed)
    low = brute_force(net, lb, ub, C[0], "min", A=A, b=b)
    e = np.array([low - 0.05])
    assert brute_force(net, lb, ub, c, "max", C, e, A, b) is None
    problem = _problem(net, lb, ub, c, A, b, C, e)
    res = reluopt.solve(problem, "bab-relu", time_limit=120, seed=seed, leaf_mip=leaf_mip)
    assert res.status == "infeasible"
    assert res.x is None and res.bound == -math.inf
    # just above the minimum the problem is feasible in a thin sliver: a point is found
    e = np.array([low + 0.02])
    problem = _problem(net, lb, ub, c, A, b, C, e)
    truth = brute_force(net, lb, ub, c, "max", C, e, A, b)
    res = reluopt.solve(problem, "bab-relu", time_limit=120, seed=seed, leaf_mip=leaf_mip)
    _check(res, problem, truth, "max")


def test_contradictory_input_rows_are_infeasible():
    net = random_network([3, 8, 8, 1], seed=7)
    a = np.array([1.0, -0.5, 0.25])
    A, b = np.stack([a, -a]), np.array([-0.2, -0.2])          # a.x <= -0.2 and a.x >= 0.2
    problem = Problem(net, Domain(-np.ones(3), np.ones(3), A, b), Objective(np.ones(1)))
    assert brute_force(net, -np.ones(3), np.ones(3), np.ones(1), "max", A=A, b=b) is None
    res = reluopt.solve(problem, "bab-relu", time_limit=60, leaf_mip=False)
    assert res.status == "infeasible"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), d=st.integers(2, 3), w=st.integers(2, 7), deep=st.booleans(),
       m=st.integers(1, 2), half=st.floats(0.1, 3.0), k=st.integers(0, 2), p=st.integers(0, 2),
       leaf=st.booleans())
def test_random_constrained_problems_match_brute_force(seed, d, w, deep, m, half, k, p, leaf):
    rng = np.random.default_rng(seed)
    sizes = [d, w, w, m] if deep else [d, w, m]
    net = random_network(sizes, seed=seed)
    centre = rng.normal(size=d)
    lb, ub = centre - half, centre + half
    X = rng.uniform(lb, ub, size=(64, d))
    Y = net.forward(X)
    A = b = C = e = None
    if p:       # rows through random quantiles of the samples: cut, sometimes emptied by the output rows
        A = rng.normal(size=(p, d))
        b = np.array([np.quantile(X @ a, q) for a, q in zip(A, rng.uniform(0.1, 0.9, size=p), strict=True)])
    if k:
        C = rng.normal(size=(k, m))
        e = np.array([np.quantile(Y @ r, q) for r, q in zip(C, rng.uniform(0.0, 0.8, size=k), strict=True)])
    c = rng.normal(size=m)
    problem = Problem(net, Domain(lb, ub, A, b), Objective(c), None if C is None else OutputConstraints(C, e))
    truth = brute_force(net, lb, ub, c, "max", C, e, A, b)
    res = reluopt.solve(problem, "bab-relu", time_limit=120, seed=seed % 1000, leaf_mip=leaf)
    if truth is None:
        assert res.status == "infeasible"
        return
    tol = SLACK * (1 + abs(truth))
    assert res.status != "infeasible"
    assert res.bound >= truth - tol
    if res.x is not None:
        assert problem.is_feasible(res.x[None])[0]
        assert res.value <= truth + GAP * (1 + abs(truth))
    if res.status == "optimal":
        assert res.value >= truth - max(GAP, GAP * abs(truth)) - 2 * tol


@pytest.mark.parametrize("seed", range(12))
def test_differential_harness_cases(seed):
    # the harness's random problems (badly scaled nets, flat boxes, polytopes that cut or empty
    # the box, output rows that may be infeasible), bab-relu alone, checked against brute force
    rep = run_case(seed, order=["bab-relu"], size="tiny", time_limit=20.0)
    rec = rep["calls"][0]
    assert rec["outcome"] not in ("crash", "cert_error", "refused"), rec.get("error")
    bad = [k for k in rep["kinds"] if k in ("unsound", "status", "truth", "crash", "cert_error")]
    assert not bad, (rep["describe"], rec)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lagrangian_node_bound_is_valid_for_any_multipliers(seed):
    net, lb, ub, c, A, b, C, e = _case([2, 10, 10, 2], seed)
    rng = np.random.default_rng(seed)
    B = 5
    lo, hi = np.tile(lb, (B, 1)), np.tile(ub, (B, 1))
    splits = [(rng.integers(-1, 2, size=(B, 10)) * (rng.random((B, 10)) < 0.3)).astype(np.int8) for _ in range(2)]
    lowers, uppers, empty = split_bounds(net, lo, hi, splits)
    cons = Constraints(C, e, A, b)
    rows, off = np.stack([c, -c]), np.array([0.3, -0.1])
    g = np.linspace(-1, 1, 301)
    X = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    pre = net.preactivations(X)
    feasible = (np.max(X @ A.T - b, axis=1) <= 0) & (np.max(net.forward(X) @ C.T - e, axis=1) <= 0)
    values = net.forward(X) @ rows.T + off
    for trial in range(4):
        alpha = [rng.uniform(0, 1, size=(B, 2, 10)) for _ in range(2)]
        beta = [np.abs(rng.normal(size=(B, 2, 10))) * 3 for _ in range(2)]
        mu = np.abs(rng.normal(size=(B, 2, 1))) * 3 * trial
        nu = np.abs(rng.normal(size=(B, 2, 2))) * 3 * trial
        for steps in (0, 6):
            bd = lagrangian_bounds(net, lo, hi, lowers, uppers, splits, rows, off, alpha, beta, steps=steps,
                                   cons=cons, mu=mu, nu=nu)
            for i in range(B):
                inside = feasible.copy()
                for S, G in zip(splits, pre, strict=True):
                    inside &= np.all((S[i] == 0) | (S[i] * G >= 0), axis=1)
                if empty[i] or not inside.any():
                    continue
                best = values[inside].max(axis=0)
                assert np.all(bd.upper[i] >= best - 1e-9 * (1 + np.abs(best))), (seed, trial, steps, i)
    # zero multipliers and no steps: the unconstrained bound, up to the rounding margin
    plain = lagrangian_bounds(net, lo, hi, lowers, uppers, splits, rows, off, steps=0)
    zero = lagrangian_bounds(net, lo, hi, lowers, uppers, splits, rows, off, steps=0, cons=cons)
    assert np.allclose(zero.upper, plain.upper, rtol=1e-7, atol=1e-9)
    # the tuned multipliers help: never looser than the warm start they began from
    tuned = lagrangian_bounds(net, lo, hi, lowers, uppers, splits, rows, off, steps=30, cons=cons)
    assert np.all(tuned.upper <= zero.upper + 1e-7 * (1 + np.abs(zero.upper)))
    assert tuned.mu is not None and tuned.mu.shape == (B, 2, 1) and np.all(tuned.mu >= 0)
    assert tuned.nu is not None and tuned.nu.shape == (B, 2, 2) and np.all(tuned.nu >= 0)


@pytest.mark.parametrize("seed", [0, 1])
def test_auto_on_a_constrained_problem_above_the_limit_takes_relu_splitting(seed):
    """20 inputs (two free), a budget row on the free ones and an output row: ``auto`` takes
    ReLU splitting (the rule, benchmarks/results/relu_constraints.md) and its optimum is the
    brute force on the folded 2-input net."""
    from test_verify import _fold_inputs

    net = random_network([20, 8, 8, 2], seed=seed)
    rng = np.random.default_rng(seed)
    free = np.array([3, 11])
    x0 = rng.uniform(-1, 1, 20)
    lb, ub = x0.copy(), x0.copy()
    lb[free], ub[free] = -1.0, 1.0
    A = np.zeros((1, 20))
    A[0, free] = 1.0
    b = np.array([0.4])
    small = _fold_inputs(net, free, x0[np.setdiff1d(np.arange(20), free)])
    X = rng.uniform(-1, 1, size=(512, 2))
    C, e = np.array([[0.0, 1.0]]), np.array([float(np.median(small.forward(X)[:, 1]))])
    c = np.array([1.0, 0.0])
    truth = brute_force(small, -np.ones(2), np.ones(2), c, "max", C, e, A[:, free], b)
    problem = Problem(net, Domain(lb, ub, A, b), Objective(c), OutputConstraints(C, e))
    assert 20 > BAB_MAX_DIM and choose_exact(problem) == "bab-relu"
    res = reluopt.solve(problem, "auto", time_limit=60)
    assert res.stats["exact"] == "bab-relu"
    _check(res, problem, truth, "max")


def test_constrained_bab_relu_on_a_cluster_matches_brute_force():
    # the sub-trees farmed out to workers carry the multipliers; their empty nodes and points
    # are merged on the driver (search.distributed)
    pytest.importorskip("distributed")
    from reluopt.search.cluster import Cluster

    net, lb, ub, c, A, b, C, e = _case([2, 12, 12, 1], 11)
    problem = _problem(net, lb, ub, c, A, b, C, e)
    truth = brute_force(net, lb, ub, c, "max", C, e, A, b)
    with Cluster(workers=2, processes=False, warmup_seconds=0.0, task_seconds=0.05, task_nodes=2) as cluster:
        res = reluopt.solve(problem, "bab-relu", workers=cluster, time_limit=120, leaf_mip=False)
    _check(res, problem, truth, "max")
    assert res.stats["cluster"]["tasks"] >= 1 and res.stats["cluster"]["failed"] == 0
