"""Issue 16: each paper's rule against reluopt's variant of it, on short budgets.

Pairs (paper rule first):

* ``sampling-mip``: ``free="paper"`` (Perakis and Tsiourvas, Algorithm 2: the neurons active
  at the LP optimum stay fixed, every other binary is free) vs ``free="tight-wall"`` (only
  the neurons on a wall at the LP optimum are free);
* the MIP warm start: ``sampling+mip`` (the paper's: the sampling algorithm's best point
  starts the MIP) vs ``auto`` with ``heuristics="ppga-lr"`` and ``exact="mip"`` (the
  best-heuristic start of ``bench_local_search.py --warm``);
* ``walk``: ``starts="paper"`` (Tong, Cai, Serra: cumulative layer-by-layer fixing to the
  flipped true phase, with restarts) vs ``starts="single"`` (one fix at a time, then random
  points);
* ``ppga`` vs ``ppga+polish`` and ``ppga-lr`` vs ``ppga-lr+polish`` (Tong, Zhu, Serra, Burer:
  the paper's gradient steps only, vs a final 10% Relax-and-Walk polish).

Instances: the Relax-and-Walk grid's torch default-initialised nets (``bench_local_search.
torch_net``, seed 50), maximise the output over [0, 1]^n. Each run gets the same budget;
the table shows the median over ``--repeats`` method seeds (0, 1, 2, ...).

    python benchmarks/bench_fidelity.py                 # writes benchmarks/results/fidelity.md
    python benchmarks/bench_fidelity.py --budget 2 --repeats 1 --nets 10-500
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_local_search import torch_net  # noqa: E402

from reluopt import Problem  # noqa: E402
from reluopt.methods import solve  # noqa: E402

#: (comparison, paper label, paper (method, options), reluopt label, reluopt (method, options),
#:  stats shown as "paper / reluopt")
PAIRS = [
    ("sampling-mip neighbourhood", "free=paper", ("sampling-mip", {"free": "paper"}),
     "free=tight-wall", ("sampling-mip", {"free": "tight-wall"}), ("freed_binaries", "neighbourhood_mips")),
    ("MIP warm start", "sampling+mip", ("sampling+mip", {}),
     "ppga-lr then mip", ("auto", {"heuristics": "ppga-lr", "exact": "mip"}), ()),
    ("walk starts", "starts=paper", ("walk", {"starts": "paper"}),
     "starts=single", ("walk", {"starts": "single"}), ("relaxation_walks", "random_walks", "phase_flips", "fixes")),
    ("ppga polish", "ppga", ("ppga", {}), "ppga+polish", ("ppga+polish", {}), ()),
    ("ppga-lr polish", "ppga-lr", ("ppga-lr", {}), "ppga-lr+polish", ("ppga-lr+polish", {}), ()),
]

NETS = {"10-500": (10, 1, 500), "100-100x100": (100, 2, 100), "1000-100": (1000, 1, 100)}


def net_shape(name: str) -> tuple[int, int, int]:
    """``"100-100x100"`` -> (inputs 100, depth 2, width 100): any shape of the Relax-and-Walk grid."""
    n_in, _, hidden = name.partition("-")
    widths = hidden.split("x")
    if not n_in.isdigit() or not widths or len(set(widths)) != 1 or not widths[0].isdigit():
        raise SystemExit(f"--nets: {name!r} is not a shape like 10-500 or 100-100x100")
    return int(n_in), len(widths), int(widths[0])


def run(problem: Problem, method: str, options: dict, budget: float, seed: int) -> dict:
    t0 = time.perf_counter()
    r = solve(problem, method, time_limit=budget, seed=seed, **options)
    if r.x is not None:   # the value is the network's own at a point inside the box
        assert problem.is_feasible(r.x)[0]
        assert abs(r.value - float(problem.objective_values(r.x)[0])) <= 1e-9 * (1 + abs(r.value))
    return {"value": r.value, "stats": r.stats, "seconds": time.perf_counter() - t0}


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v) -> str:
    if v is None:
        return "none"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=5.0, help="seconds per run")
    ap.add_argument("--repeats", type=int, default=3, help="method seeds per instance (median)")
    ap.add_argument("--nets", default=",".join(NETS),
                    help="comma-separated shapes 'inputs-width[xwidth...]' of the Relax-and-Walk grid")
    ap.add_argument("--net-seeds", default="50", help="comma-separated torch seeds of the nets")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fidelity.md"))
    a = ap.parse_args(argv)
    started = time.perf_counter()
    names = [n.strip() for n in a.nets.split(",") if n.strip()]
    rows: list[tuple] = []
    net_seeds = [int(s) for s in a.net_seeds.split(",") if s.strip()]
    for net_seed, name in [(s, n) for s in net_seeds for n in names]:
        n_in, depth, width = net_shape(name)
        problem = Problem.build(torch_net(net_seed, n_in, depth, width), 0.0, 1.0, maximize=0)
        inst = f"s{net_seed}-{name}"
        for comp, pl, (pm, po), rl, (rm, ro), keys in PAIRS:
            res = {}
            for side, (m, o) in (("paper", (pm, po)), ("reluopt", (rm, ro))):
                res[side] = [run(problem, m, o, a.budget, seed) for seed in range(a.repeats)]
            vp = median([r["value"] for r in res["paper"]])
            vr = median([r["value"] for r in res["reluopt"]])
            if vp is None or vr is None:
                better = "-" if vp is None and vr is None else "paper" if vr is None else "reluopt"
            else:
                tol = 1e-9 * (1 + abs(vp))
                better = "paper" if vp > vr + tol else "reluopt" if vr > vp + tol else "tie"
            stats = "; ".join(f"{k} {fmt(median([r['stats'].get(k) for r in res['paper']]))} / "
                              f"{fmt(median([r['stats'].get(k) for r in res['reluopt']]))}" for k in keys)
            diff = None if vp is None or vr is None else 100.0 * (vr - vp) / max(abs(vp), 1e-12)
            rows.append((comp, inst, pl, vp, rl, vr, diff, better, stats))
            print(f"{inst:18s} {comp:28s} {pl} {fmt(vp)}  {rl} {fmt(vr)}  -> {better}  {stats}", flush=True)
    total = time.perf_counter() - started
    lines = [
        "# Papers' rules vs reluopt's variants (issue 16, heuristics)",
        "",
        f"`python benchmarks/bench_fidelity.py --budget {a.budget:g} --repeats {a.repeats} --nets {','.join(names)}"
        f" --net-seeds {a.net_seeds}`;"
        f" {a.budget:g} s per run, median objective (maximise, higher is better) over method seeds"
        f" 0..{a.repeats - 1}; torch default-initialised nets (seeds {a.net_seeds}) over [0, 1]^n."
        f" Total {total:.0f} s on a shared 2-core machine (timings are noisy); load average at the end"
        f" {os.getloadavg()[0]:.1f}.",
        "",
        "`reluopt vs paper`: (reluopt - paper) / |paper|, positive when reluopt's variant is better."
        " Stats columns are medians, `paper / reluopt`. `freed_binaries`: mean free binaries per"
        " neighbourhood MIP. `phase_flips / fixes`: fixes that set the opposite of the neuron's true"
        " phase, out of all fixes. `random_walks`: walks from random points (the relaxation starts"
        " ran out).",
        "",
        "| comparison | instance | paper rule | value | reluopt variant | value | reluopt vs paper | better | stats |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for comp, inst, pl, vp, rl, vr, diff, better, stats in rows:
        d = "" if diff is None else f"{diff:+.3f}%"
        lines.append(f"| {comp} | {inst} | {pl} | {fmt(vp)} | {rl} | {fmt(vr)} | {d} | {better} | {stats} |")
    Path(a.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out} ({total:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
