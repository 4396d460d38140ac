"""The same user model, the same solver, one thread: the peers' embeddings against reluopt.embed.

Each instance is a user's model (input variables with bounds, perhaps an integer variable,
linear rows over inputs, integer and outputs, a linear objective with costs on the inputs)
into which one network is put by each tool's own call:

- HiGHS: ``reluopt`` (``reluopt.embed.highspy.add_network_constr``), ``reluopt-pyomo``
  (``reluopt.embed.pyomo.add_network_block`` solved by Pyomo's appsi HiGHS), ``omlt-bigm`` and
  ``omlt-partition`` (OMLT's ``ReluBigMFormulation`` and ``ReluPartitionFormulation`` in an
  ``OmltBlock``, appsi HiGHS), ``highsml`` (highs-ml's ``add_predictor_constr`` on the network
  as ONNX; it takes single-output networks only, so a two-output network enters as one
  single-output copy per output, which is what its user has to do);
- SCIP: ``reluopt-scip`` (big-M) and ``reluopt-scip-sos1`` (``formulation="sos1"``) against
  ``scipml`` (PySCIPOpt-ML on the network as a torch module, its default SOS1 formulation);
- Gurobi: ``reluopt-gurobi`` against ``gurobiml`` (gurobi-machinelearning on the torch module),
  under whatever licence is installed (a refusal is recorded as such).

Instances: ``peaks`` (the 2-50-50-1 peaks surrogate, minimised with a linear cost on both
inputs over a box around its valley), ``reformer`` (examples/embed/embed_reformer.py: H2
minus operating costs, an integer steam level, N2 <= 0.34) and ``random`` (a seeded
10-100-100-1 network, maximised with a linear side constraint on the inputs).

Each (tool, instance) runs ``--repeats`` times in this process; the table shows medians of
build seconds (model and embedding, including a Pyomo model's translation to the solver), of
solve seconds and of incumbent, verified value and bound (over the repeats that have one),
the status counts, the gap at the limit (relative, |bound - incumbent| / max(1, |incumbent|)),
and every incumbent is re-checked by reluopt's forward pass at the
tool's input values (``verified``: the objective recomputed; rows violated by more than 1e-5
are flagged). The ratio compares reluopt with each peer on the same solver: the peer's
median total seconds over reluopt's when both prove optimality, else the distance of the
peer's median bound to the best verified incumbent any tool found over reluopt's ("bound to
best": at the limit, the part of the gap no tool closed; an incumbent is often missing).

    python benchmarks/bench_embed.py                                # everything, 10 s limit, 3 repeats
    python benchmarks/bench_embed.py --time-limit 20 --instances reformer --tools reluopt omlt-bigm

Writes ``benchmarks/out/embed.json`` and prints the markdown table.
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
TOOLS = ("reluopt", "reluopt-pyomo", "omlt-bigm", "omlt-partition", "highsml", "reluopt-scip", "reluopt-scip-sos1",
         "scipml", "reluopt-gurobi", "gurobiml")
PEERS = {"reluopt": ("reluopt-pyomo", "omlt-bigm", "omlt-partition", "highsml"),
         "reluopt-scip": ("reluopt-scip-sos1", "scipml"),
         "reluopt-gurobi": ("gurobiml",)}
SOLVER = {"reluopt": "HiGHS", "reluopt-pyomo": "HiGHS", "omlt-bigm": "HiGHS", "omlt-partition": "HiGHS",
          "highsml": "HiGHS", "reluopt-scip": "SCIP", "reluopt-scip-sos1": "SCIP", "scipml": "SCIP",
          "reluopt-gurobi": "Gurobi", "gurobiml": "Gurobi"}
ROW_TOL = 1e-5


@dataclass
class Instance:
    """A user's model: ``lo <= a_x x + a_u u + a_y y <= hi`` rows and ``c_x x + c_u u + c_y y``."""

    name: str
    net: Network
    lb: np.ndarray
    ub: np.ndarray
    c_x: np.ndarray
    c_y: np.ndarray
    sense: str                      # 'min' or 'max'
    u_ub: int | None = None         # an integer variable u in [0, u_ub], or none
    c_u: float = 0.0
    rows: list = field(default_factory=list)   # (a_x, a_u, a_y, lo, hi)

    def objective(self, x, u, y) -> float:
        """The model's objective at ``x``, ``u`` and outputs ``y``."""
        return float(self.c_x @ x + self.c_u * (u or 0.0) + self.c_y @ y)

    def violation(self, x, u, y) -> float:
        """The largest row or bound violation at ``x``, ``u`` and outputs ``y``."""
        worst = max(0.0, float(np.max(self.lb - x)), float(np.max(x - self.ub)))
        for a_x, a_u, a_y, lo, hi in self.rows:
            v = float(a_x @ x + a_u * (u or 0.0) + a_y @ y)
            worst = max(worst, lo - v, v - hi)
        return worst


def instance(name: str) -> Instance:
    """One of the benchmark's user models."""
    if name == "peaks":
        net = reluopt.load(ROOT / "examples" / "peaks" / "models" / "peaks_2-50-50-1.npz")
        return Instance(name, net, np.array([-1.0, -3.0]), np.array([1.0, 0.0]), np.array([0.5, -0.3]),
                        np.array([1.0]), "min")
    if name == "reformer":
        net = reluopt.load(ROOT / "examples" / "reformer" / "reformer.npz")
        z2 = np.zeros(2)
        return Instance(name, net, np.array([0.1, 0.8]), np.array([0.8, 1.2]), np.array([-0.01, -0.02]),
                        np.array([1.0, 0.0]), "max", u_ub=8, c_u=0.0,
                        rows=[(np.array([0.0, 1.0]), -0.05, z2, 0.8, 0.8),       # steam = 0.8 + 0.05 u
                              (np.zeros(2), 0.0, np.array([0.0, 1.0]), -np.inf, 0.34)])   # N2 <= 0.34
    if name == "random":
        rng = np.random.default_rng(2026)
        sizes = [10, 100, 100, 1]
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        weights = [rng.normal(0, np.sqrt(2.0 / n_in), (n_out, n_in)) for n_in, n_out in pairs]
        biases = [rng.normal(0, 0.1, n_out) for n_out in sizes[1:]]
        net = Network.from_weights(list(zip(weights, biases, strict=True)))
        return Instance(name, net, -np.ones(10), np.ones(10), rng.normal(0, 0.1, 10), np.array([1.0]), "max",
                        rows=[(np.ones(10), 0.0, np.zeros(1), -np.inf, 2.0)])   # sum x <= 2
    raise SystemExit(f"unknown instance {name!r}")


# ----------------------------------------------------------------------------- HiGHS
def _highs_model(inst: Instance, time_limit: float):
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("time_limit", float(time_limit))
    x = [h.addVariable(lb=float(lo), ub=float(hi)) for lo, hi in zip(inst.lb, inst.ub, strict=True)]
    u = None if inst.u_ub is None else h.addVariable(lb=0, ub=inst.u_ub, type=highspy.HighsVarType.kInteger)
    return h, x, u


def _highs_finish(inst, h, x, u, y, t0, time_limit) -> dict:
    import highspy

    def lin(a_x, a_u, a_y):
        e = sum(float(a) * v for a, v in zip(a_x, x, strict=True) if a) + sum(
            float(a) * v for a, v in zip(a_y, y, strict=True) if a)
        return e + float(a_u) * u if a_u and u is not None else e

    for a_x, a_u, a_y, lo, hi in inst.rows:
        h.addConstr(lin(a_x, a_u, a_y) <= hi) if lo == -np.inf else h.addConstr(lo <= lin(a_x, a_u, a_y) <= hi)
    obj = lin(inst.c_x, inst.c_u, inst.c_y)
    h.setObjective(obj, highspy.ObjSense.kMaximize if inst.sense == "max" else highspy.ObjSense.kMinimize)
    build = time.perf_counter() - t0
    t1 = time.perf_counter()
    h.run()
    solve = time.perf_counter() - t1
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    has = info.primal_solution_status == 2
    vals = lambda vs: [h.val(v) for v in vs]  # noqa: E731
    return {"status": {"Optimal": "optimal", "Time limit reached": "time_limit"}.get(status, status),
            "build_s": build, "solve_s": solve, "incumbent": info.objective_function_value if has else None,
            "bound": info.mip_dual_bound, "x": vals(x) if has else None,
            "u": h.val(u) if has and u is not None else None, "binaries": sum(
                1 for i in range(h.getNumCol()) if h.getLp().integrality_ and
                h.getLp().integrality_[i] == highspy.HighsVarType.kInteger) - (u is not None)}


def run_reluopt(inst: Instance, time_limit: float) -> dict:
    from reluopt.embed.highspy import add_network_constr

    t0 = time.perf_counter()
    h, x, u = _highs_model(inst, time_limit)
    nn = add_network_constr(h, inst.net, x)
    return _highs_finish(inst, h, x, u, nn.output_vars, t0, time_limit)


def run_highsml(inst: Instance, time_limit: float) -> dict:
    import onnx
    from highs_ml import add_predictor_constr

    from reluopt.io.export import to_onnx_model

    t0 = time.perf_counter()
    h, x, u = _highs_model(inst, time_limit)
    y = []
    for k in range(inst.net.output_dim):    # highs-ml takes single-output networks only
        one = inst.net if inst.net.output_dim == 1 else _output_slice(inst.net, k)
        proto = onnx.load_from_string(to_onnx_model(one).SerializeToString())
        y.append(add_predictor_constr(h, proto, x, name=f"nn{k}").output_var)
    rec = _highs_finish(inst, h, x, u, y, t0, time_limit)
    if inst.net.output_dim > 1:
        rec["note"] = f"{inst.net.output_dim} single-output copies (no multi-output support)"
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
    n = inst.net.input_dim
    m.x = pyo.Var(range(n), bounds=lambda _, i: (float(inst.lb[i]), float(inst.ub[i])))
    u = None
    if inst.u_ub is not None:
        m.u = pyo.Var(domain=pyo.Integers, bounds=(0, inst.u_ub))
        u = m.u
    y, binaries = embed(m)

    def lin(a_x, a_u, a_y):
        e = sum(float(a) * m.x[i] for i, a in enumerate(a_x) if a) + sum(
            float(a) * y[k] for k, a in enumerate(a_y) if a)
        return e + float(a_u) * u if a_u and u is not None else e

    m.rows = pyo.ConstraintList()
    for a_x, a_u, a_y, lo, hi in inst.rows:
        m.rows.add((None if lo == -np.inf else float(lo), lin(a_x, a_u, a_y), float(hi)))
    m.obj = pyo.Objective(expr=lin(inst.c_x, inst.c_u, inst.c_y), sense=pyo.maximize if inst.sense == "max"
                          else pyo.minimize)
    opt = Highs()
    opt.config.time_limit = time_limit
    opt.config.load_solution = False
    opt.highs_options = {"threads": 1, "output_flag": False}
    opt.set_instance(m)
    build = time.perf_counter() - t0
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
            "x": [pyo.value(m.x[i]) for i in range(n)] if has else None,
            "u": pyo.value(u) if has and u is not None else None, "binaries": binaries(m)}


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
    u = None if inst.u_ub is None else m.addVar("u", vtype="I", lb=0, ub=inst.u_ub)
    y = embed(m, x)

    def lin(a_x, a_u, a_y):
        e = quicksum(float(a) * v for a, v in zip(a_x, x, strict=True) if a) + quicksum(
            float(a) * v for a, v in zip(a_y, y, strict=True) if a)
        return e + float(a_u) * u if a_u and u is not None else e

    for a_x, a_u, a_y, lo, hi in inst.rows:
        m.addCons(lin(a_x, a_u, a_y) <= hi) if lo == -np.inf else m.addCons(lo <= (lin(a_x, a_u, a_y) <= hi))
    m.setObjective(lin(inst.c_x, inst.c_u, inst.c_y), "maximize" if inst.sense == "max" else "minimize")
    m.setParam("limits/time", time_limit)
    m.setParam("parallel/maxnthreads", 1)
    build = time.perf_counter() - t0
    t1 = time.perf_counter()
    m.optimize()
    solve = time.perf_counter() - t1
    sol = m.getBestSol() if m.getNSols() > 0 else None
    bound = m.getDualbound()
    return {"status": {"timelimit": "time_limit"}.get(m.getStatus(), m.getStatus()), "build_s": build,
            "solve_s": solve, "incumbent": m.getSolObjVal(sol) if sol is not None else None,
            "bound": bound if abs(bound) < 1e19 else None,
            "x": [m.getSolVal(sol, v) for v in x] if sol is not None else None,
            "u": m.getSolVal(sol, u) if sol is not None and u is not None else None,
            "binaries": sum(1 for v in m.getVars() if v.vtype() == "BINARY")}


def run_reluopt_scip(inst: Instance, time_limit: float, formulation: str = "bigm") -> dict:
    from reluopt.embed.pyscipopt import add_network_constr

    return _scip_run(inst, time_limit,
                     lambda m, x: add_network_constr(m, inst.net, x, formulation=formulation).output_vars)


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
        u = None if inst.u_ub is None else m.addVar(lb=0, ub=inst.u_ub, vtype=gp.GRB.INTEGER, name="u")
        y = embed(m, x)
        ys = [y[k] for k in range(inst.net.output_dim)]

        def lin(a_x, a_u, a_y):
            e = gp.quicksum(float(a) * x[i] for i, a in enumerate(a_x) if a) + gp.quicksum(
                float(a) * v for a, v in zip(a_y, ys, strict=True) if a)
            return e + float(a_u) * u if a_u and u is not None else e

        for a_x, a_u, a_y, lo, hi in inst.rows:
            m.addConstr(lin(a_x, a_u, a_y) <= hi)
            if lo != -np.inf:
                m.addConstr(lin(a_x, a_u, a_y) >= lo)
        m.setObjective(lin(inst.c_x, inst.c_u, inst.c_y), gp.GRB.MAXIMIZE if inst.sense == "max" else gp.GRB.MINIMIZE)
        m.Params.Threads = 1
        m.Params.TimeLimit = time_limit
        m.update()
        build = time.perf_counter() - t0
        t1 = time.perf_counter()
        m.optimize()
        solve = time.perf_counter() - t1
    except gp.GurobiError as exc:
        return {"status": "refused", "error": f"GurobiError {exc.errno}: {exc}", "build_s": time.perf_counter() - t0}
    codes = {gp.GRB.OPTIMAL: "optimal", gp.GRB.TIME_LIMIT: "time_limit", gp.GRB.INFEASIBLE: "infeasible"}
    has = m.SolCount > 0
    return {"status": codes.get(m.Status, f"status {m.Status}"), "build_s": build, "solve_s": solve,
            "incumbent": m.ObjVal if has else None, "bound": m.ObjBound if m.Status in codes else None,
            "x": x.X.tolist() if has else None, "u": u.X if has and u is not None else None,
            "binaries": m.NumBinVars, "note": f"{m.NumGenConstrs} general constraints" if m.NumGenConstrs else ""}


def run_reluopt_gurobi(inst: Instance, time_limit: float) -> dict:
    from reluopt.embed.gurobipy import add_network_constr

    return _gurobi_run(inst, time_limit, lambda m, x: add_network_constr(m, inst.net, x.tolist()).output_vars)


def run_gurobiml(inst: Instance, time_limit: float) -> dict:
    import gurobipy as gp
    from gurobi_ml import add_predictor_constr

    def embed(m, x):
        y = m.addMVar(inst.net.output_dim, lb=-gp.GRB.INFINITY, name="y")
        add_predictor_constr(m, _torch(inst.net), x, y)
        return y

    return _gurobi_run(inst, time_limit, embed)


RUNNERS = {"reluopt": run_reluopt, "reluopt-pyomo": run_reluopt_pyomo,
           "omlt-bigm": lambda i, t: _omlt(i, t, False), "omlt-partition": lambda i, t: _omlt(i, t, True),
           "highsml": run_highsml, "reluopt-scip": run_reluopt_scip,
           "reluopt-scip-sos1": lambda i, t: run_reluopt_scip(i, t, "sos1"), "scipml": run_scipml,
           "reluopt-gurobi": run_reluopt_gurobi, "gurobiml": run_gurobiml}


# ----------------------------------------------------------------------------- checks and table
def verify(inst: Instance, rec: dict) -> None:
    """Re-evaluate the tool's incumbent inputs by reluopt's forward pass."""
    if rec.get("x") is None:
        return
    x = np.asarray(rec["x"], dtype=float)
    u = rec.get("u")
    y = inst.net.forward(x)
    rec["verified"] = inst.objective(x, None if u is None else round(u), y)
    rec["violation"] = inst.violation(x, None if u is None else round(u), y)


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
                    abs(b - best) > 1e-6 * max(1.0, abs(best)):
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
    ap.add_argument("--instances", nargs="+", default=["peaks", "reformer", "random"])
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    warm_up(args.tools)
    t_start = time.perf_counter()
    load = os.getloadavg()
    results: dict = {}
    raw: dict = {}
    for name in args.instances:
        inst = instance(name)
        results[name], raw[name] = {}, {}
        for tool in args.tools:
            recs = []
            for _ in range(args.repeats):
                try:
                    rec = RUNNERS[tool](inst, args.time_limit)
                except Exception as exc:  # a peer's failure is a result to report, not a crash of the run
                    rec = {"status": "error", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                verify(inst, rec)
                recs.append(rec)
                if rec.get("status") in ("error", "refused"):
                    break
            raw[name][tool] = recs
            results[name][tool] = s = summary(recs)
            print(f"{name:9s} {tool:15s} {s['status']:24s} total {fmt(s.get('total_s'), '.2f')} s, "
                  f"gap {fmt(s.get('gap'), '.3g')} {s['error'][:80]}", flush=True)
        best = add_bound_gaps(inst, raw[name], results[name])
        print(f"{name}: best verified incumbent {fmt(best)}", flush=True)
    wall = time.perf_counter() - t_start
    text = table(results)
    footer = (f"\nOne thread per solver, time limit {args.time_limit:g} s, medians over {args.repeats} repeats; "
              f"run {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, {wall:.0f} s wall, load average "
              f"{load[0]:.1f} at the start.")
    print(text + footer)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "embed.json").write_text(json.dumps({"args": vars(args), "wall_s": wall, "load": load, "raw": raw,
                                                "summary": results}, default=float, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
