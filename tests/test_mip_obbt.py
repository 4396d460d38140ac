"""The exact MIP with OBBT bounds and rescaling (``solve_mip(bounds='lp-obbt'|'mip-obbt',
rescale=True)``) against brute force: every linear region of tiny nets enumerated by LPs."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import reluopt
from bruteforce import cached_regions, region_optimum
from conftest import random_network
from reluopt import Problem
from reluopt.bounds import crown_bounds
from reluopt.bounds.obbt import incumbent_cutoff, obbt_bounds
from reluopt.errors import ProblemError
from reluopt.result import OPTIMAL
from test_clipped import _pattern_enumeration_range, clipped_network

NETS = {"a": ([2, 8, 8, 1], 0), "b": ([3, 6, 6, 1], 2), "c": ([2, 6, 6, 6, 1], 5)}


@functools.cache
def _truth(key: str, sense: str, polytope: bool = False) -> float:
    sizes, seed = NETS[key]
    net = random_network(sizes, seed=seed, scale=1.5)
    d = sizes[0]
    lb, ub = -np.ones(d), np.ones(d)
    A, b = (np.ones((1, d)), np.array([0.2])) if polytope else (None, None)
    vals = [r[0] for p, _ in cached_regions(net, lb, ub)     # max and min: one enumeration
            if (r := region_optimum(net, p, lb, ub, np.ones(1), sense, A=A, b=b)) is not None]
    return max(vals) if sense == "max" else min(vals)


def _problem(key, sense, polytope=False):
    sizes, seed = NETS[key]
    net = random_network(sizes, seed=seed, scale=1.5)
    d = sizes[0]
    extra = {"A": np.ones((1, d)), "b": np.array([0.2])} if polytope else {}
    return Problem.build(net, -np.ones(d), np.ones(d), **{"maximize" if sense == "max" else "minimize": 0},
                         **extra)


def _check(res, truth, sense):
    assert res.status == OPTIMAL
    assert res.value == pytest.approx(truth, abs=1e-5)
    assert (res.bound >= truth - 1e-9) if sense == "max" else (res.bound <= truth + 1e-9)


@pytest.mark.slow   # among the slowest tests (pytest --durations); still part of make test
@pytest.mark.parametrize("key", list(NETS))
@pytest.mark.parametrize("bounds, rescale", [("lp-obbt", False), ("lp-obbt", True), ("mip-obbt", True),
                                             ("crown", True)])
def test_mip_with_obbt_and_rescaling_matches_brute_force(key, bounds, rescale):
    for sense in ("max", "min"):
        problem = _problem(key, sense)
        res = reluopt.solve(problem, "mip", bounds=bounds, rescale=rescale, time_limit=60)
        truth = _truth(key, sense)
        _check(res, truth, sense)
        assert res.value == pytest.approx(float(problem.network.forward(res.x)[0]), abs=1e-12)
        assert res.stats["bounds"] == bounds


def test_obbt_bounds_use_the_input_polytope_and_the_optimum_is_unchanged():
    for sense in ("max", "min"):
        problem = _problem("a", sense, polytope=True)
        res = reluopt.solve(problem, "mip", bounds="lp-obbt", rescale=True, time_limit=60)
        _check(res, _truth("a", sense, polytope=True), sense)
        assert float(np.sum(res.x)) <= 0.2 + 1e-6


def test_obbt_removes_binaries_and_explicit_bounds_are_accepted():
    problem = _problem("c", "max")
    net, dom = problem.network, problem.domain
    crown = reluopt.solve(problem, "mip", bounds="crown")
    ob = obbt_bounds(net, dom)
    assert ob.n_unstable(net) < crown_bounds(net, dom.lb, dom.ub).n_unstable(net)
    res = reluopt.solve(problem, "mip", bounds=ob, rescale=True)
    assert res.stats["binaries"] == ob.n_unstable(net) < crown.stats["binaries"]
    assert res.stats["bounds"] == "lp-obbt"
    assert res.value == pytest.approx(crown.value, abs=1e-6)


@pytest.mark.parametrize("key", ["a", "c"])
def test_mip_with_cutoff_obbt_from_an_incumbent_matches_brute_force(key):
    for sense in ("max", "min"):
        problem = _problem(key, sense)
        net, dom = problem.network, problem.domain
        X = np.random.default_rng(0).uniform(dom.lb, dom.ub, (200, dom.dim))
        vals = problem.objective_values(X)
        x0 = X[int(np.argmax(vals) if sense == "max" else np.argmin(vals))]
        cut = obbt_bounds(net, dom, objective_cutoff=incumbent_cutoff(problem, x0))
        plain = obbt_bounds(net, dom)
        assert cut.n_unstable(net) <= plain.n_unstable(net)
        res = reluopt.solve(problem, "mip", bounds=cut, rescale=True, incumbent=x0, time_limit=60)
        _check(res, _truth(key, sense), sense)
    bad = Problem.build(net, dom.lb, dom.ub, maximize=0, constraints=["y[0] <= -1e9"])
    with pytest.raises(ProblemError, match="feasible"):
        incumbent_cutoff(bad, x0)


@pytest.mark.parametrize("seed", [0, 3])
def test_clipped_mip_with_obbt_and_rescaling_matches_enumeration(seed):
    net = clipped_network([2, 4, 3, 1], seed=seed, tau=0.6, scale=2.0)
    lb, ub = -np.ones(2), np.ones(2)
    lowest, highest = _pattern_enumeration_range(net, lb, ub)
    for kw, exact in (({"maximize": 0}, highest), ({"minimize": 0}, lowest)):
        problem = Problem.build(net, lb, ub, **kw)
        res = reluopt.solve(problem, "mip", bounds="lp-obbt", rescale=True, time_limit=60)
        assert res.status == OPTIMAL
        assert res.value == pytest.approx(exact, abs=1e-6)


def test_time_limit_covers_obbt_and_the_result_stays_sound(monkeypatch):
    """OBBT gets half the limit (that OBBT stops at its limit: test_limits.py; the overshoot:
    benchmarks/bench_speed_checks.py)."""
    import reluopt.methods.mip as mip_module

    limits = []
    original = mip_module.problem_bounds

    def spy(*args, **kwargs):
        limits.append(kwargs.get("time_limit"))
        return original(*args, **kwargs)

    monkeypatch.setattr(mip_module, "problem_bounds", spy)
    net = random_network([4, 40, 40, 40, 1], seed=1)
    problem = Problem.build(net, -np.ones(4), np.ones(4), maximize=0)
    res = reluopt.solve(problem, "mip", bounds="lp-obbt", rescale=True, time_limit=2.0)
    assert limits == [pytest.approx(1.0)]
    assert res.seconds < 30                         # it returns: generous, the machine is shared
    assert res.x is not None and res.bound >= res.value - 1e-9
    X = np.random.default_rng(0).uniform(-1, 1, (5000, 4))
    assert res.bound >= float(net.forward(X).max()) - 1e-9
