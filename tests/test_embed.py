"""reluopt.embed: a network inside the user's own highspy, pyscipopt, gurobipy or Pyomo model.

Each layer solves the same user model (a network, an integer variable, a side constraint
coupling it to the inputs, costs on the inputs) and must reach the brute-force optimum
(enumerate the integer values and the network's linear regions, one LP each), with
``get_error()`` ~ 0. A layer whose package is missing is skipped.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from bruteforce import cached_regions
from conftest import random_network
from reluopt import ProblemError
from reluopt.embed import formulate
from reluopt.io import save_onnx

LB = np.array([-1.0, -2.0])
UB = np.array([1.5, 1.0])
U_MAX = 3
C_X = np.array([-0.3, 0.2])   # cost on the inputs, in the objective
C_U = -0.05                   # cost of the integer variable u
# side constraint x0 + x1 <= 0.5 + 0.1 u


def brute_force(net) -> float:
    """max y0 + C_X.x + C_U u over x in [LB, UB], u in {0..U_MAX}, x0 + x1 <= 0.5 + 0.1 u."""
    best = -np.inf
    for pattern, _ in cached_regions(net, LB, UB):
        pre, (T, t) = net.region_affine(pattern)
        rows, rhs = [], []
        for (Al, cl), p in zip(pre, pattern, strict=True):
            sign = np.where(np.asarray(p) > 0, -1.0, 1.0)
            rows.append(sign[:, None] * Al)
            rhs.append(-sign * cl)
        rows.append(np.array([[1.0, 1.0]]))
        obj = T[0] + C_X
        for u in range(U_MAX + 1):
            res = linprog(-obj, A_ub=np.vstack(rows), b_ub=np.concatenate([*rhs, [0.5 + 0.1 * u]]),
                          bounds=list(zip(LB, UB, strict=True)), method="highs")
            if res.status == 0:
                best = max(best, float(obj @ res.x + t[0] + C_U * u))
    return best


# ----------------------------------------------------------------------------- one user model per layer
def solve_highs(net, formulation="bigm", bounds="crown", give_y=False):
    highspy = pytest.importorskip("highspy")
    from reluopt.embed.highspy import add_network_constr

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    x = [h.addVariable(lb=LB[i], ub=UB[i]) for i in range(2)]
    u = h.addVariable(lb=0, ub=U_MAX, type=highspy.HighsVarType.kInteger)
    y = [h.addVariable(lb=-highspy.kHighsInf)] if give_y else None
    nn = add_network_constr(h, net, x, y, formulation=formulation, bounds=bounds)
    out = nn.output_vars[0]
    h.addConstr(x[0] + x[1] - 0.1 * u <= 0.5)
    h.maximize(out + C_X[0] * x[0] + C_X[1] * x[1] + C_U * u)
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return h.getInfo().objective_function_value, nn


def solve_scip(net, formulation="bigm", bounds="crown", give_y=False):
    pyscipopt = pytest.importorskip("pyscipopt")
    from reluopt.embed.pyscipopt import add_network_constr

    m = pyscipopt.Model()
    m.hideOutput()
    x = [m.addVar(f"x{i}", lb=LB[i], ub=UB[i]) for i in range(2)]
    u = m.addVar("u", vtype="I", lb=0, ub=U_MAX)
    y = [m.addVar("y", lb=None)] if give_y else None
    nn = add_network_constr(m, net, x, y, formulation=formulation, bounds=bounds)
    out = nn.output_vars[0]
    m.addCons(x[0] + x[1] <= 0.5 + 0.1 * u)
    m.setObjective(out + C_X[0] * x[0] + C_X[1] * x[1] + C_U * u, "maximize")
    m.optimize()
    assert m.getStatus() == "optimal"
    return m.getObjVal(), nn


def solve_gurobi(net, formulation="bigm", bounds="crown", give_y=False):
    gp = pytest.importorskip("gurobipy")
    from reluopt.embed.gurobipy import add_network_constr

    m = gp.Model()
    m.Params.OutputFlag = 0
    m.Params.Threads = 1
    x = m.addMVar(2, lb=LB, ub=UB, name="x")
    u = m.addVar(lb=0, ub=U_MAX, vtype=gp.GRB.INTEGER, name="u")
    y = m.addMVar(1, lb=-gp.GRB.INFINITY, name="y") if give_y else None
    nn = add_network_constr(m, net, x, y, formulation=formulation, bounds=bounds)
    out = nn.output_vars[0]
    m.addConstr(x[0] + x[1] <= 0.5 + 0.1 * u)
    m.setObjective(out + C_X[0] * x[0] + C_X[1] * x[1] + C_U * u, gp.GRB.MAXIMIZE)
    try:
        m.optimize()
    except gp.GurobiError as exc:   # the pip wheel's size-limited licence
        if exc.errno in (10009, 10010):
            pytest.skip(f"Gurobi licence: {exc}")
        raise
    assert m.Status == gp.GRB.OPTIMAL
    return m.ObjVal, nn


def _solve_pyomo(net, solver, formulation="bigm", bounds="crown", give_y=False):
    pyo = pytest.importorskip("pyomo.environ")
    from reluopt.embed.pyomo import add_network_block

    opt = pyo.SolverFactory(solver)
    if not opt.available(exception_flag=False):
        pytest.skip(f"Pyomo solver {solver} is not available")
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(2), bounds=lambda _, i: (LB[i], UB[i]))
    m.u = pyo.Var(domain=pyo.Integers, bounds=(0, U_MAX))
    if give_y:
        m.y = pyo.Var([0])
    nn = add_network_block(m, net, m.x, m.y if give_y else None, formulation=formulation, bounds=bounds)
    out = nn.output_vars[0]
    m.side = pyo.Constraint(expr=m.x[0] + m.x[1] <= 0.5 + 0.1 * m.u)
    m.obj = pyo.Objective(expr=out + C_X[0] * m.x[0] + C_X[1] * m.x[1] + C_U * m.u, sense=pyo.maximize)
    res = opt.solve(m)
    assert str(res.solver.termination_condition) == "optimal"
    return pyo.value(m.obj), nn


def solve_pyomo_highs(net, formulation="bigm", bounds="crown", give_y=False):
    return _solve_pyomo(net, "appsi_highs", formulation, bounds, give_y)


def solve_pyomo_gurobi(net, formulation="bigm", bounds="crown", give_y=False):
    pytest.importorskip("gurobipy")
    return _solve_pyomo(net, "gurobi_direct", formulation, bounds, give_y)


CASES = [
    (solve_highs, "bigm"),
    (solve_scip, "bigm"), (solve_scip, "sos1"), (solve_scip, "indicator"),
    (solve_gurobi, "bigm"), (solve_gurobi, "sos1"), (solve_gurobi, "indicator"),
    (solve_pyomo_highs, "bigm"), (solve_pyomo_gurobi, "sos1"),
]
IDS = [f"{f.__name__[6:]}-{form}" for f, form in CASES]
TOL = 1e-5


@pytest.fixture(scope="module")
def net():
    return random_network([2, 8, 8, 1], seed=3)


@pytest.fixture(scope="module")
def truth(net):
    return brute_force(net)


@pytest.mark.parametrize(("solve", "formulation"), CASES, ids=IDS)
def test_embedded_optimum_is_the_brute_force_optimum(net, truth, solve, formulation):
    value, nn = solve(net, formulation)
    assert value == pytest.approx(truth, abs=TOL)
    assert nn.get_error() < 1e-6
    x = nn.input_values()
    assert np.all(x >= LB - 1e-7) and np.all(x <= UB + 1e-7)
    stats = nn.stats
    assert stats["formulation"] == formulation and stats["bounds"] == "crown"
    assert stats["stable_neurons"] + stats["unstable_neurons"] == stats["hidden_neurons"] == 16
    assert stats["largest_big_m"] > 0
    if formulation == "sos1":
        assert stats["binaries"] == 0 and stats["sos1"] == stats["unstable_neurons"]
    else:
        assert stats["binaries"] == stats["unstable_neurons"]


@pytest.mark.parametrize("solve", [solve_highs, solve_scip, solve_gurobi, solve_pyomo_highs],
                         ids=["highs", "scip", "gurobi", "pyomo"])
def test_onnx_network_and_user_outputs(net, truth, solve, tmp_path):
    path = save_onnx(net, tmp_path / "net.onnx")
    value, nn = solve(str(path), give_y=True)
    assert value == pytest.approx(truth, abs=TOL)
    assert nn.get_error() < 1e-6


@pytest.mark.parametrize("method", ["ibp", "lp-obbt"])
def test_any_bound_method(net, truth, method):
    value, nn = solve_highs(net, bounds=method)
    assert value == pytest.approx(truth, abs=TOL)
    assert nn.stats["bounds"] == method


def test_bounds_come_from_the_user_variables(net):
    _, nn = solve_highs(net)
    model = nn.embedding.model
    assert np.array_equal(model.col_lower[model.x_cols], LB)
    assert np.array_equal(model.col_upper[model.x_cols], UB)
    # tighter variable bounds give tighter neuron bounds: fewer or equal unstable neurons
    tight = formulate(net, LB / 4, UB / 4)
    assert tight.stats["unstable_neurons"] <= nn.stats["unstable_neurons"]


def _network_point(emb, net, x):
    """The full column vector of ``emb.model`` at input ``x``, from the forward pass."""
    model = emb.model
    v = np.zeros(model.n_cols)
    v[model.x_cols] = x
    g_of = {}
    for l, g in enumerate(net.preactivations(x[None, :])):
        g = g[0]
        cols, zc = model.h_cols[l], model.z_cols[l]
        v[cols[cols >= 0]] = np.maximum(g, 0.0)[cols >= 0]
        v[zc[zc >= 0]] = (g > 0)[zc >= 0]
        g_of.update({int(j): g[i] for i, j in enumerate(cols) if j >= 0})
    v[model.y_cols] = net.forward(x)
    if emb.sos1.size:
        pairs = emb.sos1
    else:
        ind = emb.indicators
        pairs = np.stack([ind[ind[:, 1] == 0, 2], ind[ind[:, 1] == 1, 2]], axis=1)
    for h, s in pairs:
        v[s] = v[h] - g_of[int(h)]
    return v


@pytest.mark.parametrize("formulation", ["bigm", "sos1", "indicator"])
def test_every_form_holds_at_the_forward_pass(net, formulation):
    """The network's own values (post-activations, phases, slacks) satisfy every row, column
    bound, SOS1 pair and indicator of each form, at random inputs."""
    rng = np.random.default_rng(0)
    emb = formulate(net, LB, UB, formulation=formulation)
    model = emb.model
    assert emb.stats["binaries"] == int(model.integrality.sum())
    for _ in range(20):
        v = _network_point(emb, net, rng.uniform(LB, UB))
        Av = model.A @ v
        assert np.all(Av >= model.row_lower - 1e-9) and np.all(Av <= model.row_upper + 1e-9)
        assert np.all(v >= model.col_lower - 1e-9) and np.all(v <= model.col_upper + 1e-9)
        for h, s in emb.sos1:
            assert min(abs(v[h]), abs(v[s])) <= 1e-12
        for z, value, c in emb.indicators:
            assert v[z] != value or v[c] <= 1e-12


# ----------------------------------------------------------------------------- bad input
def test_unbounded_input_names_the_variable(net):
    highspy = pytest.importorskip("highspy")
    from reluopt.embed.highspy import add_network_constr

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    x0 = h.addVariable(lb=-1, ub=1, name="feed")
    x1 = h.addVariable(lb=0, name="steam")          # no upper bound
    with pytest.raises(ProblemError, match=r"steam.*set lower and upper bounds"):
        add_network_constr(h, net, [x0, x1])


@pytest.mark.parametrize("layer", ["scip", "gurobi", "pyomo"])
def test_unbounded_input_other_layers(net, layer):
    if layer == "scip":
        pyscipopt = pytest.importorskip("pyscipopt")
        from reluopt.embed.pyscipopt import add_network_constr

        m = pyscipopt.Model()
        x = [m.addVar("a", lb=-1, ub=1), m.addVar("b", lb=None, ub=1)]
    elif layer == "gurobi":
        gp = pytest.importorskip("gurobipy")
        from reluopt.embed.gurobipy import add_network_constr

        m = gp.Model()
        x = [m.addVar(lb=-1, ub=1, name="a"), m.addVar(lb=-gp.GRB.INFINITY, ub=1, name="b")]
    else:
        pyo = pytest.importorskip("pyomo.environ")
        from reluopt.embed.pyomo import add_network_block

        m = pyo.ConcreteModel()
        m.a = pyo.Var(bounds=(-1, 1))
        m.b = pyo.Var(bounds=(None, 1))
        x = [m.a, m.b]

        def add_network_constr(m, net, x):
            return add_network_block(m, net, x)
    with pytest.raises(ProblemError, match=r"1 input variable\(s\) have none: b"):
        add_network_constr(m, net, x)


def test_shape_mismatch_and_bad_network(net, tmp_path):
    highspy = pytest.importorskip("highspy")
    from reluopt.embed.highspy import add_network_constr

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    x = h.addVariables(3, lb=-1, ub=1)
    with pytest.raises(ProblemError, match="2 inputs.*3 input variables were given"):
        add_network_constr(h, net, x)
    with pytest.raises(ProblemError, match="1 outputs.*2 output variables"):
        add_network_constr(h, net, [x[0], x[1]], [x[2], x[2]])
    with pytest.raises(ProblemError, match="cannot embed this network"):
        add_network_constr(h, tmp_path / "missing.onnx", [x[0], x[1]])
    with pytest.raises(ProblemError, match="HiGHS has no SOS1"):
        add_network_constr(h, net, [x[0], x[1]], formulation="sos1")
    with pytest.raises(ProblemError, match="unknown formulation"):
        formulate(net, LB, UB, formulation="hull")
    with pytest.raises(ProblemError, match="unknown bound method"):
        formulate(net, LB, UB, bounds="exact")
    with pytest.raises(ProblemError, match="not a column"):
        add_network_constr(h, net, [0, 99])
    other = highspy.Highs()
    foreign = other.addVariables(2, lb=-1, ub=1)
    with pytest.raises(ProblemError, match="another HiGHS model"):
        add_network_constr(h, net, foreign)


def test_get_error_before_a_solve(net):
    highspy = pytest.importorskip("highspy")
    from reluopt.embed.highspy import add_network_constr

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    x = h.addVariables(2, lb=-1, ub=1)
    nn = add_network_constr(h, net, x)
    with pytest.raises(ProblemError, match="no feasible solution"):
        nn.get_error()


def test_pyomo_refuses_indicator(net):
    pyo = pytest.importorskip("pyomo.environ")
    from reluopt.embed.pyomo import NetworkBlock, add_network_block

    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(2), bounds=(-1, 1))
    m.nn = NetworkBlock()
    with pytest.raises(ProblemError, match="indicator"):
        m.nn.build(net, m.x, formulation="indicator")
    nn = m.nn.build(net, m.x)
    assert m.nn.network is nn and len(m.nn.outputs) == 1
    other = pyo.ConcreteModel()
    other.x = pyo.Var(range(2), bounds=(-1, 1))
    with pytest.raises(ProblemError, match="another Pyomo model"):
        add_network_block(m, net, other.x, name="nn2")
    assert m.component("nn2") is None


# ----------------------------------------------------------------------------- the example
def test_embed_reformer_example_matches_a_grid(capsys):
    """examples/embed/embed_reformer.py: its optimum against a dense grid over the nine steam levels."""
    import re
    import sys

    from conftest import ROOT

    sys.path.insert(0, str(ROOT / "examples" / "embed"))
    try:
        import embed_reformer
    finally:
        sys.path.pop(0)
    assert embed_reformer.main() == 0
    out = capsys.readouterr().out
    value = float(re.search(r"objective (-?\d+\.\d+)", out).group(1))
    net = embed_reformer.reluopt.load(embed_reformer.NET)
    bypass = np.linspace(0.1, 0.8, 20001)
    best = -np.inf
    for k in range(9):
        steam = 0.8 + embed_reformer.STEP * k
        Y = net.forward(np.stack([bypass, np.full_like(bypass, steam)], axis=1))
        v = Y[:, 0] - embed_reformer.STEAM_COST * steam - embed_reformer.BYPASS_COST * bypass
        best = max(best, float(np.max(np.where(Y[:, 1] <= 0.34, v, -np.inf))))
    assert value >= best - 1e-5              # no grid point beats the certified optimum
    assert value == pytest.approx(best, abs=1e-4)


def test_badly_scaled_network_is_warned_about():
    big = random_network([2, 4, 1], seed=1, scale=1e8)
    with pytest.warns(UserWarning, match="may not be exact"):
        emb = formulate(big, LB, UB)
    assert emb.stats["scaling_issue"]
