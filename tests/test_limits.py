"""Stopping rules: heuristics end on a stall (a huge time limit on a small net still ends),
OBBT honours its time limit inside long LPs with sound partial bounds, and an LP whose run
fails never becomes a bound."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import highspy
import numpy as np
import pytest

from conftest import random_network
from reluopt import Problem, ProblemError
from reluopt.bounds import crown_bounds
from reluopt.bounds.obbt import obbt_bounds
from reluopt.io import save_npz
from reluopt.methods import solve
from reluopt.milp.backends import highs as highs_mod

CLI = [sys.executable, "-c", "import sys; from reluopt.cli import main; sys.exit(main())"]


def _sound(bounds, net, lb, ub, n=3000, seed=0):
    """Every sampled pre-activation and output lies inside ``bounds``."""
    X = np.random.default_rng(seed).uniform(lb, ub, size=(n, lb.shape[0]))
    for l, g in enumerate(net.preactivations(X)):
        assert np.all(g >= bounds.lower[l][0]) and np.all(g <= bounds.upper[l][0]), f"layer {l}"
    Y = net.forward(X)
    assert np.all(Y >= bounds.out_lower[0]) and np.all(Y <= bounds.out_upper[0])


@pytest.mark.slow   # among the slowest tests (pytest --durations); still part of make test
def test_ppga_lr_with_a_huge_time_limit_ends_by_stalling(tmp_path):
    model = save_npz(random_network([2, 8, 8, 1], seed=3), tmp_path / "tiny.npz")
    start = time.monotonic()
    out = subprocess.run(CLI + ["solve", str(model), "--box=-1,1", "--maximize", "0", "--method", "ppga-lr",
                                "--time-limit", "1e9", "-q"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seconds = time.monotonic() - start
    print(f"  ppga-lr, --time-limit 1e9, tiny net: {seconds:.1f} s")
    assert out.returncode == 1, out.stderr             # a heuristic: a point, no proof
    assert re.search(r"^status\s+feasible$", out.stdout, re.M), out.stdout
    assert "stopped stalled" in out.stdout, out.stdout
    assert seconds < 30


@pytest.mark.parametrize("method, options", [
    ("ppga", {"stall_iterations": 200}),
    ("ppga-lr", {"stall_iterations": 200}),
    ("sampling", {"stall_samples": 500}),
    ("sampling-mip", {"stall_samples": 500}),
    ("walk", {"stall_walks": 20}),
])
def test_heuristics_stop_on_a_stall(tiny_net, method, options):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    start = time.perf_counter()
    r = solve(p, method, time_limit=1e9, seed=0, **options)
    assert time.perf_counter() - start < 20
    assert r.status == "feasible" and r.stats["stopped"] == "stalled"
    assert r.value == pytest.approx(float(p.objective_values(r.x)[0]), abs=1e-12)


def test_heuristics_say_why_they_stopped(tiny_net):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    assert solve(p, "ppga-lr", time_limit=0.3, stall_iterations=None).stats["stopped"] == "time_limit"
    assert solve(p, "ppga", time_limit=30, max_iter=5).stats["stopped"] == "max_iter"
    assert solve(p, "sampling", time_limit=30, max_samples=64).stats["stopped"] == "max_samples"
    assert solve(p, "walk", time_limit=30, max_walks=2).stats["stopped"] == "max_walks"


@pytest.mark.parametrize("method, option", [("ppga-lr", "stall_iterations"), ("sampling", "stall_samples"),
                                            ("walk", "stall_walks")])
@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_bad_stall_limits_raise_clear_errors(tiny_net, method, option, value):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    with pytest.raises(ProblemError, match=option):
        solve(p, method, time_limit=1, **{option: value})


def test_lp_obbt_time_limit_cuts_long_lps_and_keeps_sound_partial_bounds():
    # one LP of layer 1 here takes ~0.5-2 s and a full pass minutes: the limit must stop
    # the LP it falls in, not only keep new ones from starting
    net = random_network([20, 300, 300, 300, 1], seed=1)
    lb, ub = -np.ones(20), np.ones(20)
    limit = 1.0
    start = time.perf_counter()
    ob = obbt_bounds(net, lb, ub, time_limit=limit)
    seconds = time.perf_counter() - start
    print(f"  lp-obbt with time_limit={limit}: {seconds:.2f} s")
    assert seconds < limit + 2.5
    st = ob.stats
    assert st["stopped"] == "time_limit" and st["skipped"] > 0 and st["time_limits"] >= 1
    crown = crown_bounds(net, lb, ub)
    for l in range(3):
        assert np.all(ob.lower[l] >= crown.lower[l]) and np.all(ob.upper[l] <= crown.upper[l])
    _sound(ob, net, lb, ub)


def test_obbt_without_a_limit_reports_a_complete_run():
    net = random_network([3, 10, 10, 1], seed=0)
    ob = obbt_bounds(net, -np.ones(3), np.ones(3))
    assert ob.stats["stopped"] is None and ob.stats["skipped"] == 0 and ob.stats["errors"] == 0


def test_an_lp_whose_run_fails_never_becomes_a_bound(monkeypatch):
    """Every second run of each instance (the root runs first, then min, max per neuron)
    really solves but returns kError: every min LP 'fails', so every lower bound must stay
    exactly where it was, while the max LPs still tighten the upper bounds."""
    original = highs_mod.CheckedHighs.run

    def flaky(self):
        status = original(self)
        calls = getattr(self, "_calls", 0)
        self._calls = calls + 1
        return highspy.HighsStatus.kError if calls % 2 == 1 else status

    monkeypatch.setattr(highs_mod.CheckedHighs, "run", flaky)
    net = random_network([3, 12, 12, 1], seed=5)
    lb, ub = -np.ones(3), np.ones(3)
    crown = crown_bounds(net, lb, ub)
    ob = obbt_bounds(net, lb, ub, layers=[1])
    st = ob.stats
    assert st["solves"] > 0 and st["errors"] == st["solves"] // 2 and st["stopped"] is None
    np.testing.assert_array_equal(ob.lower[1], crown.lower[1])      # failed runs: no bound taken
    assert np.all(ob.upper[1] <= crown.upper[1]) and np.any(ob.upper[1] < crown.upper[1] - 1e-6)
    _sound(ob, net, lb, ub)


def test_a_failed_root_lp_leaves_the_layer_at_its_initial_bounds(monkeypatch):
    monkeypatch.setattr(highs_mod.CheckedHighs, "run", lambda self: highspy.HighsStatus.kError)
    net = random_network([3, 12, 12, 1], seed=5)
    lb, ub = -np.ones(3), np.ones(3)
    crown = crown_bounds(net, lb, ub)
    ob = obbt_bounds(net, lb, ub, layers=[1])
    np.testing.assert_array_equal(ob.lower[1], crown.lower[1])
    np.testing.assert_array_equal(ob.upper[1], crown.upper[1])
    assert ob.stats["errors"] >= 1 and ob.stats["layers"][0]["root_status"]
