"""reluopt.embed's levers and checks: the user's rows on the inputs entering OBBT bounds,
rescaling, and variables of another solver model refused by name.

The truth is independent of the embedding: brute force over the network's linear regions (one
LP each) for optima, and a forward pass at sampled feasible inputs for neuron bounds.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from bruteforce import cached_regions
from conftest import random_network
from reluopt import ProblemError
from reluopt.embed.constraints import constraints_on_inputs, resolve_constraints

LB = np.array([-1.0, -2.0])
UB = np.array([1.5, 1.0])
C_X = np.array([-0.3, 0.2])
SIDE = 0.5          # the user's row on the inputs alone: x0 + x1 <= SIDE
TOL = 1e-5


@pytest.fixture(scope="module")
def net():
    return random_network([2, 8, 8, 1], seed=5)


@pytest.fixture(scope="module")
def truth(net):
    """max y0 + C_X.x over the box with x0 + x1 <= SIDE, region by region."""
    best = -np.inf
    for pattern, _ in cached_regions(net, LB, UB):
        pre, (T, t) = net.region_affine(pattern)
        rows, rhs = [np.array([[1.0, 1.0]])], [np.array([SIDE])]
        for (Al, cl), p in zip(pre, pattern, strict=True):
            sign = np.where(np.asarray(p) > 0, -1.0, 1.0)
            rows.append(sign[:, None] * Al)
            rhs.append(-sign * cl)
        obj = T[0] + C_X
        res = linprog(-obj, A_ub=np.vstack(rows), b_ub=np.concatenate(rhs), bounds=list(zip(LB, UB, strict=True)),
                      method="highs")
        if res.status == 0:
            best = max(best, float(obj @ res.x + t[0]))
    return best


def feasible_samples(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    x = LB + rng.random((n, 2)) * (UB - LB)
    return x[x.sum(axis=1) <= SIDE]


# ----------------------------------------------------------------------------- one model per layer
def highs_model(net, **options):
    highspy = pytest.importorskip("highspy")
    from reluopt.embed.highspy import add_network_constr

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    x = [h.addVariable(lb=LB[i], ub=UB[i]) for i in range(2)]
    u = h.addVariable(lb=0, ub=3, type=highspy.HighsVarType.kInteger)
    h.addConstr(x[0] + x[1] <= SIDE)              # on the inputs alone: read
    h.addConstr(x[0] - 0.1 * u <= 5.0)            # involves u: not read
    nn = add_network_constr(h, net, x, **options)
    h.maximize(nn.output_vars[0] + C_X[0] * x[0] + C_X[1] * x[1])
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return h.getInfo().objective_function_value, nn


def scip_model(net, **options):
    pyscipopt = pytest.importorskip("pyscipopt")
    from reluopt.embed.pyscipopt import add_network_constr

    m = pyscipopt.Model()
    m.hideOutput()
    x = [m.addVar(f"x{i}", lb=LB[i], ub=UB[i]) for i in range(2)]
    u = m.addVar("u", vtype="I", lb=0, ub=3)
    m.addCons(x[0] + x[1] <= SIDE)
    m.addCons(x[0] - 0.1 * u <= 5.0)
    nn = add_network_constr(m, net, x, **options)
    m.setObjective(nn.output_vars[0] + C_X[0] * x[0] + C_X[1] * x[1], "maximize")
    m.optimize()
    assert m.getStatus() == "optimal"
    return m.getObjVal(), nn


def gurobi_model(net, **options):
    gp = pytest.importorskip("gurobipy")
    from reluopt.embed.gurobipy import add_network_constr

    m = gp.Model()
    m.Params.OutputFlag = 0
    m.Params.Threads = 1
    x = m.addMVar(2, lb=LB, ub=UB, name="x")
    u = m.addVar(lb=0, ub=3, vtype=gp.GRB.INTEGER, name="u")
    m.addConstr(x[0] + x[1] <= SIDE)
    m.addConstr(x[0] - 0.1 * u <= 5.0)
    nn = add_network_constr(m, net, x, **options)
    m.setObjective(nn.output_vars[0] + C_X[0] * x[0] + C_X[1] * x[1], gp.GRB.MAXIMIZE)
    try:
        m.optimize()
    except gp.GurobiError as exc:   # the pip wheel's size-limited licence
        if exc.errno in (10009, 10010):
            pytest.skip(f"Gurobi licence: {exc}")
        raise
    assert m.Status == gp.GRB.OPTIMAL
    return m.ObjVal, nn


def pyomo_model(net, **options):
    pyo = pytest.importorskip("pyomo.environ")
    from reluopt.embed.pyomo import add_network_block

    opt = pyo.SolverFactory("appsi_highs")
    if not opt.available(exception_flag=False):
        pytest.skip("Pyomo's appsi_highs is not available")
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(2), bounds=lambda _, i: (LB[i], UB[i]))
    m.u = pyo.Var(domain=pyo.Integers, bounds=(0, 3))
    m.side = pyo.Constraint(expr=m.x[0] + m.x[1] <= SIDE)
    m.other = pyo.Constraint(expr=m.x[0] - 0.1 * m.u <= 5.0)
    nn = add_network_block(m, net, m.x, **options)
    m.obj = pyo.Objective(expr=nn.output_vars[0] + C_X[0] * m.x[0] + C_X[1] * m.x[1], sense=pyo.maximize)
    res = opt.solve(m)
    assert str(res.solver.termination_condition) == "optimal"
    return pyo.value(m.obj), nn


LAYERS = [highs_model, scip_model, gurobi_model, pyomo_model]
LAYER_IDS = ["highs", "scip", "gurobi", "pyomo"]


@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
def test_rows_on_the_inputs_enter_obbt_bounds(net, truth, layer):
    value, nn = layer(net, bounds="lp-obbt")
    assert nn.stats["input_constraints"] == 1            # x0 + x1 <= SIDE; the row with u is not read
    assert value == pytest.approx(truth, abs=TOL)
    assert nn.get_error() < 1e-6
    _, box_only = layer(net, bounds="lp-obbt", input_constraints=None)
    assert box_only.stats["input_constraints"] == 0
    # sound: every feasible input's pre-activations lie in the bounds; tighter than the box's
    xs = feasible_samples()
    tighter = 0.0
    for l, g in enumerate(_pre(net, xs)):
        lo, hi = nn.bounds.lower[l][0], nn.bounds.upper[l][0]
        assert np.all(g >= lo - 1e-7) and np.all(g <= hi + 1e-7)
        assert np.all(lo >= box_only.bounds.lower[l][0] - 1e-9) and np.all(hi <= box_only.bounds.upper[l][0] + 1e-9)
        tighter += float(np.sum(box_only.bounds.upper[l][0] - hi) + np.sum(lo - box_only.bounds.lower[l][0]))
    assert tighter > 1e-3


def _pre(net, xs):
    """Pre-activations of every hidden layer at the rows of ``xs`` (a plain forward pass)."""
    out, h = [], xs
    for layer in net.hidden_layers:
        g = h @ layer.W.T + layer.b
        out.append(g)
        h = np.maximum(g, 0.0)
    return out


@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
def test_rescaled_formulation_reaches_the_optimum(net, truth, layer):
    value, nn = layer(net, rescale=True)
    assert nn.stats["rescaled"]
    assert value == pytest.approx(truth, abs=TOL)
    assert nn.get_error() < 1e-6


def test_constraints_given_as_a_pair(net, truth):
    value, nn = highs_model(net, bounds="mip-obbt", input_constraints=(np.array([[1.0, 1.0]]), [SIDE]))
    assert nn.stats["input_constraints"] == 1 and nn.stats["bounds"] == "mip-obbt"
    assert value == pytest.approx(truth, abs=TOL)
    with pytest.raises(ProblemError, match="input_constraints must be"):
        highs_model(net, input_constraints="everything")
    with pytest.raises(ProblemError, match="input_constraints must be"):
        highs_model(net, input_constraints=np.ones(3))
    with pytest.raises(ProblemError, match="columns"):
        highs_model(net, bounds="lp-obbt", input_constraints=(np.ones((1, 3)), [1.0]))


def test_constraints_on_inputs_reads_only_input_rows():
    # columns: 0, 1 feed inputs 0 and 2, column 1 also input 1 (a repeated variable); column 2 is not an input
    A = sp.csr_matrix(np.array([[1.0, 2.0, 0.0],     # inputs only, two-sided
                                [1.0, 0.0, 1.0],     # touches column 2: dropped
                                [0.0, 3.0, 0.0],     # equality
                                [0.0, 0.0, 0.0]]))   # empty: dropped
    A_in, b_in = constraints_on_inputs(A, [-1.0, -np.inf, 2.0, 0.0], [4.0, 1.0, 2.0, 0.0], [0, 1, 1])
    assert np.array_equal(A_in, [[1, 2, 0], [-1, -2, 0], [0, 3, 0], [0, -3, 0]])
    assert np.array_equal(b_in, [4, 1, 2, -2])
    assert constraints_on_inputs(A[1:2], [-np.inf], [1.0], [0, 1]) == (None, None)
    assert resolve_constraints(None, lambda: pytest.fail("not read"), "lp-obbt") == (None, None)
    assert resolve_constraints("model", lambda: pytest.fail("not read"), "crown") == (None, None)


# ----------------------------------------------------------------------------- ownership
def test_gurobi_variable_of_another_model_is_named(net):
    gp = pytest.importorskip("gurobipy")
    from reluopt.embed.gurobipy import add_network_constr

    env = gp.Env(params={"OutputFlag": 0})
    m, other = gp.Model(env=env), gp.Model(env=env)
    x = m.addVar(lb=-1, ub=1, name="mine")
    foreign = other.addVar(lb=-1, ub=1, name="theirs")
    m.update()
    other.update()
    with pytest.raises(ProblemError, match="input variable 'theirs' does not belong to the given Gurobi model"):
        add_network_constr(m, net, [x, foreign])
    y_foreign = other.addVar(lb=-10, ub=10, name="out_theirs")
    other.update()
    with pytest.raises(ProblemError, match="output variable 'out_theirs' does not belong"):
        add_network_constr(m, net, [x, m.addVar(lb=0, ub=1, name="x2")], [y_foreign])
    assert m.NumConstrs == 0


def test_scip_variable_of_another_model_is_named(net):
    pyscipopt = pytest.importorskip("pyscipopt")
    from reluopt.embed.pyscipopt import add_network_constr

    m, other = pyscipopt.Model(), pyscipopt.Model()
    x = m.addVar("mine", lb=-1, ub=1)
    foreign = other.addVar("theirs", lb=-1, ub=1)
    with pytest.raises(ProblemError, match="input variable 'theirs' does not belong to the given SCIP model"):
        add_network_constr(m, net, [x, foreign])
    x2 = m.addVar("x2", lb=-1, ub=1)
    with pytest.raises(ProblemError, match="output variable 'y_theirs' does not belong"):
        add_network_constr(m, net, [x, x2], [other.addVar("y_theirs", lb=None)])
    assert m.getNConss() == 0


def test_pyomo_output_of_another_model_is_named(net):
    pyo = pytest.importorskip("pyomo.environ")
    from reluopt.embed.pyomo import add_network_block

    m, other = pyo.ConcreteModel(), pyo.ConcreteModel()
    m.x = pyo.Var(range(2), bounds=(-1, 1))
    other.y = pyo.Var()
    with pytest.raises(ProblemError, match="variable y belongs to another Pyomo model"):
        add_network_block(m, net, m.x, [other.y])
    assert m.component("nn") is None


@pytest.mark.parametrize("method", ["lp-obbt", "mip-obbt"])
def test_obbt_with_input_rows_holds_at_feasible_points(net, method):
    """Regression: MIP-OBBT with rows on the inputs used to read HiGHS's unset MIP dual bound (0)
    of the first layer's model, which has no binary, as a bound."""
    from reluopt import compute_bounds

    bounds = compute_bounds(net, LB, UB, method, A=np.array([[1.0, 1.0]]), b=np.array([SIDE]))
    xs = feasible_samples(seed=1)
    for l, g in enumerate(_pre(net, xs)):
        assert np.all(g >= bounds.lower[l][0] - 1e-7) and np.all(g <= bounds.upper[l][0] + 1e-7)
    y = net.forward(xs)
    assert np.all(y >= bounds.out_lower[0] - 1e-7) and np.all(y <= bounds.out_upper[0] + 1e-7)
