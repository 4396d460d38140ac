"""Plate et al.'s trade-off (arXiv 2502.03016), measured: regularised training gives fewer
linear regions and more stable neurons, hence faster MIPs, at some cost in fit; OBBT and
rescaling speed the MIP up further.

Two real data sets:

* reformer (../shared/data/omlt/reformer.csv): 2 inputs -> 13 outputs; MIP: maximise H2
  subject to N2 <= 0.34 over the data's input box. Linear regions counted exactly.
* diabetes (scikit-learn bundled): 10 inputs -> 1 output; MIP: maximise the prediction over
  the data's input box. Linear regions estimated by sampling (distinct patterns; Chao1).

For every (data set, depth, regulariser) network (width 32, 80/20 split, seed 0):
validation NRMSE (RMSE / std per output, averaged; outputs with zero spread are not
scored), linear regions, stable-neuron % under IBP, CROWN and LP-OBBT, big-M sum, and the
exact MIP (reluopt ``solve_mip``, HiGHS, 1 thread, same time limit) in five variants:
CROWN bounds (the core default), CROWN + rescaling, LP-OBBT, LP-OBBT + rescaling, and
"cut": LP-OBBT restricted by the objective cut-off of a 1 s PPGA-LR incumbent (which is also
the MIP start) + rescaling. OBBT is computed once per network and its time reported
separately (the "included" columns add it).
A solve that hits the limit counts as the limit (PAR1); its relative gap is reported.

    .venv/bin/python benchmarks/study_tractability.py --time-limit 8 --budget 1440   # 36 nets, ~15 min
    .venv/bin/python benchmarks/study_tractability.py --quick         # 2 x 2 x 3 nets, 5 s limit
    .venv/bin/python benchmarks/study_tractability.py --from-json     # redo table and plot only

(~15 min measured for the first line on 2 shared CPUs at load average 10-15.)

Writes benchmarks/out/tractability.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from reluopt import Problem
from reluopt.analysis.indicators import bigm_statistics, bound_indicators
from reluopt.analysis.regions import count_regions
from reluopt.bounds.obbt import incumbent_cutoff, obbt_bounds
from reluopt.methods import solve
from reluopt.methods.mip import quick_incumbent, solve_mip
from reluopt.train import train_mlp

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
DATA = ROOT.parent / "shared" / "data"

#: name -> train_mlp options (stability_eps in standardised input units)
REGULARISERS = {
    "none": {},
    "l1-1e-4": {"l1": 1e-4},
    "l1-1e-3": {"l1": 1e-3},
    "rs-0.3": {"stability": 0.3, "stability_eps": 0.5},
    "rs-1": {"stability": 1.0, "stability_eps": 0.5},
    "clip-1": {"activation": "clipped_relu", "tau": 1.0},
}
QUICK_REGULARISERS = ("none", "l1-1e-3", "rs-1")
VARIANTS = ("crown", "crown+rs", "obbt", "obbt+rs", "cut+rs")


# ----------------------------------------------------------------------------- data
def reformer():
    arr = np.loadtxt(DATA / "omlt" / "reformer.csv", delimiter=",", skiprows=1)
    names = [c.strip() for c in (DATA / "omlt" / "reformer.csv").read_text().splitlines()[0].split(",")]
    X, Y = arr[:, :2], arr[:, 2:]
    out = names[2:]
    lb, ub = X.min(axis=0), X.max(axis=0)

    def problem(net):
        return Problem.build(net, lb, ub, maximize=out.index("H2"),
                             constraints=[f"y[{out.index('N2')}] <= 0.34"])

    return "reformer", X, Y, problem


def diabetes():
    from sklearn.datasets import load_diabetes

    d = load_diabetes()
    X, Y = d.data, d.target[:, None]
    lb, ub = X.min(axis=0), X.max(axis=0)

    def problem(net):
        return Problem.build(net, lb, ub, maximize=0)

    return "diabetes", X, Y, problem


# ----------------------------------------------------------------------------- one network
def run_mip(problem, bounds, rescale, time_limit, incumbent=None) -> dict:
    res = solve_mip(problem, time_limit=time_limit, bounds=bounds, rescale=rescale, start_samples=256,
                    incumbent=incumbent)
    gap = None
    if res.value is not None and res.bound is not None:
        gap = abs(res.bound - res.value) / max(1.0, abs(res.value))
    return {"status": res.status, "seconds": res.seconds, "value": res.value, "bound": res.bound,
            "rel_gap": gap, "binaries": res.stats.get("binaries"), "nodes": res.stats.get("nodes")}


def study_one(ds, depth, width, reg, args) -> dict:
    name, X, Y, make_problem = ds
    rng = np.random.default_rng(0)
    perm = rng.permutation(X.shape[0])
    n_val = X.shape[0] // 5
    val, tr = perm[:n_val], perm[n_val:]
    t0 = time.perf_counter()
    model = train_mlp(X[tr], Y[tr], hidden=[width] * depth, epochs=args.epochs, lr=args.lr,
                      batch_size=64, seed=0, threads=1, **REGULARISERS[reg])
    row = {"data": name, "depth": depth, "width": width, "reg": reg, "train_s": time.perf_counter() - t0}
    net = model.network
    spread = Y[tr].std(axis=0)
    keep = spread > 1e-9 * (1.0 + np.abs(Y[tr]).mean(axis=0))   # O2 in reformer is ~1e-20: constant
    err = (net.forward(X[val])[:, keep] - Y[val][:, keep]) / spread[keep]
    row["val_nrmse"] = float(np.mean(np.sqrt(np.mean(err ** 2, axis=0))))
    problem = make_problem(net)
    lb, ub = problem.domain.lb, problem.domain.ub
    t0 = time.perf_counter()
    rc = count_regions(net, lb, ub, mode="auto", samples=args.samples, seed=0, max_regions=300_000,
                       keep_cells=False)
    row.update(regions=rc.count, regions_exact=rc.exact, regions_estimate=rc.estimate,
               regions_s=time.perf_counter() - t0)
    for m in ("ibp", "crown"):
        ind = bound_indicators(net, lb, ub, m)
        row[f"stable_{m}"] = 100 * ind["stable_fraction"]
        row[f"bigM_{m}"] = ind["sum_range_unstable"]
    t0 = time.perf_counter()
    ob = obbt_bounds(net, problem.domain)
    row["obbt_s"] = time.perf_counter() - t0
    row["stable_obbt"] = 100 * ob.stable_fraction(net)
    row["bigM_obbt"] = float(sum(s["sum_range_unstable"] for s in bigm_statistics(net, ob)))
    # cut-off OBBT: a 1 s PPGA-LR incumbent, then OBBT over {x : objective at least as good}
    t0 = time.perf_counter()
    heur = solve(problem, "ppga-lr", time_limit=1.0, seed=0)
    x0 = heur.x if heur.x is not None else quick_incumbent(problem, 256, 0)
    cut = obbt_bounds(net, problem.domain, objective_cutoff=incumbent_cutoff(problem, x0))
    row["cut_s"] = time.perf_counter() - t0     # heuristic + cut-off OBBT
    row["stable_cut"] = 100 * cut.stable_fraction(net)
    row["mip"] = {
        "crown": run_mip(problem, "crown", False, args.time_limit),
        "crown+rs": run_mip(problem, "crown", True, args.time_limit),
        "obbt": run_mip(problem, ob, False, args.time_limit),
        "obbt+rs": run_mip(problem, ob, True, args.time_limit),
        "cut+rs": run_mip(problem, cut, True, args.time_limit, incumbent=x0),
    }
    return row


def _pre(r: dict, v: str) -> float:
    """Seconds spent before the MIP of variant ``v`` (OBBT, or heuristic + cut-off OBBT)."""
    return r["cut_s"] if v == "cut+rs" else (r["obbt_s"] if v.startswith("obbt") else 0.0)


# ----------------------------------------------------------------------------- output
def _t(r: dict, limit: float) -> float:
    """PAR1 time: the solve time, or the limit when it did not prove optimality."""
    return r["seconds"] if r["status"] == "optimal" else max(limit, r["seconds"])


def _fmt(r: dict) -> str:
    if r["status"] == "optimal":
        return f"{r['seconds']:.2f}"
    gap = r.get("rel_gap")
    return f"lim (gap {100 * gap:.0f}%)" if gap is not None else f"lim ({r['status']})"


def markdown(rows, limit) -> str:
    head = ["data", "depth", "reg", "val NRMSE", "regions", "stable % IBP / CROWN / OBBT / cut",
            "sum U-L CROWN / OBBT", "OBBT s / cut s", "MIP s CROWN", "CROWN+rs", "OBBT", "OBBT+rs", "cut+rs",
            "binaries CROWN / OBBT / cut"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        reg = f"{r['regions']}" if r["regions_exact"] else f"≥{r['regions']} (~{r['regions_estimate']:.0f})"
        m = r["mip"]
        cells = [r["data"], str(r["depth"]), r["reg"], f"{r['val_nrmse']:.3f}", reg,
                 f"{r['stable_ibp']:.0f} / {r['stable_crown']:.0f} / {r['stable_obbt']:.0f} / "
                 f"{r['stable_cut']:.0f}",
                 f"{r['bigM_crown']:.3g} / {r['bigM_obbt']:.3g}", f"{r['obbt_s']:.2f} / {r['cut_s']:.2f}",
                 *(_fmt(m[v]) for v in VARIANTS),
                 f"{m['crown']['binaries']} / {m['obbt']['binaries']} / {m['cut+rs']['binaries']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(rows, limit, regs) -> str:
    lines = ["| data | regulariser | nets | median val NRMSE | median stable % CROWN | median regions (or estimate) | "
             "median MIP s CROWN | solved CROWN | median s OBBT+rs (incl. OBBT) | solved OBBT+rs | "
             "median s cut+rs (incl. heuristic, OBBT) | solved cut+rs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for data in dict.fromkeys(r["data"] for r in rows):
        for reg in regs:
            rr = [r for r in rows if r["reg"] == reg and r["data"] == data]
            if not rr:
                continue
            regions = [r["regions_estimate"] or r["regions"] for r in rr]
            lines.append(
                f"| {data} | {reg} | {len(rr)} | {np.median([r['val_nrmse'] for r in rr]):.3f} | "
                f"{np.median([r['stable_crown'] for r in rr]):.0f} | {np.median(regions):.0f} | "
                f"{np.median([_t(r['mip']['crown'], limit) for r in rr]):.2f} | "
                f"{sum(r['mip']['crown']['status'] == 'optimal' for r in rr)}/{len(rr)} | "
                f"{np.median([_t(r['mip']['obbt+rs'], limit) + r['obbt_s'] for r in rr]):.2f} | "
                f"{sum(r['mip']['obbt+rs']['status'] == 'optimal' for r in rr)}/{len(rr)} | "
                f"{np.median([_t(r['mip']['cut+rs'], limit) + r['cut_s'] for r in rr]):.2f} | "
                f"{sum(r['mip']['cut+rs']['status'] == 'optimal' for r in rr)}/{len(rr)} |")
    return "\n".join(lines)


def speedups(rows, limit) -> tuple[str, dict]:
    """Median ratio t(CROWN) / t(variant), PAR1 times, over all nets and over the non-trivial
    ones (CROWN MIP >= 1 s), MIP only and with the OBBT time added."""
    out = {}
    lines = ["| variant | median speed-up vs CROWN, all nets | non-trivial nets (CROWN >= 1 s) | "
             "non-trivial, OBBT (+heuristic) time included | solved |", "|---|---|---|---|---|"]
    hard = [r for r in rows if _t(r["mip"]["crown"], limit) >= 1.0]
    for v in VARIANTS[1:]:
        def ratio(r, with_obbt, v=v):
            base = max(_t(r["mip"]["crown"], limit), 1e-3)
            return base / max(_t(r["mip"][v], limit) + (_pre(r, v) if with_obbt else 0.0), 1e-3)

        all_ = float(np.median([ratio(r, False) for r in rows]))
        h = float(np.median([ratio(r, False) for r in hard])) if hard else float("nan")
        ht = float(np.median([ratio(r, True) for r in hard])) if hard else float("nan")
        solved = sum(r["mip"][v]["status"] == "optimal" for r in rows)
        out[v] = {"all": all_, "hard": h, "hard_with_obbt": ht, "n_hard": len(hard), "solved": solved}
        fx = lambda z: "n/a" if not np.isfinite(z) else f"{z:.2f}x"  # noqa: E731
        lines.append(f"| {v} | {fx(all_)} | {fx(h)} (n={len(hard)}) | {fx(ht)} | {solved}/{len(rows)} |")
    base_solved = sum(r["mip"]["crown"]["status"] == "optimal" for r in rows)
    lines.append(f"| crown (baseline) | 1 | 1 | 1 | {base_solved}/{len(rows)} |")
    return "\n".join(lines), out


def _relative_error(rows) -> list[float]:
    """Validation NRMSE over that of the unregularised net of the same data set and depth."""
    base = {(r["data"], r["depth"]): r["val_nrmse"] for r in rows if r["reg"] == "none"}
    return [r["val_nrmse"] / base.get((r["data"], r["depth"]), np.nan) for r in rows]


def plot(rows, path, limit, regs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    colours = dict(zip(regs, plt.get_cmap("tab10")(np.arange(len(regs))), strict=True))
    markers = {"reformer": "o", "diabetes": "s"}
    fig, axes = plt.subplots(2, 2, figsize=(12, 9.5), dpi=100)
    (a, b), (c, e) = axes
    for r, rel in zip(rows, _relative_error(rows), strict=True):
        t = _t(r["mip"]["crown"], limit)
        kw = dict(color=colours[r["reg"]], marker=markers[r["data"]], s=25 + 30 * (r["depth"] - 1),
                  edgecolors="k", linewidths=0.5)
        a.scatter(r["stable_crown"], t, **kw)
        b.scatter(r["regions_estimate"] or r["regions"], t, **kw)
        c.scatter(rel, t, **kw)
        e.scatter(t, _t(r["mip"]["obbt+rs"], limit) + r["obbt_s"], **kw)
        e.scatter(t, _t(r["mip"]["cut+rs"], limit) + r["cut_s"], **{**kw, "marker": "^"})
    for ax, xl in ((a, "stable neurons % (CROWN)"), (b, "linear regions (exact in 2-D, Chao1 estimate in 10-D)"),
                   (c, "validation NRMSE / that of the unregularised net (same data, depth)")):
        ax.set_xlabel(xl)
        ax.set_ylabel("MIP seconds, CROWN bounds")
        ax.set_yscale("log")
        ax.axhline(limit, color="grey", lw=0.8, ls="--")
        ax.grid(alpha=0.3)
    b.set_xscale("log")
    lo = min(0.01, *(min(_t(r["mip"]["crown"], limit), _t(r["mip"]["obbt+rs"], limit)) for r in rows))
    lo = max(lo, 1e-3)
    hi = 2 * limit
    e.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
    e.plot([lo, hi], [lo / 2, hi / 2], color="grey", lw=0.8, ls=":")
    e.set_xscale("log")
    e.set_yscale("log")
    e.set_xlabel("MIP seconds, CROWN bounds")
    e.set_ylabel("OBBT (+heuristic) + MIP seconds, rescaled")
    e.set_title("OBBT+rs (o/s), cut-off OBBT+rs (^): below the line = faster, dotted = 2x",
                fontsize=9)
    e.grid(alpha=0.3)
    handles = [Line2D([], [], color=colours[g], marker="o", ls="", label=g) for g in regs]
    handles += [Line2D([], [], color="k", marker=m, ls="", mfc="w", label=d) for d, m in markers.items()]
    a.legend(handles=handles, fontsize=8, loc="best")
    fig.suptitle(f"Tractability vs fit (marker size = depth; dashed = {limit:g} s limit, counted as the limit)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer networks and epochs")
    p.add_argument("--time-limit", type=float, default=None, help="MIP time limit per solve (s)")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--depths", default=None, help="comma-separated depths (default 1,2,3; quick 1,2)")
    p.add_argument("--regs", default=None, help=f"comma-separated regularisers among {', '.join(REGULARISERS)}")
    p.add_argument("--data", default="reformer,diabetes")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--samples", type=int, default=20_000, help="samples for the region estimate (d > 2)")
    p.add_argument("--budget", type=float, default=None, help="start no new network after this many seconds")
    p.add_argument("--from-json", action="store_true",
                   help="no runs: rewrite the table and plot from benchmarks/out/tractability.json")
    args = p.parse_args(argv)
    if args.from_json:
        saved = json.loads((OUT / "tractability.json").read_text())
        write_outputs(saved["rows"], saved["meta"], argparse.Namespace(**saved["meta"]["args"]))
        return
    args.time_limit = args.time_limit or (5.0 if args.quick else 10.0)
    args.epochs = args.epochs or (40 if args.quick else 80)
    depths = [int(v) for v in (args.depths or ("1,2" if args.quick else "1,2,3")).split(",")]
    regs = args.regs.split(",") if args.regs else list(QUICK_REGULARISERS if args.quick else REGULARISERS)
    makers = {"reformer": reformer, "diabetes": diabetes}
    datasets = []
    for name in args.data.split(","):
        if name == "reformer" and not (DATA / "omlt" / "reformer.csv").exists():
            print(f"note: {DATA / 'omlt' / 'reformer.csv'} absent; reformer skipped")
            continue
        datasets.append(makers[name]())
    OUT.mkdir(parents=True, exist_ok=True)
    rows, skipped = [], []
    start = time.perf_counter()
    # depth-major order: if the budget runs out, the deepest nets are the ones left out
    for depth in depths:
        for ds in datasets:
            for reg in regs:
                if args.budget is not None and time.perf_counter() - start > args.budget:
                    skipped.append(f"{ds[0]}/{depth}/{reg}")
                    continue
                row = study_one(ds, depth, args.width, reg, args)
                rows.append(row)
                m = row["mip"]
                print(f"[{time.perf_counter() - start:6.0f}s] {row['data']:<9} depth {depth} {reg:<8} "
                      f"nrmse {row['val_nrmse']:.3f} regions {row['regions']:>6} stable crown/obbt "
                      f"{row['stable_crown']:3.0f}/{row['stable_obbt']:3.0f}% obbt {row['obbt_s']:.2f}s mip "
                      + " ".join(f"{v}={_fmt(m[v])}" for v in VARIANTS), flush=True)
    meta = {"args": vars(args), "seconds": time.perf_counter() - start, "skipped": skipped,
            "load_average_end": os.getloadavg()[0], "cpus": os.cpu_count()}
    write_outputs(rows, meta, args)


def write_outputs(rows, meta, args) -> None:
    """tractability.json, .md and .png from the per-network rows."""
    regs = list(dict.fromkeys(r["reg"] for r in rows))
    skipped = meta.get("skipped", [])
    table = markdown(rows, args.time_limit)
    summ = summary(rows, args.time_limit, regs)
    sp_text, sp = speedups(rows, args.time_limit)
    (OUT / "tractability.json").write_text(json.dumps({"meta": meta, "rows": rows, "speedups": sp},
                                                      indent=1, default=str))
    doc = (f"# Tractability study ({len(rows)} networks, width {args.width}, MIP limit {args.time_limit:g} s, "
           f"HiGHS 1 thread; load average {meta['load_average_end']:.1f} on {meta['cpus']} CPUs)\n\n"
           "Times are PAR1 (a solve that hits the limit counts as the limit); 'lim (gap x%)' = relative gap "
           "at the limit. 'rs' = rescaled network. OBBT s is LP-OBBT time, paid once per network. "
           "'cut' = LP-OBBT with the objective cut-off of a 1 s PPGA-LR incumbent (also the MIP start); "
           "'cut s' = heuristic + that OBBT.\n\n"
           f"## Per regulariser (medians)\n\n{summ}\n\n## MIP speed-up against the core MIP (CROWN bounds)\n\n"
           f"{sp_text}\n\n## Every network\n\n{table}\n")
    if skipped:
        doc += f"\nNot run (budget): {', '.join(skipped)}\n"
    (OUT / "tractability.md").write_text(doc)
    plot(rows, OUT / "tractability.png", args.time_limit, regs)
    print()
    print(doc)
    print(f"written to {OUT}/tractability.(json|md|png) in {meta['seconds']:.0f} s")


if __name__ == "__main__":
    main()
