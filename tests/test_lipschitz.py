import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bruteforce import cached_regions
from conftest import random_network
from reluopt import Network, ProblemError
from reluopt.lipschitz import lipschitz
from reluopt.lipschitz.common import interior_mask, pattern_of

Q = {"inf": 1, "1": np.inf, "2": 2}


def brute_lipschitz(net, lb, ub, c, norm):
    """Max gradient norm over all full-dimensional regions realised in the box (enumerated once
    per net and box: each norm and output asks the same regions)."""
    best = 0.0
    for pattern, _ in cached_regions(net, np.full(net.input_dim, lb), np.full(net.input_dim, ub)):
        _, (T, _) = net.region_affine(pattern)
        best = max(best, float(np.linalg.norm(c @ T, ord=Q[norm])))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("norm", ["inf", "1", "2"])
def test_exact_equals_brute_force(seed, norm):
    net = random_network([2, 6, 6, 1], seed=seed)
    truth = brute_lipschitz(net, -1, 1, np.ones(1), norm)
    method = "miqcqp" if norm == "2" else "mip"
    check_exact(net, truth, norm, lipschitz(net, (-1, 1), norm=norm, method=method, time_limit=30))
    check_exact(net, truth, norm, lipschitz(net, (-1, 1), norm=norm, method="bab", time_limit=30))


def check_exact(net, truth, norm, r):
    assert r.lower <= truth * (1 + 1e-9) + 1e-12
    assert r.upper >= truth * (1 - 1e-9) - 1e-12
    assert r.status == "optimal"
    assert r.upper - r.lower <= 1e-5 * truth + 2e-6
    # witness: strictly inside its region, and its gradient norm is the lower bound
    assert interior_mask(net, r.x[None])[0]
    g = net.gradient(r.x, np.ones(1))
    assert math.isclose(float(np.linalg.norm(g, ord=Q[norm])), r.lower, rel_tol=1e-12)
    assert all(np.array_equal(a, b) for a, b in zip(pattern_of(net, r.x), r.pattern, strict=True))


def test_vector_case_is_max_of_row_l1_norms():
    net = random_network([3, 5, 5, 3], seed=4)
    truth = max(brute_lipschitz(net, -0.5, 0.5, np.eye(3)[k], "inf") for k in range(3))
    r = lipschitz(net, (-0.5, 0.5), norm="inf", method="mip", time_limit=30)
    assert r.status == "optimal"
    assert r.lower <= truth * (1 + 1e-9) and r.upper >= truth * (1 - 1e-9)


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 10_000), width=st.integers(2, 5), depth=st.integers(1, 2),
       d=st.integers(1, 3), norm=st.sampled_from(["inf", "1", "2"]), half=st.floats(0.1, 2.0))
def test_ordering_lower_exact_upper(seed, width, depth, d, norm, half):
    """lower <= brute force <= upper for every method, on generated nets and boxes."""
    net = random_network([d] + [width] * depth + [1], seed=seed)
    truth = brute_lipschitz(net, -half, half, np.ones(1), norm)
    tol = 1e-9 * max(truth, 1.0)
    exact = ("bab",) if norm == "2" else ("mip-upper", "mip", "bab")
    for method in ("sample", "bounds", *exact):
        r = lipschitz(net, (-half, half), norm=norm, method=method, time_limit=20, samples=1000)
        if math.isfinite(r.lower):
            assert r.lower <= truth + tol, method
            assert interior_mask(net, r.x[None])[0], method
        assert r.upper >= truth - tol, method
        if method in ("mip", "bab"):
            assert r.status == "optimal" and r.upper - r.lower <= 1e-5 * truth + 2e-6, method


@pytest.mark.parametrize("method", ["sample", "bab", "mip-upper", "mip"])
def test_constant_network_is_proven_zero(method):
    """Every neuron dead on the box: the constant is 0, and 'proven' must not need a relative gap."""
    from reluopt import Network

    net = Network.from_weights([(np.array([[1.0], [-1.0]]), np.array([-5.0, -5.0])),
                                (np.array([[2.0, 3.0]]), np.array([0.5]))])
    r = lipschitz(net, (-1, 1), norm="inf", method=method, time_limit=10, samples=500)
    assert r.lower == 0.0 and 0.0 <= r.upper <= 1e-9 and r.status == "optimal"


def test_bab_is_exact_where_all_kinks_meet():
    """A bias-free net: every hyperplane passes through the origin, so enumeration alone counts
    patterns no input realises there; bab resolves such boxes by region LPs and proves the
    brute-force value. (The MIP's non-strict region constraints admit those patterns, so it
    reports an honest gap here: the paper's 'mild conditions' fail.)"""
    from reluopt import Network

    rng = np.random.default_rng(0)
    net = Network.from_weights([(rng.normal(size=(4, 2)), np.zeros(4)), (rng.normal(size=(1, 4)), np.zeros(1))])
    truth = brute_lipschitz(net, -1, 1, np.ones(1), "1")
    r = lipschitz(net, (-1, 1), norm=1, method="bab", time_limit=30, samples=500)
    check_exact(net, truth, "1", r)
    m = lipschitz(net, (-1, 1), norm=1, method="mip", time_limit=30, samples=500)
    assert m.lower <= truth * (1 + 1e-9) and m.upper >= truth * (1 - 1e-9)


def test_top_level_export():
    """The function is ``reluopt.lipschitz_constant``; ``reluopt.lipschitz`` is the subpackage
    (not shadowed by the function), callable as the function."""
    import sys

    import reluopt

    assert reluopt.lipschitz_constant is lipschitz and "lipschitz_constant" in reluopt.__all__
    assert "lipschitz" in reluopt.__all__ and reluopt.lipschitz is sys.modules["reluopt.lipschitz"]
    net = Network.from_weights([(np.array([[2.0, -1.0]]), np.zeros(1))])
    a = reluopt.lipschitz(net, (-1, 1), norm="inf", method="bounds")
    b = reluopt.lipschitz_constant(net, (-1, 1), norm="inf", method="bounds")
    assert a.upper == b.upper and 3.0 <= a.upper <= 3.0 + 1e-6
    import reluopt.lipschitz.mip as mip  # the submodules are reachable by attribute again

    assert reluopt.lipschitz.METHODS and mip.__name__ == "reluopt.lipschitz.mip"


@pytest.mark.parametrize("bounds", ["ibp", "lp-obbt"])
def test_bounds_options_give_the_same_exact_value(bounds):
    net = random_network([2, 6, 6, 1], seed=3)
    truth = brute_lipschitz(net, -1, 1, np.ones(1), "inf")
    r = lipschitz(net, (-1, 1), norm="inf", method="mip", bounds=bounds, time_limit=30, samples=1000)
    assert r.stats["bounds"] == bounds
    assert r.status == "optimal"
    assert r.lower <= truth * (1 + 1e-9) and r.upper >= truth * (1 - 1e-9)


def test_mip_start_is_a_feasible_full_solution():
    """The MIP start written from a point satisfies every row and column bound, and its
    objective is the gradient norm there (so HiGHS accepts it as an incumbent)."""
    from reluopt.bounds import crown_bounds
    from reluopt.lipschitz.mip import build_lipschitz_model, mip_start
    from reluopt.problem import Domain

    net = random_network([3, 8, 8, 2], seed=3)
    dom = Domain(-np.ones(3), np.ones(3))
    b = crown_bounds(net, dom.lb, dom.ub)
    c = np.array([1.0, -0.5])
    xs = np.random.default_rng(0).uniform(-1, 1, (20, 3))
    for q in (1.0, np.inf):
        for realisable in (True, False):
            model, _, layout = build_lipschitz_model(net, dom, b, c, q, realisable)
            for x in xs:
                v = mip_start(model, layout, x)
                r = model.A @ v
                assert np.all(r >= model.row_lower - 1e-9) and np.all(r <= model.row_upper + 1e-9)
                assert np.all(v >= model.col_lower - 1e-9) and np.all(v <= model.col_upper + 1e-9)
                assert math.isclose(model.cost @ v, np.linalg.norm(net.gradient(x, c), ord=q), rel_tol=1e-9)


def test_gurobi_solver_agrees_when_licensed():
    pytest.importorskip("gurobipy")
    from reluopt import SolverError

    net = random_network([2, 6, 6, 1], seed=1)
    for norm, method in (("inf", "mip"), ("2", "miqcqp")):
        truth = brute_lipschitz(net, -1, 1, np.ones(1), norm)
        try:
            r = lipschitz(net, (-1, 1), norm=norm, method=method, solver="gurobi", time_limit=30, samples=1000)
        except SolverError as exc:
            pytest.skip(f"Gurobi unusable here: {exc}")
        assert r.status == "optimal", norm
        assert r.lower <= truth * (1 + 1e-9) and r.upper >= truth * (1 - 1e-9), norm


def test_upper_bound_model_is_at_least_exact():
    net = random_network([2, 8, 8, 1], seed=7)
    exact = lipschitz(net, (-1, 1), method="mip", time_limit=30)
    upper_model = lipschitz(net, (-1, 1), method="mip-upper", time_limit=30)
    assert upper_model.upper >= exact.lower * (1 - 1e-9)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"norm": 3}, "norm must be 1, 2 or inf"),
        ({"norm": "inf", "method": "miqcqp"}, "norm=2"),
        ({"norm": 2, "method": "mip"}, "miqcqp"),
        ({"method": "nope"}, "unknown Lipschitz method"),
        ({"output": 5}, "does not exist"),
        ({"time_limit": 0}, "time limit must be positive"),
    ],
)
def test_bad_input(kwargs, message):
    net = random_network([2, 4, 2], seed=0)
    kwargs.setdefault("output", 0)
    with pytest.raises(ProblemError, match=message):
        lipschitz(net, (-1, 1), **kwargs)


def test_unbounded_box_is_rejected():
    net = random_network([2, 4, 1], seed=0)
    with pytest.raises(ProblemError, match="bounded box"):
        lipschitz(net, (-np.inf, 1.0))


def test_l2_without_scip_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "pyscipopt":
            raise ImportError("no pyscipopt")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    from reluopt import SolverError

    net = random_network([2, 4, 1], seed=0)
    with pytest.raises(SolverError, match="scip"):
        lipschitz(net, (-1, 1), norm=2, method="miqcqp")


def test_problem_with_objective_rows_is_a_target():
    """A Problem whose objective is MaxMin rows (the type verification and bab use) is a Lipschitz
    target: the constant of several rows is the largest of theirs (inf norm)."""
    from reluopt import Domain, Problem
    from reluopt.problem import MaxMin

    net = random_network([3, 5, 5, 3], seed=4)
    rows = np.array([[1.0, -1.0, 0.0], [0.0, 0.5, 2.0]])
    truth = max(brute_lipschitz(net, -0.5, 0.5, r, "inf") for r in rows)
    problem = Problem(net, Domain(np.full(3, -0.5), np.full(3, 0.5)), MaxMin(rows, [0.3, -1.0]))
    r = lipschitz(problem, norm="inf", method="mip", time_limit=30)
    assert r.status == "optimal"
    assert r.lower <= truth * (1 + 1e-9) and r.upper >= truth * (1 - 1e-9)
