"""The attack side of verify and pgd: margin loss gradients against finite differences, real
counterexamples (forward pass, a dense grid, onnxruntime), seeded determinism, and the MIP
attack's status handling (a failed or lying solver is no counterexample)."""

from __future__ import annotations

import time

import numpy as np
import pytest

import reluopt
from conftest import random_network
from reluopt.methods.attack import checkpoints, margin_gradient, margin_loss, maximin_point
from reluopt.milp.backends.base import SolveOutput
from reluopt.objectives import MaxMin
from reluopt.problem import Domain, Problem
from reluopt.verification import Disjunct, verify
from reluopt.verification.falsify import Found, Pair, falsify, mip_attack

LB, UB = -np.ones(2), np.ones(2)


def grid_margins(net, lb, ub, C, e, n=301):
    """The margin ``min_j (e_j - C_j y)`` on a dense grid of the 2-d box (an independent truth)."""
    g = np.stack(np.meshgrid(np.linspace(lb[0], ub[0], n), np.linspace(lb[1], ub[1], n)), -1).reshape(-1, 2)
    return g, np.min(e[None, :] - net.forward(g) @ C.T, axis=1)


def sat_pair(seed, quantile=0.995):
    """A pair on a random 2-input net whose unsafe set is a small part of the box (grid truth)."""
    net = random_network([2, 12, 12, 3], seed=seed)
    rng = np.random.default_rng(seed)
    C = rng.normal(size=(2, 3))
    _, m0 = grid_margins(net, LB, UB, C, np.zeros(2))
    e = np.full(2, -np.quantile(m0, quantile))      # about 0.5% of the grid is unsafe
    dj = Disjunct(C, e, np.zeros(2, dtype=bool))
    return net, Pair(0, 0, LB.copy(), UB.copy(), dj)


@pytest.mark.parametrize("tau", [0.0, 0.3])
def test_margin_gradient_matches_finite_differences(tau):
    net = random_network([3, 10, 10, 4], seed=7)
    rng = np.random.default_rng(0)
    C, e = rng.normal(size=(5, 4)), rng.normal(size=5)
    groups = np.array([0, 0, 1, 1, 1])
    X = rng.uniform(-1, 1, size=(6, 3))
    _, G = margin_gradient(net, X, C, e, groups, tau)
    h = 1e-6
    for i in range(3):
        d = np.zeros(3)
        d[i] = h
        fp = margin_loss(net.forward(X + d) @ C.T + e, groups, tau)[0]
        fm = margin_loss(net.forward(X - d) @ C.T + e, groups, tau)[0]
        np.testing.assert_allclose(G[:, i], (fp - fm) / (2 * h), rtol=1e-4, atol=1e-6)


def test_margin_loss_is_the_max_over_groups_of_the_min_and_the_soft_one_tends_to_it():
    rng = np.random.default_rng(1)
    V = rng.normal(size=(20, 6))
    groups = np.array([0, 1, 1, 2, 2, 2])
    hard = np.max(np.stack([V[:, groups == g].min(axis=1) for g in range(3)], 1), axis=1)
    v0, w0 = margin_loss(V, groups)
    np.testing.assert_array_equal(v0, hard)
    assert np.all(w0.sum(axis=1) == 1) and np.all(np.sum(w0 > 0, axis=1) == 1)
    v, w = margin_loss(V, groups, 1e-4)
    np.testing.assert_allclose(v, hard, atol=1e-3)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)


def test_apgd_checkpoints_and_maximin_start():
    marks = sorted(checkpoints(100))
    assert marks[:3] == [22, 41, 57] and marks[-1] < 100
    lam = np.array([[1.0, 0.0], [-1.0, 0.0]])
    x = maximin_point(lam, np.zeros(2), LB, UB)     # max min(x0, -x0) is at x0 = 0
    assert x is not None and abs(x[0]) < 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_falsify_finds_a_real_counterexample_of_a_small_unsafe_set(seed):
    net, p = sat_pair(seed)
    with pytest.raises(Found) as info:
        falsify(net, [p], np.random.default_rng(seed), time.perf_counter() + 30)
    x, y = info.value.x, info.value.y
    assert np.all(LB <= x) and np.all(x <= UB)
    assert p.dj.holds(net.forward(x[None, :]))[0]
    np.testing.assert_allclose(y, net.forward(x[None, :])[0])


def test_counterexample_of_verify_passes_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from reluopt.io.export import save_onnx
    from reluopt.verification import InputBox, Property

    net, p = sat_pair(3)
    path = save_onnx(net, tmp_path / "net.onnx", dtype="float32")
    net32 = reluopt.load(path)
    prop = Property(2, 3, (InputBox(LB, UB, (p.dj,)),))
    v = verify(net32, prop, timeout=30, exact="none", seed=0)
    assert v.status == "sat"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x32 = np.asarray(v.x, np.float32)
    y = sess.run(None, {sess.get_inputs()[0].name: x32[None, :]})[0][0]
    assert prop.is_counterexample(x32.astype(np.float64), np.asarray(y, np.float64))


def test_falsify_and_pgd_are_seeded():
    net, p = sat_pair(4)
    xs = []
    for _ in range(2):
        q = Pair(0, 0, p.lb, p.ub, p.dj)
        with pytest.raises(Found) as info:
            falsify(net, [q], np.random.default_rng(11), time.perf_counter() + 60)
        xs.append(info.value.x)
    np.testing.assert_array_equal(xs[0], xs[1])
    problem = Problem(net, Domain(LB, UB), MaxMin(-p.dj.C, p.dj.e))
    runs = [reluopt.solve(problem, "pgd", time_limit=60, seed=5, restarts=8, steps=20, batches=1, samples=64)
            for _ in range(2)]
    np.testing.assert_array_equal(runs[0].x, runs[1].x)
    assert runs[0].value == pytest.approx(float(np.min(p.dj.e - net.forward(runs[0].x[None, :])[0] @ p.dj.C.T)))


class FakeBackend:
    """A back-end that returns a fixed outcome (a failed run, or an 'optimal' that lies)."""

    def __init__(self, status, x_point):
        self.status, self.x_point = status, x_point

    def solve(self, model, **kwargs):
        values = model.point_to_columns(self.x_point)
        kwargs["on_improvement"](10.0, values)
        return SolveOutput(self.status, values, 10.0, None, 0.0)


@pytest.mark.parametrize("status", ["error", "optimal"])
def test_mip_attack_claims_nothing_from_a_failed_or_lying_solver(status):
    net, p = sat_pair(5)
    g, m = grid_margins(net, LB, UB, p.dj.C, p.dj.e)
    safe_x = g[int(np.argmin(m))]                     # a point far from the unsafe set
    upper = p.upper
    out = mip_attack(net, p, 5.0, FakeBackend(status, safe_x))
    assert out == status
    assert p.upper == upper and not p.closed_by
    assert p.best_margin < 0


def test_mip_attack_finds_a_counterexample_the_solver_proves_exists():
    net, p = sat_pair(6, quantile=0.999)
    with pytest.raises(Found) as info:
        mip_attack(net, p, 30.0)
    x = info.value.x
    assert info.value.method == "mip-attack" and p.dj.holds(net.forward(x[None, :]))[0]
    assert np.all(LB <= x) and np.all(x <= UB)


def test_auto_runs_pgd_first_above_the_bab_dimension_only():
    big = Problem.build(random_network([10, 12, 1], seed=2), -1, 1, maximize=0)
    r = reluopt.solve(big, "auto", time_limit=4, heuristic_fraction=0.5)
    assert [ph["method"] for ph in r.stats["phases"]][:3] == ["pgd", "ppga-lr", "sampling"]
    assert r.value == pytest.approx(big.objective_values(r.x)[0], abs=1e-12)
    small = Problem.build(random_network([2, 12, 1], seed=2), -1, 1, maximize=0)
    r = reluopt.solve(small, "auto", time_limit=4, exact="mip", heuristic_fraction=0.5)
    assert "pgd" not in [ph["method"] for ph in r.stats["phases"]]
