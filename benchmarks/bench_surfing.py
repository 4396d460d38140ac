"""Surfing vs direct Adam vs random restarts, at equal gradient budgets.

    .venv/bin/python benchmarks/bench_surfing.py [--latents 2,5,8,10,20] [--targets 100]
    .venv/bin/python benchmarks/bench_surfing.py --setup digits [--latents 2,4,8] [--quick]

``--setup paper`` (the default): the paper's experiment (Song, Fan and Lafferty 2019, section 5)
on the shipped MNIST VAE decoders ``examples/surfing/checkpoints/latent<d>`` (d = 2, 5, 8, 10,
20; 15 checkpoints from initialisation to epoch 6). Targets ``y = G_T(x*)`` with ``x*`` drawn from
the prior N(0, I); one run per target from a N(0, I) start, latents unconstrained; all methods
get the same gradient budget per target: Surfing ``15 s + 5 s`` steps (``s`` per checkpoint,
``5 s`` polish on G_T, annealed to lr/100), ``direct`` one run of that length on G_T (annealed
tail), ``restarts`` fresh runs on G_T each to convergence (``inversion.restarts``) until the
budget is spent. Success: ``||x - x*|| / ||x*|| < 0.01``; ``basin``: within 1e-3 after a common
1000-step annealed polish from the returned point. Compressed sensing rows (``--ms``) use a
Gaussian A of m rows. Writes benchmarks/out/surfing_paper.{json,md}.

``--setup digits``: the earlier digits-autoencoder study below.

In-range targets ``y = G_T(x*)`` (global minimum 0 at ``x*``), x* uniform in the latent box.
A run succeeds when its objective is below 1e-6 or ||x - x*|| < 1e-3.

1. success against budget (steps per checkpoint; Surfing polishes 4x that on G_T, the
   baselines get the same total per start) for inversion, per latent dimension;
2. compressed sensing with Gaussian A of m rows: success and the median relative
   reconstruction error ||G_T(x) - y*|| / ||y*|| against m;
3. why Surfing loses where it does: at a fixed total budget, the split between tracking and
   polishing and the checkpoint spacing (all checkpoints, every other one, only a few), and
   an annealed step size in the polish;
4. the exact MIQP (SCIP) on a few held-out digits, warm-started at Surfing's answer.

Writes benchmarks/out/surfing.{json,md} and surfing_{success,paths,cs}.png. Checkpoint
sequences: the shipped latent-4 one; others are read from (or trained into)
benchmarks/out/surfing_checkpoints/latent<d>. A sequence without latent_box.json (a training
run cut short) uses the box [-3, 3]^d.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
sys.path.insert(0, str(ROOT / "examples" / "surfing"))

from reluopt.inversion.comparison import compare_at_equal_budget, relative_errors  # noqa: E402
from reluopt.inversion.surfing import gradient_budget, load_checkpoints, surf  # noqa: E402

SUCCESS_VALUE, SUCCESS_DISTANCE = 1e-6, 1e-3


def checkpoints_for(latent: int, train: bool) -> Path | None:
    shipped = ROOT / "examples" / "surfing" / "checkpoints" / f"latent{latent}"
    box = shipped / "latent_box.json"
    if (shipped / "index.json").exists() and "model" not in json.loads(box.read_text()):   # a digits decoder
        return shipped
    folder = OUT / "surfing_checkpoints" / f"latent{latent}"
    if not (folder / "index.json").exists():
        if not train:
            return None
        from train_digits_decoder import train as train_decoder

        train_decoder(latent, out=folder)
    return folder


def latent_box(folder: Path, latent: int) -> tuple[np.ndarray, np.ndarray, str]:
    f = folder / "latent_box.json"
    if f.exists():
        info = json.loads(f.read_text())
        return np.array(info["lb"]), np.array(info["ub"]), "training codes"
    return np.full(latent, -3.0), np.full(latent, 3.0), "[-3, 3]"


def success(results, x_star) -> np.ndarray:
    values = np.array([r.value for r in results])
    dist = np.linalg.norm(np.array([r.x for r in results]) - x_star, axis=1)
    return (values < SUCCESS_VALUE) | (dist < SUCCESS_DISTANCE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setup", choices=("paper", "digits"), default="paper")
    ap.add_argument("--latents", default=None, help="default 2,5,8,10,20 (paper) or 2,4,8 (digits)")
    ap.add_argument("--steps", default="5,15,50,150,400", help="paper: Adam steps per checkpoint (polish = 5x)")
    ap.add_argument("--lr", type=float, default=0.05, help="paper: Adam's step size")
    ap.add_argument("--budgets", default="5,10,25,50", help="Adam steps per checkpoint (polish = 4x)")
    ap.add_argument("--ms", default=None, help="measurements for compressed sensing (digits: 32,16,8; paper: 50)")
    ap.add_argument("--cs-budget", type=int, default=25, help="steps per checkpoint for compressed sensing")
    ap.add_argument("--targets", type=int, default=100)
    ap.add_argument("--starts", type=int, default=4)
    ap.add_argument("--ablation-budgets", default="10", help="steps per checkpoint for the ablation")
    ap.add_argument("--exact-targets", type=int, default=3)
    ap.add_argument("--exact-seconds", type=float, default=15.0)
    ap.add_argument("--train", action="store_true", help="train missing checkpoint sequences")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="latent 4, 20 targets, budgets 10,25, m=16")
    ap.add_argument("--replot", action="store_true", help="redraw the plots from benchmarks/out/surfing.json")
    args = ap.parse_args()
    if args.setup == "paper":
        paper(args)
        return
    args.latents = args.latents or "2,4,8"
    if args.replot:
        saved = json.loads((OUT / "surfing.json").read_text())
        plot(saved["rows"], {int(k): v for k, v in saved.get("paths", {}).items()})
        return
    if args.quick:
        args.latents, args.budgets, args.ms, args.targets, args.exact_targets = "4", "10,25", "16", 20, 1
        args.ablation_budgets = "10"
    args.ms = args.ms or "32,16,8"
    t_start = time.perf_counter()
    rows, ablation, exact, paths, info = [], [], [], {}, {}
    for latent in map(int, args.latents.split(",")):
        folder = checkpoints_for(latent, args.train)
        if folder is None:
            print(f"latent {latent}: no checkpoints (use --train)", file=sys.stderr)
            continue
        nets = load_checkpoints(folder)
        lb, ub, box_source = latent_box(folder, latent)
        box = (lb, ub)
        epochs = json.loads((folder / "index.json").read_text()).get("epochs")
        info[latent] = {"folder": str(folder.relative_to(ROOT)), "checkpoints": len(nets), "epochs": epochs,
                        "network": nets[-1].describe(), "box": box_source}
        print(f"latent {latent}: {len(nets)} checkpoints (epochs {epochs}), {nets[-1].describe()}, "
              f"box {box_source}", file=sys.stderr, flush=True)
        rng = np.random.default_rng(args.seed)
        x_star = rng.uniform(lb, ub, size=(args.targets, latent))
        y_star = nets[-1].forward(x_star)
        cases = [(64, None, b) for b in map(int, args.budgets.split(","))]
        for m in map(int, args.ms.split(",")):
            cases.append((m, rng.normal(size=(m, 64)) / np.sqrt(m), args.cs_budget))
        for m, A, budget in cases:
            targets = y_star if A is None else y_star @ A.T
            t0 = time.perf_counter()
            res = compare_at_equal_budget(nets, targets, box, A=A, x_star=x_star, y_true=y_star,
                                          starts=args.starts, steps_per_checkpoint=budget,
                                          polish_steps=4 * budget, seed=args.seed)
            seconds = time.perf_counter() - t0
            for name, v in res.items():
                rows.append({"latent": latent, "m": m, "steps_per_checkpoint": budget,
                             "budget": v["gradient_evaluations"] // args.starts, "method": name,
                             "success": v["success"], "best_rate": v["best_rate"],
                             "median_value": v["median_value"], "median_rel_error": v["median_rel_error"],
                             "p90_rel_error": float(np.percentile(relative_errors(nets[-1], v["results"], y_star),
                                                                  90)),
                             "seconds_all_methods": seconds})
            print(f"  m={m} budget {budget}: " + ", ".join(f"{k} {v['success']:.0%}" for k, v in res.items())
                  + f" ({seconds:.0f}s)", file=sys.stderr, flush=True)
            if A is None and budget == args.cs_budget:
                paths[latent] = [r.stats["path"] for r in res["surfing"]["results"][:6]]
        # --- 3. ablation at small budgets: where does Surfing lose, and why?
        for per in map(int, args.ablation_budgets.split(",")):
            total = gradient_budget(len(nets), per, 4 * per)
            picks = {"all": list(range(len(nets))), "every other": list(range(0, len(nets), 2)),
                     "first+last": [0, len(nets) - 1], "last only (direct)": [len(nets) - 1]}
            if picks["every other"][-1] != len(nets) - 1:
                picks["every other"].append(len(nets) - 1)
            variants = []
            for label, idx in picks.items():
                for track in sorted({per, max(1, per // 2)}):
                    polish = total - len(idx) * track
                    if label == "last only (direct)":
                        if track != per:
                            continue
                        polish, track = total - track, track
                    variants.append((label, idx, track, polish, 1.0))
            variants.append(("all, annealed polish", picks["all"], per, 4 * per, 0.01))
            for label, idx, track, polish, anneal in variants:
                sel = [nets[i] for i in idx]
                res = surf(sel, y_star, box, starts=args.starts, steps_per_checkpoint=track, polish_steps=polish,
                           anneal=anneal, seed=args.seed)
                ok = success(res, x_star)
                ablation.append({"latent": latent, "budget": total, "checkpoints": label, "n_checkpoints": len(idx),
                                 "steps_per_checkpoint": track, "polish_steps": polish, "anneal": anneal,
                                 "success": float(np.mean(ok)),
                                 "median_value": float(np.median([r.value for r in res]))})
        # --- 4. exact MIQP on held-out digits (not in range: the minimum is unknown)
        if args.exact_targets and latent <= 4:
            exact.extend(exact_rows(nets, box, latent, args))
    OUT.mkdir(parents=True, exist_ok=True)
    payload = {"targets": args.targets, "starts": args.starts, "checkpoints": info, "rows": rows,
               "ablation": ablation, "exact": exact, "paths": paths, "seconds": time.perf_counter() - t_start}
    (OUT / "surfing.json").write_text(json.dumps(payload, indent=1))
    md = markdown(payload)
    (OUT / "surfing.md").write_text(md)
    print(md)
    plot(rows, paths)
    print(f"\ntotal {time.perf_counter() - t_start:.0f}s; plots in {OUT}/surfing_*.png")


def paper(args) -> None:
    """The paper's comparison on the shipped MNIST VAE decoders (see the module docstring)."""
    import os

    from reluopt.inversion.comparison import compare_paper_setup

    latents = list(map(int, (args.latents or "2,5,8,10,20").split(",")))
    steps = list(map(int, args.steps.split(",")))
    ms = [int(m) for m in (args.ms or "50").split(",") if m]
    if args.quick:
        latents, steps, ms, args.targets = [5], [5, 50], [], 20
    t_start = time.perf_counter()
    rows, info = [], {}
    for latent in latents:
        folder = ROOT / "examples" / "surfing" / "checkpoints" / f"latent{latent}"
        nets = load_checkpoints(folder)
        box_info = json.loads((folder / "latent_box.json").read_text())
        epochs = json.loads((folder / "index.json").read_text()).get("epochs")
        info[latent] = {"folder": str(folder.relative_to(ROOT)), "checkpoints": len(nets), "epochs": epochs,
                        "network": nets[-1].describe(), "data": box_info.get("data"),
                        "val_mse": box_info.get("val_mse")}
        print(f"latent {latent}: {len(nets)} checkpoints, {nets[-1].describe()}", file=sys.stderr, flush=True)
        rng = np.random.default_rng([args.seed, latent, 2019])   # not the methods' start stream (seed)
        x_star = rng.normal(size=(args.targets, latent))
        cases = [(None, s) for s in steps]
        for m in ms:
            cases.append((rng.normal(size=(m, nets[-1].output_dim)) / np.sqrt(m), 50))
        for A, s in cases:
            t0 = time.perf_counter()
            res = compare_paper_setup(nets, x_star, A=A, steps_per_checkpoint=s, polish_steps=5 * s, lr=args.lr,
                                      anneal=0.01, seed=args.seed)
            seconds = time.perf_counter() - t0
            m = nets[-1].output_dim if A is None else A.shape[0]
            for name, v in res.items():
                rows.append({"latent": latent, "m": m, "steps_per_checkpoint": s, "budget": v["budget"],
                             "method": name, "success": v["success"], "basin": v["basin"],
                             "median_value": v["median_value"], "median_rel_error": v["median_rel_error"],
                             "median_restarts": v.get("median_restarts"), "seconds_all_methods": seconds})
            print(f"  m={m} s={s} budget {res['surfing']['budget']}: "
                  + ", ".join(f"{k} {v['success']:.0%}/{v['basin']:.0%}" for k, v in res.items())
                  + f" ({seconds:.0f}s)", file=sys.stderr, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    payload = {"targets": args.targets, "lr": args.lr, "checkpoints": info, "rows": rows,
               "seconds": time.perf_counter() - t_start, "load": os.getloadavg()}
    (OUT / "surfing_paper.json").write_text(json.dumps(payload, indent=1))
    md = paper_markdown(payload)
    (OUT / "surfing_paper.md").write_text(md)
    print(md)
    print(f"total {time.perf_counter() - t_start:.0f}s", file=sys.stderr)


def paper_markdown(p) -> str:
    lines = []
    for latent, info in p["checkpoints"].items():
        lines += [f"**latent {latent}** ({info['network']}, {info['checkpoints']} checkpoints, epochs "
                  f"{info['epochs'][0]:g}..{info['epochs'][-1]:g}; held-out MSE {info['val_mse']:.4f}). "
                  f"{p['targets']} targets, one run each.", "",
                  "| m | steps/ckpt | budget | method | success | basin | median objective | "
                  "median rel. error | median runs |", "|---|---|---|---|---|---|---|---|---|"]
        for r in p["rows"]:
            if str(r["latent"]) != str(latent):
                continue
            runs = "" if r["median_restarts"] is None else f"{r['median_restarts']:g}"
            lines.append(f"| {r['m']} | {r['steps_per_checkpoint']} | {r['budget']} | {r['method']} | "
                         f"{r['success']:.0%} | {r['basin']:.0%} | {r['median_value']:.2e} | "
                         f"{r['median_rel_error']:.2e} | {runs} |")
        lines.append("")
    return "\n".join(lines)


def exact_rows(nets, box, latent, args) -> list[dict]:
    from train_digits_decoder import digits

    from reluopt.inversion.miqp import solve_miqp
    from reluopt.problem import Domain, LeastSquares, Problem

    _, held = digits()
    out = []
    warm = surf(nets, held[: args.exact_targets], box, starts=args.starts, steps_per_checkpoint=25,
                polish_steps=100, seed=args.seed)
    for t, w in zip(held[: args.exact_targets], warm, strict=True):
        problem = Problem(nets[-1], Domain(*box), LeastSquares(t))
        r = solve_miqp(problem, time_limit=args.exact_seconds, incumbent=w.x, seed=args.seed)
        out.append({"latent": latent, "surfing_value": w.value, "miqp_value": r.value, "miqp_bound": r.bound,
                    "status": r.status, "binaries": r.stats.get("binaries"), "nodes": r.stats.get("nodes"),
                    "seconds": r.seconds})
        print(f"  miqp latent {latent}: surfing {w.value:.4g}, miqp {r.value:.4g} >= {r.bound:.4g} "
              f"({r.status}, {r.stats.get('nodes')} nodes)", file=sys.stderr, flush=True)
    return out


def markdown(p) -> str:
    lines = [f"{p['targets']} in-range targets per row, {p['starts']} starts per target; budget = gradient "
             "evaluations per start (the same for all methods in a row group).", "",
             "| latent | m | steps/ckpt | budget | method | success | best of methods | median objective | "
             "median rel. error | 90th pct rel. error |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in p["rows"]:
        lines.append(f"| {r['latent']} | {r['m']} | {r['steps_per_checkpoint']} | {r['budget']} | {r['method']} | "
                     f"{r['success']:.0%} | {r['best_rate']:.0%} | {r['median_value']:.2e} | "
                     f"{r['median_rel_error']:.2e} | {r['p90_rel_error']:.2e} |")
    lines += ["", "Ablation (inversion): the same total budget split differently.", "",
              "| latent | budget | checkpoints used | n | steps/ckpt | polish | anneal | success | median objective |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in p["ablation"]:
        lines.append(f"| {r['latent']} | {r['budget']} | {r['checkpoints']} | {r['n_checkpoints']} | "
                     f"{r['steps_per_checkpoint']} | {r['polish_steps']} | {r['anneal']:g} | {r['success']:.0%} | "
                     f"{r['median_value']:.2e} |")
    if p["exact"]:
        lines += ["", "Exact MIQP (SCIP) on held-out digits, warm-started at Surfing's answer.", "",
                  "| latent | binaries | surfing value | miqp value | miqp lower bound | status | nodes | seconds |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in p["exact"]:
            lines.append(f"| {r['latent']} | {r['binaries']} | {r['surfing_value']:.4g} | {r['miqp_value']:.4g} | "
                         f"{r['miqp_bound']:.4g} | {r['status']} | {r['nodes']} | {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def plot(rows, paths) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latents = sorted({r["latent"] for r in rows})
    methods = sorted({r["method"] for r in rows})
    fig, axes = plt.subplots(1, len(latents), figsize=(3.6 * len(latents), 3.0), squeeze=False)
    for ax, lat in zip(axes[0], latents, strict=True):
        for method in methods:
            sel = [r for r in rows if r["latent"] == lat and r["m"] == 64 and r["method"] == method]
            ax.plot([r["budget"] for r in sel], [r["success"] for r in sel], marker="o", label=method)
        ax.set_xscale("log")
        ticks = sorted({r["budget"] for r in rows if r["latent"] == lat and r["m"] == 64 and r["method"] == "surfing"})
        ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=7)
        ax.minorticks_off()
        ax.set_title(f"inversion, latent {lat}", fontsize=9)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("gradient evaluations per start", fontsize=8)
    axes[0][0].set_ylabel("success rate")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "surfing_success.png", dpi=110)
    plt.close(fig)
    if paths:
        plot_paths(plt, paths)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.0))
    for lat in latents:
        for method, style in (("surfing", "-"), ("direct", "--")):
            sel = sorted([r for r in rows if r["latent"] == lat and r["method"] == method
                          and (r["m"] != 64 or r["steps_per_checkpoint"] == 25)], key=lambda r: r["m"])
            ms = [r["m"] for r in sel]
            axes[0].plot(ms, [r["success"] for r in sel], style, marker="o", label=f"{method}, latent {lat}")
            line, = axes[1].semilogy(ms, [max(r["median_rel_error"], 1e-16) for r in sel], style, marker="o")
            axes[1].semilogy(ms, [max(r["p90_rel_error"], 1e-16) for r in sel], style, marker="^",
                             color=line.get_color(), alpha=0.5)
    axes[0].set_ylabel("success rate")
    axes[1].set_ylabel("||G(x) - y*|| / ||y*||\n(o median, ^ 90th percentile)", fontsize=8)
    for ax in axes:
        ax.set_xlabel("measurements m (64 = inversion)")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(OUT / "surfing_cs.png", dpi=110)
    plt.close(fig)


def plot_paths(plt, paths) -> None:
    fig, axes = plt.subplots(1, len(paths), figsize=(3.8 * len(paths), 3.0), squeeze=False)
    for ax, (lat, ps) in zip(axes[0], paths.items(), strict=True):
        for p in ps:
            ax.semilogy(range(len(p)), np.maximum(p, 1e-16), marker=".")
        ax.set_title(f"latent {lat}: objective along the checkpoints", fontsize=9)
        ax.set_xlabel("checkpoint (last point: after the polish on G_T)", fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "surfing_paths.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
