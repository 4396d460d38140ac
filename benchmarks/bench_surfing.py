"""Surfing vs direct Adam vs random restarts, at equal gradient budgets, on digits decoders.

    .venv/bin/python benchmarks/bench_surfing.py [--latents 4,8] [--targets 100] [--quick]

In-range targets ``y = G_T(x*)`` (global minimum 0 at ``x*``) for inversion (m = 64) and
compressed sensing with Gaussian ``A`` of m rows. For each latent dimension, m and budget:
success rate (objective < 1e-6 or ||x - x*|| < 1e-3) over the targets, and for compressed
sensing the median relative reconstruction error ||G_T(x) - y*|| / ||y*||. Writes a
markdown table, JSON, and two PNG plots to benchmarks/out/.
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

from reluopt.methods.surfing import compare_at_equal_budget, load_checkpoints  # noqa: E402


def checkpoints_for(latent: int) -> Path:
    shipped = ROOT / "examples" / "surfing" / "checkpoints" / f"latent{latent}"
    if (shipped / "index.json").exists():
        return shipped
    folder = OUT / "surfing_checkpoints" / f"latent{latent}"
    if not (folder / "index.json").exists():
        from train_digits_decoder import train

        train(latent, out=folder)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latents", default="4,8")
    ap.add_argument("--ms", default="64,32,16,8")
    ap.add_argument("--budgets", default="10,25,50", help="Adam steps per checkpoint (polish = 4x)")
    ap.add_argument("--targets", type=int, default=100)
    ap.add_argument("--starts", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="latent 4, m=64,16, one budget, 20 targets")
    args = ap.parse_args()
    if args.quick:
        args.latents, args.ms, args.budgets, args.targets = "4", "64,16", "25", 20
    rows, paths = [], {}
    for latent in map(int, args.latents.split(",")):
        folder = checkpoints_for(latent)
        nets = load_checkpoints(folder)
        info = json.loads((folder / "latent_box.json").read_text())
        box = (np.array(info["lb"]), np.array(info["ub"]))
        rng = np.random.default_rng(args.seed)
        x_star = rng.uniform(box[0], box[1], size=(args.targets, latent))
        y_star = nets[-1].forward(x_star)
        for m in map(int, args.ms.split(",")):
            A = None if m == 64 else rng.normal(size=(m, 64)) / np.sqrt(m)
            targets = y_star if A is None else y_star @ A.T
            for budget in map(int, args.budgets.split(",")):
                t0 = time.perf_counter()
                res = compare_at_equal_budget(nets, targets, box, A=A, x_star=x_star, starts=args.starts,
                                              steps_per_checkpoint=budget, polish_steps=4 * budget,
                                              seed=args.seed)
                seconds = time.perf_counter() - t0
                for name, v in res.items():
                    rec = [np.linalg.norm(nets[-1].forward(r.x) - y) / np.linalg.norm(y)
                           for r, y in zip(v["results"], y_star, strict=True)]
                    rows.append({"latent": latent, "m": m, "budget": v["gradient_evaluations"],
                                 "steps_per_checkpoint": budget, "method": name, "success": v["success"],
                                 "median_value": v["median_value"], "median_rel_error": float(np.median(rec)),
                                 "seconds_all_methods": seconds})
                if m == 64 and budget == int(args.budgets.split(",")[-1]):
                    paths[latent] = [r.stats["path"] for r in res["surfing"]["results"][:6]]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "surfing.json").write_text(json.dumps(rows, indent=1))
    print("| latent | m | gradient evals / target | method | success | median objective | median rel. error |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['latent']} | {r['m']} | {r['budget']} | {r['method']} | {r['success']:.0%} | "
              f"{r['median_value']:.2e} | {r['median_rel_error']:.2e} |")
    plot(rows, paths)


def plot(rows, paths) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latents = sorted({r["latent"] for r in rows})
    ms = sorted({r["m"] for r in rows}, reverse=True)
    fig, axes = plt.subplots(len(latents), len(ms), figsize=(3.2 * len(ms), 2.8 * len(latents)), squeeze=False)
    for i, lat in enumerate(latents):
        for j, m in enumerate(ms):
            ax = axes[i][j]
            for method in sorted({r["method"] for r in rows}):
                sel = [r for r in rows if r["latent"] == lat and r["m"] == m and r["method"] == method]
                ax.plot([r["budget"] for r in sel], [r["success"] for r in sel], marker="o", label=method)
            ax.set_title(f"latent {lat}, m={m}", fontsize=9)
            ax.set_ylim(-0.05, 1.05)
            ax.set_xlabel("gradient evaluations per target", fontsize=8)
            if j == 0:
                ax.set_ylabel("success rate")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "surfing_success.png", dpi=110)
    fig, axes = plt.subplots(1, len(paths), figsize=(4 * len(paths), 3), squeeze=False)
    for ax, (lat, ps) in zip(axes[0], paths.items(), strict=True):
        for p in ps:
            ax.semilogy(range(len(p)), np.maximum(p, 1e-16), marker=".")
        ax.set_title(f"latent {lat}: objective along the checkpoints", fontsize=9)
        ax.set_xlabel("checkpoint (last = polish on G_T)")
    fig.tight_layout()
    fig.savefig(OUT / "surfing_paths.png", dpi=110)
    print(f"\nplots: {OUT / 'surfing_success.png'}, {OUT / 'surfing_paths.png'}")


if __name__ == "__main__":
    main()
