"""ReLU-split branch and bound (``bab-relu``) vs the big-M MIP (``mip``) vs input splitting (``bab``).

Instances: seeded random nets with 20-50 inputs (``tests/conftest.random_network``-style weights,
box [-1, 1]^d, maximise the single output) and one MNIST-FC 256x2 property from
``../shared/data/mnistfc`` (maximise the margin ``y_j - y_label`` of the disjunct whose CROWN
bound is largest over the property's box; a certified bound < 0 proves that disjunct safe).
Every method gets the same time limit, in this process, one BLAS thread; each run is repeated
``--repeats`` times and the median certified bound, incumbent and time are reported.

    timeout 900 python benchmarks/bench_relu_split.py                 # ~6-8 min on a busy 2-core box
    python benchmarks/bench_relu_split.py --time-limit 5 --repeats 1  # a quick look

Prints a markdown table (also written to ``benchmarks/out/relu_split.md``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import reluopt  # noqa: E402
from reluopt import Domain, Network, Problem  # noqa: E402
from reluopt.bounds import crown_bounds  # noqa: E402
from reluopt.bounds.crown import linear_output_bounds  # noqa: E402
from reluopt.problem import Objective  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
METHODS = ("bab-relu", "mip", "bab")


def random_network(sizes, seed=0, scale=1.0) -> Network:
    rng = np.random.default_rng(seed)
    return Network.from_weights([(scale * rng.normal(size=(sizes[i + 1], sizes[i])) / np.sqrt(sizes[i]),
                                  scale * 0.5 * rng.normal(size=sizes[i + 1])) for i in range(len(sizes) - 1)])


def random_instances() -> list[tuple[str, Problem]]:
    out = []
    for sizes, seed in (([20, 50, 50, 1], 0), ([30, 100, 100, 1], 1), ([50, 100, 100, 1], 2)):
        net = random_network(sizes, seed)
        d = sizes[0]
        out.append(("-".join(map(str, sizes)) + f" s{seed}",
                    Problem(net, Domain(-np.ones(d), np.ones(d)), Objective(np.ones(1), 0.0, "max"))))
    return out


def mnist_instance(prop: str) -> tuple[str, Problem] | None:
    folder = DATA / "mnistfc"
    if not folder.is_dir():
        return None
    from reluopt.io import load_model
    from reluopt.verification import load_vnnlib

    net = load_model(folder / "mnist-net_256x2.onnx")
    p = load_vnnlib(folder / f"{prop}.vnnlib").check(net)
    box = p.boxes[0]
    # each disjunct is one atom C y <= e (unsafe); its margin e - C y >= 0 is the objective
    assert all(d.C.shape[0] == 1 for d in box.disjuncts), "one atom per disjunct expected"
    rows = np.concatenate([-d.C for d in box.disjuncts])
    offs = np.concatenate([d.e for d in box.disjuncts])
    cb = crown_bounds(net, box.lb, box.ub)
    up = linear_output_bounds(net, box.lb, box.ub, rows, cb)[0][0] + offs
    j = int(np.argmax(up))
    return (f"mnist 256x2 {prop} (row {j})",
            Problem(net, Domain(box.lb, box.ub), Objective(rows[j], float(offs[j]), "max")))


def run(problem: Problem, method: str, time_limit: float) -> dict:
    t0 = time.perf_counter()
    res = reluopt.solve(problem, method, time_limit=time_limit)
    return {"status": res.status, "bound": res.bound, "value": res.value, "seconds": time.perf_counter() - t0,
            "nodes": res.stats.get("nodes")}


def fmt(v) -> str:
    return "-" if v is None else f"{v:.5g}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mnist", default="prop_1_0.03", help="MNIST-FC property (file stem); '' to skip")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args(argv)
    instances = random_instances()
    if args.mnist:
        got = mnist_instance(args.mnist)
        if got is not None:
            instances.append(got)
    methods = args.methods.split(",")
    lines = [f"time limit {args.time_limit:g} s, medians over {args.repeats} runs, load average "
             f"{os.getloadavg()[0]:.1f} at the start", "",
             "| instance | method | statuses | median bound | median value | median s | median nodes |",
             "|---|---|---|---|---|---|---|"]
    for name, problem in instances:
        for method in methods:
            runs = [run(problem, method, args.time_limit) for _ in range(args.repeats)]
            med = {k: statistics.median([r[k] for r in runs if r[k] is not None] or [float("nan")])
                   for k in ("bound", "value", "seconds")}
            nodes = [r["nodes"] for r in runs if r["nodes"] is not None]
            row = (f"| {name} | {method} | {','.join(r['status'] for r in runs)} | {fmt(med['bound'])} | "
                   f"{fmt(med['value'])} | {med['seconds']:.1f} | {fmt(statistics.median(nodes)) if nodes else '-'} |")
            print(row, flush=True)
            lines.append(row)
    out = ROOT / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / "relu_split.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
