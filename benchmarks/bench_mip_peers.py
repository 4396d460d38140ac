"""reluopt's exact MIP against the peers' MIP embeddings of the same networks, in one run.

Tools (each with one thread and the same time limit):
- ``reluopt``: ``methods.mip.solve_mip`` (big-M, CROWN+interval bounds, stable neurons removed,
  sparse one-shot build, sampled MIP start) on HiGHS.
- ``omlt``: OMLT's ``ReluBigMFormulation`` (a binary per neuron, big-M from the interval
  bounds OMLT propagates through Pyomo's FBBT: what an OMLT user gets by default), solved
  by HiGHS through Pyomo's APPSI interface: the same solver as reluopt.
- ``scipml``: PySCIPOpt-ML's ``add_predictor_constr`` on a torch ``nn.Sequential`` (its
  default SOS1 ReLU formulation), solved by SCIP.
- ``gurobiml``: gurobi-machinelearning's ``add_predictor_constr`` on the same torch model,
  solved by Gurobi under the size-limited licence; a refusal is recorded, not hidden.
- ``reluopt-bab`` (reference, not a MIP): reluopt's input-space branch and bound with CROWN,
  the exact method meant for networks with few inputs. ``reluopt-obbt`` (opt-in): the MIP
  with LP-OBBT bounds.

Instances: the peaks surrogates in ``examples/peaks/models`` (minimise over [-3, 3]^2), the
reformer surrogate (maximise H2 s.t. N2 <= 0.34 over the data's box) and ACAS Xu 1_1 on the
prop_1 box (maximise Y_0). Every (tool, instance) pair runs in its own subprocess (clean
solver state, a hard wall-clock cap); the incumbent input each tool returns is re-evaluated
by reluopt's forward pass ("verified") and checked against the box and the constraints, and
every tool's bound is checked against every verified incumbent (a sound bound is never
beaten).

The ratio column compares reluopt with OMLT+HiGHS: total seconds (build + solve) when both
prove optimality, otherwise the gaps at the time limit.

    python benchmarks/bench_mip_peers.py                       # everything, 60 s per solve
    python benchmarks/bench_mip_peers.py --time-limit 20 --instances peaks_2-50-50-1 reformer
    python benchmarks/bench_mip_peers.py --tools reluopt omlt
    python benchmarks/bench_mip_peers.py --append --instances peaks_2-200-200-1   # add a row later

Writes ``benchmarks/out/mip_peers.json`` and ``benchmarks/out/mip_peers.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "out"
PEAKS = ROOT / "examples" / "peaks" / "models"
REFORMER = ROOT / "examples" / "reformer" / "reformer.npz"
PEAKS_ORDER = ("2-50-50-1", "2-64-64-1", "2-100-100-1", "2-200-200-1", "2-100-100-100-1")
TOOLS = ("reluopt", "omlt", "scipml", "gurobiml", "reluopt-bab")
MARK = "@@RESULT "
VERIFY_TOL = 1e-6  # box and output-constraint violation accepted in a peer's incumbent


# ----------------------------------------------------------------------------- instances
def instance_names() -> list[str]:
    names = [f"peaks_{a}" for a in PEAKS_ORDER if (PEAKS / f"peaks_{a}.npz").exists()]
    return [*names, "reformer", "acasxu_1_1_prop_1"]


def load_instance(name: str):
    """The reluopt ``Problem`` of an instance (the same network and box for every tool)."""
    from reluopt import Problem
    from reluopt.io import load_npz

    if name.startswith("peaks_"):
        return Problem.build(load_npz(PEAKS / f"{name}.npz"), -3.0, 3.0, minimize=0, name=name)
    if name == "reformer":
        net = load_npz(REFORMER)
        return Problem.build(net, net.meta["box_lb"], net.meta["box_ub"], maximize=0,
                             constraints=["y[1] <= 0.34"], name=name)
    if name == "acasxu_1_1_prop_1":
        from reluopt.io.onnx import load_onnx
        from reluopt.verification import load_vnnlib

        net = load_onnx(DATA / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
        box = load_vnnlib(DATA / "acasxu" / "prop_1.vnnlib").boxes[0]
        return Problem.build(net, box.lb, box.ub, maximize=0, name=name)
    raise SystemExit(f"unknown instance {name!r}; choose from {', '.join(instance_names())}")


def linear_parts(problem):
    """(c, d, sense, C, e): objective ``c.y + d`` in the user's sense and ``C y <= e``."""
    obj = problem.objective
    if problem.constraints is None:
        C, e = np.zeros((0, problem.network.output_dim)), np.zeros(0)
    else:
        C, e = np.atleast_2d(problem.constraints.C), np.asarray(problem.constraints.e).reshape(-1)
    return np.asarray(obj.c, float), float(obj.d), obj.sense, C, e


# ----------------------------------------------------------------------------- tools
def run_reluopt(problem, time_limit: float, bounds: str = "crown") -> dict:
    from reluopt.methods.mip import solve_mip

    res = solve_mip(problem, time_limit=time_limit, threads=1, bounds=bounds)
    s = res.stats
    return {"status": "optimal" if res.status == "optimal" else res.status,
            "build_s": s.get("bounds_seconds", 0.0) + s.get("build_seconds", 0.0),
            "solve_s": s.get("solve_seconds", res.seconds), "incumbent": res.value, "bound": res.bound,
            "x": None if res.x is None else res.x.tolist(), "binaries": s.get("binaries"),
            "note": f"{s.get('stable_neurons')} stable of {s.get('hidden_neurons')} neurons; {s.get('nodes')} nodes"}


def run_omlt(problem, time_limit: float) -> dict:
    import pyomo.environ as pyo
    from omlt import OmltBlock
    from omlt.neuralnet import NetworkDefinition, ReluBigMFormulation
    from omlt.neuralnet.layer import DenseLayer, InputLayer
    from pyomo.contrib.appsi.solvers import Highs

    net = problem.network
    c, d, sense, C, e = linear_parts(problem)
    t0 = time.perf_counter()
    bounds = {i: (float(lo), float(hi)) for i, (lo, hi) in enumerate(zip(problem.domain.lb, problem.domain.ub,
                                                                        strict=True))}
    definition = NetworkDefinition(scaled_input_bounds=bounds)
    prev = InputLayer([net.input_dim])
    definition.add_layer(prev)
    for layer in net.layers:
        dense = DenseLayer([layer.n_in], [layer.n_out], activation="relu" if layer.activation == "relu" else "linear",
                           weights=np.array(layer.W).T, biases=np.array(layer.b))
        definition.add_layer(dense)
        definition.add_edge(prev, dense)
        prev = dense
    m = pyo.ConcreteModel()
    m.nn = OmltBlock()
    m.nn.build_formulation(ReluBigMFormulation(definition))
    out = [m.nn.outputs[k] for k in range(net.output_dim)]
    m.obj = pyo.Objective(expr=sum(float(c[k]) * out[k] for k in range(len(c)) if c[k] != 0) + d,
                          sense=pyo.maximize if sense == "max" else pyo.minimize)
    m.cons = pyo.ConstraintList()
    for row, rhs in zip(C, e, strict=True):
        m.cons.add(sum(float(row[k]) * out[k] for k in range(len(row)) if row[k] != 0) <= float(rhs))
    opt = Highs()
    opt.config.time_limit = time_limit
    opt.config.load_solution = False
    opt.config.stream_solver = False
    opt.highs_options = {"threads": 1, "output_flag": False}
    opt.set_instance(m)  # Pyomo -> HiGHS translation counts as build time
    build = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = opt.solve(m)
    solve = time.perf_counter() - t1
    tc = str(res.termination_condition).split(".")[-1]
    x = None
    inc = res.best_feasible_objective
    if inc is not None and math.isfinite(inc):
        res.solution_loader.load_vars()
        x = [pyo.value(m.nn.inputs[i]) for i in range(net.input_dim)]
    bound = res.best_objective_bound
    binaries = sum(1 for v in m.component_data_objects(pyo.Var) if v.is_binary())
    return {"status": "optimal" if tc == "optimal" else tc, "build_s": build, "solve_s": solve,
            "incumbent": inc if x is not None else None,
            "bound": bound if bound is not None and math.isfinite(bound) else None, "x": x, "binaries": binaries}


def torch_model(net):
    import torch

    from reluopt.io.torch import to_torch

    return to_torch(net, dtype=torch.float64).eval()


def run_scipml(problem, time_limit: float) -> dict:
    from pyscipopt import Model, quicksum
    from pyscipopt_ml.add_predictor import add_predictor_constr

    net = problem.network
    c, d, sense, C, e = linear_parts(problem)
    t0 = time.perf_counter()
    model = Model()
    model.hideOutput()
    x = np.array([[model.addVar(f"x{i}", lb=float(lo), ub=float(hi)) for i, (lo, hi) in
                   enumerate(zip(problem.domain.lb, problem.domain.ub, strict=True))]], dtype=object)
    y = np.array([[model.addVar(f"y{k}", lb=None, ub=None) for k in range(net.output_dim)]], dtype=object)
    pred = add_predictor_constr(model, torch_model(net), x, y, unique_naming_prefix="nn_")
    for j, (row, rhs) in enumerate(zip(C, e, strict=True)):
        model.addCons(quicksum(float(row[k]) * y[0, k] for k in range(len(row)) if row[k] != 0) <= float(rhs),
                      name=f"out{j}")
    model.setObjective(quicksum(float(c[k]) * y[0, k] for k in range(len(c)) if c[k] != 0) + d,
                       "maximize" if sense == "max" else "minimize")
    model.setParam("limits/time", time_limit)
    model.setParam("parallel/maxnthreads", 1)
    model.setParam("lp/threads", 1)
    build = time.perf_counter() - t0
    t1 = time.perf_counter()
    model.optimize()
    solve = time.perf_counter() - t1
    status = model.getStatus()
    sol = model.getBestSol() if model.getNSols() > 0 else None
    xs = None if sol is None else [model.getSolVal(sol, v) for v in x[0]]
    bound = model.getDualbound()
    binaries = sum(1 for v in model.getVars() if v.vtype() == "BINARY")
    del pred
    return {"status": status, "build_s": build, "solve_s": solve,
            "incumbent": model.getSolObjVal(sol) if sol is not None else None,
            "bound": bound if math.isfinite(bound) and abs(bound) < 1e19 else None, "x": xs,
            "binaries": binaries, "note": f"{model.getNNodes()} nodes" + ("; ReLUs as SOS1" if binaries == 0 else "")}


def run_gurobiml(problem, time_limit: float) -> dict:
    import gurobipy as gp
    from gurobi_ml import add_predictor_constr

    net = problem.network
    c, d, sense, C, e = linear_parts(problem)
    t0 = time.perf_counter()
    try:
        env = gp.Env(params={"OutputFlag": 0})
        m = gp.Model(env=env)
        x = m.addMVar((1, net.input_dim), lb=problem.domain.lb[None, :], ub=problem.domain.ub[None, :], name="x")
        y = m.addMVar((1, net.output_dim), lb=-gp.GRB.INFINITY, name="y")
        add_predictor_constr(m, torch_model(net), x, y)
        if len(e):
            m.addConstr(C @ y[0] <= e, name="out")
        m.setObjective(c @ y[0] + d, gp.GRB.MAXIMIZE if sense == "max" else gp.GRB.MINIMIZE)
        m.Params.Threads = 1
        m.Params.TimeLimit = time_limit
        m.update()
        build = time.perf_counter() - t0
        t1 = time.perf_counter()
        m.optimize()
        solve = time.perf_counter() - t1
    except gp.GurobiError as exc:
        return {"status": "refused", "error": f"GurobiError {exc.errno}: {exc}",
                "build_s": time.perf_counter() - t0}
    codes = {gp.GRB.OPTIMAL: "optimal", gp.GRB.TIME_LIMIT: "time_limit", gp.GRB.INFEASIBLE: "infeasible"}
    status = codes.get(m.Status, f"status {m.Status}")
    has = m.SolCount > 0
    return {"status": status, "build_s": build, "solve_s": solve, "incumbent": m.ObjVal if has else None,
            "bound": m.ObjBound if m.Status in codes else None,
            "x": x.X[0].tolist() if has else None, "binaries": m.NumBinVars,
            "note": f"{m.NumVars} vars, {m.NumConstrs} constrs, {m.NumGenConstrs} general"}


def run_reluopt_bab(problem, time_limit: float) -> dict:
    """reluopt's input-space branch and bound (not a MIP): shown for reference, few inputs only."""
    from reluopt.methods.bab import solve_bab

    res = solve_bab(problem, time_limit=time_limit, threads=1)
    s = res.stats
    return {"status": res.status, "build_s": 0.0, "solve_s": res.seconds, "incumbent": res.value,
            "bound": res.bound, "x": None if res.x is None else res.x.tolist(),
            "note": f"input-space BaB, {s.get('nodes')} nodes"}


RUNNERS = {"reluopt": run_reluopt, "omlt": run_omlt, "scipml": run_scipml, "gurobiml": run_gurobiml,
           "reluopt-bab": run_reluopt_bab,
           "reluopt-obbt": lambda problem, time_limit: run_reluopt(problem, time_limit, bounds="lp-obbt")}


def worker(tool: str, instance: str, time_limit: float) -> None:
    """Run one (tool, instance) and print its record on one marked line."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    problem = load_instance(instance)
    try:
        rec = RUNNERS[tool](problem, time_limit)
    except Exception as exc:  # a peer's failure is a result to report, not a crash of the run
        rec = {"status": "error", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    print(MARK + json.dumps(rec, default=float), flush=True)


def spawn(tool: str, instance: str, time_limit: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", tool, instance, "--time-limit", str(time_limit)]
    t0 = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=2 * time_limit + 180, env=env)
    except subprocess.TimeoutExpired:
        return {"status": "killed", "error": f"no answer within {2 * time_limit + 180:.0f} s wall clock",
                "wall_s": time.perf_counter() - t0}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"status": "error", "error": f"exit {proc.returncode}: {' | '.join(tail)[:300]}",
                "wall_s": time.perf_counter() - t0}
    rec = json.loads(lines[-1][len(MARK):])
    rec["wall_s"] = time.perf_counter() - t0
    return rec


# ----------------------------------------------------------------------------- checks
def verify(problem, rec: dict) -> None:
    """Re-evaluate a tool's incumbent input by reluopt's forward pass; record what it finds."""
    if rec.get("x") is None:
        return
    x = np.asarray(rec["x"], dtype=float)
    rec["verified"] = float(problem.objective_values(x)[0])
    rec["violation"] = float(max(problem.constraint_violation(x)[0], 0.0))
    rec["feasible"] = bool(rec["violation"] <= VERIFY_TOL)
    if rec.get("incumbent") is not None:
        rec["claim_error"] = abs(rec["verified"] - rec["incumbent"])


def gap(rec: dict) -> float:
    inc, bnd = rec.get("incumbent"), rec.get("bound")
    if inc is None or bnd is None or not (math.isfinite(inc) and math.isfinite(bnd)):
        return math.inf
    return abs(bnd - inc) / max(abs(inc), 1e-10)


def cross_check(sense: str, recs: dict[str, dict]) -> list[str]:
    """Every tool's bound must hold for every feasible verified incumbent."""
    issues = []
    for a, ra in recs.items():
        bnd = ra.get("bound")
        if bnd is None:
            continue
        for b, rb in recs.items():
            v = rb.get("verified")
            if v is None or not rb.get("feasible"):
                continue
            slack = 1e-4 * (1 + abs(v))
            if (sense == "min" and bnd > v + slack) or (sense == "max" and bnd < v - slack):
                issues.append(f"{a}'s bound {bnd:.6g} is beaten by {b}'s verified incumbent {v:.6g}")
    return issues


def ratio(rel: dict, omlt: dict, time_limit: float) -> str:
    """reluopt / OMLT: time to optimality when both prove it, else gap at the limit."""
    if not rel or not omlt:
        return "n/a"
    r_opt, o_opt = rel.get("status") == "optimal", omlt.get("status") == "optimal"
    r_t = rel.get("build_s", 0) + rel.get("solve_s", 0)
    o_t = omlt.get("build_s", 0) + omlt.get("solve_s", 0)
    if r_opt and o_opt:
        return f"time {r_t / max(o_t, 1e-9):.3g}x ({r_t:.2f} s vs {o_t:.2f} s)"
    if r_opt:
        return f"time <= {r_t / max(o_t, 1e-9):.3g}x (OMLT not optimal at {time_limit:.0f} s; gap {gap(omlt):.3g})"
    gr, go = gap(rel), gap(omlt)
    if math.isfinite(gr) and math.isfinite(go):
        return f"gap {gr / max(go, 1e-12):.3g}x ({gr:.3g} vs {go:.3g})"
    rb, ob = rel.get("bound"), omlt.get("bound")
    inc = "OMLT no incumbent" if omlt.get("incumbent") is None else f"OMLT gap {go:.3g}"
    return f"gap {gr:.3g}; {inc}; bounds {fmt(rb)} vs {fmt(ob)}"


STATUS = {"maxTimeLimit": "time_limit", "timelimit": "time_limit", "maxIterations": "iteration_limit"}


def fmt(v, spec: str = ".4f") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return "inf"
    return format(v, spec)


def table(rows: list[dict], time_limit: float) -> str:
    head = ("| instance | tool | status | binaries | build s | solve s | incumbent | verified | bound | gap | "
            "reluopt/OMLT | model |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for row in rows:
        recs = row["tools"]
        for tool, rec in recs.items():
            ver = fmt(rec.get("verified"))
            if rec.get("x") is not None and not rec.get("feasible"):
                ver += f" (infeasible by {rec['violation']:.1e})"
            status = STATUS.get(rec.get("status", "?"), rec.get("status", "?"))
            if rec.get("error"):
                status += f": {rec['error'][:90]}"
            lines.append(
                f"| {row['instance']} | {tool} | {status} | {fmt(rec.get('binaries'), 'd')} | "
                f"{fmt(rec.get('build_s'), '.2f')} | {fmt(rec.get('solve_s'), '.2f')} | {fmt(rec.get('incumbent'))} | "
                f"{ver} | {fmt(rec.get('bound'))} | {fmt(gap(rec), '.2e')} | "
                f"{row['ratio'] if tool == 'reluopt' else ''} | {rec.get('note', '')} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per solve for every tool (default 60)")
    parser.add_argument("--instances", nargs="*", help="subset of instances (default: all available)")
    parser.add_argument("--tools", nargs="*", default=list(TOOLS), choices=list(RUNNERS),
                        help="tools to run (default: %(default)s; 'reluopt-obbt' = reluopt's MIP with LP-OBBT bounds)")
    parser.add_argument("--out", default=str(OUT / "mip_peers"), help="output stem (.json and .md are added)")
    parser.add_argument("--append", action="store_true",
                        help="keep the other instances' rows of an earlier run in the output files")
    parser.add_argument("--worker", nargs=2, metavar=("TOOL", "INSTANCE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], args.worker[1], args.time_limit)
        return 0
    names = args.instances or instance_names()
    out = Path(args.out)
    runs = []  # one record per invocation of this script whose rows are kept
    kept: dict[str, dict] = {}
    if args.append and out.with_suffix(".json").exists():
        old = json.loads(out.with_suffix(".json").read_text())
        runs = old.get("runs", [])
        kept = {r["instance"]: r for r in old["rows"] if r["instance"] not in names}
    run = {"command": "python benchmarks/bench_mip_peers.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "time_limit": args.time_limit, "tools": args.tools, "instances": names,
           "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    runs.append(run)
    rows: list[dict] = []
    t_start = time.perf_counter()
    for name in names:
        problem = load_instance(name)
        net = problem.network
        row = {"instance": name, "network": net.describe(), "sense": problem.sense, "time_limit": args.time_limit,
               "tools": {}}
        if "grid_min" in net.meta:
            row["surrogate_grid_min"] = net.meta["grid_min"]
        for tool in args.tools:
            rec = spawn(tool, name, args.time_limit)
            verify(problem, rec)
            row["tools"][tool] = rec
            print(f"{name:20s} {tool:12s} {rec.get('status', '?')[:30]:30s} build {fmt(rec.get('build_s'), '.2f'):>6s}"
                  f"  solve {fmt(rec.get('solve_s'), '.2f'):>6s}  inc {fmt(rec.get('incumbent'))}"
                  f"  verified {fmt(rec.get('verified'))}  bound {fmt(rec.get('bound'))}  gap {fmt(gap(rec), '.2e')}"
                  f"  {rec.get('error', '')[:120]}", flush=True)
        row["ratio"] = ratio(row["tools"].get("reluopt"), row["tools"].get("omlt"), args.time_limit)
        row["cross_check"] = cross_check(problem.sense, row["tools"])
        row["load_average"] = os.getloadavg()
        for msg in row["cross_check"]:
            print(f"  UNSOUND? {msg}", flush=True)
        rows.append(row)
        run["wall_seconds"] = time.perf_counter() - t_start
        text = save(out, runs, {**kept, **{r["instance"]: r for r in rows}})
    print("\n" + text)
    return 0


def save(out: Path, runs: list[dict], by_name: dict[str, dict]) -> str:
    """Write the JSON and the markdown table (rows in the canonical instance order)."""
    order = {n: i for i, n in enumerate(instance_names())}
    rows = sorted(by_name.values(), key=lambda r: order.get(r["instance"], len(order)))
    limits = sorted({r.get("time_limit") for r in rows})
    notes = [f"\nOne thread per tool; time limit {', '.join(f'{t:g}' for t in limits)} s per solve. 'verified' = "
             "reluopt's forward pass at the tool's incumbent input; gap = |bound - incumbent| / |incumbent|.",
             *(f"- run: `{r['command']}` ({r['started']}, {r.get('wall_seconds', 0):.0f} s wall)" for r in runs)]
    recs = [rec for row in rows for rec in row["tools"].values()]
    claims = [rec["claim_error"] for rec in recs if rec.get("claim_error") is not None]
    viols = [rec["violation"] for rec in recs if rec.get("violation") is not None]
    if claims:
        notes.append(f"- verification: largest |claimed incumbent - forward pass| {max(claims):.1e}; largest box/"
                     f"constraint violation of a returned input {max(viols):.1e} (tolerance {VERIFY_TOL:g})")
    for row in rows:
        if "surrogate_grid_min" in row:
            notes.append(f"- {row['instance']}: surrogate grid minimum (601x601) {row['surrogate_grid_min']:.4f}")
        for msg in row["cross_check"]:
            notes.append(f"- {row['instance']}: INCONSISTENT: {msg}")
    text = table(rows, max(limits)) + "\n" + "\n".join(notes) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"runs": runs, "rows": rows}, indent=1, default=float))
    out.with_suffix(".md").write_text(text)
    return text


if __name__ == "__main__":
    raise SystemExit(main())
