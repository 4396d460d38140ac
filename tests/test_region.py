"""Region LP against an independent truth (scipy linprog on every enumerated region), the
reused model against fresh models, and the domain helpers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bruteforce import enumerate_regions, region_optimum
from conftest import random_network
from reluopt import Network, Problem, ProblemError
from reluopt.errors import EmptyInputSet
from reluopt.methods.points import check_domain, project, sample_domain
from reluopt.methods.region import RegionLP, pattern_keys, phase_patterns


def _problem(net, **kw):
    return Problem.build(net, -1.0, 1.0, **kw)


@pytest.mark.parametrize("sense", ["max", "min"])
def test_region_lp_matches_linprog_on_every_region(tiny_net, sense):
    kw = {"maximize": 0} if sense == "max" else {"minimize": 0}
    p = _problem(tiny_net, **kw)
    regions = cached_regions(tiny_net, p.domain.lb, p.domain.ub)
    assert len(regions) > 20
    reused, fresh = RegionLP(p), RegionLP(p, reuse=False)
    for pattern, _ in regions:
        ref = region_optimum(tiny_net, pattern, p.domain.lb, p.domain.ub, np.array([1.0]), sense)
        a, b = reused.solve(pattern), fresh.solve(pattern)
        s = 1.0 if sense == "max" else -1.0
        # max form: the LP value is s * (user value)
        assert a.status == b.status == "optimal"
        assert s * a.lp_value == pytest.approx(ref[0], abs=1e-7)
        assert b.lp_value == pytest.approx(a.lp_value, abs=1e-9)
        # the LP's own prediction equals the forward pass at its optimum
        assert p.objective_values(a.x)[0] == pytest.approx(ref[0], abs=1e-7)
    assert reused.n_solves == len(regions)


def test_region_lp_with_input_and_output_constraints(tiny_net):
    A = np.array([[1.0, 1.0], [-1.0, 0.5]])
    b = np.array([0.5, 0.6])
    p = Problem.build(tiny_net, -1, 1, maximize=0, constraints=["y[0] <= 0.05"], A=A, b=b)
    C, e = p.constraints.C, p.constraints.e
    regions = cached_regions(tiny_net, p.domain.lb, p.domain.ub)
    reused = RegionLP(p)
    n_feasible = 0
    for pattern, _ in regions:
        ref = region_optimum(tiny_net, pattern, p.domain.lb, p.domain.ub, np.array([1.0]), "max",
                             C=C, e=e, A=A, b=b)
        sol = reused.solve(pattern)
        if ref is None:
            assert sol.status == "infeasible"
            continue
        n_feasible += 1
        assert sol.lp_value == pytest.approx(ref[0], abs=1e-7)
        assert p.is_feasible(sol.x)[0]
    assert 0 < n_feasible < len(regions)


def test_tight_neurons_are_on_walls_at_the_optimum(tiny_net):
    p = _problem(tiny_net, maximize=0)
    sol = RegionLP(p).solve_point(np.array([0.3, -0.2]))
    g = tiny_net.preactivations(sol.x[None, :])
    n_tight = 0
    for gl, tight in zip(g, sol.tight, strict=True):
        assert np.all(np.abs(gl[0][tight]) < 1e-6)
        assert np.all(np.abs(gl[0][~tight]) > 1e-9)
        n_tight += int(tight.sum())
    # a vertex of a 2-d region not at a box corner needs walls
    at_corner = np.all(np.isclose(np.abs(sol.x), 1.0))
    assert n_tight >= (0 if at_corner else 1)


def test_clipped_relu_regions():
    rng = np.random.default_rng(5)
    net = Network.from_weights(
        [(rng.normal(size=(6, 2)), rng.normal(size=6)), (rng.normal(size=(1, 6)), np.zeros(1))],
        activations=["clipped_relu", "identity"], taus=[0.5, None])
    p = _problem(net, maximize=0)
    region = RegionLP(p)
    X = sample_domain(p.domain, 200, rng)
    pats = phase_patterns(net, X)
    for i in range(0, 200, 10):
        sol = region.solve([q[i] for q in pats])
        assert sol.status == "optimal"
        # optimum of the region >= the sample's own value, and equals the forward pass
        assert sol.lp_value >= p.objective_values(X[i])[0] - 1e-9
        assert p.objective_values(sol.x)[0] == pytest.approx(sol.lp_value, abs=1e-8)


def test_pattern_keys_deduplicate(tiny_net):
    X = np.array([[0.1, 0.1], [0.1, 0.1], [0.9, -0.9]])
    keys = pattern_keys(phase_patterns(tiny_net, X))
    assert keys[0] == keys[1]
    assert len(set(keys)) == 2


def test_infeasible_input_constraints_are_detected(tiny_net):
    A = np.array([[1.0, 0.0], [-1.0, 0.0]])
    b = np.array([-0.5, -0.5])  # x0 <= -0.5 and x0 >= 0.5
    p = Problem.build(tiny_net, -1, 1, maximize=0, A=A, b=b)
    with pytest.raises(EmptyInputSet, match="no point in the box"):
        check_domain(p)
    check_domain(_problem(tiny_net, maximize=0))  # no A: nothing to check


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 10_000))
def test_projection_is_feasible_and_nearest(seed):
    from scipy.optimize import minimize

    rng = np.random.default_rng(seed)
    A = rng.normal(size=(3, 2))
    b = np.abs(rng.normal(size=3)) * 0.3  # 0 is strictly feasible
    p = Problem.build(random_network([2, 4, 1], seed=1), -1, 1, maximize=0, A=A, b=b)
    X = rng.uniform(-2, 2, size=(4, 2))
    P = project(p.domain, X, iters=2000)
    assert np.all(p.domain.contains(P, tol=1e-6))
    for x, px in zip(X, P, strict=True):
        ref = minimize(lambda z, x=x: np.sum((z - x) ** 2), np.zeros(2), method="SLSQP",
                       bounds=[(-1, 1)] * 2,
                       constraints=[{"type": "ineq", "fun": lambda z: b - A @ z}])
        assert np.linalg.norm(px - x) <= np.linalg.norm(ref.x - x) + 1e-4


def test_samples_stay_in_the_domain():
    net = random_network([3, 5, 1], seed=0)
    p = Problem.build(net, [0, -1, 2], [1, 1, 2], maximize=0)
    for design in ("uniform", "lhs", "sobol"):
        X = sample_domain(p.domain, 17, np.random.default_rng(0), design)
        assert X.shape == (17, 3)
        assert np.all(p.domain.contains(X, tol=0))
    with pytest.raises(ProblemError, match="unknown sampling design"):
        sample_domain(p.domain, 4, np.random.default_rng(0), "grid")


_REGIONS: dict[bytes, list] = {}


def cached_regions(net, lb, ub) -> list:
    """``enumerate_regions`` memoised on the weights and the box (it costs seconds; many tests
    share the same tiny net)."""
    key = b"".join([lb.tobytes(), ub.tobytes()] + [a.tobytes() for L in net.layers for a in (L.W, L.b)])
    if key not in _REGIONS:
        _REGIONS[key] = enumerate_regions(net, lb, ub)
    return _REGIONS[key]


def brute_optimum(problem: Problem) -> float:
    """The exact optimum (user sense) by a region LP (scipy) on every enumerated region."""
    net, dom = problem.network, problem.domain
    s = 1.0 if problem.sense == "max" else -1.0
    C = e = None
    if problem.constraints is not None:
        C, e = problem.constraints.C, problem.constraints.e
    best = -np.inf
    for pattern, _ in cached_regions(net, dom.lb, dom.ub):
        ref = region_optimum(net, pattern, dom.lb, dom.ub, s * problem.objective.c, "max",
                             C=C, e=e, A=dom.A, b=dom.b)
        if ref is not None:
            best = max(best, ref[0])
    return s * best + problem.objective.d


def test_latin_hypercube_has_one_point_per_stratum():
    from reluopt.methods.points import unit_design

    U = unit_design(3, 50, np.random.default_rng(0), "lhs", seed=4)
    assert U.shape == (50, 3)
    for j in range(3):
        assert sorted(np.floor(U[:, j] * 50).astype(int)) == list(range(50))
    assert np.array_equal(U, unit_design(3, 50, np.random.default_rng(9), "lhs", seed=4))
