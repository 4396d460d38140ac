"""Issue 16: the papers' rules beside reluopt's variants (sampling-mip ``free``, ``sampling+mip``,
walk ``starts``, ppga / ppga-lr with and without the polish)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import random_network
from reluopt import Problem, ProblemError
from reluopt.methods import METHODS, solve
from reluopt.methods.sampling import Neighbourhood
from reluopt.methods.walk import RelaxStarts
from reluopt.result import FEASIBLE, OPTIMAL
from test_region import brute_optimum


def _checked(p: Problem, r) -> None:
    """A forward-checked point inside the box whose value is the network's own."""
    assert r.x is not None
    assert np.all(r.x >= p.domain.lb - 1e-9) and np.all(r.x <= p.domain.ub + 1e-9)
    assert p.is_feasible(r.x)[0]
    assert r.value == pytest.approx(float(p.objective_values(r.x)[0]), abs=1e-12)


# ----------------------------------------------------------------------------- sampling-mip
def test_paper_neighbourhood_frees_the_inactive_binaries_and_tight_wall_only_the_tight_ones():
    net = random_network([3, 20, 20, 1], seed=5)
    p = Problem.build(net, -1, 1, maximize=0)
    nb = Neighbourhood(p)
    x = np.array([[0.1, -0.4, 0.7]])
    pattern = [a[0] for a in net.activation_pattern(x)]
    tight = [np.zeros(a.shape, dtype=bool) for a in pattern]
    tight[0][np.nonzero(nb.has1[:20])[0][:2]] = True
    value, free = nb.free_mask(pattern, tight, "paper")
    assert np.array_equal(free, value == 0) and 0 < free.sum() < free.size
    value2, free2 = nb.free_mask(pattern, tight, "tight-wall")
    assert np.array_equal(value, value2) and free2.sum() == 2


@pytest.mark.parametrize("free", ["paper", "tight-wall"])
def test_sampling_mip_rules_run_and_return_checked_points(free):
    net = random_network([3, 24, 24, 1], seed=11)
    p = Problem.build(net, -1, 1, maximize=0)
    r = solve(p, "sampling-mip", time_limit=30, max_samples=8, seed=2, gap_rule=10.0, free=free)
    assert r.status == FEASIBLE and r.stats["free"] == free
    assert r.stats["neighbourhood_mips"] >= 1
    _checked(p, r)


def test_the_paper_rule_frees_many_more_binaries():
    net = random_network([3, 40, 1], seed=4)
    p = Problem.build(net, -1, 1, maximize=0)
    kw = dict(time_limit=30, max_samples=8, seed=1, gap_rule=10.0, max_rounds=1)
    paper = solve(p, "sampling-mip", free="paper", **kw)
    wall = solve(p, "sampling-mip", free="tight-wall", **kw)
    # tight-wall frees at most the input dimension's worth of walls at a vertex; the paper
    # rule every inactive neuron
    assert wall.stats["freed_binaries"] <= 3 + 1e-9
    assert paper.stats["freed_binaries"] > wall.stats["freed_binaries"] + 3


def test_sampling_mip_rejects_an_unknown_rule(tiny_net):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    with pytest.raises(ProblemError, match="free"):
        solve(p, "sampling-mip", time_limit=1, free="all")


def test_sampling_then_mip_is_the_warm_started_mip(tiny_net):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    r = solve(p, "sampling+mip", time_limit=10, seed=0)
    assert r.method == "sampling+mip"
    assert r.status == OPTIMAL
    assert [ph["method"] for ph in r.stats["phases"]] == ["sampling", "mip"]
    assert r.value == pytest.approx(brute_optimum(p), abs=1e-6)
    _checked(p, r)
    with pytest.raises(ProblemError, match="sampling"):
        solve(p, "sampling+mip", time_limit=1, sampling="walk")


# ----------------------------------------------------------------------------- walk starts
def _relax_starts(p: Problem, delta: float = 0.05, seed: int = 0) -> RelaxStarts:
    rs = RelaxStarts(p, lambda inst: inst.solve(time_limit=30), np.random.default_rng(seed), delta=delta)
    assert rs.base() is not None
    return rs


def test_paper_starts_fix_cumulatively_and_flip_the_true_phase():
    net = random_network([3, 12, 12, 1], seed=7)
    p = Problem.build(net, -1, 1, maximize=0)
    rs = _relax_starts(p)
    got: list[str] = []
    for _x, source in rs.paper(lambda: len(got) >= 60):
        got.append(source)
    n = len(got)
    assert set(got) == {"walk-restricted"}
    assert rs.restarts >= 1 and rs.fixes >= n
    assert rs.flips == rs.fixes
    seen_layer1 = False
    for layer, j, val, x_before, x_after in rs.log:
        g = net.preactivations(np.clip(x_before, -1, 1)[None, :])[layer][0, j]
        assert val == (0.0 if g > 0 else 1.0)              # the opposite of the true phase
        if x_after is not None and layer == 0:
            g_after = net.preactivations(x_after[None, :])[0][0, j]
            # a first-layer pre-activation is exact in the relaxation: the phase really flips
            assert (g_after <= 1e-6) if val == 0.0 else (g_after >= -1e-6)
        seen_layer1 |= layer == 1
    assert seen_layer1                                      # layer by layer: the next layer came


def test_single_starts_often_keep_the_phase():
    """The earlier rule fixes ``1 - round(z_frac)``: not always the flipped true phase."""
    flips = fixes = 0
    for seed in range(3):
        net = random_network([3, 12, 12, 1], seed=seed)
        rs = _relax_starts(Problem.build(net, -1, 1, maximize=0))
        for _ in rs.single(lambda: False):
            pass
        assert rs.fixes == sum(int(np.sum(c >= 0)) for c in rs.model.z_cols)
        flips, fixes = flips + rs.flips, fixes + rs.fixes
    assert flips < fixes


@pytest.mark.parametrize("starts", ["paper", "single"])
def test_walk_start_rules_run_and_return_checked_points(tiny_net, starts):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    r = solve(p, "walk", time_limit=30, seed=0, max_walks=60, stall_walks=None, starts=starts)
    assert r.status == FEASIBLE and r.stats["starts"] == starts and r.stats["walks"] == 60
    _checked(p, r)
    if starts == "paper":    # relaxation starts never run out
        assert r.stats["random_walks"] == 0 and r.stats["restarts"] >= 1
        assert r.stats["phase_flips"] == r.stats["fixes"]
    else:                    # one fix per neuron, then random points
        assert r.stats["random_walks"] > 0


def test_walk_rejects_bad_start_options(tiny_net):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    with pytest.raises(ProblemError, match="starts"):
        solve(p, "walk", time_limit=1, starts="random")
    with pytest.raises(ProblemError, match="delta"):
        solve(p, "walk", time_limit=1, delta=-0.1)
    with pytest.raises(ProblemError, match="infeasible_per_restart"):
        solve(p, "walk", time_limit=1, infeasible_per_restart=0)


def test_delta_is_a_parameter():
    net = random_network([3, 12, 12, 1], seed=7)
    p = Problem.build(net, -1, 1, maximize=0)
    a = solve(p, "walk", time_limit=30, seed=0, max_walks=20, delta=0.0)
    b = solve(p, "walk", time_limit=30, seed=0, max_walks=20, delta=5.0)
    _checked(p, a)
    _checked(p, b)


# ----------------------------------------------------------------------------- ppga polish
@pytest.mark.parametrize("method", ["ppga", "ppga-lr"])
def test_the_paper_methods_do_not_polish_and_the_variants_do(method):
    assert f"{method}+polish" in METHODS
    net = random_network([3, 16, 16, 1], seed=12)
    p = Problem.build(net, -1, 1, maximize=0)
    raw = solve(p, method, time_limit=30, max_iter=30, seed=0)
    pol = solve(p, f"{method}+polish", time_limit=30, max_iter=30, seed=0)
    assert raw.method == method and pol.method == f"{method}+polish"
    assert raw.stats["polish_lps"] == 0 and pol.stats["polish_lps"] >= 1
    assert not any(src.endswith("-polish") for *_, src in raw.history)
    assert pol.value >= raw.value      # same seed and iterations, then the walk
    _checked(p, raw)
    _checked(p, pol)
