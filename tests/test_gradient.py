"""PPGA and PPGA-LR: the ratio test lands on a wall, values are forward passes, optima on
tiny nets, constraints respected, seeds reproducible, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import random_network
from reluopt import Network, Problem, ProblemError
from reluopt.methods import solve
from reluopt.methods.gradient import domain_step
from reluopt.methods.passes import backward, directional, forward_masks, ratio_test
from reluopt.result import FEASIBLE
from test_region import brute_optimum


def _pattern(net, X):
    return np.concatenate(net.activation_pattern(X), axis=1)


@settings(deadline=None, max_examples=30)
@given(st.integers(0, 10_000))
def test_ratio_test_lands_exactly_on_a_wall(seed):
    rng = np.random.default_rng(seed)
    net = random_network([4, 10, 10, 1], seed=seed % 7)
    X = rng.uniform(-1, 1, size=(8, 4))
    U = rng.normal(size=(8, 4))
    _, G, S = forward_masks(net, X)
    t = ratio_test(net, G, S, directional(net, S, U))
    ok = np.isfinite(t) & (t > 1e-6)
    assert ok.any()
    for x, u, ti in zip(X[ok], U[ok], t[ok], strict=True):
        p0 = _pattern(net, x[None, :])
        before = _pattern(net, (x + ti * (1 - 1e-7) * u)[None, :])
        after = _pattern(net, (x + (ti + 1e-7 * (1 + ti)) * u)[None, :])
        assert np.array_equal(before, p0)          # unchanged up to the wall
        assert not np.array_equal(after, p0)       # changed right after it
        # some neuron sits on its wall at t
        g = np.concatenate(net.preactivations((x + ti * u)[None, :]), axis=1)
        assert np.min(np.abs(g)) < 1e-8 * (1 + np.max(np.abs(g)))


def test_directional_derivatives_match_finite_differences():
    net = random_network([3, 6, 5, 2], seed=4)
    rng = np.random.default_rng(0)
    X, U = rng.uniform(-1, 1, (5, 3)), rng.normal(size=(5, 3))
    _, G, S = forward_masks(net, X)
    dG = directional(net, S, U)
    t = 0.5 * np.min(ratio_test(net, G, S, dG))
    G2 = net.preactivations(X + t * U)
    for g, g2, dg in zip(G, G2, dG, strict=True):
        np.testing.assert_allclose(g2, g + t * dg, atol=1e-10)
    # backward equals the network's own gradient
    c = np.array([1.0, -2.0])
    np.testing.assert_allclose(backward(net, S, np.broadcast_to(c, (5, 2))), net.gradient(X, c),
                               atol=1e-12)


def test_domain_step_stops_at_the_box_and_halfspaces():
    net = random_network([2, 3, 1], seed=0)
    p = Problem.build(net, -1, 1, maximize=0, A=np.array([[1.0, 1.0]]), b=np.array([1.0]))
    X = np.array([[0.0, 0.0], [0.5, -0.9]])
    U = np.array([[1.0, 0.0], [0.0, -1.0]])
    np.testing.assert_allclose(domain_step(p, X, U), [1.0, 0.1])


@pytest.mark.parametrize("method", ["ppga+polish", "ppga-lr+polish"])
@pytest.mark.parametrize("kw", [dict(maximize=0), dict(minimize=0)])
def test_gradient_methods_find_tiny_optima(tiny_net, method, kw):
    p = Problem.build(tiny_net, -1, 1, **kw)
    # an iteration cap, not a 1 s limit: on a loaded machine 1 s could end before the polish
    r = solve(p, method, time_limit=30, max_iter=200, seed=0)
    assert r.status == FEASIBLE
    assert r.value == pytest.approx(p.objective_values(r.x)[0], abs=1e-12)
    # the polish walk ends on a region vertex: the optimum up to LP precision
    assert r.value == pytest.approx(brute_optimum(p), abs=1e-8)
    assert r.stats["iterations"] > 10
    assert r.stats["polish_lps"] >= 1


@pytest.mark.parametrize("method", ["ppga", "ppga-lr"])
def test_polish_lands_on_the_region_vertex(method):
    net = random_network([3, 16, 16, 1], seed=12)
    p = Problem.build(net, -1, 1, maximize=0)
    raw = solve(p, method, time_limit=30, max_iter=30, seed=0)     # the paper's method: no polish
    pol = solve(p, f"{method}+polish", time_limit=30, max_iter=30, seed=0)
    assert raw.stats["polish_lps"] == 0 and pol.stats["polish_lps"] >= 1
    assert pol.value >= raw.value
    # the polished point is optimal in its own region (an independent scipy LP)
    from bruteforce import region_optimum

    pattern = [a[0] for a in net.activation_pattern(pol.x[None, :])]
    ref = region_optimum(net, pattern, p.domain.lb, p.domain.ub, np.array([1.0]), "max")
    assert pol.value == pytest.approx(ref[0], abs=1e-8)
    with pytest.raises(ProblemError, match="polish"):
        solve(p, method, time_limit=1, polish=1.0)


@pytest.mark.parametrize("method", ["ppga", "ppga-lr"])
def test_output_and_input_constraints_are_respected(tiny_net, method):
    A = np.array([[1.0, -1.0]])
    p = Problem.build(tiny_net, -1, 1, maximize=0, constraints=["y[0] <= 0.1"], A=A,
                      b=np.array([0.2]))
    truth = brute_optimum(p)
    r = solve(p, method, time_limit=1.0, seed=1)
    assert p.is_feasible(r.x)[0]
    assert r.value <= truth + 1e-5
    assert r.value >= truth - 0.05


@pytest.mark.parametrize("method", ["ppga", "ppga-lr"])
def test_seeded_runs_are_reproducible(method):
    net = random_network([5, 20, 20, 1], seed=2)
    p = Problem.build(net, 0, 1, maximize=0)
    a = solve(p, method, time_limit=30, max_iter=50, seed=3)
    b = solve(p, method, time_limit=30, max_iter=50, seed=3)
    assert np.array_equal(a.x, b.x)
    assert a.stats == b.stats


def test_ppga_lr_handles_clipped_relu():
    rng = np.random.default_rng(1)
    net = Network.from_weights(
        [(rng.normal(size=(8, 2)), rng.normal(size=8)), (rng.normal(size=(1, 8)), np.zeros(1))],
        activations=["clipped_relu", "identity"], taus=[0.7, None])
    p = Problem.build(net, -1, 1, maximize=0)
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 301), np.linspace(-1, 1, 301)), -1).reshape(-1, 2)
    dense = p.objective_values(grid).max()
    r = solve(p, "ppga-lr", time_limit=1.0)
    assert r.value >= dense - 1e-9
    assert r.value == pytest.approx(p.objective_values(r.x)[0], abs=1e-12)


def test_time_limit_is_honoured():
    """Without the stall rule and ``max_iter`` only the limit can end the run (the overshoot is
    measured by benchmarks/bench_speed_checks.py)."""
    net = random_network([50, 100, 100, 1], seed=0)
    p = Problem.build(net, 0, 1, maximize=0)
    for method in ("ppga", "ppga-lr"):
        r = solve(p, method, time_limit=0.3, stall_iterations=None)
        assert r.status == FEASIBLE and r.stats["stopped"] == "time_limit"
        assert r.seconds < 30                    # it returns: generous, the machine is shared


def test_bad_inputs(tiny_net):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    bad = Problem.build(tiny_net, -1, 1, maximize=0, A=np.array([[1.0, 0], [-1.0, 0]]),
                        b=np.array([-0.5, -0.5]))
    for method in ("ppga", "ppga-lr"):
        with pytest.raises(ProblemError, match="time limit must be positive"):
            solve(p, method, time_limit=0)
        assert solve(bad, method, time_limit=1).status == "infeasible"  # an answer, not bad input
