"""The paper's rescaling rule (Plate et al., as ALGORITHMS.md section 3 states it) beside
reluopt's: the same function on random points, every neuron's range normalised, sound
bounds, the same MIP optimum as the brute force over activation regions, and the option's
names through build_problem_model, solve_mip and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from bruteforce import brute_force
from conftest import random_network
from reluopt import solve
from reluopt.analysis.rescale import RESCALE_RULES, paper_scale_factors, rescale, rescale_bounds, rescale_rule
from reluopt.bounds import crown_bounds
from reluopt.errors import ProblemError
from reluopt.milp.backends.highs import solve_highs
from reluopt.milp.formulation import build_problem_model
from reluopt.problem import Problem
from test_clipped import clipped_network
from test_rescale import _wide_net


def _differential_scale(seed: int) -> str:
    from bruteforce import random_case

    return random_case(seed, "test").tags["scale"]


@pytest.mark.parametrize("make", [_wide_net, lambda seed: clipped_network([3, 8, 8, 2], seed, 0.7)])
def test_paper_rule_same_function_normalised_ranges_sound_bounds(make):
    net = make(4)
    lb, ub = -np.ones(3), np.ones(3)
    bounds = crown_bounds(net, lb, ub)
    scaled, factors = rescale(net, bounds, rule="paper")
    X = np.random.default_rng(5).uniform(lb, ub, size=(5000, 3))
    y, ys = net.forward(X), scaled.forward(X)
    assert np.all(np.abs(ys - y) <= 1e-9 * (1 + np.abs(y)))
    sb = rescale_bounds(bounds, factors)
    for l, g in enumerate(scaled.preactivations(X)):
        assert np.all(g >= sb.lower[l][0]) and np.all(g <= sb.upper[l][0])
        width = sb.upper[l][0] - sb.lower[l][0]
        if net.layers[l].activation == "relu":
            # every neuron, stable or not, normalised to range 1 (not only the unstable ones)
            assert np.allclose(width, 1.0, rtol=1e-12)
        else:   # one factor per clipped layer: its widest neuron gets range 1
            assert np.isclose(width.max(), 1.0, rtol=1e-12) and np.all(factors[l] == factors[l][0])


def test_paper_rule_differs_from_pow2_on_stable_neurons():
    net = _wide_net(2)
    bounds = crown_bounds(net, -np.ones(3), np.ones(3))
    pow2 = rescale(net, bounds)[1]
    paper = paper_scale_factors(net, bounds)
    stable_scaled = 0
    for l, layer in enumerate(net.hidden_layers):
        stable = ~layer.act.unstable(bounds.lower[l][0], bounds.upper[l][0])
        assert np.all(pow2[l][stable] == 1.0)
        stable_scaled += int(np.sum(paper[l][stable] != 1.0))
    assert stable_scaled > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rule", RESCALE_RULES)
def test_mip_optimum_unchanged_against_brute_force(seed, rule):
    # neurons of very different scales, so the rescaling has something to change
    net = random_network([2, 5, 4, 1], seed=seed)
    rng = np.random.default_rng(seed)
    layers = list(net.layers)
    s = 10.0 ** rng.uniform(-2, 2, size=layers[0].n_out)
    layers[0] = type(layers[0])(layers[0].W * s[:, None], layers[0].b * s, "relu")
    layers[1] = type(layers[1])(layers[1].W / s[None, :], layers[1].b, "relu")
    net = net.with_layers(layers)
    lb, ub = -np.ones(2), np.ones(2)
    truth = brute_force(net, lb, ub, np.array([1.0]), "max")
    problem = Problem.build(net, lb, ub, maximize=0)
    model = build_problem_model(problem, crown_bounds(net, lb, ub), rescale=rule)
    assert model.stats["rescale"] == rule and model.stats["rescaled"]
    out = solve_highs(model, mip_rel_gap=1e-9, mip_abs_gap=1e-9)
    assert out.status == "optimal"
    assert abs(out.objective - truth) <= 1e-6 * (1 + abs(truth))
    x = model.columns_to_point(out.values)
    assert abs(net.forward(x)[0] - truth) <= 1e-6 * (1 + abs(truth))
    res = solve(problem, "mip", rescale=rule, time_limit=30)
    # solve_mip's certificate: a forward-checked value below the truth, a bound above it, a small gap
    slack = 1e-6 * (1 + abs(truth))
    assert res.status == "optimal" and res.value <= truth + slack and res.bound >= truth - slack
    assert res.bound - res.value <= 2e-4 * (1 + abs(truth))


def test_rule_names():
    assert rescale_rule(False) is None and rescale_rule(None) is None and rescale_rule("none") is None
    assert rescale_rule(True) == "pow2-unstable" and rescale_rule("paper") == "paper"
    with pytest.raises(ProblemError, match="rescale must be"):
        rescale_rule("papr")
    net = random_network([2, 4, 1], seed=0)
    problem = Problem.build(net, -np.ones(2), np.ones(2), maximize=0)
    with pytest.raises(ProblemError, match="pow2-unstable, paper"):
        solve(problem, "mip", rescale="pow2")


def test_cli_takes_rule_names():
    from reluopt.cli.solve import parse_options
    from reluopt.errors import ParseError

    assert parse_options(["rescale=paper"]) == {"rescale": "paper"}
    assert parse_options(["rescale=True"]) == {"rescale": True}
    with pytest.raises(ParseError, match="rescale must be True or False or one of pow2-unstable, paper"):
        parse_options(["rescale=pow3"])


@pytest.mark.parametrize("seed", [s for s in range(60) if _differential_scale(s) in ("rescaled", "wild")][:8])
def test_paper_rule_on_badly_scaled_differential_cases(seed, monkeypatch):
    """The differential harness's badly scaled nets (weights spanning 1e-3..1e3), boxes, polytopes
    and output constraints: the paper's rule still gives certificates the brute force accepts."""
    import bruteforce

    monkeypatch.setitem(bruteforce.CALLS, "mip-rescale-paper", ("mip", {"rescale": "paper"}))
    rep = bruteforce.run_case(seed, order=["mip-rescale-paper", "mip-rescale"], size="test", time_limit=3.0)
    bad = [k for k in rep["kinds"] if k in ("unsound", "status", "truth", "crash", "cert_error")]
    assert not bad, "\n" + bruteforce.report_text(rep)
