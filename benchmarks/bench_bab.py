"""Input-space branch and bound (``method="bab"``) against MIP embeddings, in one run.

Sections (``--sections``, default all):

- ``peers``: bab vs reluopt's big-M MIP (``reluopt.solve(problem, "mip")``) vs
  gurobi-machinelearning (Gurobi, size-limited licence: a refusal is recorded) vs OMLT's
  ``ReluBigMFormulation`` on HiGHS (Pyomo APPSI) on the peaks surrogates (minimise y over
  [-3, 3]^2), the reformer surrogate (max H2 s.t. N2 <= 0.34) and ACAS Xu 1_1 over the prop_1
  box (maximise Y_0). The tool runners and instances are those of ``bench_mip_peers.py``
  (one subprocess per MIP run, one thread, the same time limit for every tool); bab runs
  in this process, ``--repeats`` times, and the median run is reported.
- ``sweep``: ACAS Xu nets 1_1..1_9 and 2_1..2_9, max and min of each output over the prop_1
  and prop_3 boxes (``--outputs`` to restrict): time to a certified gap of 1e-4 (absolute or
  relative, the method's default), median and worst, and nodes.
- ``prop1``: every ACAS Xu net, max Y_0 over the prop_1 box: the certified bound must be below
  3.9911 (property 1 holds); prints the margin ``3.9911 - bound``.
- ``branching``: the branching rules (fsb = trial on cheap bounds, trial, lambda = CROWN |Lam_i| x width, gradient =
  |df/dx_i(centre)| x width, widest) on a few instances with the same time limit.

    timeout 1500 python benchmarks/bench_bab.py --outputs 0           # ~20 min on a busy 2-core box
    python benchmarks/bench_bab.py --sections branching --branching-time-limit 10
    python benchmarks/bench_bab.py --sections sweep --outputs 0 --sweep-time-limit 3

Writes ``benchmarks/out/bab.json`` and ``benchmarks/out/bab.md``. Timings are wall clock on a
shared machine (the load average is recorded): compare tools within one run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_mip_peers as peers  # noqa: E402

ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data"
ACAS = DATA / "acasxu"
OUT = HERE / "out"
PROP1_LIMIT = 3.9911
SECTIONS = ("peers", "sweep", "prop1", "branching")
PEER_TOOLS = ("reluopt-bab", "reluopt", "gurobiml", "omlt")
TOOL_NAMES = {"reluopt-bab": "bab", "reluopt": "reluopt mip", "gurobiml": "gurobi-ml", "omlt": "omlt+highs"}
RULES = ("fsb", "trial", "lambda", "gradient", "widest")


def fmt(v, spec: str = ".5g") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return format(v, spec)


def acas_net(net_id: str):
    from reluopt.io.onnx import load_onnx

    return load_onnx(ACAS / f"ACASXU_run2a_{net_id}_batch_2000.onnx")


def acas_box(prop: int):
    from reluopt.verification import load_vnnlib

    box = load_vnnlib(ACAS / f"prop_{prop}.vnnlib").boxes[0]
    return box.lb, box.ub


def solve_bab(problem, time_limit: float, **options):
    from reluopt.methods.bab import solve_bab as _solve

    return _solve(problem, time_limit=time_limit, threads=1, **options)


# ----------------------------------------------------------------------------- peers
def run_tool(tool: str, name: str, problem, time_limit: float) -> dict:
    """bab in this process (it honours its time limit; no solver state to reset), the MIP
    tools each in their own subprocess (``bench_mip_peers.spawn``: a hard wall-clock cap)."""
    if tool != "reluopt-bab":
        return peers.spawn(tool, name, time_limit)
    t0 = time.perf_counter()
    rec = peers.run_reluopt_bab(problem, time_limit)
    rec["wall_s"] = time.perf_counter() - t0
    return rec


def section_peers(args, report: dict) -> str:
    names = [n for n in peers.instance_names() if not args.instances or n in args.instances]
    rows = []
    for name in names:
        problem = peers.load_instance(name)
        recs = {}
        for tool in args.tools:
            reps = args.repeats if tool == "reluopt-bab" else 1
            runs = [run_tool(tool, name, problem, args.time_limit) for _ in range(reps)]
            times = [r.get("build_s", 0.0) + r.get("solve_s", math.nan) for r in runs]
            order = sorted(range(reps), key=lambda i: (math.isnan(times[i]), times[i]))
            rec = runs[order[(reps - 1) // 2]]       # the median run (lower median)
            rec["repeats"] = [t if math.isfinite(t) else None for t in times]
            peers.verify(problem, rec)
            recs[tool] = rec
            print(f"{name:22s} {TOOL_NAMES[tool]:12s} {str(rec.get('status'))[:40]:40s} "
                  f"build {fmt(rec.get('build_s'), '.2f'):>6s} solve {fmt(rec.get('solve_s'), '.2f'):>6s} "
                  f"inc {fmt(rec.get('incumbent'), '.6g')} bound {fmt(rec.get('bound'), '.6g')} "
                  f"gap {fmt(peers.gap(rec), '.2e')} {rec.get('error', '')[:100]}", flush=True)
        issues = peers.cross_check(problem.sense, recs)
        for msg in issues:
            print(f"  UNSOUND? {msg}", flush=True)
        rows.append({"instance": name, "network": problem.network.describe(), "sense": problem.sense,
                     "tools": recs, "cross_check": issues, "load_average": os.getloadavg()})
    report["peers"] = {"time_limit": args.time_limit, "repeats": args.repeats, "rows": rows}
    lines = [f"### bab vs MIP embeddings (time limit {args.time_limit:g} s per tool, one thread; "
             f"bab: median of {args.repeats})", "",
             "| instance | tool | status | build s | solve s | incumbent | verified | bound | gap | note |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for tool, rec in row["tools"].items():
            status = str(rec.get("status"))
            if rec.get("error"):
                status += ": " + rec["error"][:80].replace("|", "/")
            ver = fmt(rec.get("verified"), ".6g")
            if rec.get("x") is not None and not rec.get("feasible"):
                ver += " (infeasible)"
            lines.append(f"| {row['instance']} | {TOOL_NAMES[tool]} | {status} | {fmt(rec.get('build_s'), '.2f')} | "
                         f"{fmt(rec.get('solve_s'), '.2f')} | {fmt(rec.get('incumbent'), '.6g')} | {ver} | "
                         f"{fmt(rec.get('bound'), '.6g')} | {fmt(peers.gap(rec), '.2e')} | {rec.get('note', '')} |")
        for msg in row["cross_check"]:
            lines.append(f"\nINCONSISTENT ({row['instance']}): {msg}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- sweep
def sweep_record(problem, res) -> dict:
    return {"status": res.status, "seconds": res.seconds, "nodes": res.stats.get("nodes"),
            "value": res.value, "bound": res.bound, "gap": res.gap, "abs_gap": res.abs_gap}


def summarise(recs: list[dict]) -> dict:
    done = [r for r in recs if r["status"] == "optimal"]
    times = sorted(r["seconds"] for r in done)
    nodes = sorted(r["nodes"] for r in done)
    open_ = [r for r in recs if r["status"] != "optimal"]
    return {"runs": len(recs), "certified": len(done),
            "median_s": statistics.median(times) if times else None, "worst_s": times[-1] if times else None,
            "median_nodes": statistics.median(nodes) if nodes else None, "worst_nodes": nodes[-1] if nodes else None,
            "worst_open_abs_gap": max((r["abs_gap"] for r in open_), default=None)}


def section_sweep(args, report: dict) -> str:
    from reluopt import Problem

    nets = [f"{a}_{b}" for a in (1, 2) for b in range(1, 10)]
    recs = []
    for prop in (1, 3):
        lb, ub = acas_box(prop)
        for net_id in nets:
            net = acas_net(net_id)
            for k in args.outputs:
                for sense in ("max", "min"):
                    problem = Problem.build(net, lb, ub, **{"maximize" if sense == "max" else "minimize": k})
                    res = solve_bab(problem, args.sweep_time_limit)
                    rec = {"net": net_id, "prop": prop, "output": k, "sense": sense, **sweep_record(problem, res)}
                    recs.append(rec)
                    print(f"sweep prop_{prop} {net_id} {sense} Y_{k}: {res.status:10s} {res.seconds:6.2f} s "
                          f"{rec['nodes']:7d} nodes  value {fmt(res.value)} bound {fmt(res.bound)}", flush=True)
    groups = {}
    for prop in (1, 3):
        for sense in ("max", "min"):
            groups[f"prop_{prop} {sense}"] = summarise([r for r in recs if r["prop"] == prop and r["sense"] == sense])
    groups["all"] = summarise(recs)
    report["sweep"] = {"time_limit": args.sweep_time_limit, "outputs": args.outputs, "runs": recs,
                       "summary": groups, "load_average": os.getloadavg()}
    lines = [f"### ACAS Xu sweep: nets 1_1..2_9, outputs {args.outputs}, max and min, bab with "
             f"{args.sweep_time_limit:g} s each (gap 1e-4 absolute or relative)", "",
             "| group | runs | certified | median s | worst s | median nodes | worst nodes | worst open abs gap |",
             "|---|---|---|---|---|---|---|---|"]
    for g, s in groups.items():
        lines.append(f"| {g} | {s['runs']} | {s['certified']} | {fmt(s['median_s'], '.2f')} | "
                     f"{fmt(s['worst_s'], '.2f')} | {fmt(s['median_nodes'], '.0f')} | {fmt(s['worst_nodes'], '.0f')} | "
                     f"{fmt(s['worst_open_abs_gap'], '.3g')} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- prop1
def section_prop1(args, report: dict) -> str:
    """The verification use: ``bab_maximize_min(..., stop_below=3.9911)`` stops as soon as the
    bound proves the property, so it prunes far more than the optimisation runs of 'sweep'.
    The margin uses the best certified bound of either run."""
    from reluopt.methods.bab import bab_maximize_min

    lb, ub = acas_box(1)
    swept = {r["net"]: r for r in report.get("sweep", {}).get("runs", [])
             if r["prop"] == 1 and r["output"] == 0 and r["sense"] == "max"}
    rows = []
    nets = args.prop1_nets or [f"{a}_{b}" for a in range(1, 6) for b in range(1, 10)]
    for net_id in nets:
        t0 = time.perf_counter()
        out = bab_maximize_min(acas_net(net_id), lb, ub, np.eye(5)[:1], [0.0], stop_below=PROP1_LIMIT,
                               time_limit=args.prop1_time_limit, threads=1)
        rec = {"net": net_id, "status": out.status, "seconds": time.perf_counter() - t0, "nodes": out.nodes,
               "value": out.value, "bound": out.bound}
        if net_id in swept and swept[net_id]["bound"] < rec["bound"]:
            rec["bound"], rec["bound_from"] = swept[net_id]["bound"], "sweep"
        rec["margin"] = PROP1_LIMIT - rec["bound"]
        rec["holds"] = bool(rec["bound"] < PROP1_LIMIT)
        rows.append(rec)
        print(f"prop_1 {net_id}: max Y_0 <= {rec['bound']:.6g} (incumbent {fmt(rec['value'])}, {rec['status']}, "
              f"{rec['seconds']:.2f} s, {rec['nodes']} nodes) margin {rec['margin']:.4f} "
              f"{'holds' if rec['holds'] else 'UNDECIDED'}", flush=True)
    report["prop1"] = {"time_limit": args.prop1_time_limit, "rows": rows}
    held = sum(r["holds"] for r in rows)
    times = [r["seconds"] for r in rows if r["holds"]]
    lines = [f"### Property 1 (max Y_0 over the prop_1 box < {PROP1_LIMIT}) on {len(rows)} ACAS Xu nets: "
             f"certified on {held} (bab with stop_below, {args.prop1_time_limit:g} s each)", "",
             f"smallest margin {min(r['margin'] for r in rows):.4f} ({min(rows, key=lambda r: r['margin'])['net']}); "
             f"median margin {statistics.median(r['margin'] for r in rows):.4f}; time to proof median "
             f"{fmt(statistics.median(times) if times else None, '.2f')} s, "
             f"worst {fmt(max(times, default=None), '.2f')} s",
             "", "| net | bound | incumbent | margin | status | s | nodes |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['net']} | {r['bound']:.6g} | {fmt(r['value'])} | {r['margin']:.4f} | {r['status']} | "
                     f"{r['seconds']:.2f} | {r['nodes']} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- branching
def branching_instances():
    from reluopt import Problem
    from reluopt.io import load_npz

    out = []
    lb, ub = acas_box(1)
    out.append(("acasxu 1_1 prop_1 max Y_0", Problem.build(acas_net("1_1"), lb, ub, maximize=0)))
    lb, ub = acas_box(3)
    out.append(("acasxu 1_1 prop_3 max Y_0", Problem.build(acas_net("1_1"), lb, ub, maximize=0)))
    for arch in ("2-100-100-1", "2-100-100-100-1"):
        path = peers.PEAKS / f"peaks_{arch}.npz"
        if path.exists():
            out.append((f"peaks {arch} min", Problem.build(load_npz(path), -3.0, 3.0, minimize=0)))
    return out


def section_branching(args, report: dict) -> str:
    rows = []
    for name, problem in branching_instances():
        for rule in RULES:
            res = solve_bab(problem, args.branching_time_limit, branching=rule)
            rec = {"instance": name, "rule": rule, **sweep_record(problem, res)}
            rows.append(rec)
            print(f"branching {name:28s} {rule:9s} {res.status:10s} {res.seconds:6.2f} s {rec['nodes']:7d} nodes "
                  f"value {fmt(res.value)} bound {fmt(res.bound)}", flush=True)
    report["branching"] = {"time_limit": args.branching_time_limit, "rows": rows}
    lines = [f"### Branching rules (time limit {args.branching_time_limit:g} s each)", "",
             "| instance | rule | status | s | nodes | incumbent | bound | abs gap |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['instance']} | {r['rule']} | {r['status']} | {r['seconds']:.2f} | {r['nodes']} | "
                     f"{fmt(r['value'], '.6g')} | {fmt(r['bound'], '.6g')} | {fmt(r['abs_gap'], '.2e')} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="*", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--time-limit", type=float, default=20.0, help="seconds per tool in 'peers' (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="bab repeats in 'peers' (median reported)")
    parser.add_argument("--tools", nargs="*", default=list(PEER_TOOLS), choices=PEER_TOOLS)
    parser.add_argument("--instances", nargs="*", help="subset of the 'peers' instances")
    parser.add_argument("--outputs", nargs="*", type=int, default=[0, 1, 2, 3, 4], help="ACAS outputs in 'sweep'")
    parser.add_argument("--sweep-time-limit", type=float, default=5.0)
    parser.add_argument("--prop1-time-limit", type=float, default=5.0)
    parser.add_argument("--prop1-nets", nargs="*", help="subset of nets in 'prop1' (e.g. 4_9 5_8)")
    parser.add_argument("--branching-time-limit", type=float, default=15.0)
    parser.add_argument("--out", default=str(OUT / "bab"), help="output stem (.json and .md are added)")
    args = parser.parse_args(argv)
    if not ACAS.is_dir():
        raise SystemExit(f"shared data folder {ACAS} is absent")
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        pass
    command = "python benchmarks/bench_bab.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report: dict = {"command": command, "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                    "load_average_start": os.getloadavg()}
    t0 = time.perf_counter()
    texts = []
    out = Path(args.out)
    for section in ("sweep", "prop1", "branching", "peers"):   # prop1 reuses the sweep's bounds
        if section in args.sections:
            texts.append(globals()[f"section_{section}"](args, report))
            report["wall_seconds"] = time.perf_counter() - t0
            save(out, report, texts)
    print("\n" + save(out, report, texts))
    return 0


def save(out: Path, report: dict, texts: list[str]) -> str:
    head = (f"Run: `{report['command']}` ({report['started']}, {report.get('wall_seconds', 0):.0f} s wall, "
            f"load average at start {report['load_average_start'][0]:.1f} on {os.cpu_count()} cores)")
    text = "\n\n".join([head, *texts]) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1, default=_json))
    out.with_suffix(".md").write_text(text)
    return text


def _json(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


if __name__ == "__main__":
    raise SystemExit(main())
