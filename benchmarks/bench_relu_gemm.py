"""Nodes per second of ``bab-relu`` against the machine's GEMM throughput: how close to the limit.

1. **GEMM peak**: numpy float64 and float32 matrix products at the shapes of the batched
   back-substitution (``(rows, n_j) @ (n_j, n_{j-1})``: rows = nodes x objective rows for the
   node bound, nodes x 2 x unstable neurons for the intermediate CROWN bounds), one BLAS thread,
   best of several timings (the peak the hardware gives numpy).
2. **bab-relu run**: a fixed node budget, in a fresh interpreter per run (``PYTHONPATH`` =
   the source tree(s) given), one BLAS thread. Every GEMM of the bounding is counted at the
   kernel's entry points (``backsubstitute``: 2 rows n_out n_in per layer pushed through;
   ``_value_grad``: its backward and forward passes), so FLOPs per node and achieved GFLOP/s
   are measured, not estimated. The limit is ``peak / (FLOPs per node)`` nodes per second.
   With two trees (``--old``), the runs alternate old/new and the table gives new/old.

    python benchmarks/bench_relu_gemm.py                                  # ~3 min
    python benchmarks/bench_relu_gemm.py --old /tmp/old/src --repeats 3   # A/B against another tree
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MARK = "@@RESULT "
CASES = {"rnw 10-100-100-1": ("rnw", 2), "rnw 10-100-100-100-1": ("rnw", 3), "30-100-100-1 s1": ("random", 1),
         "mnist 256x2 prop_1_0.03": ("mnist", 0)}

CHILD = r"""
import json, sys, time
sys.path.insert(0, BENCH)
import numpy as np
from threadpoolctl import threadpool_limits
import reluopt
from reluopt.search import relu_bounds
from reluopt.bounds import node as node_mod
flops = [0.0]
def count_back(fn):
    def wrapped(network, k, spec, lines, *a, **kw):
        rows = spec.shape[0] * spec.shape[1]
        flops[0] += sum(2.0 * rows * L.W.shape[0] * L.W.shape[1] for L in network.layers[:k + 1])
        return fn(network, k, spec, lines, *a, **kw)
    return wrapped
def count_vg(fn):
    def wrapped(net, lo, hi, spec, *a, **kw):
        rows = spec.shape[0]
        flops[0] += sum(2.0 * rows * L.W.shape[0] * L.W.shape[1] for L in net.layers)       # backward
        flops[0] += sum(2.0 * rows * L.W.shape[0] * L.W.shape[1] for L in net.hidden_layers)  # forward at x*
        return fn(net, lo, hi, spec, *a, **kw)
    return wrapped
relu_bounds.backsubstitute = count_back(relu_bounds.backsubstitute)
node_mod.backsubstitute = count_back(node_mod.backsubstitute)
if hasattr(relu_bounds, "_value_grad"):
    relu_bounds._value_grad = count_vg(relu_bounds._value_grad)
from bench_relu_split import random_instances, mnist_instance
from bench_relu_peers import instance
kind, arg, nodes = KIND, ARG, NODES
if kind == "rnw":
    problem = instance(50, arg)
elif kind == "random":
    problem = random_instances()[arg][1]
else:
    problem = mnist_instance("prop_1_0.03")[1]
with threadpool_limits(1):
    reluopt.solve(problem, "bab-relu", node_limit=64, threads=1)       # warm-up (imports, caches)
    flops[0] = 0.0
    t0 = time.perf_counter()
    res = reluopt.solve(problem, "bab-relu", node_limit=nodes, threads=1)
    sec = time.perf_counter() - t0
print("@@RESULT " + json.dumps({"seconds": sec, "nodes": res.stats["nodes"], "flops": flops[0],
      "bound": res.bound, "status": res.status, "bounding": res.stats.get("seconds_bounding"),
      "branching": res.stats.get("seconds_branching"), "primal": res.stats.get("seconds_primal")}))
"""


def gemm_peak(rows: int, n: int, k: int, dtype, repeats: int = 7) -> float:
    """Best GFLOP/s of ``(rows, n) @ (n, k)`` over ``repeats`` timings (one BLAS thread)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.normal(size=(rows, n)).astype(dtype)
    b = rng.normal(size=(n, k)).astype(dtype)
    best = np.inf
    with threadpool_limits(1):
        a @ b
        for _ in range(repeats):
            reps = max(1, int(2e8 / (2 * rows * n * k)))
            t0 = time.perf_counter()
            for _ in range(reps):
                a @ b
            best = min(best, (time.perf_counter() - t0) / reps)
    return 2.0 * rows * n * k / best / 1e9


def run_child(src: str, case: str, nodes: int) -> dict:
    kind, arg = CASES[case]
    code = (CHILD.replace("BENCH", repr(str(ROOT / "benchmarks"))).replace("KIND", repr(kind))
            .replace("ARG", repr(arg)).replace("NODES", str(nodes)))
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if not lines:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(lines[-1][len(MARK):])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--new", default=str(ROOT / "src"))
    ap.add_argument("--old", default=None, help="another tree's src for an interleaved A/B")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--nodes", type=int, default=4000, help="node budget (MNIST: a tenth)")
    args = ap.parse_args(argv)
    start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = os.getloadavg()[0]
    lines = ["GEMM peak, numpy, one BLAS thread (best of 7):", "",
             "| shape (rows, n) @ (n, k) | float64 GFLOP/s | float32 GFLOP/s |", "|---|---|---|"]
    peaks = {}
    for shape in ((64, 100, 100), (384, 100, 100), (12800, 100, 100), (64, 256, 784), (64, 784, 256),
                  (4096, 256, 784)):
        p64, p32 = gemm_peak(*shape, np.float64), gemm_peak(*shape, np.float32)
        peaks[shape] = p64
        lines.append(f"| {shape} | {p64:.1f} | {p32:.1f} |")
    peak = max(peaks.values())
    trees = [("new", args.new)] + ([("old", args.old)] if args.old else [])
    runs: dict[tuple[str, str], list[dict]] = {}
    for r in range(args.repeats):
        for case in args.cases.split(","):
            nodes = args.nodes // 10 if "mnist" in case else args.nodes
            for name, src in (trees if r % 2 == 0 else trees[::-1]):
                runs.setdefault((case, name), []).append(run_child(src, case, nodes))
                print(f"# {r} {case} {name}: {runs[(case, name)][-1]}", flush=True)
    lines += ["", f"bab-relu at a fixed node budget, medians over {args.repeats} runs (peak = {peak:.1f} GFLOP/s, "
              "the best float64 figure above):", "",
              "| case | tree | nodes | s | nodes/s | GEMM MFLOP/node | achieved GFLOP/s | % of peak | "
              "limit nodes/s | bounding / branching / primal s | new/old time |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in args.cases.split(","):
        for name, _ in trees:
            rs = runs[(case, name)]
            sec = statistics.median(x["seconds"] for x in rs)
            nodes = statistics.median(x["nodes"] for x in rs)
            fl = statistics.median(x["flops"] for x in rs)
            split = "/".join(f"{statistics.median(x[k] or 0 for x in rs):.1f}"
                             for k in ("bounding", "branching", "primal"))
            ratio = ""
            if args.old and name == "new":
                ratio = f"{sec / statistics.median(x['seconds'] for x in runs[(case, 'old')]):.2f}"
            lines.append(f"| {case} | {name} | {nodes:.0f} | {sec:.2f} | {nodes / sec:.0f} | "
                         f"{fl / nodes / 1e6:.2f} | "
                         f"{fl / sec / 1e9:.2f} | {100 * fl / sec / 1e9 / peak:.0f}% | "
                         f"{peak * 1e9 / (fl / nodes):.0f} | "
                         f"{split} | {ratio} |")
    lines += ["", f"run {start}, `python benchmarks/bench_relu_gemm.py --repeats {args.repeats} --nodes {args.nodes}"
              + (" --old OLD" if args.old else "") + f"`, load average {load0:.2f} at the start, "
              f"{os.getloadavg()[0]:.2f} at the end"]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
