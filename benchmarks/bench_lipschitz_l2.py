"""The l2 -> l2 Lipschitz constant of vector-valued nets (issue 16; Sbihi, Couellan and Jan).

    .venv/bin/python benchmarks/bench_lipschitz_l2.py [--time-limit 20] [--quick]

On random 2-8-8-2 and 2-16-16-2 nets over [-1, 1]^2 (all outputs):

1. the l2 -> l2 constant (largest spectral norm of J): product of spectral norms, interval-
   Jacobian spectral bound, sampling + ascent, input branch and bound (exact in 2-d), and the
   MIQCQP over the pattern and a unit direction in both formulations (``linearised``: big-M
   and McCormick rows; ``paper``: the activation regions as quadratic constraints) on SCIP
   and on Gurobi (skipped when its size-limited licence refuses the model), with model sizes;
2. beside it, LipMIP-style l_inf (the exact MIP on HiGHS, the vector case max_k ||J_k||_1) and
   its product-of-norms bound on the same nets.

Writes benchmarks/results/lipschitz_l2.md (the text under "## What we saw" is kept).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "lipschitz_l2.md"
sys.path.insert(0, str(ROOT / "src"))

from reluopt import Network, SolverError  # noqa: E402
from reluopt.lipschitz import lipschitz  # noqa: E402

NOTES = "## What we saw"


def random_net(sizes, seed):
    rng = np.random.default_rng(seed)
    return Network.from_weights([
        (rng.normal(size=(sizes[i + 1], sizes[i])) / math.sqrt(sizes[i]), 0.3 * rng.normal(size=sizes[i + 1]))
        for i in range(len(sizes) - 1)
    ])


def fmt(v) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.6g}"


def run(net, norm, method, limit, **kw) -> dict:
    t = time.perf_counter()
    try:
        r = lipschitz(net, (-1, 1), norm=norm, method=method, time_limit=limit, samples=5000, **kw)
    except SolverError as exc:
        return {"skipped": str(exc).split(":")[0]}
    q = r.stats.get("miqcqp", {})
    return {"lower": r.lower, "upper": r.upper, "gap": r.gap, "status": r.status, "s": time.perf_counter() - t,
            "vars": q.get("variables"), "cons": q.get("constraints"), "bin": q.get("binaries"),
            "solver_status": ",".join(map(str, r.stats.get("mip_status", []))),
            "product": r.stats.get("product_bound"), "interval": r.stats.get("interval_bound")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=20.0, help="seconds per exact run (default 20)")
    ap.add_argument("--quick", action="store_true", help="the 2-8-8-2 nets only")
    args = ap.parse_args()
    nets = [((2, 8, 8, 2), 0), ((2, 8, 8, 2), 1)]
    if not args.quick:
        nets += [((2, 16, 16, 2), 0), ((2, 16, 16, 2), 1)]
    rows, compare = [], []
    for sizes, seed in nets:
        net = random_net(list(sizes), seed)
        name = f"{'-'.join(map(str, sizes))} s{seed}"
        ref = run(net, 2, "bab", 60)
        print(name, "bab", ref, flush=True)
        rows.append((name, "bab (reference)", "", ref))
        rows.append((name, "sample", "", run(net, 2, "sample", 10)))
        for solver in ("highs", "gurobi"):   # highs: the MIQCQP runs on SCIP
            for form in ("linearised", "paper"):
                res = run(net, 2, "miqcqp", args.time_limit, solver=solver, formulation=form)
                print(name, solver, form, res, flush=True)
                rows.append((name, f"miqcqp {form}", "scip" if solver == "highs" else "gurobi", res))
        linf = run(net, "inf", "mip", args.time_limit)
        print(name, "linf", linf, flush=True)
        compare.append((name, ref, linf))
    write(args, rows, compare)


def write(args, rows, compare) -> None:
    old = RESULT.read_text() if RESULT.exists() else ""
    notes = old[old.index(NOTES):] if NOTES in old else f"{NOTES}\n\n(nothing yet)\n"
    cmd = "`.venv/bin/python benchmarks/bench_lipschitz_l2.py" + (f" --time-limit {args.time_limit:g}"
                                                                  if args.time_limit != 20 else "") \
        + (" --quick" if args.quick else "") + "`"
    out = ["# l2 -> l2 Lipschitz constants of vector-valued nets (Sbihi, Couellan and Jan)", "",
           f"Command: {cmd}. Random nets over [-1, 1]^2, all outputs; wall-clock seconds on a shared 2-core "
           "machine, one solver thread: noisy. The reference is input branch and bound, exact in 2-d (its "
           "bounds meet); the tests check it against the spectral norms of every enumerated region.", "",
           "## The l2 -> l2 constant: bounds, the two MIQCQP formulations, sizes and times", "",
           "| net | method | solver | lower | upper | gap | status | solver status | vars | cons | bin | s |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, method, solver, r in rows:
        if "skipped" in r:
            out.append(f"| {name} | {method} | {solver} | skipped: {r['skipped']} |  |  |  |  |  |  |  |  |")
            continue
        out.append(f"| {name} | {method} | {solver} | {fmt(r['lower'])} | {fmt(r['upper'])} | {r['gap']:.2g} | "
                   f"{r['status']} | {r['solver_status']} | {r['vars'] or ''} | {r['cons'] or ''} | "
                   f"{r['bin'] or ''} | {r['s']:.2f} |")
    out += ["", "## Against LipMIP-style l_inf and the product-of-norms bounds", "",
            "l2: the exact value (reference), the product of spectral norms, the interval-Jacobian spectral "
            "bound. l_inf (vector case, max_k ||J_k||_1): the exact MIP on HiGHS and its product of "
            "inf-operator norms. Ratios are bound / exact.", "",
            "| net | l2 exact | l2 product | ratio | l2 interval | ratio | linf lower | linf upper | linf status "
            "| linf s | linf product | ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, ref, linf in compare:
        ex, li = ref["lower"], linf["lower"]
        out.append(f"| {name} | {fmt(ex)} | {fmt(ref['product'])} | {ref['product'] / ex:.1f} | "
                   f"{fmt(ref['interval'])} | {ref['interval'] / ex:.1f} | {fmt(li)} | {fmt(linf['upper'])} | "
                   f"{linf['status']} | {linf['s']:.2f} | {fmt(linf['product'])} | {linf['product'] / li:.1f} |")
    RESULT.write_text("\n".join(out) + "\n\n" + notes)
    print("wrote", RESULT)


if __name__ == "__main__":
    main()
