"""Plate et al. (arXiv 2502.03016) in its own setup: MIP solve times over trained ReLU nets
with interval-arithmetic (IA) big-M against LP-OBBT, with and without each rescaling rule.

The paper's baseline is IA bounds (reluopt's ``"ibp"``), not CROWN; it applies OBBT and its
a-posteriori ReLU scaling to nets trained plainly, with L1, with dropout and with clipped ReLU.
Here, for each net (width 32, depths 2 and 3; see ``CASES``):

* bound quality per bound method (IA, CROWN, LP-OBBT): stable-neuron %, the sum of ``U - L``
  over unstable neurons, the log10 spread of big-M (``bigm_spread``), and the root gap: the LP
  relaxation of the big-M model against the MIP optimum (``(LP - opt) / max(1, |opt|)``);
* the MIP on HiGHS (1 thread, same time limit, no MIP start) in ``VARIANTS``: bounds
  {ibp, obbt} x rescale {none, pow2-unstable (reluopt's), paper}, ``crown`` (reluopt's default
  bounds), and ``ibp`` / ``obbt`` with the solver's presolve off. Variants run interleaved in a
  shuffled order per repeat; a variant that hit the limit is not repeated (its PAR1 time is
  the limit). Every solution is forward-checked and every optimal value compared across variants.

Case studies (the closest buildable here; see benchmarks/results/tractability.md):
reformer (../shared/data/omlt/reformer.csv, max H2 s.t. N2 <= 0.34), peaks (MATLAB's peaks
function on [-3, 3]^2, 2000 samples, minimised), diabetes (scikit-learn, max prediction).

    .venv/bin/python benchmarks/study_plate.py --time-limit 10 --repeats 2 --budget 1800
    .venv/bin/python benchmarks/study_plate.py --quick               # 3 nets, 3 s limit
    .venv/bin/python benchmarks/study_plate.py --solver gurobi ...   # same, on Gurobi
    .venv/bin/python benchmarks/study_plate.py --from-json           # redo the tables only
    .venv/bin/python benchmarks/study_plate.py --variability reformer:2:dropout,peaks:2:l1 --seeds 0,1,2,3,4

Writes benchmarks/out/plate[-<solver>].{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from reluopt import Problem, compute_bounds
from reluopt.analysis.rescale import bigm_spread
from reluopt.milp.backends import get_backend
from reluopt.milp.formulation import build_problem_model
from reluopt.train import train_mlp

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
DATA = ROOT.parent / "shared" / "data"

SETUPS = {"plain": {}, "l1": {"l1": 1e-3}, "dropout": {"dropout": 0.1},
          "clip": {"activation": "clipped_relu", "tau": 1.0}}
#: (data, depth) pairs, easiest first so that a budget cut leaves out the hardest
CASES = [("reformer", 2), ("peaks", 2), ("diabetes", 2), ("reformer", 3), ("peaks", 3)]
BOUNDS = ("ibp", "crown", "obbt")
RULES = ("none", "pow2-unstable", "paper")
VARIANTS = ([(b, r, True) for b in ("ibp", "obbt") for r in RULES] + [("crown", "none", True)]
            + [("ibp", "none", False), ("obbt", "none", False)])


def vname(v) -> str:
    b, r, presolve = v
    return b + ("" if r == "none" else {"pow2-unstable": "+pow2", "paper": "+paper"}[r]) + \
        ("" if presolve else " nopre")


# ----------------------------------------------------------------------------- data
def peaks(x: np.ndarray) -> np.ndarray:
    """MATLAB's peaks function (a standard 2-D test function with several local optima)."""
    a, b = x[:, 0], x[:, 1]
    return (3 * (1 - a) ** 2 * np.exp(-a ** 2 - (b + 1) ** 2)
            - 10 * (a / 5 - a ** 3 - b ** 5) * np.exp(-a ** 2 - b ** 2)
            - np.exp(-(a + 1) ** 2 - b ** 2) / 3)


def dataset(name: str):
    if name == "reformer":
        path = DATA / "omlt" / "reformer.csv"
        arr = np.loadtxt(path, delimiter=",", skiprows=1)
        cols = [c.strip() for c in path.read_text().splitlines()[0].split(",")][2:]
        X, Y = arr[:, :2], arr[:, 2:]

        def problem(net, lb, ub):
            return Problem.build(net, lb, ub, maximize=cols.index("H2"), constraints=[f"y[{cols.index('N2')}] <= 0.34"])
    elif name == "peaks":
        X = np.random.default_rng(0).uniform(-3, 3, size=(2000, 2))
        Y = peaks(X)[:, None]

        def problem(net, lb, ub):
            return Problem.build(net, lb, ub, minimize=0)
    else:
        from sklearn.datasets import load_diabetes

        d = load_diabetes()
        X, Y = d.data, d.target[:, None]

        def problem(net, lb, ub):
            return Problem.build(net, lb, ub, maximize=0)
    return X, Y, problem


# ----------------------------------------------------------------------------- one net
def bound_stats(net, b, problem, backend) -> dict:
    unstable_w, stable, total = 0.0, 0, 0
    for l, layer in enumerate(net.hidden_layers):
        L, U = b.lower[l][0], b.upper[l][0]
        uns = layer.act.unstable(L, U)
        unstable_w += float(np.sum((U - L)[uns]))
        stable += int((~uns).sum())
        total += uns.size
    model = build_problem_model(problem, b)
    lp = backend.solve(model, relax=True, threads=1, time_limit=60)
    return {"stable_pct": 100.0 * stable / total, "sum_width_unstable": unstable_w,
            "log10_bigm_spread": bigm_spread(net, b)["log10_spread"], "binaries": int(model.stats["binaries"]),
            "lp_status": lp.status, "lp_bound": lp.bound if lp.status == "optimal" else None}


def solve_once(problem, b, rule, presolve, backend, args, seed: int = 0) -> dict:
    model = build_problem_model(problem, b, rescale=rule)
    inst = backend.build(model, threads=1)
    if args.solver == "highs":
        inst.highs.setOptionValue("random_seed", seed)
        if not presolve:
            inst.highs.setOptionValue("presolve", "off")
    else:
        inst.gurobi.Params.Seed = seed
        if not presolve:
            inst.gurobi.Params.Presolve = 0
    t0, c0 = time.perf_counter(), time.process_time()
    out = inst.solve(time_limit=args.time_limit, mip_rel_gap=1e-4, mip_abs_gap=1e-6)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if hasattr(inst, "close"):
        inst.close()
    rec = {"status": out.status, "seconds": min(wall, out.seconds) if out.seconds else wall,
           "cpu": cpu, "nodes": out.nodes, "objective": out.objective, "bound": out.bound, "checked": None}
    if out.values is not None:
        x = model.columns_to_point(out.values)
        c, d = problem.max_form()
        val = float(c @ problem.network.forward(x[None, :])[0] + d)
        feasible = bool(problem.is_feasible(x[None, :])[0])
        rec["checked"] = val if feasible else None
        rec["check_error"] = abs(val - out.objective) if out.objective is not None else None
    return rec


def trained(data, depth, setup, args):
    """The net of one case (seeded, one thread: the same net on every run), its box and problem."""
    X, Y, make_problem = dataset(data)
    model = train_mlp(X, Y, hidden=[args.width] * depth, epochs=args.epochs, lr=3e-3, batch_size=64, seed=0,
                      threads=1, **SETUPS[setup])
    lb, ub = X.min(axis=0), X.max(axis=0)
    return model.network, lb, ub, make_problem(model.network, lb, ub)


def variability(args, backend) -> None:
    """The solver's own performance variability against the rescaling rules' effect: OBBT
    bounds, each rule, under several solver seeds (same model, same net)."""
    nets = [(c.split(":")[0], int(c.split(":")[1]), c.split(":")[2]) for c in args.variability.split(",")]
    seeds = [int(v) for v in args.seeds.split(",")]
    lines = ["| net | rule | CPU s median [min, max] over seeds | solved | nodes median |", "|---|---|---|---|---|"]
    start, load0 = time.perf_counter(), os.getloadavg()[0]
    for data, depth, setup in nets:
        net, lb, ub, problem = trained(data, depth, setup, args)
        b = compute_bounds(net, lb, ub, "lp-obbt")
        runs: dict = {r: [] for r in RULES}
        rng = np.random.default_rng(zlib.crc32(f"{data}{depth}{setup}v".encode()))
        for seed in seeds:
            for k in rng.permutation(len(RULES)):
                runs[RULES[k]].append(solve_once(problem, b, RULES[k], True, backend, args, seed))
        for r, rs in runs.items():
            cpu = [x["cpu"] for x in rs]
            ok = sum(x["status"] == "optimal" for x in rs)
            lines.append(f"| {data} d{depth} {setup} | {r} | {np.median(cpu):.2f} [{min(cpu):.2f}, {max(cpu):.2f}] | "
                         f"{ok}/{len(rs)} | {np.median([x['nodes'] for x in rs]):.0f} |")
        print(lines[-3:], flush=True)
    doc = (f"# Solver-seed variability vs rescaling rule ({args.solver} 1 thread, OBBT bounds, limit "
           f"{args.time_limit:g} s wall, seeds {args.seeds}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load "
           f"{load0:.1f} -> {os.getloadavg()[0]:.1f}; {time.perf_counter() - start:.0f} s)\n\n"
           "A run stopped at the limit counts as the CPU it used.\n\n" + "\n".join(lines) + "\n")
    (OUT / f"plate-variability-{args.solver}.md").write_text(doc)
    print(doc)


def study_one(data, depth, setup, args, backend) -> dict:
    t0 = time.perf_counter()
    net, lb, ub, problem = trained(data, depth, setup, args)
    row: dict = {"data": data, "depth": depth, "setup": setup, "train_s": time.perf_counter() - t0}
    bounds, row["bound_s"], row["bstats"] = {}, {}, {}
    for name, method in (("ibp", "ibp"), ("crown", "crown"), ("obbt", "lp-obbt")):
        t = time.process_time()
        bounds[name] = compute_bounds(net, lb, ub, method)
        row["bound_s"][name] = time.process_time() - t   # CPU seconds (the machine is shared)
        row["bstats"][name] = bound_stats(net, bounds[name], problem, backend)
    rng = np.random.default_rng(zlib.crc32(f"{data}{depth}{setup}".encode()))
    chosen = [v for v in VARIANTS if args.variants is None or vname(v) in args.variants.split(",")]
    runs: dict = {vname(v): [] for v in chosen}
    for _ in range(args.repeats):
        for k in rng.permutation(len(chosen)):
            b, r, pre = chosen[k]
            prev = runs[vname(chosen[k])]
            if prev and prev[-1]["status"] != "optimal":
                continue   # hit the limit (or failed): PAR1 is the limit, not re-run
            prev.append(solve_once(problem, bounds[b], r, pre, backend, args))
    row["runs"] = runs
    opt = [r["objective"] for rs in runs.values() for r in rs if r["status"] == "optimal"]
    row["optimum"] = float(np.median(opt)) if opt else None
    row["optimum_spread"] = float(max(opt) - min(opt)) if opt else None
    seen = [r["checked"] for rs in runs.values() for r in rs if r.get("checked") is not None]
    row["best_value"] = float(max(seen)) if seen else None   # max form; the root gap's reference if unsolved
    return row


# ----------------------------------------------------------------------------- tables
def par1(rs, limit, key: str = "cpu") -> float:
    """Median over repeats of the CPU (or wall) seconds of a solve. A run stopped at the
    (wall-clock) limit counts, in wall seconds, as the limit (PAR1); in CPU seconds, as the CPU
    it used: a lower bound on its time, so a ratio against it is a bound, not a measurement."""
    ts = [r[key] if r["status"] == "optimal" or key == "cpu" else max(limit, r[key]) for r in rs]
    return float(np.median(ts))


def root_gap(lp, opt, best) -> str:
    """(LP bound - optimum) / max(1, |optimum|); against the best forward-checked value, as an
    upper bound on the gap ("<="), when no variant proved the optimum."""
    ref = opt if opt is not None else best
    if lp is None or ref is None:
        return "n/a"
    return ("" if opt is not None else "<=") + f"{100 * (lp - ref) / max(1.0, abs(ref)):.0f}%"


def tables(rows, meta) -> str:
    limit = meta["args"]["time_limit"]
    names = [n for n in (vname(v) for v in VARIANTS) if n in rows[0]["runs"]]
    head = ["net"] + names
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{r['data']} d{r['depth']} {r['setup']}"]
        for n in names:
            rs = r["runs"][n]
            t = par1(rs, limit)
            cells.append(f"{t:.2f}" if all(x["status"] == "optimal" for x in rs) else f">={t:.2f} (lim)")
        lines.append("| " + " | ".join(cells) + " |")
    per_net = "\n".join(lines)

    # speed-ups: per net t(base) / t(variant) in CPU seconds (median over repeats), over the nets
    # where base or variant finished (both stopped at the limit says nothing about either)
    def solved(r, n):
        return all(x["status"] == "optimal" for x in r["runs"][n])

    def sp(base, n, extra=False):
        sel = [r for r in rows if solved(r, base) or solved(r, n)]
        pre = [r["bound_s"]["obbt"] if extra and n.startswith("obbt") else 0.0 for r in sel]
        ratios = [par1(r["runs"][base], limit) / max(par1(r["runs"][n], limit) + p, 1e-3)
                  for r, p in zip(sel, pre, strict=True)]
        if not ratios:
            return "n/a"
        ge = sum(x > 1.5 for x in ratios)
        le = sum(x < 1 / 1.5 for x in ratios)
        return f"{np.median(ratios):.2f}x ({len(sel)}; {ge} / {le})"

    sp_lines = ["| variant | vs IA | vs IA, OBBT time included | vs CROWN | solved |", "|---|---|---|---|---|"]
    for n in names:
        sp_lines.append(f"| {n} | {sp('ibp', n)} | {sp('ibp', n, True)} | {sp('crown', n)} | "
                        f"{sum(solved(r, n) for r in rows)}/{len(rows)} |")
    speed = "\n".join(sp_lines)

    bl = ["| net | stable % IA / CROWN / OBBT | sum U-L unstable IA / CROWN / OBBT | log10 big-M spread IA / OBBT | "
          "root gap IA / CROWN / OBBT | OBBT s | nodes IA / OBBT / OBBT+paper |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        bs, opt = r["bstats"], r["optimum"]

        nodes = " / ".join(str(r["runs"][n][-1]["nodes"]) + ("" if r["runs"][n][-1]["status"] == "optimal" else "+")
                           for n in ("ibp", "obbt", "obbt+paper"))
        bl.append(f"| {r['data']} d{r['depth']} {r['setup']} | "
                  + " / ".join(f"{bs[k]['stable_pct']:.0f}" for k in BOUNDS) + " | "
                  + " / ".join(f"{bs[k]['sum_width_unstable']:.3g}" for k in BOUNDS) + " | "
                  + f"{bs['ibp']['log10_bigm_spread']:.1f} / {bs['obbt']['log10_bigm_spread']:.1f} | "
                  + " / ".join(root_gap(bs[k]["lp_bound"], opt, r.get("best_value")) for k in BOUNDS)
                  + f" | {r['bound_s']['obbt']:.2f} | {nodes} |")
    bstat = "\n".join(bl)
    agree = max((r["optimum_spread"] or 0.0) / max(1.0, abs(r["optimum"] or 0.0)) for r in rows)
    checks = [x["check_error"] for r in rows for rs in r["runs"].values() for x in rs
              if x.get("check_error") is not None]
    return ("## Speed-ups: median over nets of t(base) / t(variant), CPU seconds of the solve (median over "
            "repeats; a run stopped at the limit counts as the CPU it used, a lower bound), over the nets where "
            "base or variant finished; in brackets: those nets; how many with ratio > 1.5 / < 1/1.5\n\n"
            f"{speed}\n\n"
            f"## Bounds and the root LP (OBBT s: CPU; nodes: '+' = stopped at the limit)\n\n{bstat}\n\n"
            f"## MIP CPU seconds per net (median over repeats; '>=x (lim)': stopped at the wall-clock limit "
            f"{limit:g} s after x CPU seconds)\n\n"
            f"{per_net}\n\nLargest relative spread of the optimal values across variants: {agree:.1e}; "
            f"largest |forward-pass value - solver objective|: {max(checks) if checks else float('nan'):.1e}.\n")


def write(rows, meta) -> None:
    tag = ("" if meta["args"]["solver"] == "highs" else "-" + meta["args"]["solver"]) + meta["args"].get("tag", "")
    (OUT / f"plate{tag}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=str))
    a = meta["args"]
    doc = (f"# Plate et al. in its own setup ({len(rows)} nets, {a['solver']} 1 thread, limit {a['time_limit']:g} s, "
           f"{a['repeats']} repeats; {meta['date']}; load average {meta['load_start']:.1f} -> {meta['load_end']:.1f} "
           f"on {meta['cpus']} CPUs; {meta['seconds']:.0f} s)\n\n" + tables(rows, meta))
    if meta.get("skipped"):
        doc += f"\nNot run (budget): {', '.join(meta['skipped'])}\n"
    (OUT / f"plate{tag}.md").write_text(doc)
    print(doc)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--time-limit", type=float, default=5.0)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--solver", default="highs")
    p.add_argument("--setups", default=",".join(SETUPS))
    p.add_argument("--cases", default=None, help="e.g. reformer:2,peaks:3")
    p.add_argument("--budget", type=float, default=None, help="start no new net after this many seconds")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--from-json", action="store_true")
    p.add_argument("--variability", default=None,
                   help="instead: solver-seed variability on these nets, e.g. reformer:2:plain,peaks:2:l1")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--variants", default=None, help="a subset of the variants, e.g. ibp,obbt,obbt+paper,crown")
    p.add_argument("--tag", default="", help="suffix of the output files")
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.variability:
        variability(args, get_backend(args.solver))
        return
    if args.from_json:
        tag = ("" if args.solver == "highs" else "-" + args.solver) + args.tag
        saved = json.loads((OUT / f"plate{tag}.json").read_text())
        write(saved["rows"], saved["meta"])
        return
    cases = [(c.split(":")[0], int(c.split(":")[1])) for c in args.cases.split(",")] if args.cases else CASES
    setups = args.setups.split(",")
    if args.quick:
        args.time_limit, args.repeats, args.epochs = 3.0, 1, 30
        cases, setups = [("reformer", 2)], ["plain", "l1", "clip"]
    backend = get_backend(args.solver)
    meta = {"args": vars(args), "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "load_start": os.getloadavg()[0], "cpus": os.cpu_count(), "skipped": []}
    rows, start = [], time.perf_counter()
    for data, depth in cases:
        for setup in setups:
            if args.budget is not None and time.perf_counter() - start > args.budget:
                meta["skipped"].append(f"{data} d{depth} {setup}")
                continue
            row = study_one(data, depth, setup, args, backend)
            rows.append(row)
            print(f"[{time.perf_counter() - start:6.0f}s] {data} d{depth} {setup}: "
                  + " ".join(f"{n}={par1(rs, args.time_limit):.2f}" for n, rs in row["runs"].items()), flush=True)
    meta.update(seconds=time.perf_counter() - start, load_end=os.getloadavg()[0])
    write(rows, meta)


if __name__ == "__main__":
    main()
