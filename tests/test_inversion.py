"""The inversion package's import paths, the objective protocol that replaced the
``isinstance(objective, LeastSquares)`` branches, and unknown method options, which are a
``ProblemError`` naming the valid ones (never silently ignored)."""

import dataclasses
import importlib.util

import numpy as np
import pytest

import reluopt
from reluopt import Domain, LeastSquares, Network, Objective, Problem, ProblemError, solve
from reluopt.errors import UnknownOptionError
from reluopt.methods import METHODS, available_methods, get_method


def tiny_generator(seed: int = 0, sizes=(2, 8, 6)) -> Network:
    rng = np.random.default_rng(seed)
    return Network.from_weights([
        (rng.normal(size=(sizes[i + 1], sizes[i])) / np.sqrt(sizes[i + 1]), 0.1 * rng.normal(size=sizes[i + 1]))
        for i in range(len(sizes) - 1)
    ])


def lsq_problem(seed: int = 0) -> Problem:
    G = tiny_generator(seed)
    return Problem(G, Domain(-np.ones(2), np.ones(2)), LeastSquares(G.forward(np.array([0.3, -0.2]))))


# ----------------------------------------------------------------------------- import paths
def test_inversion_methods_live_in_the_inversion_package():
    from reluopt.inversion import solve_adam, solve_miqp, solve_surfing
    from reluopt.inversion.adam import Adam
    from reluopt.inversion.comparison import compare_at_equal_budget, relative_errors
    from reluopt.inversion.miqp import build_miqp
    from reluopt.inversion.surfing import direct, load_checkpoints, surf

    assert get_method("adam") is solve_adam and get_method("surfing") is solve_surfing
    assert get_method("miqp") is solve_miqp
    assert {"adam", "surfing", "miqp"} <= set(available_methods()) <= set(METHODS)
    assert all(callable(f) for f in (Adam, build_miqp, direct, load_checkpoints, surf, compare_at_equal_budget,
                                     relative_errors))
    for old in ("reluopt.methods.surfing", "reluopt.methods.surfing_exact"):
        assert importlib.util.find_spec(old) is None, f"{old} should be gone (one home per concept)"


def test_moved_helpers_and_cli_imports():
    from reluopt.cli import EXIT_OK, EXIT_USAGE, SUBCOMMANDS, build_parser
    from reluopt.cli.common import EXIT_OK as common_ok
    from reluopt.methods.points import as_incumbent, check_domain, project, sample_domain, unit_design
    from reluopt.parallel import one_blas_thread, single_threaded_blas

    assert EXIT_OK == common_ok == 0 and EXIT_USAGE == 2
    assert [m.__name__.rsplit(".", 1)[1] for m in SUBCOMMANDS] == \
        ["solve", "bounds", "compare", "verify", "analyze", "lipschitz", "surf"]
    help_text = build_parser().format_help()
    assert all(name in help_text for name in ("solve", "bounds", "lipschitz", "surf"))
    assert all(callable(f) for f in (as_incumbent, check_domain, project, sample_domain, unit_design,
                                     one_blas_thread, single_threaded_blas))
    import reluopt.methods.region as region

    assert not hasattr(region, "single_threaded_blas") and not hasattr(region, "sample_domain")


# ----------------------------------------------------------------------------- objective protocol
def test_objective_protocol_replaces_isinstance_branches():
    G = tiny_generator(1)
    lin = Problem.build(G, -1, 1, minimize="y[0] - 2*y[3]", d=0.5)
    lsq = lsq_problem(1)
    assert lin.objective.is_linear and not lsq.objective.is_linear
    assert lsq.objective.sense == "min" and lsq.sense == "min" and lsq.objective.sign == -1.0
    assert "d" not in {f.name for f in dataclasses.fields(LeastSquares)}     # no placeholder fields
    assert "sense" not in {f.name for f in dataclasses.fields(LeastSquares)}
    c, d = lin.objective.linear_form()
    np.testing.assert_array_equal(c, lin.objective.c)
    assert d == lin.objective.d
    with pytest.raises(ProblemError, match="least squares"):
        lsq.objective.linear_form()
    X = np.random.default_rng(0).uniform(-1, 1, size=(5, 2))
    for p in (lin, lsq):
        Y = p.network.forward(X)
        np.testing.assert_allclose(p.objective.values(Y), p.objective_values(X))
        # the gradient agrees with central differences (all points off the kinks with probability 1)
        h = 1e-6
        fd = np.stack([(p.objective_values(X + h * e) - p.objective_values(X - h * e)) / (2 * h)
                       for e in np.eye(2)], axis=1)
        np.testing.assert_allclose(p.objective.input_gradient(p.network, X), fd, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(p.objective_gradient(X), fd, rtol=1e-4, atol=1e-6)
    assert isinstance(Objective(np.ones(6)).n_outputs(), int)
    with pytest.raises(ProblemError, match="least-squares objective reads 3 outputs"):
        Problem(G, Domain(-np.ones(2), np.ones(2)), LeastSquares(np.zeros(3)))
    with pytest.raises(ProblemError, match="objective has 3 coefficients"):
        Problem(G, Domain(-np.ones(2), np.ones(2)), Objective(np.ones(3)))


# ----------------------------------------------------------------------------- unknown options
@pytest.mark.parametrize("method, bad, valid, suggestion", [
    ("adam", "stpes", "starts", "steps"),
    ("surfing", "steps_per_checkpont", "polish_steps", "steps_per_checkpoint"),
    ("miqp", "start_sample", "scip_params", "start_samples"),
])
def test_misspelled_inversion_option_names_the_valid_ones(method, bad, valid, suggestion):
    problem = lsq_problem()
    extra = {"checkpoints": [problem.network]} if method == "surfing" else {}
    with pytest.raises(ProblemError, match=f"method '{method}' has no option '{bad}'") as info:
        solve(problem, method, time_limit=5, **extra, **{bad: 3})
    assert valid in str(info.value) and f"did you mean '{suggestion}'" in str(info.value)
    assert isinstance(info.value, TypeError)      # also what Python raises for a bad keyword


def test_misspelled_option_of_a_linear_method_and_of_auto_fails_before_running(tiny_net):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    with pytest.raises(UnknownOptionError, match="method 'sampling' has no option 'max_sample'.*max_samples"):
        solve(p, "sampling", time_limit=1, max_sample=3)
    with pytest.raises(UnknownOptionError, match=r"method 'auto \(exact phase: mip\)' has no option 'solverr'"):
        solve(p, "auto", time_limit=60, exact="mip", solverr="highs")   # before the heuristic phase
    # a direct call, not through the registry, checks too
    from reluopt.inversion.adam import solve_adam

    with pytest.raises(UnknownOptionError, match="its options: incumbent, lr, progress, seed, starts, steps"):
        solve_adam(lsq_problem(), lrr=0.1)


def test_adam_takes_the_common_incumbent_option():
    """The portfolio hands every heuristic ``incumbent``: adam accepts it (unused)."""
    r = solve(lsq_problem(), "adam", time_limit=5, steps=20, incumbent=np.zeros(2))
    assert r.status == "feasible"


def test_lipschitz_function_and_subpackage_names():
    import sys

    assert reluopt.lipschitz is sys.modules["reluopt.lipschitz"] and callable(reluopt.lipschitz)
    assert reluopt.lipschitz_constant is reluopt.lipschitz.lipschitz
