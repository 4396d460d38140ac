"""Relax-and-Walk: values are forward passes, tiny optima, constraints, seeds, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import random_network
from reluopt import Problem, ProblemError
from reluopt.methods import solve
from reluopt.methods.region import RegionLP
from reluopt.methods.walk import walk
from reluopt.result import FEASIBLE
from reluopt.tracker import Anytime
from test_region import brute_optimum


@pytest.mark.parametrize("kw", [dict(maximize=0), dict(minimize=0),
                                dict(maximize=0, constraints=["y[0] <= 0.1"])])
def test_walk_finds_tiny_optima(tiny_net, kw):
    p = Problem.build(tiny_net, -1, 1, **kw)
    r = solve(p, "walk", time_limit=120, seed=0, max_walks=60)   # a walk count, not the clock, ends it
    assert r.status == FEASIBLE
    assert p.is_feasible(r.x)[0]
    assert r.value == pytest.approx(p.objective_values(r.x)[0], abs=1e-12)
    assert r.value == pytest.approx(brute_optimum(p), abs=1e-6)
    assert r.stats["relaxations"] >= 1
    sources = {src for *_, src in r.history}
    assert sources <= {"walk", "walk-sample", "walk-relax", "walk-restricted", "walk-random"}


def test_a_walk_improves_monotonically_and_moves_between_regions():
    net = random_network([2, 16, 16, 1], seed=8)
    p = Problem.build(net, -1, 1, maximize=0)
    anytime = Anytime(p, "walk", 30)
    region = RegionLP(p)
    best, steps = walk(p, region, anytime, np.array([-0.9, -0.9]))
    values = [v for _, v, _, _ in anytime.history]
    assert values == sorted(values)
    assert best == pytest.approx(anytime.value, abs=1e-9)
    assert steps >= 1
    # the walk ends at a region optimum no worse than the start region's
    start = region.solve_point(np.array([-0.9, -0.9]))
    assert best >= start.lp_value - 1e-9


def test_walk_with_input_constraints(tiny_net):
    A = np.array([[1.0, 1.0]])
    p = Problem.build(tiny_net, -1, 1, maximize=0, A=A, b=np.array([-0.3]))
    r = solve(p, "walk", time_limit=1.0)
    assert r.x @ A[0] <= -0.3 + 1e-6
    assert r.value == pytest.approx(brute_optimum(p), abs=1e-6)


def test_walk_seeds_and_time_limit():
    net = random_network([10, 60, 60, 1], seed=3)
    p = Problem.build(net, 0, 1, maximize=0)
    r = solve(p, "walk", time_limit=0.5, seed=4, stall_walks=None)
    assert r.seconds < 30                        # it returns: generous (the overshoot: benchmarks)
    assert r.stats["stopped"] == "time_limit"    # without the stall rule only the limit ends it
    assert r.value == pytest.approx(p.objective_values(r.x)[0], abs=1e-12)


def test_bad_inputs(tiny_net):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    with pytest.raises(ProblemError, match="time limit must be positive"):
        solve(p, "walk", time_limit=-2)
    bad = Problem.build(tiny_net, -1, 1, maximize=0, A=np.array([[1.0, 0], [-1.0, 0]]),
                        b=np.array([-0.5, -0.5]))
    assert solve(bad, "walk", time_limit=1).status == "infeasible"  # an answer, not bad input
    unbounded = Problem.build(tiny_net, -np.inf, 1, maximize=0)
    with pytest.raises(ProblemError, match="bounded box"):
        solve(unbounded, "walk", time_limit=1)
