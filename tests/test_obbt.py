"""LP/MIP OBBT: soundness by sampling, never looser than CROWN, certificates by weak duality,
input constraints and cut-offs, MIP variant against brute force, stable neurons removed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from conftest import random_network
from reluopt.bounds import crown_bounds, interval_bounds
from reluopt.bounds.obbt import _layer_model, _Task, dual_lower_bound, obbt_bounds
from reluopt.errors import ProblemError
from reluopt.milp.formulation import build_network_model
from reluopt.problem import Domain


def _inside(bounds, net, X, tol=0.0):
    for l, g in enumerate(net.preactivations(X)):
        if np.any(g < bounds.lower[l][0] - tol) or np.any(g > bounds.upper[l][0] + tol):
            return False
    Y = net.forward(X)
    return bool(np.all(Y >= bounds.out_lower[0] - tol) and np.all(Y <= bounds.out_upper[0] + tol))


def _not_looser(tight, loose, tol=0.0):
    """Every bound of ``tight`` at least as tight as ``loose`` (up to ``tol`` relative: two
    certified LP bounds of the same value can differ by their rounding margins)."""
    pairs = [(tight.lower[l], loose.lower[l], tight.upper[l], loose.upper[l])
             for l in range(len(tight.lower))]
    pairs.append((tight.out_lower, loose.out_lower, tight.out_upper, loose.out_upper))
    return all(np.all(a >= b - tol * (1 + np.abs(b))) and np.all(c <= d + tol * (1 + np.abs(d)))
               for a, b, c, d in pairs)


@settings(deadline=None, max_examples=20)
@given(seed=st.integers(0, 10_000), width=st.integers(3, 10), depth=st.integers(1, 3),
       radius=st.floats(0.05, 2.0))
def test_lp_obbt_is_sound_and_never_looser_than_crown(seed, width, depth, radius):
    net = random_network([3] + [width] * depth + [2], seed=seed, scale=1.5)
    centre = np.random.default_rng(seed).normal(size=3) * 0.5
    lb, ub = centre - radius, centre + radius
    crown = crown_bounds(net, lb, ub)
    ob = obbt_bounds(net, lb, ub)
    assert ob.method == "lp-obbt"
    X = np.random.default_rng(seed + 1).uniform(lb, ub, size=(3000, 3))
    assert _inside(ob, net, X)
    assert _not_looser(ob, crown)


def test_obbt_tightens_a_deep_net_and_reports_timings():
    net = random_network([3, 20, 20, 20, 2], seed=1)
    lb, ub = -np.ones(3), np.ones(3)
    crown = crown_bounds(net, lb, ub)
    ob = obbt_bounds(net, Domain(lb, ub))
    widths = [float(np.sum(ob.upper[l] - ob.lower[l])) for l in range(3)]
    crown_widths = [float(np.sum(crown.upper[l] - crown.lower[l])) for l in range(3)]
    assert widths[2] < 0.8 * crown_widths[2]      # a real tightening in the deepest layer
    assert ob.n_unstable(net) < crown.n_unstable(net)
    st_ = ob.stats
    for key in ("build_seconds", "solve_seconds", "certify_seconds", "solves", "seconds"):
        assert key in st_
    assert st_["solves"] > 0 and st_["not_optimal"] == 0
    # stable neurons leave the MIP: fewer binaries with the tighter bounds
    dom = Domain(lb, ub)
    assert build_network_model(net, dom, ob).n_binaries == ob.n_unstable(net)
    assert build_network_model(net, dom, ob).n_binaries < build_network_model(net, dom, crown).n_binaries


def _scipy_lp_min(model, cost):
    """An independent LP solve of the model's relaxation (scipy's HiGHS interface)."""
    A = model.A.tocsr()
    rl, ru = model.row_lower, model.row_upper
    eq = rl == ru
    ub_rows = ~eq & np.isfinite(ru)
    lb_rows = ~eq & np.isfinite(rl)
    import scipy.sparse as sp

    A_ub = sp.vstack([A[ub_rows], -A[lb_rows]])
    b_ub = np.concatenate([ru[ub_rows], -rl[lb_rows]])
    res = linprog(cost, A_ub=A_ub, b_ub=b_ub, A_eq=A[eq], b_eq=rl[eq],
                  bounds=list(zip(model.col_lower, model.col_upper, strict=True)), method="highs")
    assert res.status == 0
    return res.fun


def test_dual_certificate_is_valid_for_any_multipliers_and_tight_at_the_optimum():
    net = random_network([3, 10, 10, 2], seed=5)
    dom = Domain(-np.ones(3), np.ones(3))
    crown = crown_bounds(net, dom.lb, dom.ub)
    task = _Task(net, dom, [a[0] for a in crown.lower], [a[0] for a in crown.upper],
                 crown.out_lower[0], crown.out_upper[0], 1, np.arange(10))
    model, g_cols = _layer_model(task)
    rng = np.random.default_rng(0)
    from reluopt.milp.backends.highs import to_highs

    for i in range(4):
        for sign in (1.0, -1.0):
            cost = np.zeros(model.n_cols)
            cost[g_cols[i]] = sign
            exact = _scipy_lp_min(model, cost)
            # weak duality: any multipliers give a lower bound
            for _ in range(5):
                y = rng.normal(size=model.n_rows) * rng.uniform(0, 2)
                assert dual_lower_bound(model, cost, y) <= exact + 1e-9
            # the solver's optimal duals reproduce the LP optimum
            import highspy

            h = to_highs(model, relax=True)
            h.changeObjectiveSense(highspy.ObjSense.kMinimize)
            h.changeColsCost(model.n_cols, np.arange(model.n_cols, dtype=np.int32), cost)
            h.run()
            cert = dual_lower_bound(model, cost, np.asarray(h.getSolution().row_dual))
            assert exact - 1e-7 <= cert + 1e-12 and cert <= exact + 1e-9


def test_input_constraints_are_used_and_respected():
    net = random_network([2, 12, 12, 1], seed=8)
    lb, ub = -np.ones(2), np.ones(2)
    A, b = np.array([[1.0, 1.0]]), np.array([-0.5])     # the lower-left corner only
    dom = Domain(lb, ub, A, b)
    plain = obbt_bounds(net, lb, ub)
    con = obbt_bounds(net, dom)
    X = np.random.default_rng(0).uniform(lb, ub, size=(20000, 2))
    X = X[X @ A[0] <= b[0]]
    assert _inside(con, net, X)
    assert _not_looser(con, plain, tol=1e-9)
    assert float(np.sum(con.upper[0] - con.lower[0])) < float(np.sum(plain.upper[0] - plain.lower[0]))


def test_objective_cutoff_keeps_every_good_point():
    net = random_network([2, 10, 10, 1], seed=9)
    lb, ub = -np.ones(2), np.ones(2)
    X = np.random.default_rng(1).uniform(lb, ub, size=(20000, 2))
    y = net.forward(X)[:, 0]
    value = float(np.quantile(y, 0.9))
    cut = obbt_bounds(net, lb, ub, objective_cutoff=(np.array([1.0]), 0.0, value))
    plain = obbt_bounds(net, lb, ub)
    assert _inside(cut, net, X[y >= value])
    assert _not_looser(cut, plain, tol=1e-9)
    assert cut.out_lower[0][0] >= value - 1e-6        # the cut-off bounds the output itself


def _grid(lb, ub, n=201):
    a, b = np.meshgrid(np.linspace(lb[0], ub[0], n), np.linspace(lb[1], ub[1], n))
    return np.column_stack([a.ravel(), b.ravel()])


def test_mip_obbt_gives_the_exact_range_on_a_tiny_net():
    net = random_network([2, 6, 6, 6, 1], seed=2, scale=1.5)
    lb, ub = -np.ones(2), np.ones(2)
    lp = obbt_bounds(net, lb, ub)
    mip = obbt_bounds(net, lb, ub, mode="mip", time_limit_per_neuron=20.0)
    assert mip.method == "mip-obbt"
    assert sum(row.get("mip_solved", 0) for row in mip.stats["layers"]) > 0
    assert _not_looser(mip, lp, tol=1e-9)
    pre = net.preactivations(_grid(lb, ub))
    for l, g in enumerate(pre):
        lo, hi = g.min(0), g.max(0)
        assert np.all(mip.lower[l][0] <= lo) and np.all(mip.upper[l][0] >= hi)
        unstable = (lp.lower[l][0] < 0) & (lp.upper[l][0] > 0)
        # exact MIP bounds: within the grid's resolution of the true range (neurons it solved)
        if l > 0:
            assert np.all(np.abs(mip.lower[l][0][unstable] - lo[unstable]) < 0.05)
            assert np.all(np.abs(mip.upper[l][0][unstable] - hi[unstable]) < 0.05)


def test_mip_obbt_with_a_tiny_time_limit_stays_sound():
    net = random_network([3, 12, 12, 12, 1], seed=4, scale=1.5)
    lb, ub = -np.ones(3), np.ones(3)
    ob = obbt_bounds(net, lb, ub, mode="mip", time_limit_per_neuron=0.005)
    assert ob.stats["time_limits"] > 0          # the time-out path was exercised
    X = np.random.default_rng(3).uniform(lb, ub, size=(5000, 3))
    assert _inside(ob, net, X)
    assert _not_looser(ob, crown_bounds(net, lb, ub))


def test_initial_bounds_and_layer_selection():
    net = random_network([3, 10, 10, 10, 2], seed=6)
    lb, ub = -np.ones(3), np.ones(3)
    ibp = interval_bounds(net, lb, ub)
    ob = obbt_bounds(net, lb, ub, initial=ibp, layers=[1])
    assert _not_looser(ob, ibp)
    assert [row["layer"] for row in ob.stats["layers"]] == [1]
    assert ob.stats["initial"] == "ibp"


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": "milp"}, "mode"),
    ({"layers": [7]}, "do not exist"),
    ({"objective_cutoff": (np.ones(3), 0.0, 1.0)}, "objective_cutoff"),
    ({"time_limit_per_neuron": 0.0}, "time_limit"),
    ({"time_limit": -1.0}, "time_limit"),
    ({"executor": "gpu"}, "executor"),
])
def test_bad_options_raise_clear_errors(kwargs, match):
    net = random_network([2, 4, 2], seed=0)
    with pytest.raises(ProblemError, match=match):
        obbt_bounds(net, -np.ones(2), np.ones(2), **kwargs)


def test_unbounded_domain_is_refused():
    net = random_network([2, 4, 1], seed=0)
    with pytest.raises(ProblemError, match="bounded"):
        obbt_bounds(net, Domain(np.array([-np.inf, 0.0]), np.ones(2)))


def test_overall_time_limit_stops_early_and_stays_sound():
    net = random_network([3, 30, 30, 30, 2], seed=3)
    lb, ub = -np.ones(3), np.ones(3)
    ob = obbt_bounds(net, lb, ub, time_limit=1e-6)
    assert ob.stats["skipped"] > 0 and ob.stats["solves"] <= 2
    assert _not_looser(ob, crown_bounds(net, lb, ub))
    X = np.random.default_rng(0).uniform(lb, ub, size=(3000, 3))
    assert _inside(ob, net, X)
