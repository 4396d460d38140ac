"""Lipschitz constants: lower, upper, gap and time of every method on three kinds of nets.

    .venv/bin/python benchmarks/bench_lipschitz.py [--time-limit 60] [--seeds 5] [--skip-acas]

1. small random nets 2-16-16-2 (LipMIP's tutorial size), l-inf vector case and l1 / l2 of y0;
2. ACAS Xu net 1_1 over the prop_1 box, output Y_0, l-inf (exact MIP on HiGHS);
3. the gurobi_ml MNIST classifier (784-50-50-10), margin logit[true] - logit[wrong] over an
   L-inf ball of radius 0.05 around a test image recovered from a mnistfc property.

Also the paper's claim: its upper bound (the MIP over realisable patterns with non-strict
region constraints) and its lower bound (a pattern realised strictly inside its region)
coincide almost always: counted here as the share of instances where the MIP bound meets the
interior witness. Separately, how often the free-pattern model (no realisability
constraints at all) equals the exact value. Gurobi (size-limited licence) solves the same MIP where it can.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "out"
sys.path.insert(0, str(ROOT / "src"))

from reluopt import Network  # noqa: E402
from reluopt.lipschitz import lipschitz  # noqa: E402


def random_net(sizes, seed):
    rng = np.random.default_rng(seed)
    return Network.from_weights([
        (rng.normal(size=(sizes[i + 1], sizes[i])) / math.sqrt(sizes[i]), 0.3 * rng.normal(size=sizes[i + 1]))
        for i in range(len(sizes) - 1)
    ])


def vnnlib_box(path: Path, n: int):
    lb, ub = np.full(n, -np.inf), np.full(n, np.inf)
    for op, i, v in re.findall(r"\(assert \((<=|>=) X_(\d+) ([-+0-9.eE]+)\)\)", path.read_text()):
        (ub if op == "<=" else lb)[int(i)] = float(v)
    return lb, ub


def row(name, method, r, extra=""):
    return {"instance": name, "method": method, "lower": r.lower, "upper": r.upper,
            "gap": r.gap, "status": r.status, "seconds": r.seconds, "note": extra}


def gurobi_time(net, box, c, norm, time_limit):
    """Solve the same exact MIP with Gurobi, when its size-limited licence allows."""
    try:
        from reluopt.lipschitz.common import parse_norm
        from reluopt.lipschitz.mip import build_lipschitz_model
        from reluopt.milp.gurobi import solve_gurobi
    except ImportError as exc:
        return f"unavailable ({exc.__class__.__name__})"
    from reluopt.bounds import crown_bounds
    from reluopt.lipschitz.common import dual_norm
    from reluopt.problem import Domain

    lb, ub = box
    dom = Domain(np.broadcast_to(lb, (net.input_dim,)), np.broadcast_to(ub, (net.input_dim,)))
    b = crown_bounds(net, dom.lb, dom.ub)
    model, _ = build_lipschitz_model(net, dom, b, c, dual_norm(parse_norm(norm)), True)
    try:
        out = solve_gurobi(model, time_limit=time_limit)
    except Exception as exc:  # licence refusals and the like are results here
        return f"refused: {str(exc)[:60]}"
    return f"{out.status} {out.objective} in {out.seconds:.2f}s"


def acas_exact(time_limit: float) -> dict:
    """The exact l-inf MIP on ACAS Xu 1_1 / prop_1 (output Y_0) on HiGHS; one long run, saved
    to ``out/lipschitz_acas.json`` so the main table can reuse it."""
    from reluopt.io.onnx import load_onnx

    net = load_onnx(DATA / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    lb, ub = vnnlib_box(DATA / "acasxu" / "prop_1.vnnlib", net.input_dim)
    r = lipschitz(net, (lb, ub), norm="inf", method="mip", output=0, time_limit=time_limit)
    payload = {"instance": "acasxu 1_1 prop_1 Y0 linf", "time_limit": time_limit, **r.to_dict()}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "lipschitz_acas.json").write_text(json.dumps(payload, indent=1, default=str))
    print(r.summary())
    return payload


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--skip-acas", action="store_true")
    ap.add_argument("--skip-mnist", action="store_true")
    ap.add_argument("--acas-time-limit", type=float, default=600.0)
    ap.add_argument("--acas-exact-only", action="store_true",
                    help="only the long exact MIP on ACAS Xu 1_1/prop_1 (writes out/lipschitz_acas.json)")
    args = ap.parse_args()
    if args.acas_exact_only:
        acas_exact(args.acas_time_limit)
        return
    rows, coincide, free_equal = [], [], []
    for seed in range(args.seeds):
        net = random_net([2, 16, 16, 2], seed)
        name = f"rand-2-16-16-2-s{seed}"
        for norm, output in (("inf", None), ("1", 0), ("2", 0)):
            exact = ["miqcqp"] if norm == "2" else ["mip-upper", "mip"]
            methods = ["sample", "bounds", *exact]
            res = {}
            for m in methods:
                r = lipschitz(net, (-1, 1), norm=norm, method=m, output=output, time_limit=args.time_limit)
                res[m] = r
                rows.append(row(f"{name} l{norm}", m, r))
            exact_method = "miqcqp" if norm == "2" else "mip"
            coincide.append(res[exact_method].status == "optimal")
            if "mip" in res and res["mip"].status == "optimal":
                exact = res["mip"].lower
                free_equal.append(abs(res["mip-upper"].upper - exact) <= 1e-5 * max(exact, 1e-12))
            if norm == "inf" and seed == 0:
                note = gurobi_time(net, (-1.0, 1.0), np.eye(2)[0], "inf", args.time_limit)
                rows[-1]["note"] = "gurobi: " + note
    if not args.skip_acas and (DATA / "acasxu").is_dir():
        from reluopt.io.onnx import load_onnx

        net = load_onnx(DATA / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
        lb, ub = vnnlib_box(DATA / "acasxu" / "prop_1.vnnlib", net.input_dim)
        for m in ("sample", "bounds", "mip-upper", "mip"):
            tl = args.acas_time_limit if m.startswith("mip") else args.time_limit
            r = lipschitz(net, (lb, ub), norm="inf", method=m, output=0, time_limit=tl)
            rows.append(row("acasxu 1_1 prop_1 Y0 linf", m, r))
        rows[-1]["note"] = "gurobi: " + gurobi_time(net, (lb, ub), np.eye(5)[0], "inf", args.time_limit)
    if not args.skip_mnist and (DATA / "gurobi_ml").is_dir():
        from reluopt.io.onnx import load_onnx

        net = load_onnx(DATA / "gurobi_ml" / "mnist_model.onnx")
        prop = sorted((DATA / "mnistfc").glob("*.vnnlib"))[0]
        lb, ub = vnnlib_box(prop, 784)
        eps_prop = float(re.search(r"eps_?([0-9.]+)", prop.name).group(1)) if "eps" in prop.name else 0.02
        pixels = np.where(lb <= 0, ub - eps_prop, np.where(ub >= 1, lb + eps_prop, 0.5 * (lb + ub)))
        pixels = np.clip(pixels, 0, 1)
        y = net.forward(pixels)
        true = int(np.argmax(y))
        wrong = int(np.argsort(y)[-2])
        c = np.zeros(10)
        c[true], c[wrong] = 1.0, -1.0
        blb, bub = np.clip(pixels - 0.05, 0, 1), np.clip(pixels + 0.05, 0, 1)
        for m in ("sample", "bounds", "mip-upper", "mip"):
            r = lipschitz(net, (blb, bub), norm="inf", method=m, c=c, time_limit=args.time_limit)
            rows.append(row(f"mnist gurobi_ml {prop.stem} margin {true}-{wrong}", m, r))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "lipschitz.json").write_text(json.dumps(rows, indent=1, default=str))
    print("| instance | method | lower | upper | gap | status | s | note |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['instance']} | {r['method']} | {r['lower']:.6g} | {r['upper']:.6g} | {r['gap']:.2g} | "
              f"{r['status']} | {r['seconds']:.2f} | {r['note']} |")
    if coincide:
        print(f"\nMIP upper bound meets the interior-witnessed lower bound on {sum(coincide)} of "
              f"{len(coincide)} small-net instances (l-inf, l1, l2)")
    if free_equal:
        print(f"free-pattern model equals the exact value on {sum(free_equal)} of {len(free_equal)} "
              "small-net instances (l1 and l-inf)")


if __name__ == "__main__":
    main()
