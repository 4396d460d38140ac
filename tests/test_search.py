"""The shared branch-and-bound engine (reluopt.search), the MaxMin objective and the tracker.

Truth for MaxMin problems: every full-dimensional linear region of a tiny net (tests/bruteforce)
and, per region, the LP ``max t  s.t.  t <= C_r y(x) + e_r`` over the box.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

import reluopt
from bruteforce import brute_force, cached_regions
from conftest import random_network
from reluopt import Domain, Problem, ProblemError
from reluopt.methods.bab import bab_maximize_min
from reluopt.problem import MaxMin
from reluopt.search import Frontier, Limits, Node, Search
from reluopt.search.boxes import midpoint_children, splittable
from reluopt.tracker import Tracker


def maxmin_truth(net, lb, ub, C, e) -> float:
    """``max_x min_r (C_r y(x) + e_r)`` over the box, region by region (an LP in (x, t) each)."""
    best = -math.inf
    d = net.input_dim
    for pattern, _ in cached_regions(net, lb, ub):
        pre, (T, t0) = net.region_affine(pattern)
        rows, rhs = [], []
        for (Al, cl), p in zip(pre, pattern, strict=True):
            sign = np.where(np.asarray(p) > 0, -1.0, 1.0)
            rows.append(np.hstack([sign[:, None] * Al, np.zeros((Al.shape[0], 1))]))
            rhs.append(-sign * cl)
        # t - (C T) x <= C t0 + e
        rows.append(np.hstack([-(C @ T), np.ones((C.shape[0], 1))]))
        rhs.append(C @ t0 + e)
        cost = np.zeros(d + 1)
        cost[-1] = -1.0
        res = linprog(cost, A_ub=np.vstack(rows), b_ub=np.concatenate(rhs),
                      bounds=[*zip(lb, ub, strict=True), (None, None)], method="highs")
        if res.status == 0:
            best = max(best, -res.fun)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_maxmin_problem_solved_by_bab_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    net = random_network([2, 8, 8, 3], seed=seed)
    lb, ub = -np.ones(2), np.ones(2)
    C = rng.normal(size=(3, 3))
    e = rng.normal(size=3)
    truth = maxmin_truth(net, lb, ub, C, e)
    problem = Problem(net, Domain(lb, ub), MaxMin(C, e))
    res = reluopt.solve(problem, "bab", time_limit=30, abs_gap=1e-6, rel_gap=0.0)
    assert res.status == "optimal"
    assert res.bound >= truth - 1e-7                      # a true bound
    assert res.value <= truth + 1e-7                      # a real point
    assert res.value == pytest.approx(float(np.min(net.forward(res.x[None]) @ C.T + e)), abs=1e-12)
    assert res.bound - res.value <= 1e-5
    low = bab_maximize_min(net, lb, ub, C, e, time_limit=30, abs_gap=1e-6, rel_gap=0.0)
    assert low.bound >= truth - 1e-7 and low.value == pytest.approx(res.value, abs=2e-6)


def test_maxmin_refused_by_single_row_methods_with_a_pointer_to_bab():
    net = random_network([2, 4, 2], seed=0)
    problem = Problem(net, Domain(-np.ones(2), np.ones(2)), MaxMin(np.eye(2), np.zeros(2)))
    with pytest.raises(ProblemError, match="bab"):
        reluopt.solve(problem, "mip", time_limit=5)
    one_row = Problem(net, Domain(-np.ones(2), np.ones(2)), MaxMin(np.eye(2)[:1], [0.5]))
    res = reluopt.solve(one_row, "mip", time_limit=10)      # one row is a linear objective
    assert res.status == "optimal"


def test_maxmin_rejects_bad_rows():
    with pytest.raises(ProblemError, match="objective rows"):
        MaxMin(np.zeros((0, 2)), np.zeros(0))
    with pytest.raises(ProblemError, match="non-finite"):
        MaxMin([[np.nan, 1.0]], [0.0])
    net = random_network([2, 4, 2], seed=0)
    with pytest.raises(ProblemError, match="2 outputs"):
        Problem(net, Domain(-np.ones(2), np.ones(2)), MaxMin(np.ones((1, 3)), [0.0]))


def test_evaluate_agrees_with_values_and_violation():
    net = random_network([3, 6, 2], seed=5)
    problem = Problem.build(net, -1, 1, minimize="y[0] - 2*y[1]", constraints=["y[0] <= 0.3"],
                            A=[[1.0, 1.0, 0.0]], b=[0.5])
    X = np.random.default_rng(0).uniform(-1.5, 1.5, size=(50, 3))
    values, violation = problem.evaluate(X)
    np.testing.assert_allclose(values, problem.objective_values(X))
    np.testing.assert_allclose(violation, problem.constraint_violation(X))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30), st.floats(-1e6, 1e6),
       st.lists(st.floats(-1e6, 1e6), max_size=5))
def test_frontier_bound_covers_open_pruned_and_retired(bounds, threshold, retired):
    """Whatever is pruned or retired, the frontier's bound is the max over every node it saw."""
    frontier = Frontier()
    for i, b in enumerate(bounds):
        frontier.push(Node(np.zeros(1), np.ones(1), b, depth=i))
    for r in retired:
        frontier.retire(r, "frozen")
    n = frontier.prune(threshold)
    # pruning is lazy (best first): it retires nodes only while the best open one is below
    assert n == (len(bounds) if max(bounds) <= threshold else 0)
    assert frontier.bound() == max([*bounds, *retired])
    popped = frontier.pop(3)
    assert [p.bound for p in popped] == ([] if n else sorted(bounds, reverse=True)[:3])


def test_midpoint_children_and_aspect_cap():
    lo, hi = np.array([[0.0, 0.0]]), np.array([[1.0, 4.0]])
    lo2, hi2 = midpoint_children(lo, hi, np.array([1]))
    np.testing.assert_array_equal(lo2, [[0.0, 0.0], [0.0, 2.0]])
    np.testing.assert_array_equal(hi2, [[1.0, 2.0], [1.0, 4.0]])
    ok = splittable(np.array([[1e-4, 1.0]]), np.ones(2), max_aspect=256.0)
    assert ok.tolist() == [[False, True]]                 # too narrow relative to the widest


class _Countdown:
    """A strategy that never closes: each node has two children with the parent's bound."""

    def __init__(self):
        self.search = None

    def threshold(self):
        return -math.inf

    def stop_status(self, bound):
        return None

    def exhausted_status(self, bound):
        return "optimal"

    def batch_size(self, open_nodes, nodes_left):
        return 1

    def expand(self, nodes, search):
        search.nodes += 2 * len(nodes)
        return [Node(n.lo, n.hi, n.bound, depth=n.depth + 1) for n in nodes for _ in range(2)]

    def on_bound(self, bound):
        pass

    def progress_info(self):
        return {}


def test_engine_honours_node_limit_and_stop_request():
    search = Search(Limits(node_limit=10))
    assert search.run(_Countdown(), [Node(np.zeros(1), np.ones(1), 1.0)]) == "node_limit"
    assert 10 <= search.nodes <= 11 and search.bound() == 1.0
    calls = []
    stop = Search(Limits(should_stop=lambda: calls.append(1) or len(calls) > 3))
    assert stop.run(_Countdown(), [Node(np.zeros(1), np.ones(1), 2.0)]) == "interrupted"
    seen = []
    timed = Search(Limits.of(time_limit=0.05), progress=seen.append, progress_every=0.0)
    assert timed.run(_Countdown(), [Node(np.zeros(1), np.ones(1), 3.0)]) == "time_limit"
    assert seen and {"nodes", "open", "bound", "elapsed"} <= set(seen[-1])


def test_tracker_in_min_sense():
    tracker = Tracker("t", sense="min")
    assert tracker.accept(np.zeros(2), 3.0, "a")
    assert not tracker.accept(np.ones(2), 4.0, "b")          # worse in min sense
    assert tracker.accept(np.ones(2), 2.0, "c")
    assert tracker.improve_bound(1.0, "lp") and not tracker.improve_bound(0.5, "worse")
    assert [h[3] for h in tracker.history] == ["a", "c", "lp"]
    assert tracker.gap == pytest.approx(0.5)


@pytest.mark.parametrize("seed", [0, 1])
def test_pgd_on_objective_rows_is_a_real_point_near_the_optimum(seed):
    """pgd (the falsification attack) returns forward-checked points; on tiny nets its best point
    is close to the brute-force optimum, and ``stop_above`` stops it at the first point above."""
    rng = np.random.default_rng(seed)
    net = random_network([2, 8, 8, 3], seed=seed)
    lb, ub = -np.ones(2), np.ones(2)
    C, e = rng.normal(size=(3, 3)), rng.normal(size=3)
    truth = maxmin_truth(net, lb, ub, C, e)
    problem = Problem(net, Domain(lb, ub), MaxMin(C, e))
    res = reluopt.solve(problem, "pgd", time_limit=2, seed=seed, restarts=16, steps=40)
    assert res.status == "feasible" and res.bound is None
    assert res.value <= truth + 1e-9
    assert res.value >= truth - 0.05 * (1 + abs(truth))
    low = truth - 0.5 * (1 + abs(truth))
    quick = reluopt.solve(problem, "pgd", time_limit=5, seed=seed, stop_above=low)
    assert quick.stats["reached"] and quick.value >= low


def test_pgd_minimises_a_linear_objective_and_rejects_bad_options():
    net = random_network([2, 6, 1], seed=3)
    problem = Problem.build(net, -1, 1, minimize=0)
    res = reluopt.solve(problem, "pgd", time_limit=1, restarts=8, steps=20)
    truth = brute_force(net, -np.ones(2), np.ones(2), np.ones(1), "min")
    assert truth - 1e-9 <= res.value <= truth + 0.05 * (1 + abs(truth))
    with pytest.raises(ProblemError, match="restarts"):
        reluopt.solve(problem, "pgd", restarts=0)
