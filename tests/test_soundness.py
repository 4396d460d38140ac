"""Soundness under every solver state: the reproductions of the soundness issue, checked
against brute force over activation regions or against known answers.

Each test would have failed before the fix it names: a HiGHS run whose status was not
checked (kError after a heuristic started HiGHS's scheduler with another thread count),
solver errors on badly scaled networks read as bounds, oversized boxes, and a method-
dependent answer to an empty input set.
"""

from __future__ import annotations

import json
import math

import highspy
import numpy as np
import pytest

import reluopt
from bruteforce import brute_force_point
from conftest import random_network
from reluopt.certificate import check_certificate
from reluopt.errors import CertificateError, ProblemError, SolverError
from reluopt.milp.backends.highs import new_highs, run_ok
from reluopt.result import INFEASIBLE, OPTIMAL, Result

TOL = 1e-4


@pytest.fixture(scope="module")
def polytope_problem():
    """The issue's reproduction (3-16-16-1 there; 3-10-10-1 here, as the brute force is
    exponential in the width): a polytope cutting the box."""
    net = random_network([3, 10, 10, 1], seed=0)
    problem = reluopt.Problem.build(net, lb=-2, ub=2, maximize=0, A=[[1, 1, 0]], b=[0.5])
    truth, _ = brute_force_point(net, -2 * np.ones(3), 2 * np.ones(3), np.array([1.0]), "max",
                                 A=np.array([[1.0, 1.0, 0.0]]), b=np.array([0.5]), fast=True)
    return problem, truth


def _check_against(result, truth):
    assert result.bound is None or result.bound >= truth - TOL, (result.bound, truth)
    if result.value is not None:
        assert result.value <= truth + TOL
    if result.status == OPTIMAL:
        assert result.value == pytest.approx(truth, abs=TOL)


@pytest.mark.slow   # among the slowest tests (pytest --durations); still part of make test
@pytest.mark.parametrize("heuristic", ["sampling", "ppga-lr", "walk"])
def test_exact_methods_after_a_heuristic_are_sound(polytope_problem, heuristic):
    """A heuristic first (it used to start HiGHS's scheduler with 2 threads), then the exact
    methods, including mip with threads=2 and again with 1: every certificate is true."""
    problem, truth = polytope_problem
    reluopt.solve(problem, method=heuristic, time_limit=0.5, seed=1)
    for method, options in [("bab", {}), ("mip", {}), ("mip", {"threads": 2}), ("mip", {}), ("auto", {})]:
        result = reluopt.solve(problem, method=method, time_limit=20, **options)
        assert result.status == OPTIMAL, (method, options, result.status, result.stats)
        _check_against(result, truth)


def test_highs_runs_after_foreign_scheduler():
    """A user's own Highs run with default threads before reluopt's must not break it."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.addVar(0.0, 1.0)
    h.run()
    mine = new_highs()
    mine.addVar(0.0, 2.0)
    mine.changeColCost(0, 1.0)
    mine.changeObjectiveSense(highspy.ObjSense.kMaximize)
    ok, message = run_ok(mine)
    assert ok, message
    assert mine.getInfo().objective_function_value == pytest.approx(2.0)


def _soundness_problem(shared_data, which):
    d = shared_data / "soundness"
    box = json.loads((d / f"box_{which}.json").read_text())
    net = reluopt.load(d / f"net_{which}.npz")
    if which == "5031":
        return reluopt.Problem.build(
            net, box["lb"], box["ub"], maximize="0.0012817359335037528*y[0] + 0.006345034394161706*y[1]",
            constraints=["y[1] - y[0] <= -9880021764969.777"])
    return reluopt.Problem.build(
        net, box["lb"], box["ub"],
        maximize="0.0006945540794061193*y[0] - 0.0027332407687666663*y[1] + 0.005132315803418408*y[2]")


@pytest.mark.data
def test_badly_scaled_mip_is_refused_not_wrong(shared_data):
    """net_5031 and net_5036: the MIP's solver errored (kSolveError) and its bound was used;
    now the MIP refuses models its tolerances cannot certify, with a clear message."""
    for which in ("5031", "5036"):
        problem = _soundness_problem(shared_data, which)
        for solver in ("highs", "scip"):
            with pytest.raises(SolverError, match="cannot certify"):
                reluopt.solve(problem, method="mip", time_limit=10, solver=solver)


@pytest.mark.data
def test_badly_scaled_bab_and_auto_reach_the_true_optimum(shared_data):
    """net_5031: the optimum by region enumeration is -3.05690e10 (README of the data)."""
    problem = _soundness_problem(shared_data, "5031")
    for method in ("bab", "auto"):
        result = reluopt.solve(problem, method=method, time_limit=20)
        assert result.bound >= -3.0569e10 * (1 + 1e-5)
        if result.status == OPTIMAL:
            assert result.value == pytest.approx(-3.05690e10, rel=1e-4)


@pytest.mark.data
def test_huge_box_is_refused(shared_data):
    net = reluopt.load(shared_data / "soundness" / "small_2-8-2.onnx")
    problem = reluopt.Problem.build(net, lb=-1e308, ub=1e308, maximize=0)
    for method in ("bab", "auto", "mip", "ppga-lr"):
        with pytest.raises(ProblemError, match="box is too large"):
            reluopt.solve(problem, method=method, time_limit=5)


@pytest.mark.data
def test_large_but_representable_box_stays_sound(shared_data):
    """A box of 1e20 is representable: bab answers soundly (the true max is about -1.7966)."""
    net = reluopt.load(shared_data / "soundness" / "small_2-8-2.onnx")
    problem = reluopt.Problem.build(net, lb=-1e20, ub=1e20, maximize=0)
    result = reluopt.solve(problem, method="bab", time_limit=5)
    assert result.value is not None and result.value <= -1.7966 + 1e-3
    assert result.bound >= -1.7966 - 1e-3


@pytest.mark.parametrize("method", ["bab", "mip", "auto", "ppga", "ppga-lr", "sampling", "sampling-mip", "walk"])
def test_empty_input_set_is_infeasible_for_every_method(method):
    """x0 + x1 <= -5 misses [-1, 1]^2: every method says infeasible, with the reason."""
    net = random_network([2, 6, 1], seed=4)
    problem = reluopt.Problem.build(net, lb=-1, ub=1, maximize=0, A=[[1.0, 1.0]], b=[-5.0])
    result = reluopt.solve(problem, method=method, time_limit=5)
    assert result.status == INFEASIBLE
    assert result.x is None and result.value is None
    assert result.bound is None or result.bound == -math.inf


def test_empty_input_set_exit_code_3(tmp_path, capsys):
    from reluopt.cli import main
    from reluopt.io import save_npz

    save_npz(random_network([2, 6, 1], seed=4), tmp_path / "net.npz")
    (tmp_path / "poly.json").write_text(json.dumps({"A": [[1.0, 1.0]], "b": [-5.0]}))
    code = main(["solve", str(tmp_path / "net.npz"), "--box=-1,1", "--maximize", "0",
                 "--polytope", str(tmp_path / "poly.json"), "-q"])
    assert code == 3
    assert "infeasible" in capsys.readouterr().out


def test_certificate_check_rejects_wrong_side_bound_and_nan():
    net = random_network([2, 4, 1], seed=1)
    problem = reluopt.Problem.build(net, lb=-1, ub=1, maximize=0)
    x = np.zeros(2)
    value = float(problem.objective_values(x)[0])
    good = Result(OPTIMAL, "test", "max", x, value, value + 1e-6)
    assert check_certificate(good, problem) is good
    with pytest.raises(CertificateError, match="wrong side"):
        check_certificate(Result("time_limit", "test", "max", x, value, value - 1.0), problem)
    with pytest.raises(CertificateError, match="NaN"):
        check_certificate(Result("time_limit", "test", "max", x, value, float("nan")), problem)
    with pytest.raises(CertificateError, match="gap"):
        check_certificate(Result(OPTIMAL, "test", "max", x, value, value + 1.0), problem)
    with pytest.raises(CertificateError, match="forward pass"):
        check_certificate(Result("feasible", "test", "max", x, value + 0.5, None), problem)
    with pytest.raises(CertificateError, match="over a bounded box"):
        check_certificate(Result("time_limit", "test", "max", x, value, math.inf), problem)
    with pytest.raises(CertificateError, match="point x"):
        check_certificate(Result(INFEASIBLE, "test", "max", x, value, None), problem)
