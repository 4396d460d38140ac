"""The splitting rule of ``auto`` and ``verify`` (input splitting, ReLU splitting or the MIP), and
the verdicts of ``verify``'s ReLU-splitting path against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import random_network
from reluopt import Problem, ProblemError, solve
from reluopt.methods.portfolio import (
    BAB_MAX_DIM,
    SPLIT_MAX_DIM,
    VERIFY_BAB_MAX_DIM,
    choose_exact,
    exact_method,
    relu_split_fits,
)
from reluopt.network import Layer, Network
from reluopt.verification import verify
from test_region import brute_optimum
from test_verify import LB, UB, _fold_inputs, check_verdict, max_margin, single


def _leaky(net: Network) -> Network:
    """The same weights with leaky ReLU hidden layers (slope 0.1)."""
    last = len(net.layers) - 1
    return Network(tuple(Layer(layer.W, layer.b, "leaky_relu" if i < last else "identity", None,
                               0.1 if i < last else None) for i, layer in enumerate(net.layers)))


def test_the_rule_by_dimension_and_network():
    # plain problems: input splitting up to SPLIT_MAX_DIM inputs, then ReLU splitting
    assert exact_method(SPLIT_MAX_DIM, True, True) == "bab"
    assert exact_method(SPLIT_MAX_DIM + 1, True, True) == "bab-relu"
    # the others: input splitting up to BAB_MAX_DIM, then the MIP
    assert exact_method(BAB_MAX_DIM, True, False) == "bab"
    assert exact_method(BAB_MAX_DIM + 1, True, False) == "mip"
    assert exact_method(3, False, True) == "mip"
    # verify: input splitting up to VERIFY_BAB_MAX_DIM whatever the activations
    assert exact_method(VERIFY_BAB_MAX_DIM, True, False, verification=True) == "bab"
    assert exact_method(VERIFY_BAB_MAX_DIM + 1, True, True, verification=True) == "bab-relu"
    assert exact_method(784, True, False, verification=True) == "mip"


def test_choose_exact_follows_the_rule():
    net = random_network([20, 6, 1], seed=0)
    assert choose_exact(Problem.build(net, 0, 1, maximize=0)) == "bab-relu"
    assert choose_exact(Problem.build(random_network([12, 6, 1]), 0, 1, maximize=0)) == "bab"
    # input and output constraints: ReLU splitting too (benchmarks/results/relu_constraints.md)
    A, b = np.ones((1, 20)), np.array([3.0])
    assert choose_exact(Problem.build(net, 0, 1, maximize=0, A=A, b=b)) == "bab-relu"
    assert choose_exact(Problem.build(net, 0, 1, maximize=0, constraints=["y[0] <= 1"])) == "bab-relu"
    # what ReLU splitting does not take goes to the MIP: a leaky ReLU, an unbounded box
    leaky = _leaky(net)
    assert not relu_split_fits(leaky) and relu_split_fits(net)
    assert choose_exact(Problem.build(leaky, 0, 1, maximize=0)) == "mip"
    assert choose_exact(Problem.build(net, 0, np.inf, maximize=0)) == "mip"


@pytest.mark.parametrize("seed", [0, 1])
def test_auto_above_the_limit_is_relu_splitting_and_optimal(seed):
    """20 inputs, two of them free: the truth is the brute force on the folded 2-input net."""
    net = random_network([20, 8, 8, 1], seed=seed)
    rng = np.random.default_rng(seed)
    free = np.array([2, 17])
    x0 = rng.uniform(-1, 1, 20)
    lb, ub = x0.copy(), x0.copy()
    lb[free], ub[free] = -1.0, 1.0
    small = _fold_inputs(net, free, x0[np.setdiff1d(np.arange(20), free)])
    truth = brute_optimum(Problem.build(small, LB, UB, maximize=0))
    r = solve(Problem.build(net, lb, ub, maximize=0), "auto", time_limit=30)
    assert r.stats["exact"] == "bab-relu"
    assert r.status == "optimal"
    assert r.value == pytest.approx(truth, abs=1e-5)
    assert r.bound >= truth - 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("delta", [-1e-3, 1e-3])
def test_verify_relu_splitting_matches_brute_force(seed, delta):
    """More than VERIFY_BAB_MAX_DIM inputs, two free: ``auto`` takes ReLU splitting, whose
    verdict must match the brute force on the folded network (falsification off)."""
    net = random_network([20, 10, 8, 2], seed=seed)
    rng = np.random.default_rng(seed)
    free = np.array([4, 15])
    x0 = rng.uniform(-1, 1, 20)
    lb, ub = x0.copy(), x0.copy()
    lb[free], ub[free] = -1.0, 1.0
    small = _fold_inputs(net, free, x0[np.setdiff1d(np.arange(20), free)])
    C = np.array([[1.0, -1.0]])
    m0 = max_margin(small, LB, UB, C, np.zeros(1))
    e = np.array([delta - m0])
    truth = max_margin(small, LB, UB, C, e)
    assert truth == pytest.approx(delta, abs=1e-7)
    prop = single(lb, ub, C, e)
    verdict = verify(net, prop, timeout=30, falsify=False)
    check_verdict(net, prop, verdict, truth)
    if verdict.method not in ("crown", "crown-point", "alpha-crown"):
        assert verdict.stats["exact_method"] == "bab-relu"
        assert verdict.method == "bab-relu"


@pytest.mark.parametrize("seed", [0, 3])     # seeds where CROWN and alpha-CROWN leave it open
def test_a_784_input_property_is_decided_by_relu_splitting(seed):
    """An MNIST-sized input (784, three of them free): CROWN and alpha-CROWN leave it open,
    ReLU splitting decides it, in agreement with the brute force on the folded network."""
    net = random_network([784, 12, 10, 3], seed=seed)
    rng = np.random.default_rng(seed)
    free = np.array([5, 400, 783])
    x0 = rng.uniform(-1, 1, 784)
    lb, ub = x0.copy(), x0.copy()
    lb[free], ub[free] = -1.0, 1.0
    small = _fold_inputs(net, free, x0[np.setdiff1d(np.arange(784), free)])
    lb3, ub3 = -np.ones(3), np.ones(3)
    C = np.array([[1.0, -1.0, 0.0]])
    m0 = max_margin(small, lb3, ub3, C, np.zeros(1))
    delta = -1e-3
    e = np.array([delta - m0])
    truth = max_margin(small, lb3, ub3, C, e)
    assert truth == pytest.approx(delta, abs=1e-7)
    prop = single(lb, ub, C, e)
    verdict = verify(net, prop, timeout=60, falsify=False)
    check_verdict(net, prop, verdict, truth)
    assert verdict.stats["exact_method"] == "bab-relu"
    assert verdict.method == "bab-relu"


def test_verify_bab_relu_refuses_a_leaky_network():
    net = _leaky(random_network([20, 6, 2], seed=0))
    prop = single(-np.ones(20), np.ones(20), np.array([[1.0, -1.0]]), np.zeros(1))
    with pytest.raises(ProblemError, match="plain ReLU"):
        verify(net, prop, timeout=5, exact="bab-relu")
