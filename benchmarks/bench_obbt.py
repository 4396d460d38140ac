"""OBBT on ACAS Xu net 1_1 over the prop_1 box: stability and big-M under IBP, CROWN,
LP-OBBT and (capped) MIP-OBBT; OBBT time serial vs 2 processes vs a local Dask cluster
(identical bounds checked); a cProfile summary showing where OBBT time goes (LP solves vs
model building); the big-M spread before and after rescaling (ACAS Xu, and the peaks nets
if present); and the exact MIP with CROWN vs LP-OBBT bounds, with and without rescaling.

    .venv/bin/python benchmarks/bench_obbt.py [--repeats 3] [--no-dask] [--mip-obbt-limit 120]
                                               [--mip-limit 30]

Writes benchmarks/out/obbt.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import time
from pathlib import Path

import numpy as np

from reluopt.analysis.rescale import bigm_spread, matrix_spread, rescale, rescale_bounds
from reluopt.bounds import crown_bounds, interval_bounds
from reluopt.bounds.obbt import obbt_bounds
from reluopt.io.onnx import load_onnx
from reluopt.methods.mip import solve_mip
from reluopt.milp.formulation import build_network_model
from reluopt.problem import Domain, Problem
from reluopt.verification import load_vnnlib

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "out"


def acas_problem():
    """ACAS Xu net 1_1 and the input box of prop_1."""
    net = load_onnx(DATA / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    prop = load_vnnlib(DATA / "acasxu" / "prop_1.vnnlib")
    box = prop.boxes[0]
    return net, np.asarray(box.lb, dtype=float), np.asarray(box.ub, dtype=float)


def describe(net, b, seconds=None) -> dict:
    st = b.stability(net)
    neurons = sum(s["neurons"] for s in st)
    unstable = sum(s["unstable"] for s in st)
    ranges_unstable = 0.0
    for l, layer in enumerate(net.hidden_layers):
        from reluopt.milp.formulation import classify

        ph = classify(layer, b.lower[l][0], b.upper[l][0])
        ranges_unstable += float(np.sum((b.upper[l][0] - b.lower[l][0])[~ph.stable]))
    return {"method": b.method, "stable_pct": 100.0 * (1 - unstable / neurons), "unstable": unstable,
            "sum_range_all": float(sum(s["sum_range"] for s in st)),
            "sum_range_unstable": ranges_unstable,
            "max_bigM": float(max(s["max_bigM"] for s in st)), "seconds": seconds,
            "per_layer_unstable": [s["unstable"] for s in st]}


def identical(a, b) -> bool:
    arrs = lambda x: [*x.lower, *x.upper, x.out_lower, x.out_upper]  # noqa: E731
    return all(np.array_equal(p, q) for p, q in zip(arrs(a), arrs(b), strict=True))


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, times


def profile_summary(fn, top=12) -> tuple[str, dict]:
    prof = cProfile.Profile()
    prof.enable()
    out = fn()
    prof.disable()
    s = io.StringIO()
    stats = pstats.Stats(prof, stream=s).sort_stats("tottime")
    stats.print_stats(top)
    by = {"LP solves (highspy run, tottime)": 0.0, "model building (_layer_model + to_highs, cum)": 0.0,
          "dual certificates (dual_lower_bound, cum)": 0.0, "setBasis/clearSolver (tottime)": 0.0,
          "obbt_bounds total (cum)": 0.0}
    for (_, _, name), v in stats.stats.items():
        if "highspy" in name and name.endswith(".run>"):
            by["LP solves (highspy run, tottime)"] += v[2]
        elif name in ("_layer_model", "to_highs"):
            by["model building (_layer_model + to_highs, cum)"] += v[3]
        elif name == "dual_lower_bound":
            by["dual certificates (dual_lower_bound, cum)"] += v[3]
        elif "setBasis" in name or "clearSolver" in name:
            by["setBasis/clearSolver (tottime)"] += v[2]
        elif name == "obbt_bounds":
            by["obbt_bounds total (cum)"] += v[3]
    return s.getvalue(), {"profile_tottime": by, "obbt_stats": {
        k: out.stats[k] for k in ("build_seconds", "solve_seconds", "certify_seconds", "solves",
                                  "iterations", "seconds")}}


def spread_rows(label, net, bounds) -> dict:
    dom_free = None  # matrix spread needs a model; the domain is irrelevant to coefficients
    scaled, factors = rescale(net, bounds)
    sb = rescale_bounds(bounds, factors)
    before, after = bigm_spread(net, bounds), bigm_spread(scaled, sb)
    d = net.input_dim
    dom_free = Domain(np.zeros(d), np.ones(d))
    mb = matrix_spread(build_network_model(net, dom_free, bounds))
    ma = matrix_spread(build_network_model(scaled, dom_free, sb))
    return {"net": label, "bounds": bounds.method, "bigM_log10_before": before["log10_spread"],
            "bigM_log10_after": after["log10_spread"], "matrix_log10_before": mb,
            "matrix_log10_after": ma, "max_bigM_before": before["max_bigM"],
            "max_bigM_after": after["max_bigM"]}


MIP_VARIANTS = ("crown", "crown+rs", "obbt", "obbt+rs")


def mip_rows(instances, limit: float) -> list[dict]:
    """Each instance solved by the exact MIP with CROWN or precomputed LP-OBBT bounds, with and
    without rescaling (``rs``), same time limit."""
    out = []
    for name, problem, ob, t_ob, ref in instances:
        row = {"instance": name, "obbt_s": t_ob, "reference": ref}
        for v in MIP_VARIANTS:
            res = solve_mip(problem, time_limit=limit, bounds=ob if v.startswith("obbt") else "crown",
                            rescale=v.endswith("+rs"))
            gap = (abs(res.bound - res.value) / max(1.0, abs(res.value))
                   if res.value is not None and res.bound is not None else None)
            row[v] = {"status": res.status, "seconds": res.seconds, "value": res.value, "bound": res.bound,
                      "rel_gap": gap, "binaries": res.stats.get("binaries"), "nodes": res.stats.get("nodes")}
            print(f"  {name} {v}: {res.status} {res.seconds:.2f}s value {res.value} bound {res.bound}", flush=True)
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--mip-obbt-limit", type=float, default=120.0,
                    help="overall seconds for the MIP-OBBT row (1 s per neuron; 0 = skip)")
    ap.add_argument("--mip-limit", type=float, default=30.0,
                    help="time limit of each MIP solve in the MIP comparison (0 = skip)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    net, lb, ub = acas_problem()
    dom = Domain(lb, ub)
    ibp, t_ibp = timed(lambda: interval_bounds(net, lb, ub), args.repeats)
    crown, t_crown = timed(lambda: crown_bounds(net, lb, ub), args.repeats)
    serial, t_serial = timed(lambda: obbt_bounds(net, dom), args.repeats)
    from reluopt.parallel import get_executor

    with get_executor(2) as pool:       # one pool for all runs: worker start-up is not OBBT time
        obbt_bounds(net, dom, executor=pool, layers=[1])
        proc, t_proc = timed(lambda: obbt_bounds(net, dom, executor=pool), args.repeats)
    rows = [describe(net, ibp, statistics.median(t_ibp)), describe(net, crown, statistics.median(t_crown)),
            describe(net, serial, statistics.median(t_serial))]
    if args.mip_obbt_limit > 0:
        t = time.perf_counter()
        mip_ob = obbt_bounds(net, dom, initial=serial, mode="mip", time_limit_per_neuron=1.0,
                             time_limit=args.mip_obbt_limit)
        row = describe(net, mip_ob, time.perf_counter() - t + statistics.median(t_serial))
        row["mip_time_limits"] = mip_ob.stats["time_limits"]
        row["skipped_neurons"] = mip_ob.stats["skipped"]
        rows.append(row)
    timing = [{"executor": "serial", "median_s": statistics.median(t_serial), "runs": t_serial,
               "identical": True, "lp_seconds_summed": serial.stats["solve_seconds"]},
              {"executor": "processes(2)", "median_s": statistics.median(t_proc), "runs": t_proc,
               "identical": identical(serial, proc), "lp_seconds_summed": proc.stats["solve_seconds"]}]
    if not args.no_dask:
        import distributed

        with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            obbt_bounds(net, dom, executor=client, layers=[1])    # warm the workers' imports
            dk, t_dk = timed(lambda: obbt_bounds(net, dom, executor=client), args.repeats)
        timing.append({"executor": "dask LocalCluster(2 procs)", "median_s": statistics.median(t_dk),
                       "runs": t_dk, "identical": identical(serial, dk),
                       "lp_seconds_summed": dk.stats["solve_seconds"]})
    text, prof = profile_summary(lambda: obbt_bounds(net, dom))
    spreads = [spread_rows("ACAS Xu 1_1 / prop_1", net, crown),
               spread_rows("ACAS Xu 1_1 / prop_1", net, serial)]
    instances = [("ACAS Xu 1_1 / prop_1, max y0", Problem.build(net, lb, ub, maximize=0), serial,
                  statistics.median(t_serial), None)]
    for path in sorted((ROOT / "examples" / "peaks" / "models").glob("*.npz")):
        from reluopt.io import load_model

        pnet = load_model(path)
        lo, hi = pnet.meta.get("box", [-3.0, 3.0])
        plb, pub = np.full(pnet.input_dim, float(lo)), np.full(pnet.input_dim, float(hi))
        t = time.perf_counter()
        pob = obbt_bounds(pnet, plb, pub)
        t_pob = time.perf_counter() - t
        spreads.append(spread_rows(f"peaks {path.stem}", pnet, crown_bounds(pnet, plb, pub)))
        spreads.append(spread_rows(f"peaks {path.stem}", pnet, pob))
        instances.append((f"{path.stem}, min y0", Problem.build(pnet, plb, pub, minimize=0), pob, t_pob,
                          pnet.meta.get("grid_min")))
    mips = mip_rows(instances, args.mip_limit) if args.mip_limit > 0 else []

    print(f"## ACAS Xu 1_1 over prop_1 ({net.describe()}, {net.n_hidden} hidden neurons)\n")
    print("| bounds | stable % | unstable | sum(U-L) all | sum(U-L) unstable | max big-M | time s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['stable_pct']:.1f} | {r['unstable']} | {r['sum_range_all']:.4g} | "
              f"{r['sum_range_unstable']:.4g} | {r['max_bigM']:.4g} | {r['seconds']:.3g} |")
    print("\n| OBBT executor | median wall s | ratio vs serial | LP s summed over workers (last run) "
          "| identical bounds |")
    print("|---|---|---|---|---|")
    base = timing[0]["median_s"]
    for t in timing:
        print(f"| {t['executor']} | {t['median_s']:.2f} | {t['median_s'] / base:.2f} | "
              f"{t['lp_seconds_summed']:.2f} | {t['identical']} |")
    import os

    print(f"\n(load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    st = prof["obbt_stats"]
    print(f"\nOBBT stats (serial): build {st['build_seconds']:.3f} s, LP solves {st['solve_seconds']:.2f} s, "
          f"certificates {st['certify_seconds']:.3f} s, {st['solves']} LPs, {st['iterations']} simplex "
          f"iterations, total {st['seconds']:.2f} s")
    print("\ncProfile (tottime), grouped:", json.dumps({k: round(v, 3) for k, v in prof["profile_tottime"].items()}))
    print("\n```\n" + "\n".join(text.strip().splitlines()[:30]) + "\n```")
    print("\n| net | bounds | log10 big-M spread before | after | log10 matrix coef. range before | after |")
    print("|---|---|---|---|---|---|")
    for s in spreads:
        print(f"| {s['net']} | {s['bounds']} | {s['bigM_log10_before']:.2f} | {s['bigM_log10_after']:.2f} | "
              f"{s['matrix_log10_before']:.2f} | {s['matrix_log10_after']:.2f} |")
    if mips:
        print(f"\nExact MIP (solve_mip, HiGHS 1 thread, {args.mip_limit:g} s limit each; 'lim' = not proven "
              "optimal, with the relative gap). OBBT s is paid once per instance.\n")
        print("| instance | OBBT s | " + " | ".join(f"{v} s (gap)" for v in MIP_VARIANTS)
              + " | value | binaries CROWN / OBBT | reference |")
        print("|---|---|" + "---|" * len(MIP_VARIANTS) + "---|---|---|")
        for m in mips:
            cells = [f"{m[v]['seconds']:.2f}" if m[v]["status"] == "optimal"
                     else f"lim ({100 * (m[v]['rel_gap'] or float('nan')):.1f}%)" for v in MIP_VARIANTS]
            best = m["obbt+rs"]["value"]
            ref = "" if m["reference"] is None else f"grid {m['reference']:.4f}"
            print(f"| {m['instance']} | {m['obbt_s']:.2f} | " + " | ".join(cells)
                  + f" | {best:.6g} | {m['crown']['binaries']} / {m['obbt']['binaries']} | {ref} |")
    (OUT / "obbt.json").write_text(json.dumps(
        {"bounds": rows, "timing": timing, "profile": prof, "spreads": spreads, "mip": mips}, indent=2,
        default=str))


if __name__ == "__main__":
    main()
