"""reluopt.Model: every method's optimum on tiny general models equals a brute force over the
integer values and activation patterns (an LP per region, tests/model_truth.py)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import reluopt
from conftest import random_network
from model_truth import brute_force

METHODS = ("mip", "auto", "bab")
TOL = 2e-4


def shared_inputs(seed: int):
    """Two networks on the same inputs x (one shifted by an integer variable), costs on the
    inputs, a linear constraint over a variable and both networks' outputs."""
    n1 = random_network([2, 3, 2], seed=seed)
    n2 = random_network([3, 3, 1], seed=seed + 100)
    m = reluopt.Model()
    m.add_var("x", [-1.0, -1.0], [1.0, 1.0])
    m.add_var("units", 0, 2, integer=True)
    m.add_network(n1, "x", name="y1")
    m.add_network(n2, ["x[0]", "0.5*x[1] - 0.3*units", 0.25], name="y2")   # a fixed feature
    m.add_constraint("0.5*units + 0.5*x[1] - y1[0] <= 1")
    m.add_constraint("x[0] + x[1] >= -1.5")
    m.maximize("y1[1] + y2[0] - 0.1*x[0] + 0.2*units")
    # the same model from the test's own arrays: v = (x0, x1, units, y1_0, y1_1, y2_0)
    nets = [(n1, np.eye(2, 3), np.zeros(2)),
            (n2, np.array([[1, 0, 0, 0, 0], [0, 0.5, -0.3, 0, 0], [0, 0, 0, 0, 0]]), np.array([0, 0, 0.25]))]
    A = np.array([[0, 0.5, 0.5, -1, 0, 0], [-1, -1, 0, 0, 0, 0]])
    e = np.array([1.0, 1.5])
    c = np.array([-0.1, 0, 0.2, 0, 1, 1])
    truth = brute_force([-1, -1, 0], [1, 1, 2], [False, False, True], nets, A, e, c, 0.0, "max")
    return m, truth


def chained(seed: int):
    """Network 2 fed by network 1's outputs and an integer variable; minimise with a cost."""
    n1 = random_network([2, 3, 2], seed=seed + 7)
    n2 = random_network([2, 3, 1], seed=seed + 8)
    m = reluopt.Model()
    m.add_var("a", -1.0, 1.0)
    m.add_var("b", -0.5, 1.5)
    m.add_var("k", -1, 1, integer=True)
    m.add_network(n1, ["a", "b"], name="h")
    m.add_network(n2, ["h[0] + 0.5*k", "h[1]"], name="out")
    m.add_constraint("out[0] - a >= -2")
    m.minimize("out[0] + 0.3*b - 0.1*k")
    nets = [(n1, np.eye(2, 3), np.zeros(2)),
            (n2, np.array([[0, 0, 0.5, 1, 0], [0, 0, 0, 0, 1]]), np.zeros(2))]
    A = np.array([[1, 0, 0, 0, 0, -1]])
    c = np.array([0, 0.3, -0.1, 0, 0, 1])
    truth = brute_force([-1, -0.5, -1], [1, 1.5, 1], [False, False, True], nets, A, [2.0], c, 0.0, "min")
    return m, truth


@pytest.mark.parametrize("build", [shared_inputs, chained])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_method_meets_the_brute_force(build, seed):
    model, truth = build(seed)
    assert truth is not None
    for method in METHODS:
        res = model.solve(method, time_limit=120)
        assert res.status == "optimal", (method, res)
        assert res.value == pytest.approx(truth, abs=TOL), method
        sign = 1.0 if model.sense == "max" else -1.0
        assert sign * (res.bound - truth) >= -1e-6, method      # a true bound
        assert res.violation <= 1e-6


def test_result_reports_every_variable_and_forward_outputs():
    model, _ = shared_inputs(0)
    res = model.solve("mip")
    x, units = res.values["x"], res.values["units"]
    assert isinstance(units, float) and units == round(units)
    n1, n2 = (feed.network for feed in model.feeds)
    np.testing.assert_allclose(res.outputs["y1"], n1.forward(x[None, :])[0], rtol=0, atol=1e-12)
    x2 = np.array([x[0], 0.5 * x[1] - 0.3 * units, 0.25])
    np.testing.assert_allclose(res.outputs["y2"], n2.forward(x2[None, :])[0], rtol=0, atol=1e-12)
    value = res.outputs["y1"][1] + res.outputs["y2"][0] - 0.1 * x[0] + 0.2 * units
    assert res.value == pytest.approx(value, abs=1e-12)
    assert set(res.stats) >= {"binaries", "stable_neurons", "hidden_neurons", "nodes"}
    assert res.to_dict()["status"] == "optimal"


def test_two_solves_in_one_process_agree():
    model, _ = chained(0)
    first, second = model.solve("mip"), model.solve("mip")
    assert first.value == pytest.approx(second.value, abs=1e-9)
    assert model.solve("bab").value == pytest.approx(first.value, abs=TOL)


@pytest.mark.parametrize("method", METHODS)
def test_from_problem_matches_reluopt_solve(method):
    net = random_network([2, 6, 6, 2], seed=11)
    problem = reluopt.Problem.build(net, [-1, -2], [2, 1], maximize="y[0] - 0.3*x[1]",
                                    constraints=["y[1] <= 0.8", "x[0] + x[1] <= 1", "y[0] - x[0] >= -3"])
    ref = reluopt.solve(problem, method="mip")
    res = reluopt.Model.from_problem(problem).solve(method)
    assert ref.status == res.status == "optimal"
    assert res.value == pytest.approx(ref.value, abs=TOL)
    assert problem.is_feasible(res.values["x"][None, :])[0]
    assert problem.objective_values(res.values["x"])[0] == pytest.approx(res.value, abs=1e-9)


def test_from_problem_minimise_with_box_only():
    net = random_network([3, 5, 1], seed=2)
    problem = reluopt.Problem.build(net, -1, 1, minimize=0)
    res = reluopt.Model.from_problem(problem).solve("mip")
    ref = reluopt.solve(problem, method="mip")
    assert res.sense == "min" and res.value == pytest.approx(ref.value, abs=TOL)


def test_infeasible_model_is_reported_as_such():
    m = reluopt.Model()
    m.add_var("x", -1.0, 1.0, shape=2)
    m.add_network(random_network([2, 3, 1], seed=4), "x", name="y")
    m.add_constraint("x[0] + x[1] >= 3")
    m.maximize("y[0]")
    for method in METHODS:
        res = m.solve(method)
        assert res.status == "infeasible" and res.x is None, method


def test_equality_constraints_and_integer_steps_like_the_reformer():
    """The reformer with a steam ratio in integer steps: every step level checked on a grid."""
    net = random_network([2, 6, 2], seed=5)
    m = reluopt.Model()
    m.add_var("bypass", 0.1, 0.8)
    m.add_var("steps", 0, 4, integer=True)
    m.add_var("steam", 0.8, 1.2)
    m.add_constraint("steam == 0.8 + 0.1*steps")
    m.add_network(net, ["bypass", "steam"], name="y")
    m.maximize("y[0] - 0.2*steam")
    res = m.solve("auto")
    assert res.values["steam"] == pytest.approx(0.8 + 0.1 * res.values["steps"], abs=1e-6)
    grid = np.linspace(0.1, 0.8, 2001)
    best = max(float(np.max(net.forward(np.column_stack([grid, np.full_like(grid, s)]))[:, 0] - 0.2 * s))
               for s in 0.8 + 0.1 * np.arange(5))
    assert res.value >= best - 1e-3 and res.bound >= best - 1e-9


@pytest.mark.parametrize("solver", ["scip", "gurobi"])
def test_mip_on_other_solvers(solver):
    if importlib.util.find_spec({"scip": "pyscipopt", "gurobi": "gurobipy"}[solver]) is None:
        pytest.skip(f"{solver} is not installed")
    model, truth = shared_inputs(0)
    try:
        res = model.solve("mip", solver=solver, time_limit=60)
    except reluopt.SolverError as exc:       # e.g. no licence
        pytest.skip(str(exc))
    if res.status == "solver_error":
        pytest.skip(res.stats.get("solver_message", "solver error"))
    assert res.status == "optimal" and res.value == pytest.approx(truth, abs=TOL)


def test_lp_obbt_bounds_use_the_linear_constraints():
    """With lp-obbt the input boxes shrink to what the constraints allow; the optimum is the same."""
    model, truth = shared_inputs(1)
    model.add_constraint("x[0] <= 0.2")
    plain = model.solve("mip")
    tight = model.solve("mip", bounds="lp-obbt")
    assert tight.status == plain.status == "optimal"
    assert tight.value == pytest.approx(plain.value, abs=TOL)
    assert tight.stats["stable_neurons"] >= plain.stats["stable_neurons"]


@pytest.mark.parametrize("method", METHODS)
def test_a_tiny_time_limit_still_returns_a_checked_result(method):
    model, truth = shared_inputs(0)
    res = model.solve(method, time_limit=1e-3)
    assert res.status in ("optimal", "time_limit", "feasible")
    if res.bound is not None:
        assert res.bound >= truth - 1e-6
    if res.x is not None:
        assert res.violation <= 1e-6 and res.value <= truth + 1e-6
