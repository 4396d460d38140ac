import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bruteforce import enumerate_regions
from conftest import random_network
from reluopt import ProblemError
from reluopt.lipschitz import lipschitz
from reluopt.lipschitz.common import interior_mask, pattern_of

Q = {"inf": 1, "1": np.inf, "2": 2}


def brute_lipschitz(net, lb, ub, c, norm):
    """Max gradient norm over all full-dimensional regions realised in the box."""
    best = 0.0
    for pattern, _ in enumerate_regions(net, np.full(net.input_dim, lb), np.full(net.input_dim, ub)):
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
    assert r.upper - r.lower <= 1e-5 * truth + 1e-9
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


@settings(deadline=None, max_examples=12)
@given(seed=st.integers(0, 10_000), width=st.integers(2, 5), depth=st.integers(1, 2),
       d=st.integers(1, 3), norm=st.sampled_from(["inf", "1"]))
def test_ordering_lower_exact_upper(seed, width, depth, d, norm):
    net = random_network([d] + [width] * depth + [1], seed=seed)
    truth = brute_lipschitz(net, -1, 1, np.ones(1), norm)
    tol = 1e-9 * max(truth, 1.0)
    for method in ("sample", "bounds", "mip-upper", "mip", "bab"):
        r = lipschitz(net, (-1, 1), norm=norm, method=method, time_limit=20, samples=2000)
        if math.isfinite(r.lower):
            assert r.lower <= truth + tol, method
        assert r.upper >= truth - tol, method


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
