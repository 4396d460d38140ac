"""Exact least-squares inversion (convex MIQP on SCIP) against independent truths: a known
in-range minimiser, and a dense grid for an off-range target."""

import numpy as np
import pytest

from reluopt import Domain, LeastSquares, Network, Problem, ProblemError, solve
from reluopt.methods import METHODS

pytest.importorskip("pyscipopt")


def tiny_generator(seed: int = 0, sizes=(2, 8, 8, 6)) -> Network:
    rng = np.random.default_rng(seed)
    return Network.from_weights([
        (rng.normal(size=(sizes[i + 1], sizes[i])) / np.sqrt(sizes[i + 1]), 0.1 * rng.normal(size=sizes[i + 1]))
        for i in range(len(sizes) - 1)
    ])


def grid_minimum(problem: Problem, n: int = 801) -> float:
    g0 = np.linspace(problem.domain.lb[0], problem.domain.ub[0], n)
    g1 = np.linspace(problem.domain.lb[1], problem.domain.ub[1], n)
    X = np.stack(np.meshgrid(g0, g1), -1).reshape(-1, 2)
    return float(problem.objective_values(X).min())


def test_miqp_finds_the_in_range_minimiser():
    G = tiny_generator(0)
    x_star = np.array([0.4, -0.7])
    problem = Problem(G, Domain(-np.ones(2), np.ones(2)), LeastSquares(G.forward(x_star[None])[0]))
    r = solve(problem, "miqp", time_limit=60, start_samples=0)   # no lucky samples: SCIP must find it
    assert r.status == "optimal"
    assert r.value < 1e-12 and 0.0 <= r.bound <= r.value + 1e-12
    assert r.value == pytest.approx(problem.objective_values(r.x)[0], abs=1e-15)
    # the generator is injective near x*: the minimiser is x* itself
    assert np.linalg.norm(r.x - x_star) < 1e-5


@pytest.mark.parametrize("measure", [False, True])
def test_miqp_off_range_target_matches_a_dense_grid(measure):
    G = tiny_generator(1)
    rng = np.random.default_rng(4)
    y = G.forward(np.array([[0.3, 0.5]]))[0] + 0.3 * rng.normal(size=6)
    A = rng.normal(size=(4, 6)) / 2 if measure else None
    t = y if A is None else A @ y
    problem = Problem(G, Domain(-np.ones(2), np.ones(2)), LeastSquares(t, A))
    r = solve(problem, "miqp", time_limit=60, start_samples=0)
    grid = grid_minimum(problem)
    assert r.status == "optimal"
    assert r.bound <= grid + 1e-9                  # a true lower bound
    assert r.value <= grid + 1e-9                  # at least as good as the grid's best
    assert r.value - r.bound <= 2e-6 + 3e-6 * r.value     # the gap solve_miqp claims at most
    assert r.value == pytest.approx(problem.objective_values(r.x)[0], rel=1e-12, abs=1e-15)


def test_miqp_time_limit_returns_best_so_far():
    G = tiny_generator(2, sizes=(2, 24, 24, 6))
    problem = Problem(G, Domain(-np.ones(2), np.ones(2)), LeastSquares(np.full(6, 0.7)))
    x0 = np.array([0.1, 0.2])
    r = solve(problem, "miqp", time_limit=0.5, incumbent=x0, start_samples=0)
    assert r.value <= problem.objective_values(x0)[0] + 1e-12
    assert r.bound is not None and r.bound <= r.value
    assert r.status in ("optimal", "time_limit")


def test_miqp_declines_a_linear_objective_and_bad_incumbent():
    G = tiny_generator(0)
    linear = Problem.build(G, -1, 1, maximize=0)
    with pytest.raises(ProblemError, match="least-squares"):
        solve(linear, "miqp", time_limit=5)
    lsq = Problem(G, Domain(-np.ones(2), np.ones(2)), LeastSquares(np.zeros(6)))
    with pytest.raises(ProblemError, match="incumbent has shape"):
        solve(lsq, "miqp", time_limit=5, incumbent=np.zeros(3))


@pytest.mark.parametrize("method", sorted(set(METHODS) - {"adam", "surfing", "miqp"}))
def test_linear_only_methods_decline_least_squares(method):
    """Exact methods without quadratic support (HiGHS mip, bab) and the linear heuristics say
    so clearly instead of optimising something else."""
    G = tiny_generator(0)
    problem = Problem(G, Domain(-np.ones(2), np.ones(2)), LeastSquares(np.zeros(6)))
    with pytest.raises(ProblemError, match="least squares"):
        solve(problem, method, time_limit=2)
