"""Clipped ReLU min(max(0, g), tau): bound soundness (IBP, CROWN, OBBT) and the MILP
formulation against brute force (dense grid, enumeration of the 3^n phase patterns)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from reluopt import Network
from reluopt.bounds import crown_bounds, interval_bounds
from reluopt.bounds.obbt import obbt_bounds
from reluopt.milp.backends.highs import solve_highs
from reluopt.milp.formulation import build_network_model, build_problem_model, classify
from reluopt.problem import Domain, Problem


def clipped_network(sizes, seed=0, tau=0.7, scale=1.5, clip_layers=None) -> Network:
    rng = np.random.default_rng(seed)
    weights, acts, taus = [], [], []
    n = len(sizes) - 1
    for i in range(n):
        W = scale * rng.normal(size=(sizes[i + 1], sizes[i])) / np.sqrt(sizes[i])
        b = 0.5 * rng.normal(size=sizes[i + 1])
        weights.append((W, b))
        hidden = i < n - 1
        clipped = hidden and (clip_layers is None or i in clip_layers)
        acts.append("clipped_relu" if clipped else ("relu" if hidden else "identity"))
        taus.append(tau if clipped else None)
    return Network.from_weights(weights, activations=acts, taus=taus)


def _samples(lb, ub, n, seed):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(lb, ub, size=(n, lb.shape[0]))
    corners = np.array(list(itertools.product(*zip(lb, ub, strict=True))))
    return np.vstack([pts, corners])


# ----------------------------------------------------------------------------- bounds
@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 10_000), tau=st.floats(0.05, 3.0),
       width=st.integers(2, 6), depth=st.integers(1, 3), radius=st.floats(0.01, 3.0))
def test_ibp_and_crown_are_sound_on_clipped_nets(seed, tau, width, depth, radius):
    net = clipped_network([3] + [width] * depth + [2], seed=seed, tau=tau)
    centre = np.random.default_rng(seed + 1).normal(size=3)
    lb, ub = centre - radius, centre + radius
    X = _samples(lb, ub, 400, seed)
    pre = net.preactivations(X)
    Y = net.forward(X)
    for bounds in (interval_bounds(net, lb, ub), crown_bounds(net, lb, ub)):
        for l, g in enumerate(pre):
            assert np.all(g >= bounds.lower[l][0]) and np.all(g <= bounds.upper[l][0]), bounds.method
        assert np.all(Y >= bounds.out_lower[0]) and np.all(Y <= bounds.out_upper[0])


def test_clipped_bounds_are_capped_by_tau():
    net = clipped_network([2, 6, 6, 1], seed=4, tau=0.5, scale=4.0)
    b = interval_bounds(net, -np.ones(2), np.ones(2))
    W2 = np.abs(net.layers[1].W)
    # every first-layer output lies in [0, tau], so the second layer's range is <= tau |W|_1
    assert np.all(b.upper[1][0] - b.lower[1][0] <= 0.5 * W2.sum(axis=1) * (1 + 1e-7))
    assert np.any(b.upper[0][0] > 0.5)   # the cap matters: some neurons can exceed tau


def test_obbt_is_sound_on_clipped_nets():
    net = clipped_network([2, 8, 8, 8, 1], seed=7, tau=0.6)
    lb, ub = -np.ones(2), np.ones(2)
    crown = crown_bounds(net, lb, ub)
    ob = obbt_bounds(net, lb, ub)
    X = _samples(lb, ub, 3000, 1)
    for l, g in enumerate(net.preactivations(X)):
        assert np.all(g >= ob.lower[l][0]) and np.all(g <= ob.upper[l][0])
        assert np.all(ob.lower[l][0] >= crown.lower[l][0]) and np.all(ob.upper[l][0] <= crown.upper[l][0])


# ----------------------------------------------------------------------------- formulation
def _all_cases_net():
    """A 2-input clipped net whose first layer has every phase class over [-1, 1]^2."""
    W1 = np.array([[1.0, 0.0],    # g in [-1.0, 1.0] -> both kinks (tau 0.5)
                   [0.2, 0.0],    # g in [-0.2, 0.2]  -> kink at 0 only
                   [0.2, 0.1],    # g in [0.4, 1.0] with b 0.7 -> kink at tau only
                   [0.1, 0.1],    # g in [-1.2, -0.8] -> inactive
                   [0.1, 0.0],    # g in [0.6, 0.8] -> saturated
                   [0.1, 0.1]])   # g in [0.05, 0.45] -> linear
    b1 = np.array([0.0, 0.0, 0.7, -1.0, 0.7, 0.25])
    rng = np.random.default_rng(0)
    W2 = rng.normal(size=(4, 6))
    b2 = rng.normal(size=4) * 0.3
    W3 = rng.normal(size=(1, 4))
    return Network.from_weights([(W1, b1), (W2, b2), (W3, np.zeros(1))],
                                activations=["clipped_relu", "clipped_relu", "identity"],
                                taus=[0.5, 0.5, None])


def test_every_phase_class_appears_and_mip_starts_are_feasible():
    net = _all_cases_net()
    dom = Domain(-np.ones(2), np.ones(2))
    bounds = interval_bounds(net, dom.lb, dom.ub)
    ph = classify(net.layers[0], bounds.lower[0][0], bounds.upper[0][0])
    for name in ("inactive", "linear", "saturated", "lower", "upper", "both"):
        assert getattr(ph, name).sum() == 1, name
    model = build_network_model(net, dom, bounds)
    assert model.n_binaries == sum(int((z >= 0).sum()) for z in (*model.z_cols, *model.z2_cols))
    X = _samples(dom.lb, dom.ub, 300, 3)
    X = np.vstack([X, [[0.5, 0.0], [0.0, 0.0], [-0.3, 0.2]]])   # exactly on kinks
    for x in X:
        v = model.point_to_columns(x)
        Av = model.A @ v
        assert np.all(Av >= model.row_lower - 1e-9) and np.all(Av <= model.row_upper + 1e-9)
        assert np.all(v >= model.col_lower - 1e-9) and np.all(v <= model.col_upper + 1e-9)
        assert np.allclose(model.columns_to_point(v), x)
        assert np.allclose(v[model.y_cols], net.forward(x))


def _binary_assignments_are_exact(net, dom, bounds):
    """Fixing the binaries to a point's phases and solving the LP gives that point's y."""
    model = build_network_model(net, dom, bounds)
    X = _samples(dom.lb, dom.ub, 20, 5)
    for x in X:
        v = model.point_to_columns(x)
        fixed = model.copy()
        fixed.col_lower[model.x_cols] = fixed.col_upper[model.x_cols] = x
        ints = np.nonzero(model.integrality)[0]
        fixed.col_lower[ints] = fixed.col_upper[ints] = v[ints]
        for sign in (1.0, -1.0):
            fixed.cost = np.zeros(fixed.n_cols)
            fixed.cost[model.y_cols[0]] = sign
            out = solve_highs(fixed, relax=True)
            assert out.status == "optimal"
            assert abs(out.values[model.y_cols[0]] - net.forward(x)[0]) < 1e-6


def test_fixed_binaries_determine_the_output():
    net = _all_cases_net()
    dom = Domain(-np.ones(2), np.ones(2))
    _binary_assignments_are_exact(net, dom, interval_bounds(net, dom.lb, dom.ub))


def _grid(lb, ub, n=301):
    a = np.linspace(lb[0], ub[0], n)
    b = np.linspace(lb[1], ub[1], n)
    A, B = np.meshgrid(a, b)
    return np.column_stack([A.ravel(), B.ravel()])


def _phase_rows(A, a, phases, tau):
    """Rows ``R x <= r`` of the region where neuron i of the affine map ``A x + a`` has phase
    ``phases[i]`` (0: g <= 0, 1: 0 <= g <= tau, 2: g >= tau)."""
    rows, rhs = [], []
    for i, ph in enumerate(phases):
        if ph == 0:
            rows.append(A[i])
            rhs.append(-a[i])
        elif ph == 1:
            rows += [-A[i], A[i]]
            rhs += [a[i], tau - a[i]]
        else:
            rows.append(-A[i])
            rhs.append(a[i] - tau)
    return rows, rhs


def _pattern_enumeration_range(net: Network, lb, ub):
    """(min, max) of the single output over the box, by enumerating phase patterns layer by
    layer (3^n per layer) and solving each region's LPs; a layer prefix whose region is empty
    is pruned, so only realisable patterns reach the next layer."""
    box = list(zip(lb, ub, strict=True))
    d = lb.shape[0]
    best, worst = -np.inf, np.inf

    def feasible(rows, rhs):
        if not rows:
            return True
        res = linprog(np.zeros(d), A_ub=np.array(rows), b_ub=np.array(rhs), bounds=box, method="highs")
        return res.status == 0

    def descend(l, pattern, rows, rhs):
        nonlocal best, worst
        if l == net.depth:
            _, (T, t) = net.region_affine(pattern)
            for sign in (-1.0, 1.0):
                res = linprog(sign * T[0], A_ub=np.array(rows), b_ub=np.array(rhs), bounds=box,
                              method="highs")
                if res.status != 0:
                    return
                if sign < 0:
                    best = max(best, -res.fun + t[0])
                else:
                    worst = min(worst, res.fun + t[0])
            return
        layer = net.layers[l]
        for phases in itertools.product((0, 1, 2), repeat=layer.n_out):
            # the affine map of layer l on this prefix (later layers' phases are irrelevant)
            full = pattern + [np.array(phases)] + [np.zeros(n, int) for n in net.hidden_sizes[l + 1:]]
            pre, _ = net.region_affine(full)
            A, a = pre[l]
            r, q = _phase_rows(A, a, phases, layer.tau)
            if feasible(rows + r, rhs + q):
                descend(l + 1, pattern + [np.array(phases)], rows + r, rhs + q)

    descend(0, [], [], [])
    return worst, best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mip_optimum_matches_brute_force(seed):
    net = clipped_network([2, 4, 3, 1], seed=seed, tau=0.6, scale=2.0)
    lb, ub = -np.ones(2), np.ones(2)
    lowest, highest = _pattern_enumeration_range(net, lb, ub)
    grid = net.forward(_grid(lb, ub))[:, 0]
    # the enumeration encloses the grid (and is close to it)
    assert lowest <= grid.min() + 1e-9 and highest >= grid.max() - 1e-9
    for kw, sign, exact in (({"maximize": 0}, 1.0, highest), ({"minimize": 0}, -1.0, -lowest)):
        problem = Problem.build(net, lb, ub, **kw)
        model = build_problem_model(problem, crown_bounds(net, lb, ub))
        assert model.n_binaries > 0
        out = solve_highs(model, mip_rel_gap=1e-9, mip_abs_gap=1e-9)
        assert out.status == "optimal"
        value = float(net.forward(model.columns_to_point(out.values))[0])
        assert abs(sign * value - exact) < 1e-6     # the MIP's point is optimal
        assert abs(out.objective - sign * value) < 1e-6


def test_mip_over_mixed_relu_and_clipped_layers_matches_grid():
    net = clipped_network([2, 6, 6, 1], seed=11, tau=0.4, scale=2.0, clip_layers={1})
    assert net.layers[0].activation == "relu" and net.layers[1].activation == "clipped_relu"
    lb, ub = np.array([-1.0, -0.5]), np.array([1.0, 1.5])
    for kw, sign in (({"maximize": 0}, 1.0), ({"minimize": 0}, -1.0)):
        problem = Problem.build(net, lb, ub, **kw)
        model = build_problem_model(problem, obbt_bounds(net, lb, ub))
        out = solve_highs(model, mip_rel_gap=1e-9, mip_abs_gap=1e-9)
        assert out.status == "optimal"
        value = sign * float(net.forward(model.columns_to_point(out.values))[0])
        grid = sign * net.forward(_grid(lb, ub, 401))[:, 0]
        assert value >= grid.max() - 1e-7
        assert value <= grid.max() + 0.05     # the grid is fine enough to be near the optimum
        assert out.bound >= value - 1e-6


def test_mip_with_every_phase_class_matches_grid():
    net = _all_cases_net()
    lb, ub = -np.ones(2), np.ones(2)
    grid = net.forward(_grid(lb, ub, 401))[:, 0]
    for kw, sign in (({"maximize": 0}, 1.0), ({"minimize": 0}, -1.0)):
        model = build_problem_model(Problem.build(net, lb, ub, **kw), interval_bounds(net, lb, ub))
        assert any(np.any(z >= 0) for z in model.z2_cols)
        out = solve_highs(model, mip_rel_gap=1e-9, mip_abs_gap=1e-9)
        assert out.status == "optimal"
        value = sign * float(net.forward(model.columns_to_point(out.values))[0])
        assert (sign * grid).max() - 1e-7 <= value <= (sign * grid).max() + 0.02
