"""What every local-search method (and the portfolio) must do: honour the time limit and the
seed, satisfy output constraints, record only forward-checked points, warm-start the exact
methods, and reject bad inputs with clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import reluopt.tracker as tracker_mod
from conftest import random_network
from reluopt import Problem, ProblemError
from reluopt.methods import solve
from test_region import brute_optimum

HEURISTICS = ("sampling", "sampling-mip", "walk", "ppga", "ppga-lr")
ALL = (*HEURISTICS, "auto")

#: options that switch off the stall rules, so that only the time limit can end a run
NO_STALL = {"sampling": {"stall_samples": None}, "sampling-mip": {"stall_samples": None},
            "walk": {"stall_walks": None}, "ppga": {"stall_iterations": None},
            "ppga-lr": {"stall_iterations": None}, "auto": {}}

#: options that make a run stop deterministically (not by the clock), for the seed tests
CAPS = {"sampling": {"max_samples": 40}, "sampling-mip": {"max_samples": 16},
        "walk": {"max_walks": 4}, "ppga": {"max_iter": 40}, "ppga-lr": {"max_iter": 40}}


@pytest.fixture
def checked_records(monkeypatch):
    """Make every recorded improvement assert that the incumbent is the forward pass of a
    feasible point: nothing enters a history without that check."""
    original = tracker_mod.Anytime._record
    seen = []

    def record(self, source):
        if self.x is not None:
            p = self.problem
            assert p.is_feasible(self.x)[0], f"{source} recorded an infeasible point"
            assert self.value == pytest.approx(float(p.objective_values(self.x)[0]), abs=1e-12), source
            seen.append(source)
        original(self, source)

    monkeypatch.setattr(tracker_mod.Anytime, "_record", record)
    return seen


@pytest.mark.parametrize("method", ALL)
def test_output_constraints_and_forward_checked_points(method, checked_records):
    # two outputs: maximise y0 while y1 must stay low, which cuts off much of the box
    net = random_network([2, 8, 8, 2], seed=5)
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 81), np.linspace(-1, 1, 81)), -1).reshape(-1, 2)
    y1 = net.forward(grid)[:, 1]
    limit = float(np.quantile(y1, 0.3))
    p = Problem.build(net, -1, 1, maximize=0, constraints=[f"y[1] <= {limit!r}"])
    r = solve(p, method, time_limit=1.0, seed=0)     # ppga and ppga-lr use all of it: not what is checked
    assert r.x is not None and p.is_feasible(r.x)[0]
    assert net.forward(r.x)[1] <= limit + 1e-6
    assert r.value == pytest.approx(float(p.objective_values(r.x)[0]), abs=1e-12)
    assert r.value <= brute_optimum(p) + 1e-6
    assert checked_records            # improvements were recorded, each one checked
    values = [v for _, v, _, _ in r.history if v is not None]
    assert values == sorted(values)  # an anytime trace only improves


@pytest.mark.parametrize("method", ALL)
def test_time_limit_is_honoured(method):
    """Without a stall rule or an iteration cap only the limit ends a heuristic, and it says so;
    auto's exact phase cannot prove this net in the time left. How far a run overshoots its limit
    is measured by benchmarks/bench_speed_checks.py, not asserted on a shared machine."""
    net = random_network([20, 120, 120, 1], seed=1)
    p = Problem.build(net, 0, 1, maximize=0)
    r = solve(p, method, time_limit=0.6, seed=0, **NO_STALL[method])
    assert r.seconds < 30                        # it returns: generous, the machine is shared
    if method == "auto":
        assert r.status in ("time_limit", "optimal")
    else:
        assert r.status == "feasible" and r.stats["stopped"] == "time_limit"
    assert r.x is not None
    assert r.value == pytest.approx(float(p.objective_values(r.x)[0]), abs=1e-12)


@pytest.mark.parametrize("method", HEURISTICS)
def test_seed_reproduces_the_run(method):
    net = random_network([4, 12, 12, 1], seed=6)
    p = Problem.build(net, 0, 1, minimize=0)
    a = solve(p, method, time_limit=60, seed=3, **CAPS[method])
    b = solve(p, method, time_limit=60, seed=3, **CAPS[method])
    assert np.array_equal(a.x, b.x)
    assert [v for _, v, _, _ in a.history] == [v for _, v, _, _ in b.history]


@pytest.mark.parametrize("method", ALL)
def test_bad_inputs_give_clear_errors(tiny_net, method):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    for t in (0, -1.5, float("nan")):
        with pytest.raises(ProblemError, match="time limit must be positive"):
            solve(p, method, time_limit=t)
    bad = Problem.build(tiny_net, -1, 1, maximize=0, A=np.array([[1.0, 0], [-1.0, 0]]),
                        b=np.array([-0.5, -0.5]))
    assert solve(bad, method, time_limit=1).status == "infeasible"  # an answer, not bad input
    with pytest.raises(ProblemError, match="incumbent has 3 entries"):
        solve(p, method, time_limit=1, incumbent=[0.0, 0.0, 0.0])
    with pytest.raises(TypeError):   # a misspelt option is an error, not silently ignored
        solve(p, method, time_limit=1, max_sample=3) if method != "auto" else \
            solve(p, method, time_limit=1, heuristics="ppga", exact="mip", no_such_option=1)


def test_objective_on_a_missing_output(tiny_net):
    with pytest.raises(ProblemError, match=r"output index 3 does not exist"):
        Problem.build(tiny_net, -1, 1, maximize=3)
    with pytest.raises(ProblemError, match=r"y\[2\].*does not exist"):
        Problem.build(tiny_net, -1, 1, maximize="y[0] - y[2]")


# ----------------------------------------------------------------------------- warm starts
def _first_value(history):
    return next(v for _, v, _, _ in history if v is not None)


def test_heuristic_best_warm_starts_the_mip():
    net = random_network([5, 16, 16, 1], seed=2)
    p = Problem.build(net, 0, 1, maximize=0)
    h = solve(p, "ppga-lr", time_limit=0.3, seed=0)
    m = solve(p, "mip", time_limit=30, incumbent=h.x, start_samples=0)
    # the MIP's first incumbent is the heuristic's point, labelled as the warm start
    first = next(row for row in m.history if row[1] is not None)
    assert first[3] == "incumbent"
    assert first[1] == pytest.approx(h.value, abs=1e-12)
    assert m.value >= h.value - 1e-12
    assert m.status == "optimal"


def test_heuristic_best_warm_starts_branch_and_bound(tiny_net):
    p = Problem.build(tiny_net, -1, 1, minimize=0)
    h = solve(p, "walk", time_limit=0.5, seed=0)
    b = solve(p, "bab", time_limit=20, incumbent=h.x)
    assert _first_value(b.history) == pytest.approx(h.value, abs=1e-12)
    assert b.value <= h.value + 1e-12
    assert b.status == "optimal"
    assert b.value == pytest.approx(brute_optimum(p), abs=1e-4)


@pytest.mark.parametrize("method", HEURISTICS)
def test_heuristics_start_from_an_incumbent(tiny_net, method):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    x_opt = solve(p, "mip", time_limit=20).x
    r = solve(p, method, time_limit=0.3, seed=0, incumbent=x_opt, **CAPS[method])
    assert r.value >= float(p.objective_values(x_opt)[0]) - 1e-12
