"""Linear expressions in objectives and constraints: accepted forms and their coefficients,
errors that point at a column, constant objectives refused, input terms (``x[i]``) in the
objective and in constraints checked against an independent brute force."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from scipy.optimize import linprog

import reluopt
from bruteforce import cached_regions
from conftest import random_network
from reluopt import Layer, Network, ParseError, Problem, ProblemError, ReluoptError
from reluopt.cli import main
from reluopt.expressions import parse_constraint, parse_expression, parse_linear_expression
from reluopt.io.native import save_npz


# ----------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("text, y, x, const", [
    ("y[0]", [1, 0], [0, 0, 0], 0.0),
    ("2*y[0]", [2, 0], [0, 0, 0], 0.0),
    ("y[0]*2", [2, 0], [0, 0, 0], 0.0),
    ("-0.5*y[1]", [0, -0.5], [0, 0, 0], 0.0),
    ("3e-2 * x[0]", [0, 0], [0.03, 0, 0], 0.0),
    ("y[0] * 2 + x[0]", [2, 0], [1, 0, 0], 0.0),
    ("2*y[0] - y[1] + 0.5", [2, -1], [0, 0, 0], 0.5),
    ("2*(y[0] - y[1])/4 + 1", [0.5, -0.5], [0, 0, 0], 1.0),
    ("-(y[0] - 3*x[2])", [-1, 0], [0, 0, 3], 0.0),
    ("y0 - y_1 + X_2 + x1", [1, -1], [0, 1, 1], 0.0),
    ("y [ 1 ] - .5 * x [ 0 ]", [0, 1], [-0.5, 0, 0], 0.0),
    ("y[0] + y[0] - x[1]*1e1", [2, 0], [0, -10, 0], 0.0),
    ("--y[1]", [0, 1], [0, 0, 0], 0.0),
])
def test_accepted_forms_and_coefficients(text, y, x, const):
    e = parse_expression(text, 3, 2)
    np.testing.assert_allclose(e.y, y)
    np.testing.assert_allclose(e.x, x)
    assert e.const == pytest.approx(const)


@pytest.mark.parametrize("text, column, phrase", [
    ("y[0] ** 2", 6, "powers are not linear"),
    ("y[0]^2", 5, "powers are not linear"),
    ("0.5 x[1]", 5, "missing '*'"),
    ("2 y[0]", 3, "missing '*'"),
    ("y[0]*y[1]", 5, "not linear"),
    ("y[0] / x[1]", 6, "dividing by an output or an input"),
    ("y[0] / 0", 6, "division by zero"),
    ("y[0] +", 7, "expected a number"),
    ("(y[0] - y[1]", 13, "missing ')'"),
    ("y[0])", 5, "unmatched ')'"),
    ("y[0] $ 2", 6, "unexpected character '$'"),
    ("profit*y[0]", 1, "unknown name 'profit'"),
    ("z[0]", 1, "unknown vector 'z'"),
    ("y[1.5]", 3, "whole number"),
    ("y[0", 4, "missing ']'"),
    ("y[0] <= 1", 6, "comparison belongs in a constraint"),
])
def test_errors_point_at_the_column(text, column, phrase):
    with pytest.raises(ParseError) as info:
        parse_expression(text, 3, 2)
    msg = str(info.value)
    assert f"at column {column} " in msg and phrase in msg, msg
    assert "\n" not in msg                      # one line for the CLI


def test_index_out_of_range_names_the_index_and_column():
    with pytest.raises(ProblemError, match=r"column 8 .*output y\[4\] does not exist: the network has 2 outputs"):
        parse_expression("y[0] - y[4]", 3, 2)
    with pytest.raises(ProblemError, match=r"input x\[3\] does not exist"):
        parse_expression("x[3]", 3, 2)


def test_constraint_columns_count_from_the_whole_constraint():
    with pytest.raises(ParseError, match=r"cannot read 'y\[0\] <= 2 y\[1\]' at column 11 "):
        parse_constraint("y[0] <= 2 y[1]", 3, 2)
    with pytest.raises(ParseError, match="one comparison per constraint"):
        parse_constraint("0 <= x[0] <= 1", 3, 2)
    with pytest.raises(ParseError, match="does not involve any output"):
        parse_constraint("1 <= 2", 3, 2)
    a_y, a_x, e = parse_constraint("y[0] - 2 >= 0.5*x[1] + y[1]", 3, 2)   # -y0 + y1 + 0.5 x1 <= -2
    np.testing.assert_allclose(a_y, [-1, 1])
    np.testing.assert_allclose(a_x, [0, 0.5, 0])
    assert e == pytest.approx(-2.0)


def test_outputs_only_reader_refuses_inputs():
    """``parse_linear_expression`` (lipschitz --objective) reads outputs only."""
    c, d = parse_linear_expression("y[1]*3 - 1", 2)
    np.testing.assert_allclose(c, [0, 3])
    assert d == -1
    with pytest.raises(ParseError, match=r"x\[0\]: only outputs"):
        parse_linear_expression("y[0] + x[0]", 2)


def test_names_of_inputs_and_outputs():
    base = random_network([2, 6, 2], seed=1)
    net = Network(base.layers, input_names=("temp", "pressure"), output_names=("h2", "n2"))
    e = parse_expression("2*h2 - n2 + 0.1*temp", 2, 2, input_names=net.input_names,
                         output_names=net.output_names)
    np.testing.assert_allclose(e.y, [2, -1])
    np.testing.assert_allclose(e.x, [0.1, 0])
    p = Problem.build(net, 0, 1, maximize="h2", constraints=["n2 <= 0.3", "temp + pressure <= 1.5"])
    np.testing.assert_allclose(p.objective.c, [1, 0])
    np.testing.assert_allclose(p.constraints.C, [[0, 1]])
    np.testing.assert_allclose(p.domain.A, [[1, 1]])
    with pytest.raises(ParseError, match="this network's names are h2, n2, temp, pressure"):
        Problem.build(net, 0, 1, maximize="h3")
    twin = Network(base.layers, input_names=("a", "b"), output_names=("a", "c"))
    with pytest.raises(ParseError, match="ambiguous"):
        Problem.build(twin, 0, 1, maximize="a")


# ----------------------------------------------------------------------------- constant objectives
@pytest.mark.parametrize("kwargs", [
    {"maximize": "1.5"}, {"maximize": 1.5}, {"minimize": "y[0] - y[0] + 2"}, {"maximize": "(3)"},
    {"c": [0.0]},
])
def test_constant_objective_is_an_error(kwargs):
    net = random_network([2, 4, 1], seed=0)
    with pytest.raises(ProblemError, match="constant|output index"):
        Problem.build(net, -1, 1, **kwargs)


def test_constant_objective_from_the_cli(tmp_path, capsys):
    path = str(save_npz(random_network([2, 4, 2], seed=0), tmp_path / "net.npz"))
    assert main(["solve", path, "--box=-1,1", "--maximize", "1.5", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "constant" in err and len(err.splitlines()) == 1, err
    # an integer K is still output K
    assert main(["solve", path, "--box=-1,1", "--maximize", "1", "--method", "bab", "--quiet"]) == 0
    assert "max y[1] over" in capsys.readouterr().out


# ----------------------------------------------------------------------------- input terms, exactly
def brute_force_xy(net, lb, ub, c, d, sense="max", mixed=(), A=None, b=None):
    """Independent truth: max/min ``c.y + d.x`` over every linear region (an LP each), with
    rows ``a_y.y + a_x.x <= e`` (``mixed``) and ``A x <= b``. Not the augmented network."""
    lb, ub = np.asarray(lb, float), np.asarray(ub, float)
    best = None
    for pattern, _ in cached_regions(net, lb, ub):
        pre, (T, t) = net.region_affine(pattern)
        rows, rhs = [], []
        for (Al, cl), p in zip(pre, pattern, strict=True):
            sign = np.where(np.asarray(p) > 0, -1.0, 1.0)
            rows.append(sign[:, None] * Al)
            rhs.append(-sign * cl)
        for a_y, a_x, e in mixed:
            rows.append((a_y @ T + a_x)[None, :])
            rhs.append(np.array([e - a_y @ t]))
        if A is not None:
            rows.append(np.atleast_2d(A))
            rhs.append(np.asarray(b, float))
        obj = c @ T + d
        s = -1.0 if sense == "max" else 1.0
        res = linprog(s * obj, A_ub=np.vstack(rows), b_ub=np.concatenate(rhs),
                      bounds=list(zip(lb, ub, strict=True)), method="highs")
        if res.status == 0:
            v = float(obj @ res.x + c @ t)
            if best is None or (v > best if sense == "max" else v < best):
                best = v
    return best


def test_inline_input_constraint_changes_the_optimum(tmp_path, capsys):
    net = random_network([2, 8, 8, 1], seed=3)
    free = reluopt.solve(Problem.build(net, -1, 1, maximize=0), method="bab", time_limit=30)
    assert free.status == "optimal"
    s = float(free.x.sum()) - 0.5          # cut the unconstrained optimum off
    text = f"x[0] + x[1] <= {s!r}"
    p = Problem.build(net, -1, 1, maximize=0, constraints=[text])
    np.testing.assert_allclose(p.domain.A, [[1.0, 1.0]])
    assert p.constraints is None
    truth = brute_force_xy(net, [-1, -1], [1, 1], np.array([1.0]), np.zeros(2), A=[[1.0, 1.0]], b=[s])
    assert truth < free.value - 1e-3       # the constraint matters
    for method in ("bab", "mip"):
        r = reluopt.solve(p, method=method, time_limit=30)
        assert r.status == "optimal" and r.value == pytest.approx(truth, abs=1e-4), (method, r)
        assert r.x.sum() <= s + 1e-6
    path = str(save_npz(net, tmp_path / "net.npz"))
    out = tmp_path / "r.json"
    code = main(["solve", path, "--box=-1,1", "--maximize", "0", "--constraint", text, "--method", "bab",
                 "--quiet", "--json", str(out)])
    assert code == 0
    assert json.loads(out.read_text())["value"] == pytest.approx(truth, abs=1e-4)
    assert "1 input constraint(s)" in capsys.readouterr().out


@pytest.mark.parametrize("sense", ["max", "min"])
def test_input_terms_in_objective_and_output_constraints(sense):
    net = random_network([2, 8, 8, 2], seed=5)
    objective = "3*y[0] - 0.5*x[1]"
    cons = ["y[1] >= x[0] - 1", "x[0] + x[1] <= 0.5", "y[0] <= 2"]
    kw = {"maximize": objective} if sense == "max" else {"minimize": objective}
    p = Problem.build(net, -1, 1, constraints=cons, **kw)
    assert p.user_network is net and p.network.output_dim == 4   # two carried input forms
    mixed = [(np.array([0.0, -1.0]), np.array([1.0, 0.0]), 1.0), (np.array([1.0, 0.0]), np.zeros(2), 2.0)]
    truth = brute_force_xy(net, [-1, -1], [1, 1], np.array([3.0, 0.0]), np.array([0.0, -0.5]), sense,
                           mixed, A=[[1.0, 1.0]], b=[0.5])
    X = np.random.default_rng(0).uniform(-1, 1, size=(400, 2))
    Y = net.forward(X)
    np.testing.assert_allclose(p.objective_values(X), 3 * Y[:, 0] - 0.5 * X[:, 1], atol=1e-12)
    np.testing.assert_allclose(p.outputs(X), Y)
    for method in ("bab", "mip"):
        r = reluopt.solve(p, method=method, time_limit=30)
        assert r.status == "optimal" and r.value == pytest.approx(truth, abs=2e-4), (method, r, truth)
        y = net.forward(r.x)
        assert y[1] >= r.x[0] - 1 - 1e-6 and y[0] <= 2 + 1e-6 and r.x.sum() <= 0.5 + 1e-6
    assert p.describe().startswith(f"{sense} 3*y[0] - 0.5*x[1] over a 2-d box of 2-8-8-2")


def test_input_terms_on_a_clipped_network_and_a_smaller_box():
    rng = np.random.default_rng(2)
    layers = (Layer(rng.normal(size=(6, 3)), rng.normal(size=6), "clipped_relu", 0.3),
              Layer(rng.normal(size=(5, 6)), rng.normal(size=5), "relu"),
              Layer(rng.normal(size=(2, 5)), rng.normal(size=2), "identity"))
    net = Network(layers)
    p = Problem.build(net, -4, 4, minimize="y[1] + 20*x[2] - 7*x[0]", constraints=["y[0] <= 5*x[1]"])
    for q, lo, hi in ((p, -4.0, 4.0), (p.with_box(-np.ones(3), np.full(3, 0.5)), -1.0, 0.5)):
        X = np.random.default_rng(1).uniform(lo, hi, size=(300, 3))
        Y = net.forward(X)
        np.testing.assert_allclose(q.objective_values(X), Y[:, 1] + 20 * X[:, 2] - 7 * X[:, 0], atol=1e-9)
        np.testing.assert_array_equal(q.is_feasible(X), Y[:, 0] <= 5 * X[:, 1] + 1e-6)


def test_input_terms_need_a_bounded_box():
    net = random_network([2, 4, 1], seed=0)
    with pytest.raises(ProblemError, match="bounded box"):
        Problem.build(net, [-np.inf, 0], [1, 1], maximize="y[0] + x[0]")
    p = Problem.build(net, [-np.inf, 0], [1, 1], maximize="y[0]", constraints=["x[0] >= -3"])
    np.testing.assert_allclose(p.domain.A, [[-1.0, 0.0]])


def test_api_maximize_takes_an_index_or_an_expression():
    net = random_network([2, 4, 3], seed=0)
    np.testing.assert_allclose(Problem.build(net, 0, 1, maximize=np.int64(2)).objective.c, [0, 0, 1])
    np.testing.assert_allclose(Problem.build(net, 0, 1, minimize="1").objective.c, [0, 1, 0])
    with pytest.raises(ReluoptError, match=re.escape("output index 3 does not exist")):
        Problem.build(net, 0, 1, maximize=3)
    with pytest.raises(ProblemError, match="output index"):
        Problem.build(net, 0, 1, maximize=True)


def test_cli_expressions_starting_with_a_minus(tmp_path, capsys):
    net = random_network([2, 6, 1], seed=4)
    path = str(save_npz(net, tmp_path / "net.npz"))
    out = tmp_path / "r.json"
    assert main(["solve", path, "--box", "-1,1", "--maximize", "-x[0] + y[0]", "--constraint", "-x[1] <= 0.5",
                 "--method", "bab", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    x = np.array(data["x"])
    assert x[1] >= -0.5 - 1e-9
    assert data["value"] == pytest.approx(net.forward(x)[0] - x[0], abs=1e-9)
    truth = brute_force_xy(net, [-1, -1], [1, 1], np.array([1.0]), np.array([-1.0, 0.0]), A=[[0.0, -1.0]], b=[0.5])
    assert data["value"] == pytest.approx(truth, abs=1e-4)
    assert "max y[0] - x[0] over" in capsys.readouterr().out
