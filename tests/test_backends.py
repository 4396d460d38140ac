"""The solver back-ends behind one interface (reluopt.milp.backends): HiGHS, SCIP and Gurobi
solve the same models with the same statuses, stop on request, report progress and
incumbents, and turn every failed run into status 'error' without a bound.

SCIP and Gurobi tests are skipped when their package is missing (Gurobi's pip licence is
size-limited: every model here stays below 2000 rows and columns)."""

from __future__ import annotations

import builtins
import math
import time

import highspy
import numpy as np
import pytest
import scipy.sparse as sp

import reluopt
from bruteforce import brute_force
from conftest import random_network
from reluopt import Problem
from reluopt.bounds import crown_bounds
from reluopt.errors import ProblemError, SolverError
from reluopt.methods.mip import problem_bounds
from reluopt.milp import BACKENDS, get_backend
from reluopt.milp.backends.base import ERROR, SolveOutput
from reluopt.milp.backends.highs import CheckedHighs, HighsBackend
from reluopt.milp.formulation import build_problem_model as _build_problem_model
from reluopt.result import SOLVER_ERROR


def build_problem_model(problem):
    """The problem's big-M model on CROWN bounds (the formulation takes the bounds it is given)."""
    return _build_problem_model(problem, problem_bounds(problem))


PACKAGES = {"highs": "highspy", "scip": "pyscipopt", "gurobi": "gurobipy"}


@pytest.fixture(params=BACKENDS)
def backend(request):
    pytest.importorskip(PACKAGES[request.param])
    return get_backend(request.param)


def _small_problem():
    net = random_network([2, 6, 5, 1], seed=1)
    lb, ub = -np.ones(2), np.ones(2)
    return net, lb, ub, Problem.build(net, lb, ub, maximize=0)


@pytest.fixture(scope="module")
def hard_model():
    """A MIP no back-end solves in a few seconds (821 columns, 1201 rows, 400 binaries)."""
    net = random_network([20, 200, 200, 1], seed=0)
    return build_problem_model(Problem.build(net, -np.ones(20), np.ones(20), maximize=0))


# ----------------------------------------------------------------------------- answers
def test_network_mip_matches_brute_force(backend):
    net, lb, ub, problem = _small_problem()
    truth = brute_force(net, lb, ub, np.array([1.0]), "max")
    model = build_problem_model(problem)
    seen = []
    out = backend.solve(model, time_limit=60, mip_rel_gap=1e-9, mip_abs_gap=1e-9,
                        on_improvement=lambda obj, values: seen.append((obj, values)))
    assert isinstance(out, SolveOutput)
    assert out.status == "optimal", out.message
    assert out.objective == pytest.approx(truth, abs=1e-6)
    assert out.bound >= truth - 1e-6
    x = model.columns_to_point(out.values)
    assert float(net.forward(x)[0]) == pytest.approx(truth, abs=1e-5)
    for obj, values in seen:   # every reported incumbent is a full column vector of the model
        assert values.shape == (model.n_cols,) and obj <= truth + 1e-6


def test_infeasible_model_is_infeasible_everywhere(backend):
    _, _, _, problem = _small_problem()
    model = build_problem_model(problem)
    row = sp.csr_matrix((np.ones(1), ([0], [int(model.y_cols[0])])), shape=(1, model.n_cols))
    model.add_rows(row, float(model.col_upper[model.y_cols[0]]) + 1.0, np.inf)   # y above its own bound
    out = backend.solve(model, time_limit=60)
    assert out.status == "infeasible", out.message
    assert out.bound is None


def test_time_limit_is_reported_with_a_sound_bound(backend, hard_model):
    out = backend.solve(hard_model, time_limit=1.0)
    assert out.status == "time_limit", out.message
    if out.bound is not None:   # None when stopped before any bound (SCIP inside presolve)
        assert math.isfinite(out.bound) and (out.objective is None or out.bound >= out.objective - 1e-6)


def test_mip_start_is_accepted(backend):
    net, lb, ub, problem = _small_problem()
    model = build_problem_model(problem)
    start = model.point_to_columns(np.zeros(2))
    out = backend.solve(model, time_limit=60, mip_start=start, mip_rel_gap=1e-9, mip_abs_gap=1e-9)
    assert out.status == "optimal"
    assert out.objective >= float(net.forward(np.zeros(2))[0]) - 1e-6


# ----------------------------------------------------------------------------- stop and progress
def test_should_stop_ends_a_long_run_promptly_with_progress(backend, hard_model):
    """Asked to stop once it has reported progress (0.5 s in at the earliest) in a run that
    would take minutes, every back-end returns soon (HiGHS within its grace period, SCIP at
    its next poll, Gurobi at its next callback)."""
    progress = []
    asked = []

    def should_stop() -> bool:
        elapsed = time.perf_counter() - t0
        if (progress and elapsed > 0.5) or elapsed > 20:
            asked.append(time.perf_counter())
            return True
        return False

    instance = backend.build(hard_model)
    t0 = time.perf_counter()
    out = instance.solve(time_limit=120, should_stop=should_stop, on_progress=lambda *a: progress.append(a))
    ended = time.perf_counter()
    assert out.status == "interrupted", out.message
    assert asked and ended - asked[0] < 5.0      # well before the 120 s limit (about 0.1-0.5 s here)
    assert progress, "no progress reported"
    for primal, dual, nodes in progress:
        assert nodes >= 0 and not (math.isfinite(primal) and math.isfinite(dual) and dual < primal - 1e-6)
    if out.bound is not None and out.objective is not None:
        assert out.bound >= out.objective - 1e-6


def test_incumbents_are_reported(backend):
    net = random_network([3, 12, 12, 1], seed=3)
    model = build_problem_model(Problem.build(net, -np.ones(3), np.ones(3), maximize=0))
    seen = []
    out = backend.solve(model, time_limit=60, mip_rel_gap=1e-9, mip_abs_gap=1e-9,
                        on_improvement=lambda obj, values: seen.append((obj, values.copy())))
    assert out.status == "optimal"
    if not seen:   # solved before any incumbent callback (presolve): nothing to report
        pytest.skip(f"{backend.name} solved the model without an incumbent callback")
    for obj, values in seen:
        y = float(net.forward(model.columns_to_point(values))[0])
        assert y == pytest.approx(obj, abs=1e-5)
    assert max(obj for obj, _ in seen) == pytest.approx(out.objective, abs=1e-6)


def test_a_failing_callback_does_not_end_the_run(backend):
    _, _, _, problem = _small_problem()

    def boom(*_):
        raise RuntimeError("user callback failed")

    out = backend.solve(build_problem_model(problem), time_limit=60, on_progress=boom, on_improvement=boom,
                        should_stop=lambda: False)
    assert out.status == "optimal"


# ----------------------------------------------------------------------------- failures
def _fail_run(monkeypatch, name: str, how: str) -> None:
    """Make the named back-end's solver run raise, or end without a trusted status."""
    if name == "highs":
        monkeypatch.setattr(CheckedHighs, "run", (lambda self: highspy.HighsStatus.kError) if how == "status"
                            else (lambda self: (_ for _ in ()).throw(RuntimeError("solver crashed"))))
    elif name == "scip":
        from reluopt.milp.backends.scip import ScipInstance

        monkeypatch.setattr(ScipInstance, "_optimize", (lambda self: None) if how == "status"
                            else (lambda self: (_ for _ in ()).throw(Exception("error in LP solver!"))))
    else:
        from reluopt.milp.backends.gurobi import GurobiInstance

        monkeypatch.setattr(GurobiInstance, "_optimize", (lambda self, cb: None) if how == "status"
                            else (lambda self, cb: (_ for _ in ()).throw(RuntimeError("solver crashed"))))


@pytest.mark.parametrize("how", ["status", "exception"])
def test_a_failed_run_is_an_error_without_a_bound(backend, monkeypatch, how):
    _, _, _, problem = _small_problem()
    model = build_problem_model(problem)
    progress = []
    _fail_run(monkeypatch, backend.name, how)
    out = backend.solve(model, time_limit=10, on_progress=lambda *a: progress.append(a))
    assert out.status == ERROR and out.bound is None and out.message


@pytest.mark.parametrize("how", ["status", "exception"])
def test_mip_with_a_failed_run_keeps_only_what_was_proven(backend, monkeypatch, how):
    net, lb, ub, problem = _small_problem()
    _fail_run(monkeypatch, backend.name, how)
    res = reluopt.solve(problem, "mip", time_limit=10, solver=backend.name)
    assert res.status == SOLVER_ERROR and res.stats["solver_status"] == ERROR
    assert res.stats["solver_message"]
    root = float(crown_bounds(net, lb, ub).out_upper[0, 0])
    assert res.bound == pytest.approx(root, rel=1e-12)   # the output bounds' certificate, nothing from the run


def test_gurobi_licence_refusal_names_the_limit(monkeypatch):
    gp = pytest.importorskip("gurobipy")
    from reluopt.milp.backends.gurobi import GurobiInstance

    def refuse(self, cb):
        raise gp.GurobiError(10010, "Model too large for size-limited license")

    monkeypatch.setattr(GurobiInstance, "_optimize", refuse)
    _, _, _, problem = _small_problem()
    with pytest.raises(SolverError, match="size-limited"):
        get_backend("gurobi").solve(build_problem_model(problem))


# ----------------------------------------------------------------------------- names
def test_unknown_backend_is_named():
    with pytest.raises(ProblemError, match="unknown MIP solver 'nope'.*highs, scip, gurobi"):
        get_backend("nope")


@pytest.mark.parametrize("name,extra", [("scip", "reluopt[scip]"), ("gurobi", "reluopt[gurobi]")])
def test_missing_backend_names_its_extra(monkeypatch, name, extra):
    real_import = builtins.__import__

    def hide(module, *args, **kwargs):
        if module == PACKAGES[name]:
            raise ImportError(f"No module named {module!r}")
        return real_import(module, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", hide)
    with pytest.raises(SolverError, match=r"not installed.*" + extra.replace("[", r"\[").replace("]", r"\]")):
        get_backend(name)


def test_backends_are_named_once():
    assert BACKENDS[0] == "highs"
    for name in BACKENDS:
        if name == "highs" or _installed(PACKAGES[name]):
            assert get_backend(name).name == name
    from reluopt.methods.mip import SOLVERS

    assert SOLVERS == BACKENDS


def _installed(package: str) -> bool:
    try:
        __import__(package)
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------- reuse
def test_reused_highs_instance_keeps_no_callbacks_between_solves():
    _, _, _, problem = _small_problem()
    model = build_problem_model(problem)
    instance = HighsBackend().build(model)
    calls = []
    for _ in range(3):
        out = instance.solve(time_limit=10, should_stop=lambda: calls.append(1) and False,
                             on_improvement=lambda obj, values: None)
        assert out.status == "optimal"
    h = instance.highs
    for event in (h.cbMipInterrupt, h.cbSimplexInterrupt, h.cbIpmInterrupt, h.cbMipImprovingSolution):
        assert event.callbacks == []


def test_reused_instances_solve_again(backend):
    net, lb, ub, problem = _small_problem()
    model = build_problem_model(problem)
    instance = backend.build(model)
    first = instance.solve(time_limit=30, mip_rel_gap=1e-9, mip_abs_gap=1e-9)
    second = instance.solve(time_limit=30, mip_rel_gap=1e-9, mip_abs_gap=1e-9)
    assert first.status == second.status == "optimal"
    assert second.objective == pytest.approx(first.objective, abs=1e-7)
    if hasattr(instance, "close"):
        instance.close()
