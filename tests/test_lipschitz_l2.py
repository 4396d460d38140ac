"""The l2 -> l2 Lipschitz constant of vector-valued networks (issue 16; Sbihi, Couellan and Jan).

The independent check: the largest spectral norm of the Jacobian over every activation
region realised in the box, by enumeration (``cached_regions``, ``net.region_affine``).
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bruteforce import cached_regions
from conftest import random_network
from reluopt import ProblemError, SolverError
from reluopt.bounds import compute_bounds
from reluopt.cli import EXIT_NO_PROOF, EXIT_OK, EXIT_USAGE, main
from reluopt.io import save_npz
from reluopt.lipschitz import lipschitz
from reluopt.lipschitz.common import interior_mask, pattern_of
from reluopt.lipschitz.miqcqp import solve_spectral
from reluopt.lipschitz.upper import spectral_interval_bound, spectral_product_bound
from reluopt.problem import Domain


def brute_spectral(net, lb, ub, C=None):
    """Largest ||C J||_2 over the full-dimensional regions realised in the box."""
    n = net.input_dim
    C = np.eye(net.output_dim) if C is None else np.atleast_2d(C)
    best = 0.0
    for pattern, _ in cached_regions(net, np.full(n, lb), np.full(n, ub)):
        _, (T, _) = net.region_affine(pattern)
        best = max(best, float(np.linalg.norm(C @ T, ord=2)))
    return best


def check_sound(r, truth):
    assert r.lower <= truth * (1 + 1e-9) + 1e-12
    assert r.upper >= truth * (1 - 1e-9) - 1e-12


def check_witness(net, r, C=None):
    C = np.eye(net.output_dim) if C is None else np.atleast_2d(C)
    assert interior_mask(net, r.x[None])[0]
    assert math.isclose(float(np.linalg.norm(C @ net.jacobian(r.x), ord=2)), r.lower, rel_tol=1e-9)
    assert all(np.array_equal(a, b) for a, b in zip(pattern_of(net, r.x), r.pattern, strict=True))


def test_2_16_16_2_exact_by_enumeration():
    net = random_network([2, 16, 16, 2], seed=0)
    truth = brute_spectral(net, -1, 1)
    r = lipschitz(net, (-1, 1), norm=2, method="bab", time_limit=60)
    assert r.status == "optimal"
    check_sound(r, truth)
    assert r.upper - r.lower <= 1e-5 * truth + 2e-6
    check_witness(net, r)
    assert r.stats["rows"] == ["y[0]", "y[1]"]
    # the cheap bounds are above it
    b = compute_bounds(net, -np.ones(2), np.ones(2), "crown")
    assert spectral_product_bound(net, np.eye(2)) >= truth
    assert spectral_interval_bound(net, np.eye(2), b) >= truth


def test_2_16_16_2_miqcqp_is_sound_at_a_short_limit():
    net = random_network([2, 16, 16, 2], seed=0)
    truth = brute_spectral(net, -1, 1)
    for formulation in ("linearised", "paper"):
        r = lipschitz(net, (-1, 1), norm=2, method="miqcqp", formulation=formulation, time_limit=4, samples=2000)
        check_sound(r, truth)
        assert r.stats["formulation"] == formulation


@pytest.mark.parametrize("formulation", ["linearised", "paper"])
@pytest.mark.parametrize("seed", [0, 1])
def test_miqcqp_exact_on_scip(seed, formulation):
    net = random_network([2, 5, 5, 2], seed=seed)
    truth = brute_spectral(net, -1, 1)
    r = lipschitz(net, (-1, 1), norm=2, method="miqcqp", formulation=formulation, time_limit=60, samples=2000)
    check_sound(r, truth)
    assert r.status == "optimal"
    check_witness(net, r)


def test_formulations_have_the_same_optimum_and_the_paper_is_quadratic():
    net = random_network([2, 4, 4, 2], seed=3)
    dom = Domain(-np.ones(2), np.ones(2))
    b = compute_bounds(net, dom.lb, dom.ub, "crown")
    lin = solve_spectral(net, dom, b, np.eye(2), formulation="linearised", time_limit=60)
    pap = solve_spectral(net, dom, b, np.eye(2), formulation="paper", time_limit=60)
    truth = brute_spectral(net, -1, 1)
    for out in (lin, pap):
        assert out["status"] == "optimal"
        assert math.isclose(math.sqrt(out["bound"]), truth, rel_tol=1e-4, abs_tol=1e-6)
    assert lin["binaries"] == pap["binaries"]
    assert pap["constraints"] < lin["constraints"]    # 3 quadratic rows per neuron instead of 7 linear
    with pytest.raises(ProblemError, match="unknown formulation"):
        solve_spectral(net, dom, b, np.eye(2), formulation="nope")


def test_gurobi_when_licensed():
    pytest.importorskip("gurobipy")
    net = random_network([2, 5, 5, 2], seed=2)
    truth = brute_spectral(net, -1, 1)
    for formulation in ("linearised", "paper"):
        try:
            r = lipschitz(net, (-1, 1), norm=2, method="miqcqp", solver="gurobi", formulation=formulation,
                          time_limit=30, samples=1000)
        except SolverError as exc:
            pytest.skip(f"Gurobi unusable here: {exc}")
        check_sound(r, truth)
        assert r.status == "optimal", formulation


def test_matrix_of_rows_is_the_spectral_norm_of_c_j():
    net = random_network([2, 6, 6, 3], seed=5)
    C = np.array([[1.0, -1.0, 0.0], [0.5, 0.5, 2.0]])
    truth = brute_spectral(net, -1, 1, C)
    r = lipschitz(net, (-1, 1), norm=2, c=C, method="bab", time_limit=30)
    assert r.status == "optimal"
    check_sound(r, truth)
    check_witness(net, r, C)
    # one row: the l2 gradient norm, and the paper's model agrees with the backward one
    row = C[:1]
    one = brute_spectral(net, -1, 1, row)
    for formulation in ("linearised", "paper"):
        s = lipschitz(net, (-1, 1), norm=2, c=row[0], method="miqcqp", formulation=formulation, time_limit=60)
        check_sound(s, one)
        assert s.status == "optimal"


@settings(deadline=None, max_examples=12)
@given(seed=st.integers(0, 10_000), width=st.integers(2, 5), depth=st.integers(1, 2), d=st.integers(1, 3),
       m=st.integers(2, 3), half=st.floats(0.1, 2.0))
def test_ordering_lower_truth_upper(seed, width, depth, d, m, half):
    net = random_network([d] + [width] * depth + [m], seed=seed)
    truth = brute_spectral(net, -half, half)
    for method in ("bounds", "sample", "bab"):
        r = lipschitz(net, (-half, half), norm=2, method=method, time_limit=10, samples=500, seed=seed)
        assert r.lower <= truth * (1 + 1e-9) + 1e-12, method
        assert r.upper >= truth * (1 - 1e-9) - 1e-12, method
    r = lipschitz(net, (-half, half), norm=2, method="miqcqp", formulation=("paper", "linearised")[seed % 2],
                  time_limit=3, samples=300, seed=seed)
    assert r.lower <= truth * (1 + 1e-9) + 1e-12
    assert r.upper >= truth * (1 - 1e-9) - 1e-12


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"norm": 1}, "vector case"),
        ({"norm": 2, "formulation": "nope"}, "unknown formulation"),
        ({"norm": "inf", "formulation": "paper"}, "quadratic formulation"),
    ],
)
def test_bad_input(kwargs, message):
    net = random_network([2, 4, 2], seed=0)
    with pytest.raises(ProblemError, match=message):
        lipschitz(net, (-1, 1), **kwargs)


def test_cli_l2_vector_case(tmp_path, capsys):
    net = random_network([2, 5, 5, 2], seed=0)
    path = str(tmp_path / "net.npz")
    save_npz(net, path)
    truth = brute_spectral(net, -1, 1)
    code = main(["lipschitz", path, "--box=-1,1", "--norm", "2", "--method", "miqcqp", "--formulation", "paper",
                 "--time-limit", "60", "--quiet", "--json", str(tmp_path / "out.json")])
    assert code in (EXIT_OK, EXIT_NO_PROOF)
    out = capsys.readouterr().out
    assert "y[0], y[1]" in out
    import json

    data = json.loads((tmp_path / "out.json").read_text())
    assert data["lower"] <= truth * (1 + 1e-9) and data["upper"] >= truth * (1 - 1e-9)
    assert main(["lipschitz", path, "--box=-1,1", "--norm", "2", "--formulation", "quadratic", "--quiet"]) \
        == EXIT_USAGE
