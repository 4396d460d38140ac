"""Exact MIP against brute force over all linear regions of tiny networks."""

from __future__ import annotations

import numpy as np
import pytest

import reluopt
from bruteforce import brute_force
from conftest import random_network
from reluopt import Problem, ProblemError
from reluopt.milp.formulation import build_problem_model
from reluopt.result import INFEASIBLE, OPTIMAL

CASES = [([2, 8, 8, 1], 0), ([2, 6, 5, 2], 1), ([3, 8, 4, 1], 2), ([2, 8, 1], 3), ([3, 5, 5, 2], 4)]



@pytest.mark.parametrize("sizes,seed", CASES)
@pytest.mark.parametrize("sense", ["max", "min"])
def test_mip_matches_brute_force(sizes, seed, sense):
    net = random_network(sizes, seed=seed)
    lb, ub = -np.ones(sizes[0]), np.ones(sizes[0])
    problem = Problem.build(net, lb, ub, **{"maximize" if sense == "max" else "minimize": 0})
    truth = brute_force(net, lb, ub, np.eye(net.output_dim)[0], sense)
    res = reluopt.solve(problem, "mip", time_limit=30)
    assert res.status == OPTIMAL
    assert res.value == pytest.approx(truth, abs=1e-5)
    # the bound is a true bound on the brute-force optimum
    assert (res.bound >= truth - 1e-9) if sense == "max" else (res.bound <= truth + 1e-9)
    assert res.value == pytest.approx(float(net.forward(res.x)[0]), abs=1e-12)
    assert np.all(res.x >= lb) and np.all(res.x <= ub)


@pytest.mark.slow   # among the slowest tests (pytest --durations); still part of make test
@pytest.mark.parametrize("sizes,seed", [([2, 6, 5, 2], 1), ([3, 5, 5, 2], 4), ([2, 8, 8, 2], 5)])
@pytest.mark.parametrize("sense", ["max", "min"])
def test_mip_with_output_constraint_matches_brute_force(sizes, seed, sense):
    net = random_network(sizes, seed=seed)
    d = sizes[0]
    lb, ub = -np.ones(d), np.ones(d)
    # constrain y1 to below its median over a sample, so the constraint binds
    xs = np.random.default_rng(seed).uniform(lb, ub, size=(2000, d))
    level = float(np.median(net.forward(xs)[:, 1]))
    problem = Problem.build(net, lb, ub, **{"maximize" if sense == "max" else "minimize": 0},
                            constraints=[f"y[1] <= {level!r}"])
    C, e = np.array([[0.0, 1.0]]), np.array([level])
    truth = brute_force(net, lb, ub, np.array([1.0, 0.0]), sense, C, e)
    res = reluopt.solve(problem, "mip", time_limit=30)
    assert res.status == OPTIMAL
    assert res.value == pytest.approx(truth, abs=1e-5)
    assert net.forward(res.x)[1] <= level + 1e-6


def test_mip_with_input_polytope_matches_brute_force():
    net = random_network([2, 8, 8, 1], seed=7)
    lb, ub = -np.ones(2), np.ones(2)
    A, b = np.array([[1.0, 1.0]]), np.array([0.3])
    problem = Problem.build(net, lb, ub, maximize=0, A=A, b=b)
    truth = brute_force(net, lb, ub, np.ones(1), "max", A=A, b=b)
    res = reluopt.solve(problem, "mip", time_limit=30)
    assert res.status == OPTIMAL
    assert res.value == pytest.approx(truth, abs=1e-5)
    assert res.x @ A[0] <= b[0] + 1e-6


def test_infeasible_output_constraint_is_proven():
    net = random_network([2, 6, 1], seed=2)
    lb, ub = -np.ones(2), np.ones(2)
    top = float(net.forward(np.random.default_rng(0).uniform(-1, 1, (5000, 2))).max())
    problem = Problem.build(net, lb, ub, maximize=0, constraints=[f"y[0] >= {top + 100.0}"])
    res = reluopt.solve(problem, "mip", time_limit=30)
    assert res.status == INFEASIBLE and res.x is None


def test_incumbent_warm_start_and_history():
    net = random_network([2, 16, 16, 1], seed=11)
    problem = Problem.build(net, -np.ones(2), np.ones(2), maximize=0)
    x0 = np.zeros(2)
    res = reluopt.solve(problem, "mip", incumbent=x0, start_samples=0, time_limit=30)
    assert res.history[0][3] in ("output bounds", "incumbent")
    assert any(src == "incumbent" for *_, src in res.history)
    assert res.value >= float(net.forward(x0)[0]) - 1e-12
    assert res.stats["binaries"] + res.stats["stable_neurons"] == 32
    with pytest.raises(ProblemError, match="incumbent has shape"):
        reluopt.solve(problem, "mip", incumbent=np.zeros(3))


def test_crown_bounds_give_fewer_binaries_and_smaller_big_m_than_ibp():
    net = random_network([4, 32, 32, 32, 1], seed=5)
    problem = Problem.build(net, np.full(4, 0.2), np.full(4, 0.5), maximize=0)
    ibp = reluopt.bounds.interval_bounds(net, problem.domain.lb, problem.domain.ub)
    crown = reluopt.bounds.crown_bounds(net, problem.domain.lb, problem.domain.ub)
    a, b = build_problem_model(problem, ibp), build_problem_model(problem, crown)
    assert b.n_binaries < a.n_binaries
    width = [np.sum(bb.upper[-1] - bb.lower[-1]) for bb in (ibp, crown)]
    assert width[1] < 0.5 * width[0]
    assert reluopt.solve(problem, "mip", bounds=ibp).value == pytest.approx(
        reluopt.solve(problem, "mip").value, abs=1e-6)


def test_time_limit_returns_anytime_result():
    net = random_network([8, 64, 64, 64, 1], seed=0)
    problem = Problem.build(net, -np.ones(8), np.ones(8), maximize=0)
    res = reluopt.solve(problem, "mip", time_limit=1.0)
    assert res.seconds < 30          # it returns: generous (the overshoot: benchmarks/bench_speed_checks.py)
    assert res.x is not None and res.bound is not None
    assert res.bound >= res.value - 1e-9
    assert res.status in ("optimal", "time_limit")


def test_mnist_model_builds(shared_data):
    """The 784-256-256-10 model: one binary per unstable neuron. Its build time (under a second)
    is measured by benchmarks/bench_speed_checks.py."""
    net = reluopt.load(shared_data / "mnistfc" / "mnist-net_256x2.onnx")
    assert net.hidden_sizes == (256, 256)
    problem = Problem.build(net, np.zeros(784), np.full(784, 0.05), maximize=3)
    bounds = reluopt.bounds.crown_bounds(net, problem.domain.lb, problem.domain.ub)
    model = build_problem_model(problem, bounds)
    assert model.n_cols >= 784 + 10
    st = model.stats
    assert st["hidden_neurons"] == 512 and st["binaries"] == 512 - st["stable_neurons"]
    assert st["binaries"] == bounds.n_unstable(net)


@pytest.mark.parametrize("solver,module", [("scip", "pyscipopt"), ("gurobi", "gurobipy")])
@pytest.mark.parametrize("sense", ["max", "min"])
def test_optional_solvers_match_brute_force(solver, module, sense):
    pytest.importorskip(module)
    sizes, seed = [2, 6, 5, 2], 1
    net = random_network(sizes, seed=seed)
    lb, ub = -np.ones(2), np.ones(2)
    xs = np.random.default_rng(seed).uniform(lb, ub, size=(2000, 2))
    level = float(np.median(net.forward(xs)[:, 1]))
    problem = Problem.build(net, lb, ub, **{"maximize" if sense == "max" else "minimize": 0},
                            constraints=[f"y[1] <= {level!r}"])
    truth = brute_force(net, lb, ub, np.array([1.0, 0.0]), sense, np.array([[0.0, 1.0]]), np.array([level]))
    res = reluopt.solve(problem, "mip", time_limit=60, solver=solver)
    assert res.status == OPTIMAL and res.stats["solver"] == solver
    assert res.value == pytest.approx(truth, abs=1e-5)
    assert (res.bound >= truth - 1e-9) if sense == "max" else (res.bound <= truth + 1e-9)
    assert res.value == pytest.approx(float(net.forward(res.x)[0]), abs=1e-12)


def test_unknown_solver_is_named():
    problem = Problem.build(random_network([2, 4, 1], seed=0), -1.0, 1.0, maximize=0)
    with pytest.raises(ProblemError, match="unknown MIP solver 'cplex'.*highs, scip, gurobi"):
        reluopt.solve(problem, "mip", time_limit=5, solver="cplex")
