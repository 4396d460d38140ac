"""Local search on the Relax-and-Walk grid and on MNIST adversarial margins.

Grid (Tong, Cai, Serra): torch default-initialised nets (``torch.manual_seed(seed)``, seeds
50-54), input size {10, 100, 1000}, hidden layers {1, 2, 3}, width {100, 500}, one output;
maximise the output over [0, 1]^n. MNIST: the VNN-COMP mnistfc net (784-256-256-10),
maximise ``y_k - y_label`` (k = the runner-up class at the image) over the L-inf ball
(0.03 / 0.05) of the property's image, clipped to [0, 1].

Every method gets the same budget; the baseline is the HiGHS MIP incumbent (big-M model
with CROWN bounds, built inside the budget). The table reports, per instance, each value
relative to the best value known in the run (0 = best; a proven MIP optimum is marked *),
and the per-iteration cost of PPGA-LR (one batched step of 64 starts) against one region LP.

The full grid is 18 shapes x 5 seeds x methods x budgets; choose a subset:

    python benchmarks/bench_local_search.py --seeds 50 --budget 10            # all shapes
    python benchmarks/bench_local_search.py --seeds 50 --inputs 10 --budget 10 --no-mnist
    python benchmarks/bench_local_search.py --profile                          # cProfile

Results go to benchmarks/out/local_search.json.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from reluopt import Network, Problem  # noqa: E402
from reluopt.methods import get_method  # noqa: E402
from reluopt.methods.passes import backward, directional, forward_masks, ratio_test  # noqa: E402
from reluopt.methods.points import sample_domain  # noqa: E402
from reluopt.methods.region import RegionLP, phase_patterns  # noqa: E402
from reluopt.parallel import single_threaded_blas  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
METHODS = ("ppga-lr", "ppga", "sampling", "sampling-mip", "walk")


# ----------------------------------------------------------------------------- instances
def torch_net(seed: int, n_in: int, depth: int, width: int) -> Network:
    import torch

    torch.manual_seed(seed)
    mods, prev = [], n_in
    for _ in range(depth):
        mods += [torch.nn.Linear(prev, width), torch.nn.ReLU()]
        prev = width
    mods.append(torch.nn.Linear(prev, 1))
    seq = torch.nn.Sequential(*mods)
    lin = [m for m in seq if isinstance(m, torch.nn.Linear)]
    return Network.from_weights([(m.weight.detach().double().numpy(), m.bias.detach().double().numpy())
                                 for m in lin])


def grid(seeds, inputs, depths, widths):
    for seed in seeds:
        for n in inputs:
            for depth in depths:
                for w in widths:
                    net = torch_net(seed, n, depth, w)
                    yield f"s{seed}-{n}-{'x'.join([str(w)] * depth)}", Problem.build(net, 0.0, 1.0, maximize=0)


def mnist(eps_list, props=(0,)):
    from reluopt.io.onnx import load_onnx

    net = load_onnx(DATA / "mnistfc" / "mnist-net_256x2.onnx")
    for k in props:
        for eps in eps_list:
            text = (DATA / "mnistfc" / f"prop_{k}_{eps}.vnnlib").read_text()
            lb = np.zeros(net.input_dim)
            ub = np.ones(net.input_dim)
            for op, i, v in re.findall(r"\(assert \((<=|>=) X_(\d+) ([-+0-9.eE]+)\)\)", text):
                (ub if op == "<=" else lb)[int(i)] = float(v)
            label = int(re.search(r"label: (\d+)", text).group(1))
            y = net.forward(0.5 * (lb + ub))
            runner = int(np.argsort(y)[-2] if np.argmax(y) == label else np.argmax(y))
            c = np.zeros(net.output_dim)
            c[runner], c[label] = 1.0, -1.0
            yield f"mnist-p{k}-{eps}", Problem.build(net, lb, ub, c=c, sense="max")


# ----------------------------------------------------------------------------- runs
def run_mip(problem: Problem, budget: float, seed: int, incumbent=None) -> dict:
    """``solve_mip`` (HiGHS, big-M with CROWN bounds, built inside the budget) WITHOUT the
    sampled start (``start_samples=0``): the solver's own incumbent is the baseline. With
    ``incumbent`` it is the warm-started MIP instead."""
    from reluopt.methods.mip import solve_mip

    t0 = time.perf_counter()
    r = solve_mip(problem, time_limit=budget, seed=seed, start_samples=0, incumbent=incumbent)
    return {"value": r.value, "bound": r.bound, "status": r.status,
            "seconds": time.perf_counter() - t0, "nodes": r.stats.get("nodes"),
            "binaries": r.stats.get("binaries")}


def per_iteration_costs(problem: Problem, seed: int = 0, n_lp: int = 3, n_it: int = 20) -> dict:
    """Median seconds of one PPGA-LR step (64 starts) and of one region LP (reused model)."""
    net = problem.network
    rng = np.random.default_rng(seed)
    X = sample_domain(problem.domain, 64, rng)
    c = problem.max_form()[0]
    times = []
    for _ in range(n_it):
        t = time.perf_counter()
        _, G, S = forward_masks(net, X)
        U = backward(net, S, np.broadcast_to(c, (64, c.shape[0])))
        ratio_test(net, G, S, directional(net, S, U))
        times.append(time.perf_counter() - t)
    region = RegionLP(problem)
    pats = phase_patterns(net, X[:n_lp])
    lp = []
    for i in range(n_lp):
        t = time.perf_counter()
        region.solve([p[i] for p in pats])
        lp.append(time.perf_counter() - t)
    return {"ppga_lr_step": float(np.median(times)), "region_lp": float(np.median(lp))}


def run_instance(name, problem, budget, methods, seed, costs=True, warm=False) -> dict:
    row = {"instance": name, "budget": budget, "values": {}, "stats": {}}
    for m in methods:
        t = time.perf_counter()
        r = get_method(m)(problem, time_limit=budget, seed=seed)
        row["values"][m] = r.value
        row["stats"][m] = {"seconds": time.perf_counter() - t, "status": r.status, "x": r.x,
                           **{k: v for k, v in r.stats.items() if isinstance(v, int | float | str)}}
        print(f"  {name} {m:13s} {r.value!s:>22} ({time.perf_counter() - t:.1f} s)", flush=True)
    mip = run_mip(problem, budget, seed)
    row["values"]["mip"] = mip["value"]
    row["stats"]["mip"] = mip
    print(f"  {name} {'mip (HiGHS)':13s} {mip['value']!s:>22} bound {mip['bound']} {mip['status']}",
          flush=True)
    if warm:
        heur = [(row["values"][m], m) for m in methods if row["values"].get(m) is not None]
        if heur:
            best_m = max(heur)[1]
            w = run_mip(problem, budget, seed, incumbent=row["stats"][best_m]["x"])
            row["values"]["mip-warm"] = w["value"]
            row["stats"]["mip-warm"] = {**w, "from": best_m}
            print(f"  {name} {'mip (warm)':13s} {w['value']!s:>22} bound {w['bound']} {w['status']}",
                  flush=True)
    for m in methods:
        row["stats"][m].pop("x", None)
    if costs:
        with single_threaded_blas():
            row["cost"] = per_iteration_costs(problem)
    return row


def best_known(rows) -> dict:
    """Best value (max sense) per instance over every row and budget; proven optima flagged."""
    best, proven = {}, set()
    for r in rows:
        for v in r["values"].values():
            if v is not None and v > best.get(r["instance"], -np.inf):
                best[r["instance"]] = v
        for key in ("mip", "mip-warm"):
            if r["stats"].get(key, {}).get("status") == "optimal":
                proven.add(r["instance"])
    return {k: (v, k in proven) for k, v in best.items()}


def table(rows, methods) -> str:
    """Per row: each method's shortfall from the best value known for the instance (over all
    budgets in ``rows``; * = proven optimal by the MIP), the best heuristic against the MIP
    incumbent at the same budget, and the per-iteration costs."""
    known = best_known(rows)
    cols = [*methods, "mip"] + (["mip-warm"] if any("mip-warm" in r["values"] for r in rows) else [])
    head = ("| instance | budget | best known | " + " | ".join(cols)
            + " | best heuristic vs MIP | PPGA-LR step (ms) | region LP (ms) |")
    lines = [head, "|" + "---|" * (len(cols) + 6)]
    for r in rows:
        best, proven = known.get(r["instance"], (None, False))
        cells = []
        for m in cols:
            v = r["values"].get(m)
            if m not in r["values"]:
                cells.append("")
            elif v is None or best is None:
                cells.append("none")
            else:
                rel = (best - v) / max(abs(best), 1e-12)
                cells.append("0" if rel <= 1e-9 else f"-{100 * rel:.2f}%")
        heur = [r["values"][m] for m in methods if r["values"].get(m) is not None]
        mipv = r["values"].get("mip")
        if heur and mipv is not None:
            d = (max(heur) - mipv) / max(abs(mipv), 1e-12)
            vs = f"{100 * d:+.2f}%"
        else:
            vs = "MIP has none" if heur else "-"
        c = r.get("cost")
        cost = (f"{1e3 * c['ppga_lr_step']:.2f} | {1e3 * c['region_lp']:.1f}" if c else " | ")
        best_s = "-" if best is None else f"{best:.6g}{'*' if proven else ''}"
        lines.append(f"| {r['instance']} | {r['budget']:g} | {best_s} | " + " | ".join(cells)
                     + f" | {vs} | {cost} |")
    return "\n".join(lines)


def profile(seconds: float) -> None:
    """cProfile of PPGA-LR and of repeated region LPs on a 100-500-500-1 grid net."""
    import scipy.stats.qmc  # noqa: F401  (steady state: keep the one-off import out)

    problem = torch_net(50, 100, 2, 500)
    problem = Problem.build(problem, 0.0, 1.0, maximize=0)
    for name, fn in (("ppga-lr", lambda: get_method("ppga-lr")(problem, time_limit=seconds)),
                     ("region LPs", lambda: _region_loop(problem, seconds))):
        pr = cProfile.Profile()
        pr.enable()
        out = fn()
        pr.disable()
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(14)
        print(f"### {name}: {out}\n{s.getvalue()}")


def _region_loop(problem, seconds):
    region = RegionLP(problem)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        x = sample_domain(problem.domain, 1, rng)[0]
        region.solve_point(x)
        n += 1
    return f"{n} region LPs, {region.iterations / max(n, 1):.0f} simplex iterations each"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="50")
    ap.add_argument("--budget", default="10", help="comma-separated seconds per method")
    ap.add_argument("--inputs", default="10,100,1000")
    ap.add_argument("--depths", default="1,2,3")
    ap.add_argument("--widths", default="100,500")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--no-mnist", action="store_true")
    ap.add_argument("--mnist-props", default="0")
    ap.add_argument("--only-claim", action="store_true",
                    help="only the instances of the claim: hidden width 500 or input size 1000")
    ap.add_argument("--no-costs", action="store_true", help="skip the per-iteration cost measurement")
    ap.add_argument("--warm", action="store_true",
                    help="also run the MIP warm-started from the best heuristic point")
    ap.add_argument("--tables", metavar="JSON,JSON",
                    help="print the table of earlier runs (best known taken over all of them)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--profile-seconds", type=float, default=5.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "local_search.json"))
    a = ap.parse_args()
    if a.profile:
        profile(a.profile_seconds)
        return
    if a.tables:
        rows = [r for f in a.tables.split(",") for r in json.loads(Path(f).read_text())]
        names = [m for m in METHODS if any(m in r["values"] for r in rows)]
        print(table(rows, names))
        return
    ints = lambda s: [int(v) for v in s.split(",") if v]  # noqa: E731
    methods = [m for m in a.methods.split(",") if m]
    import scipy.stats.qmc  # noqa: F401  (first import is ~1 s: keep it off every clock)

    rows = []
    for budget in [float(b) for b in a.budget.split(",")]:
        instances = list(grid(ints(a.seeds), ints(a.inputs), ints(a.depths), ints(a.widths)))
        if a.only_claim:
            instances = [(n, p) for n, p in instances
                         if p.network.input_dim == 1000 or max(p.network.hidden_sizes) == 500]
        if not a.no_mnist and (DATA / "mnistfc").is_dir():
            instances += list(mnist(("0.03", "0.05"), ints(a.mnist_props)))
        for name, problem in instances:
            rows.append(run_instance(name, problem, budget, methods, seed=0, costs=not a.no_costs,
                                     warm=a.warm))
            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
            Path(a.out).write_text(json.dumps(rows, indent=1, default=str))
    print()
    print(table(rows, methods))


if __name__ == "__main__":
    main()
