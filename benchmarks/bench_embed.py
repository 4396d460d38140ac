"""The same user model, the same solver, one thread: the peers' embeddings against reluopt.embed.

Each instance is a user's model (input variables with bounds, perhaps extra variables, some
integer, linear rows, a linear objective with costs on the inputs) into which one network is
put by each tool's own call. Rows on the inputs alone are added before the network (so that
reluopt's ``input_constraints='model'`` can read them), the others after it.

- HiGHS: ``reluopt`` (``reluopt.embed.highspy.add_network_constr``, CROWN bounds), ``reluopt-pyomo``
  (``reluopt.embed.pyomo.add_network_block`` solved by Pyomo's appsi HiGHS; not in the default
  list), ``omlt-bigm`` and ``omlt-partition`` (OMLT's ``ReluBigMFormulation`` and
  ``ReluPartitionFormulation`` in an ``OmltBlock``, appsi HiGHS), ``highsml`` (highs-ml's
  ``add_predictor_constr`` on the network as ONNX; it takes single-output networks only, so each
  output the model uses enters as one single-output copy, which is what its user has to do);
- SCIP: ``reluopt-scip-sos1`` (reluopt's default on SCIP) against ``scipml`` (PySCIPOpt-ML on
  the network as a torch module, its default SOS1 formulation);
- Gurobi: ``reluopt-gurobi`` against ``gurobiml`` (gurobi-machinelearning on the torch module),
  under whatever licence is installed (a refusal is recorded as such).

The levers, each one reluopt call with one option changed (`LEVERS`): ``-lpobbt-box`` (LP-OBBT
over the box), ``-lpobbt`` (LP-OBBT with the model's rows on the inputs), ``-mipobbt``
(MIP-OBBT with them, 20 s), ``-rescale``, and on SCIP ``reluopt-scip-bigm``.

Instances: ``peaks`` (the 2-50-50-1 peaks surrogate, minimised with a linear cost on both
inputs over a box around its valley), ``reformer`` (examples/embed/embed_reformer.py: H2
minus operating costs, an integer steam level, N2 <= 0.34), ``mnist`` (examples/embed/
adversarial_mnist.py: 784-50-50-10, an l1 budget of 2 by 784 extra variables, pixel changes
<= 0.03, maximise the runner-up's logit minus the label's) and ``random`` (a seeded
10-100-100-1 network, maximised with the side constraint ``sum x <= 2``).

Every run has ``--time-limit`` seconds for build and solve together (the solver gets what the
build left). The repeats are interleaved (one repeat of every tool and instance, then the next).
The table shows medians of build seconds (model and embedding, including a Pyomo model's
translation to the solver), of solve seconds and of incumbent, verified value and bound (over
the repeats that have one), the status counts, the gap at the limit (relative, |bound -
incumbent| / max(1, |incumbent|)), and every incumbent is re-checked by reluopt's forward pass
at the tool's input values (``verified``: the objective recomputed; rows violated by more than
1e-5 are flagged). The ratio compares reluopt with each peer or lever on the same solver: the
peer's median total seconds over reluopt's when both prove optimality, else the distance of the
peer's median bound to the best verified incumbent any tool found over reluopt's ("bound to
best": at the limit, the part of the gap no tool closed; an incumbent is often missing).

    python benchmarks/bench_embed.py                                # everything: 60 s, 1 repeat
    python benchmarks/bench_embed.py --time-limit 20 --instances reformer --tools reluopt omlt-bigm

Writes ``benchmarks/out/embed.json`` (or ``--out``) and prints the markdown table.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import reluopt  # noqa: E402
from reluopt.network import Network  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
ROW_TOL = 1e-5
#: A bound beaten by a verified incumbent by more than this (relative) is flagged UNSOUND. HiGHS and
#: Gurobi stop at a relative gap of 1e-4 by default and then report the incumbent as the bound, so
#: a bound within this of the best incumbent of another tool is the user's solver tolerance.
GAP_TOL = 1e-4


@dataclass
class Instance:
    """A user's model: inputs ``x``, extra variables ``z``, outputs ``y``, rows
    ``lo <= a_x x + a_z z + a_y y <= hi`` and the objective ``c_x x + c_z z + c_y y``."""

    name: str
    net: Network
    lb: np.ndarray
    ub: np.ndarray
    c_x: np.ndarray
    c_y: np.ndarray
    sense: str                      # 'min' or 'max'
    z_lb: np.ndarray = field(default_factory=lambda: np.zeros(0))
    z_ub: np.ndarray = field(default_factory=lambda: np.zeros(0))
    z_int: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    c_z: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rows: list = field(default_factory=list)   # (a_x, a_z, a_y, lo, hi)

    def objective(self, x, z, y) -> float:
        """The model's objective at ``x``, ``z`` and outputs ``y``."""
        return float(self.c_x @ x + self.c_z @ z + self.c_y @ y)

    def violation(self, x, z, y) -> float:
        """The largest row or bound violation at ``x``, ``z`` and outputs ``y``."""
        worst = max(0.0, float(np.max(self.lb - x)), float(np.max(x - self.ub)))
        for a_x, a_z, a_y, lo, hi in self.rows:
            v = float(a_x @ x + a_z @ z + a_y @ y)
            worst = max(worst, lo - v, v - hi)
        return worst

    def input_only(self, row) -> bool:
        """Whether a row involves the inputs alone (added before the network, as a user would)."""
        return not (np.any(row[1]) or np.any(row[2]))

    def used_outputs(self) -> list[int]:
        """The outputs the objective or a row uses."""
        used = self.c_y != 0
        for row in self.rows:
            used |= row[2] != 0
        return np.nonzero(used)[0].tolist()


def instance(name: str) -> Instance:
    """One of the benchmark's user models."""
    if name == "peaks":
        net = reluopt.load(ROOT / "examples" / "peaks" / "models" / "peaks_2-50-50-1.npz")
        return Instance(name, net, np.array([-1.0, -3.0]), np.array([1.0, 0.0]), np.array([0.5, -0.3]),
                        np.array([1.0]), "min")
    if name == "reformer":
        net = reluopt.load(ROOT / "examples" / "reformer" / "reformer.npz")
        z2, one = np.zeros(2), np.zeros(1)
        return Instance(name, net, np.array([0.1, 0.8]), np.array([0.8, 1.2]), np.array([-0.01, -0.02]),
                        np.array([1.0, 0.0]), "max", z_lb=np.zeros(1), z_ub=np.array([8.0]),
                        z_int=np.array([True]), c_z=np.zeros(1),
                        rows=[(np.array([0.0, 1.0]), np.array([-0.05]), z2, 0.8, 0.8),   # steam = 0.8 + 0.05 u
                              (np.zeros(2), one, np.array([0.0, 1.0]), -np.inf, 0.34)])  # N2 <= 0.34
    if name == "mnist":
        return _mnist()
    if name == "random":
        rng = np.random.default_rng(2026)
        sizes = [10, 100, 100, 1]
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        weights = [rng.normal(0, np.sqrt(2.0 / n_in), (n_out, n_in)) for n_in, n_out in pairs]
        biases = [rng.normal(0, 0.1, n_out) for n_out in sizes[1:]]
        net = Network.from_weights(list(zip(weights, biases, strict=True)))
        return Instance(name, net, -np.ones(10), np.ones(10), rng.normal(0, 0.1, 10), np.array([1.0]), "max",
                        rows=[(np.ones(10), np.zeros(0), np.zeros(1), -np.inf, 2.0)])   # sum x <= 2
    raise SystemExit(f"unknown instance {name!r}")


def _mnist(image: int = 14, eps: float = 2.0, pixel: float = 0.03) -> Instance:
    """examples/embed/adversarial_mnist.py's model: pixels ``x``, ``t >= |x - x0|``, ``sum t <= eps``,
    ``t <= pixel``, maximise ``y[wrong] - y[right]`` (the runner-up class against the label)."""
    import sys

    sys.path.insert(0, str(ROOT / "examples" / "embed"))
    from adversarial_mnist import NET, mnist_image

    net = reluopt.load(NET)
    x0, right = mnist_image(image)
    logits = net.forward(x0)
    wrong = int(np.argmax(np.where(np.arange(logits.size) == right, -np.inf, logits)))
    n, m = x0.size, net.output_dim
    c_y = np.zeros(m)
    c_y[wrong], c_y[right] = 1.0, -1.0
    rows = []
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1.0
        rows.append((e, -e, np.zeros(m), -np.inf, x0[i]))      # x_i - t_i <= x0_i
        rows.append((e, e, np.zeros(m), x0[i], np.inf))        # x_i + t_i >= x0_i
    rows.append((np.zeros(n), np.ones(n), np.zeros(m), -np.inf, eps))   # sum t <= eps
    return Instance("mnist", net, np.maximum(0.0, x0 - pixel), np.minimum(1.0, x0 + pixel), np.zeros(n), c_y,
                    "max", z_lb=np.zeros(n), z_ub=np.full(n, pixel), z_int=np.zeros(n, dtype=bool),
                    c_z=np.zeros(n), rows=rows)


def _terms(a, vs):
    """``(coefficient, variable)`` pairs of the nonzeros of ``a``."""
    return [(float(a[i]), vs[i]) for i in np.nonzero(a)[0]]


# ----------------------------------------------------------------------------- HiGHS
def _highs_model(inst: Instance):
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    x = [h.addVariable(lb=float(lo), ub=float(hi)) for lo, hi in zip(inst.lb, inst.ub, strict=True)]
    z = [h.addVariable(lb=float(lo), ub=float(hi), type=highspy.HighsVarType.kInteger if i else
                       highspy.HighsVarType.kContinuous) for lo, hi, i in zip(inst.z_lb, inst.z_ub, inst.z_int,
                                                                             strict=True)]
    _highs_rows(h, inst, x, z, None, True)
    return h, x, z


def _highs_rows(h, inst, x, z, y, input_only: bool) -> None:
    for row in inst.rows:
        if inst.input_only(row) != input_only:
            continue
        a_x, a_z, a_y, lo, hi = row
        e = sum(c * v for c, v in _terms(a_x, x) + _terms(a_z, z) + (_terms(a_y, y) if y else []))
        h.addConstr(e <= hi) if lo == -np.inf else h.addConstr(e >= lo) if hi == np.inf else h.addConstr(
            lo <= e <= hi)


def _highs_finish(inst, h, x, z, y, t0, time_limit) -> dict:
    import highspy

    _highs_rows(h, inst, x, z, y, False)
    obj = sum(c * v for c, v in _terms(inst.c_x, x) + _terms(inst.c_z, z) + _terms(inst.c_y, y))
    h.setObjective(obj, highspy.ObjSense.kMaximize if inst.sense == "max" else highspy.ObjSense.kMinimize)
    build = time.perf_counter() - t0
    h.setOptionValue("time_limit", max(1.0, time_limit - build))     # build and solve share the limit
    t1 = time.perf_counter()
    h.run()
    solve = time.perf_counter() - t1
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    has = info.primal_solution_status == 2
    vals = lambda vs: [h.val(v) for v in vs]  # noqa: E731
    lp = h.getLp()
    return {"status": {"Optimal": "optimal", "Time limit reached": "time_limit"}.get(status, status),
            "build_s": build, "solve_s": solve, "incumbent": info.objective_function_value if has else None,
            "bound": info.mip_dual_bound, "x": vals(x) if has else None, "z": vals(z) if has else None,
            "binaries": sum(1 for t in lp.integrality_ if t == highspy.HighsVarType.kInteger) - int(inst.z_int.sum())}


def run_reluopt(inst: Instance, time_limit: float, **options) -> dict:
    from reluopt.embed.highspy import add_network_constr

    t0 = time.perf_counter()
    h, x, z = _highs_model(inst)
    nn = add_network_constr(h, inst.net, x, **options)
    return _highs_finish(inst, h, x, z, nn.output_vars, t0, time_limit)


def run_highsml(inst: Instance, time_limit: float) -> dict:
    import onnx
    from highs_ml import add_predictor_constr

    from reluopt.io.export import to_onnx_model

    t0 = time.perf_counter()
    h, x, z = _highs_model(inst)
    y: list = [None] * inst.net.output_dim
    used = inst.used_outputs()
    for k in used:    # highs-ml takes single-output networks only: one copy per output the model uses
        one = inst.net if inst.net.output_dim == 1 else _output_slice(inst.net, k)
        proto = onnx.load_from_string(to_onnx_model(one).SerializeToString())
        y[k] = add_predictor_constr(h, proto, x, name=f"nn{k}").output_var
    rec = _highs_finish(inst, h, x, z, y, t0, time_limit)
    if inst.net.output_dim > 1:
        rec["note"] = f"{len(used)} single-output copies (no multi-output support)"
    return rec


def _output_slice(net: Network, k: int) -> Network:
    """The network's output ``k`` alone (the last layer's row ``k``)."""
    weights = [np.array(layer.W) for layer in net.layers]
    biases = [np.array(layer.b) for layer in net.layers]
    weights[-1], biases[-1] = weights[-1][k:k + 1], biases[-1][k:k + 1]
    return Network.from_weights(list(zip(weights, biases, strict=True)))


# ----------------------------------------------------------------------------- Pyomo (appsi HiGHS)
def _pyomo_run(inst: Instance, time_limit: float, embed) -> dict:
    import pyomo.environ as pyo
    from pyomo.contrib.appsi.solvers import Highs

    t0 = time.perf_counter()
    m = pyo.ConcreteModel()
    n, k = inst.net.input_dim, inst.z_lb.size
    m.x = pyo.Var(range(n), bounds=lambda _, i: (float(inst.lb[i]), float(inst.ub[i])))
    m.z = pyo.Var(range(k), bounds=lambda _, i: (float(inst.z_lb[i]), float(inst.z_ub[i])),
                  domain=lambda _, i: pyo.Integers if inst.z_int[i] else pyo.Reals)
    x, z = [m.x[i] for i in range(n)], [m.z[i] for i in range(k)]
    m.rows = pyo.ConstraintList()

    def add_rows(y, input_only):
        for row in inst.rows:
            if inst.input_only(row) == input_only:
                a_x, a_z, a_y, lo, hi = row
                e = sum(c * v for c, v in _terms(a_x, x) + _terms(a_z, z) + (_terms(a_y, y) if y else []))
                m.rows.add((None if lo == -np.inf else float(lo), e, None if hi == np.inf else float(hi)))

    add_rows(None, True)
    y, binaries = embed(m)
    add_rows(y, False)
    obj = sum(c * v for c, v in _terms(inst.c_x, x) + _terms(inst.c_z, z) + _terms(inst.c_y, y))
    m.obj = pyo.Objective(expr=obj, sense=pyo.maximize if inst.sense == "max" else pyo.minimize)
    opt = Highs()
    opt.config.load_solution = False
    opt.highs_options = {"threads": 1, "output_flag": False}
    opt.set_instance(m)
    build = time.perf_counter() - t0
    opt.config.time_limit = max(1.0, time_limit - build)
    t1 = time.perf_counter()
    res = opt.solve(m)
    solve = time.perf_counter() - t1
    tc = str(res.termination_condition).split(".")[-1]
    inc = res.best_feasible_objective
    has = inc is not None and math.isfinite(inc)
    if has:
        res.solution_loader.load_vars()
    bound = res.best_objective_bound
    return {"status": {"maxTimeLimit": "time_limit"}.get(tc, tc), "build_s": build, "solve_s": solve,
            "incumbent": inc if has else None, "bound": bound if bound is not None and math.isfinite(bound) else None,
            "x": [pyo.value(v) for v in x] if has else None, "z": [pyo.value(v) for v in z] if has else None,
            "binaries": binaries(m)}


def _binaries(m) -> int:
    import pyomo.environ as pyo

    return sum(1 for v in m.component_data_objects(pyo.Var) if v.is_binary())


def run_reluopt_pyomo(inst: Instance, time_limit: float) -> dict:
    from reluopt.embed.pyomo import add_network_block

    return _pyomo_run(inst, time_limit, lambda m: (add_network_block(m, inst.net, m.x).output_vars, _binaries))


def _omlt(inst: Instance, time_limit: float, partition: bool) -> dict:
    import pyomo.environ as pyo
    from omlt import OmltBlock
    from omlt.neuralnet import NetworkDefinition, ReluBigMFormulation, ReluPartitionFormulation
    from omlt.neuralnet.layer import DenseLayer, InputLayer

    def embed(m):
        net = inst.net
        definition = NetworkDefinition(scaled_input_bounds={
            i: (float(lo), float(hi)) for i, (lo, hi) in enumerate(zip(inst.lb, inst.ub, strict=True))})
        prev = InputLayer([net.input_dim])
        definition.add_layer(prev)
        for layer in net.layers:
            dense = DenseLayer([layer.n_in], [layer.n_out], weights=np.array(layer.W).T, biases=np.array(layer.b),
                               activation="relu" if layer.activation == "relu" else "linear")
            definition.add_layer(dense)
            definition.add_edge(prev, dense)
            prev = dense
        m.nn = OmltBlock()
        m.nn.build_formulation(ReluPartitionFormulation(definition) if partition else ReluBigMFormulation(definition))
        m.link = pyo.Constraint(range(net.input_dim), rule=lambda m, i: m.nn.inputs[i] == m.x[i])
        return [m.nn.outputs[k] for k in range(net.output_dim)], _binaries

    return _pyomo_run(inst, time_limit, embed)


# ----------------------------------------------------------------------------- SCIP
def _scip_run(inst: Instance, time_limit: float, embed) -> dict:
    from pyscipopt import Model, quicksum

    t0 = time.perf_counter()
    m = Model()
    m.hideOutput()
    x = [m.addVar(f"x{i}", lb=float(lo), ub=float(hi)) for i, (lo, hi) in enumerate(zip(inst.lb, inst.ub,
                                                                                         strict=True))]
    z = [m.addVar(f"z{i}", vtype="I" if t else "C", lb=float(lo), ub=float(hi))
         for i, (lo, hi, t) in enumerate(zip(inst.z_lb, inst.z_ub, inst.z_int, strict=True))]

    def add_rows(y, input_only):
        for row in inst.rows:
            if inst.input_only(row) == input_only:
                a_x, a_z, a_y, lo, hi = row
                e = quicksum(c * v for c, v in _terms(a_x, x) + _terms(a_z, z) + (_terms(a_y, y) if y else []))
                m.addCons(e <= hi) if lo == -np.inf else m.addCons(e >= lo) if hi == np.inf else m.addCons(
                    lo <= (e <= hi))

    add_rows(None, True)
    y = embed(m, x)
    add_rows(y, False)
    m.setObjective(quicksum(c * v for c, v in _terms(inst.c_x, x) + _terms(inst.c_z, z) + _terms(inst.c_y, y)),
                   "maximize" if inst.sense == "max" else "minimize")
    m.setParam("parallel/maxnthreads", 1)
    build = time.perf_counter() - t0
    m.setParam("limits/time", max(1.0, time_limit - build))
    t1 = time.perf_counter()
    m.optimize()
    solve = time.perf_counter() - t1
    sol = m.getBestSol() if m.getNSols() > 0 else None
    bound = m.getDualbound()
    return {"status": {"timelimit": "time_limit"}.get(m.getStatus(), m.getStatus()), "build_s": build,
            "solve_s": solve, "incumbent": m.getSolObjVal(sol) if sol is not None else None,
            "bound": bound if abs(bound) < 1e19 else None,
            "x": [m.getSolVal(sol, v) for v in x] if sol is not None else None,
            "z": [m.getSolVal(sol, v) for v in z] if sol is not None else None,
            "binaries": sum(1 for v in m.getVars() if v.vtype() == "BINARY")}


def run_reluopt_scip(inst: Instance, time_limit: float, **options) -> dict:
    from reluopt.embed.pyscipopt import add_network_constr

    return _scip_run(inst, time_limit, lambda m, x: add_network_constr(m, inst.net, x, **options).output_vars)


def _torch(net: Network):
    import torch

    from reluopt.io.torch import to_torch

    torch.set_num_threads(1)
    return to_torch(net, dtype=torch.float64).eval()


def run_scipml(inst: Instance, time_limit: float) -> dict:
    from pyscipopt_ml.add_predictor import add_predictor_constr

    def embed(m, x):
        y = np.array([[m.addVar(f"y{k}", lb=None, ub=None) for k in range(inst.net.output_dim)]], dtype=object)
        add_predictor_constr(m, _torch(inst.net), np.array([x], dtype=object), y, unique_naming_prefix="nn_")
        return list(y[0])

    return _scip_run(inst, time_limit, embed)


# ----------------------------------------------------------------------------- Gurobi
def _gurobi_run(inst: Instance, time_limit: float, embed) -> dict:
    import gurobipy as gp

    t0 = time.perf_counter()
    try:
        env = gp.Env(params={"OutputFlag": 0})
        m = gp.Model(env=env)
        x = m.addMVar(inst.net.input_dim, lb=inst.lb, ub=inst.ub, name="x")
        z = m.addMVar(inst.z_lb.size, lb=inst.z_lb, ub=inst.z_ub, name="z",
                      vtype=[gp.GRB.INTEGER if t else gp.GRB.CONTINUOUS for t in inst.z_int])
        xs, zs = x.tolist(), z.tolist()

        def add_rows(ys, input_only):
            for row in inst.rows:
                if inst.input_only(row) == input_only:
                    a_x, a_z, a_y, lo, hi = row
                    e = gp.quicksum(c * v for c, v in _terms(a_x, xs) + _terms(a_z, zs) +
                                    (_terms(a_y, ys) if ys else []))
                    if lo == hi:
                        m.addConstr(e == lo)
                        continue
                    if hi != np.inf:
                        m.addConstr(e <= hi)
                    if lo != -np.inf:
                        m.addConstr(e >= lo)

        add_rows(None, True)
        m.update()
        y = embed(m, x)
        ys = [y[k] for k in range(inst.net.output_dim)]
        add_rows(ys, False)
        m.setObjective(gp.quicksum(c * v for c, v in _terms(inst.c_x, xs) + _terms(inst.c_z, zs) +
                                   _terms(inst.c_y, ys)), gp.GRB.MAXIMIZE if inst.sense == "max" else gp.GRB.MINIMIZE)
        m.Params.Threads = 1
        m.update()
        build = time.perf_counter() - t0
        m.Params.TimeLimit = max(1.0, time_limit - build)
        t1 = time.perf_counter()
        m.optimize()
        solve = time.perf_counter() - t1
    except gp.GurobiError as exc:
        return {"status": "refused", "error": f"GurobiError {exc.errno}: {exc}", "build_s": time.perf_counter() - t0}
    codes = {gp.GRB.OPTIMAL: "optimal", gp.GRB.TIME_LIMIT: "time_limit", gp.GRB.INFEASIBLE: "infeasible"}
    has = m.SolCount > 0
    return {"status": codes.get(m.Status, f"status {m.Status}"), "build_s": build, "solve_s": solve,
            "incumbent": m.ObjVal if has else None, "bound": m.ObjBound if m.Status in codes else None,
            "x": x.X.tolist() if has else None, "z": z.X.tolist() if has else None,
            "binaries": m.NumBinVars, "note": f"{m.NumGenConstrs} general constraints" if m.NumGenConstrs else ""}


def run_reluopt_gurobi(inst: Instance, time_limit: float, **options) -> dict:
    from reluopt.embed.gurobipy import add_network_constr

    return _gurobi_run(inst, time_limit,
                       lambda m, x: add_network_constr(m, inst.net, x.tolist(), **options).output_vars)


def run_gurobiml(inst: Instance, time_limit: float) -> dict:
    import gurobipy as gp
    from gurobi_ml import add_predictor_constr

    def embed(m, x):
        y = m.addMVar(inst.net.output_dim, lb=-gp.GRB.INFINITY, name="y")
        add_predictor_constr(m, _torch(inst.net), x, y)
        return y

    return _gurobi_run(inst, time_limit, embed)


#: The levers, each reluopt's call with explicit options (so a later change of a default does not
#: change what a name measured): the bound method, the user's rows on the inputs in the bounds,
#: rescaling, and on SCIP / Gurobi the formulation.
CROWN = {"bounds": "crown"}
LP_BOX = {"bounds": "lp-obbt", "input_constraints": None}
LP = {"bounds": "lp-obbt", "input_constraints": "model"}
MIP = {"bounds": "mip-obbt", "input_constraints": "model", "bound_options": {"time_limit": 20.0}}
RESCALE = {"bounds": "crown", "rescale": True}
RUNNERS = {"reluopt": lambda i, t: run_reluopt(i, t, **CROWN),
           "reluopt-lpobbt-box": lambda i, t: run_reluopt(i, t, **LP_BOX),
           "reluopt-lpobbt": lambda i, t: run_reluopt(i, t, **LP),
           "reluopt-mipobbt": lambda i, t: run_reluopt(i, t, **MIP),
           "reluopt-rescale": lambda i, t: run_reluopt(i, t, **RESCALE),
           "reluopt-pyomo": run_reluopt_pyomo,
           "omlt-bigm": lambda i, t: _omlt(i, t, False), "omlt-partition": lambda i, t: _omlt(i, t, True),
           "highsml": run_highsml,
           "reluopt-scip-bigm": lambda i, t: run_reluopt_scip(i, t, formulation="bigm", **CROWN),
           "reluopt-scip-sos1": lambda i, t: run_reluopt_scip(i, t, formulation="sos1", **CROWN),
           "reluopt-scip-sos1-lpobbt": lambda i, t: run_reluopt_scip(i, t, formulation="sos1", **LP),
           "scipml": run_scipml,
           "reluopt-gurobi": lambda i, t: run_reluopt_gurobi(i, t, formulation="bigm", **CROWN),
           "reluopt-gurobi-lpobbt": lambda i, t: run_reluopt_gurobi(i, t, formulation="bigm", **LP),
           "reluopt-gurobi-rescale": lambda i, t: run_reluopt_gurobi(i, t, formulation="bigm", **RESCALE),
           "gurobiml": run_gurobiml}
TOOLS = tuple(RUNNERS)
DEFAULT_TOOLS = tuple(t for t in TOOLS if t != "reluopt-pyomo")
LEVERS = ("reluopt-lpobbt-box", "reluopt-lpobbt", "reluopt-mipobbt", "reluopt-rescale", "reluopt-scip-bigm",
          "reluopt-scip-sos1-lpobbt", "reluopt-gurobi-lpobbt", "reluopt-gurobi-rescale")
#: Each peer or lever against reluopt's baseline on the same solver.
PEERS = {"reluopt": ("reluopt-pyomo", "omlt-bigm", "omlt-partition", "highsml", "reluopt-lpobbt-box",
                     "reluopt-lpobbt", "reluopt-mipobbt", "reluopt-rescale"),
         "reluopt-scip-sos1": ("reluopt-scip-bigm", "reluopt-scip-sos1-lpobbt", "scipml"),
         "reluopt-gurobi": ("reluopt-gurobi-lpobbt", "reluopt-gurobi-rescale", "gurobiml")}
SOLVER = {t: "SCIP" if "scip" in t else "Gurobi" if "gurobi" in t else "HiGHS" for t in TOOLS}


# ----------------------------------------------------------------------------- checks and table
def verify(inst: Instance, rec: dict) -> None:
    """Re-evaluate the tool's incumbent inputs by reluopt's forward pass."""
    if rec.get("x") is None:
        return
    x = np.asarray(rec["x"], dtype=float)
    z = np.asarray(rec.get("z") or [], dtype=float)
    z = np.where(inst.z_int, np.round(z), z)
    y = inst.net.forward(x)
    rec["verified"] = inst.objective(x, z, y)
    rec["violation"] = inst.violation(x, z, y)


def gap(rec: dict) -> float:
    """Relative gap |bound - incumbent| / max(1, |incumbent|) (inf without both)."""
    if rec.get("incumbent") is None or rec.get("bound") is None:
        return math.inf
    return abs(rec["bound"] - rec["incumbent"]) / max(1.0, abs(rec["incumbent"]))


def summary(recs: list[dict]) -> dict:
    """Medians over the repeats of one (tool, instance)."""
    ok = [r for r in recs if "build_s" in r and r.get("status") not in ("error", "refused")]
    statuses = [r.get("status") for r in recs]
    out = {"status": ", ".join(f"{s} {statuses.count(s)}/{len(recs)}" for s in dict.fromkeys(statuses)),
           "optimal": bool(ok) and all(r.get("status") == "optimal" for r in recs),
           "error": next((r["error"] for r in recs if r.get("error")), ""), "note": recs[-1].get("note", "")}
    if ok:
        med = lambda key: statistics.median(r[key] for r in ok)  # noqa: E731
        out.update(build_s=med("build_s"), solve_s=med("solve_s"), total_s=med("build_s") + med("solve_s"),
                   gap=statistics.median(gap(r) for r in ok), binaries=ok[-1].get("binaries"))
        pick = lambda key: [r[key] for r in ok if r.get(key) is not None]  # noqa: E731
        out.update({key: statistics.median(pick(key)) if pick(key) else None
                    for key in ("incumbent", "verified", "bound")})
        out["violation"] = max((r.get("violation", 0.0) for r in ok), default=0.0)
    return out


def ratio(rel: dict, peer: dict) -> str:
    """Peer over reluopt: total seconds when both are optimal, else the bounds' distances to the best
    incumbent any tool found (> 1: reluopt better)."""
    if "total_s" not in rel or "total_s" not in peer:
        return "-"
    if rel["optimal"] and peer["optimal"]:
        return f"time {peer['total_s'] / max(rel['total_s'], 1e-9):.2f}x"
    if rel["optimal"]:
        return "reluopt optimal, peer not"
    if peer["optimal"]:
        return "peer optimal, reluopt not"
    rb, pb = rel.get("bound_gap", math.inf), peer.get("bound_gap", math.inf)
    if math.isinf(rb) or rb <= 0:
        return "-"
    return f"bound {pb / rb:.2f}x"


def add_bound_gaps(inst: Instance, raw: dict, by_tool: dict) -> float | None:
    """Each tool's median bound's distance to the best verified incumbent of any tool and repeat."""
    found = [r["verified"] for recs in raw.values() for r in recs
             if r.get("verified") is not None and r.get("violation", 0.0) <= ROW_TOL]
    if not found:
        return None
    best = max(found) if inst.sense == "max" else min(found)
    for tool, recs in raw.items():        # a sound bound is never beaten by a verified incumbent
        for r in recs:
            b = r.get("bound")
            if b is not None and (b < best if inst.sense == "max" else b > best) and \
                    abs(b - best) > GAP_TOL * max(1.0, abs(best)):
                print(f"UNSOUND {inst.name} {tool}: bound {b} beaten by a verified incumbent {best}", flush=True)
    for tool, s in by_tool.items():
        bounds = [r["bound"] for r in raw[tool] if r.get("bound") is not None]
        if bounds:
            s["bound_gap"] = abs(statistics.median(bounds) - best) / max(1.0, abs(best))
    return best


def fmt(v, spec: str = ".4f") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return format(v, spec)


def table(results: dict) -> str:
    lines = ["| instance | solver | tool | status | binaries | build s | solve s | incumbent | verified | bound "
             "| gap | bound to best | peer / reluopt | note |", "|" + "---|" * 14]
    for name, by_tool in results.items():
        for tool, s in by_tool.items():
            base = next((r for r, peers in PEERS.items() if tool in peers), None)
            rat = ratio(by_tool[base], s) if base in by_tool else ""
            note = s.get("error") or s.get("note", "")
            if s.get("violation", 0.0) > ROW_TOL:
                note = f"incumbent violates a row by {s['violation']:.2g}; " + note
            lines.append(f"| {name} | {SOLVER[tool]} | {tool} | {s['status']} | {fmt(s.get('binaries'), 'd')} | "
                         f"{fmt(s.get('build_s'), '.2f')} | {fmt(s.get('solve_s'), '.2f')} | "
                         f"{fmt(s.get('incumbent'))} | {fmt(s.get('verified'))} | {fmt(s.get('bound'))} | "
                         f"{fmt(s.get('gap'), '.3g')} | {fmt(s.get('bound_gap'), '.3g')} | {rat} | {note[:120]} |")
    return "\n".join(lines)


def warm_up(tools) -> None:
    """Import every tool's packages before timing (their first import is no part of a build)."""
    import importlib
    import logging

    logging.getLogger("pyomo.core").setLevel(logging.ERROR)   # loading values a hair outside bounds
    mods = {"omlt": "omlt.neuralnet", "highsml": "highs_ml", "scipml": "pyscipopt_ml.add_predictor",
            "gurobiml": "gurobi_ml", "pyomo": "pyomo.contrib.appsi.solvers", "scip": "pyscipopt",
            "gurobi": "gurobipy"}
    for tool in tools:
        for key, mod in mods.items():
            if key in tool or (key == "pyomo" and "omlt" in tool):
                try:
                    importlib.import_module(mod)
                except ImportError:
                    pass
        if tool in ("scipml", "gurobiml"):
            _torch(Network.from_weights([(np.ones((1, 1)), np.zeros(1))]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", nargs="+", default=["peaks", "reformer", "mnist", "random"])
    ap.add_argument("--tools", nargs="+", default=list(DEFAULT_TOOLS), choices=TOOLS)
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per run, build and solve together")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path, default=OUT / "embed.json")
    args = ap.parse_args(argv)
    warm_up(args.tools)
    t_start = time.perf_counter()
    load = os.getloadavg()
    insts = {name: instance(name) for name in args.instances}
    raw: dict = {name: {tool: [] for tool in args.tools} for name in args.instances}
    for rep in range(args.repeats):          # the variants interleaved: one repeat of everything at a time
        for name, inst in insts.items():
            for tool in args.tools:
                recs = raw[name][tool]
                if recs and recs[-1].get("status") in ("error", "refused"):
                    continue
                try:
                    rec = RUNNERS[tool](inst, args.time_limit)
                except Exception as exc:  # a peer's failure is a result to report, not a crash of the run
                    rec = {"status": "error", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                verify(inst, rec)
                recs.append(rec)
                print(f"{rep} {name:9s} {tool:25s} {rec.get('status')!s:12s} build {fmt(rec.get('build_s'), '.2f')} "
                      f"solve {fmt(rec.get('solve_s'), '.2f')} inc {fmt(rec.get('verified'))} "
                      f"bound {fmt(rec.get('bound'))} {rec.get('error', '')[:80]}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "load": load,
                                        "raw": raw}, default=float, indent=1))
    results: dict = {}
    for name, inst in insts.items():
        results[name] = {tool: summary(recs) for tool, recs in raw[name].items()}
        best = add_bound_gaps(inst, raw[name], results[name])
        print(f"{name}: best verified incumbent {fmt(best)}", flush=True)
    wall = time.perf_counter() - t_start
    text = table(results)
    footer = (f"\nOne thread per solver, {args.time_limit:g} s per run (build and solve), medians over "
              f"{args.repeats} repeat(s); finished {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, "
              f"{wall:.0f} s wall, load average {load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.")
    print(text + footer)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "wall_s": wall,
                                    "load": load, "raw": raw, "summary": results}, default=float, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
