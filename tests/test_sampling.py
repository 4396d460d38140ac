"""Sampling LP / MIP (Perakis-Tsiourvas) against brute-force optima on tiny nets."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import random_network
from reluopt import Problem, ProblemError
from reluopt.methods import solve
from reluopt.result import FEASIBLE
from test_region import brute_optimum

CASES = [
    dict(maximize=0),
    dict(minimize=0),
    dict(maximize=0, constraints=["y[0] <= 0.1"]),
]


@pytest.mark.parametrize("kw", CASES)
@pytest.mark.parametrize("design", ["uniform", "lhs", "sobol"])
def test_sampling_lp_finds_the_brute_force_optimum(tiny_net, kw, design):
    p = Problem.build(tiny_net, -1, 1, **kw)
    truth = brute_optimum(p)
    r = solve(p, "sampling", time_limit=30, max_samples=2000, design=design, seed=1)
    assert r.status == FEASIBLE
    assert r.value == pytest.approx(truth, abs=1e-7)
    assert r.value == pytest.approx(p.objective_values(r.x)[0], abs=1e-12)
    assert p.is_feasible(r.x)[0]
    assert r.stats["samples"] == 2000
    assert r.stats["region_lps"] + r.stats["duplicates"] == 2000
    assert r.history and r.history[-1][1] == pytest.approx(r.value)


def test_sampling_with_input_constraints(tiny_net):
    A = np.array([[1.0, 1.0]])
    p = Problem.build(tiny_net, -1, 1, maximize=0, A=A, b=np.array([-0.3]))
    r = solve(p, "sampling", time_limit=30, max_samples=1000)
    assert r.value == pytest.approx(brute_optimum(p), abs=1e-7)
    assert r.x @ A[0] <= -0.3 + 1e-6


@pytest.mark.parametrize("kw", CASES)
def test_sampling_mip_finds_the_optimum(tiny_net, kw):
    p = Problem.build(tiny_net, -1, 1, **kw)
    r = solve(p, "sampling-mip", time_limit=30, max_samples=64, seed=0)
    assert r.status == FEASIBLE
    assert r.value == pytest.approx(brute_optimum(p), abs=1e-6)
    assert p.is_feasible(r.x)[0]
    assert r.value == pytest.approx(p.objective_values(r.x)[0], abs=1e-12)


def test_neighbourhood_mip_improves_a_poor_start():
    net = random_network([3, 12, 12, 1], seed=11)
    p = Problem.build(net, -1, 1, maximize=0)
    # few samples and an unrestrictive gap rule: the neighbourhood search does the work
    r1 = solve(p, "sampling", time_limit=30, max_samples=4, seed=2)
    r2 = solve(p, "sampling-mip", time_limit=30, max_samples=4, seed=2, gap_rule=10.0)
    assert r2.stats["neighbourhood_mips"] >= 1
    assert r2.value > r1.value + 1e-3
    assert r2.history[-1][3] == "sampling-mip-nbhd"


def test_sampling_is_reproducible(tiny_net):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    a = solve(p, "sampling", time_limit=30, max_samples=20, seed=7)
    b = solve(p, "sampling", time_limit=30, max_samples=20, seed=7)
    c = solve(p, "sampling", time_limit=30, max_samples=20, seed=8, design="uniform")
    assert np.array_equal(a.x, b.x) and a.stats == b.stats
    assert c.stats["design"] == "uniform"


def test_sampling_respects_the_time_limit():
    """Without the stall rule and ``max_samples`` only the limit can end the run (the overshoot is
    measured by benchmarks/bench_speed_checks.py)."""
    net = random_network([20, 200, 200, 1], seed=0)
    p = Problem.build(net, 0, 1, maximize=0)
    r = solve(p, "sampling", time_limit=0.5, stall_samples=None)
    assert r.seconds < 30                        # it returns: generous, the machine is shared
    assert r.status == FEASIBLE
    assert r.stats["stopped"] == "time_limit"


def test_bad_inputs(tiny_net):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    for method in ("sampling", "sampling-mip"):
        with pytest.raises(ProblemError, match="time limit must be positive"):
            solve(p, method, time_limit=0)
        with pytest.raises(ProblemError, match="time limit must be positive"):
            solve(p, method, time_limit=-1)
    bad = Problem.build(tiny_net, -1, 1, maximize=0, A=np.array([[1.0, 0], [-1.0, 0]]),
                        b=np.array([-0.5, -0.5]))
    assert solve(bad, "sampling", time_limit=1).status == "infeasible"  # an answer, not bad input
    with pytest.raises(ProblemError, match="does not exist"):
        Problem.build(tiny_net, -1, 1, maximize=3)
    with pytest.raises(ProblemError, match="unknown sampling design"):
        solve(p, "sampling", time_limit=1, design="grid")


def test_sampling_mip_on_clipped_relu():
    from reluopt import Network

    rng = np.random.default_rng(4)
    net = Network.from_weights(
        [(rng.normal(size=(10, 2)), rng.normal(size=10)), (rng.normal(size=(6, 10)), rng.normal(size=6)),
         (rng.normal(size=(1, 6)), np.zeros(1))],
        activations=["clipped_relu", "clipped_relu", "identity"], taus=[0.6, 0.8, None])
    p = Problem.build(net, -1, 1, maximize=0)
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 401), np.linspace(-1, 1, 401)), -1).reshape(-1, 2)
    dense = p.objective_values(grid).max()
    plain = solve(p, "sampling", time_limit=30, max_samples=64, seed=0)
    r = solve(p, "sampling-mip", time_limit=30, max_samples=64, seed=0, gap_rule=10.0)
    assert r.stats["improving_rounds"] >= 1
    assert r.value >= dense - 1e-9 > plain.value   # the neighbourhood MIPs found what sampling missed
    assert r.value == pytest.approx(p.objective_values(r.x)[0], abs=1e-12)
