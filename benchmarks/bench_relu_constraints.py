"""ReLU splitting (``bab-relu``) against the MIP (``mip``) and input splitting (``bab``) on
constrained problems: the data behind the constrained part of ``portfolio.exact_method``.

Seeded random ReLU nets (He-scaled normal weights, small biases, two outputs) on ``[0, 1]^n``;
maximise ``y_0`` subject to a budget ``sum x <= n / 4`` and an output constraint
``y_1 <= q`` (``q``: the median of ``y_1`` over 4096 uniform samples of the box). Every method
gets the same time limit and one thread, interleaved (every method on a problem before the
next problem, every problem before the next repeat); medians over the repeats.

    python benchmarks/bench_relu_constraints.py                     # 15 s, 2 repeats: about 5 min
    python benchmarks/bench_relu_constraints.py --time-limit 5 --repeats 1 --nets 20x50x2

Prints one line per run and a markdown table: median certified bound (lower = tighter), median
incumbent (higher = better), and the bound's gap to the best incumbent any run found.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import reluopt  # noqa: E402
from reluopt import Domain, Network, Problem  # noqa: E402
from reluopt.problem import Objective, OutputConstraints  # noqa: E402

METHODS = ("bab-relu", "mip", "bab")


def make_problem(n: int, width: int, depth: int, seed: int = 0) -> Problem:
    """The constrained problem of an ``n``-input net with ``depth`` hidden layers of ``width``."""
    rng = np.random.default_rng(seed)
    sizes = [n, *[width] * depth, 2]
    weights = [(rng.normal(size=(sizes[i + 1], sizes[i])) * np.sqrt(2.0 / sizes[i]),
                0.1 * rng.normal(size=sizes[i + 1])) for i in range(len(sizes) - 1)]
    net = Network.from_weights(weights)
    X = rng.uniform(0.0, 1.0, size=(4096, n))
    q = float(np.median(net.forward(X)[:, 1]))
    dom = Domain(np.zeros(n), np.ones(n), np.ones((1, n)), np.array([n / 4.0]))
    return Problem(net, dom, Objective(np.array([1.0, 0.0])), OutputConstraints(np.array([[0.0, 1.0]]), np.array([q])))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time-limit", type=float, default=15.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--nets", default="12x50x2,20x50x2,40x100x2", help="inputs x width x hidden layers")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args(argv)
    nets = [tuple(int(v) for v in s.split("x")) for s in args.nets.split(",")]
    methods = args.methods.split(",")
    rows: dict[tuple[str, str], list[tuple[str, float, float | None, float]]] = {}
    for _ in range(args.repeats):
        for n, width, depth in nets:
            name = f"{n}-{'-'.join([str(width)] * depth)}-2"
            for m in methods:
                problem = make_problem(n, width, depth)
                t0 = time.perf_counter()
                r = reluopt.solve(problem, m, time_limit=args.time_limit, threads=1)
                s = time.perf_counter() - t0
                rows.setdefault((name, m), []).append((r.status, r.bound, r.value, s))
                print(name, m, r.status, r.bound, r.value, f"{s:.1f}", r.stats.get("nodes"), flush=True)
    best: dict[str, float] = {}
    for (name, _), v in rows.items():
        for x in v:
            if x[2] is not None:
                best[name] = max(best.get(name, -np.inf), x[2])
    print("\n| problem | method | statuses | median bound | median incumbent | bound - best incumbent | median s |")
    print("|---|---|---|---|---|---|---|")
    for (name, m), v in rows.items():
        bounds = [x[1] for x in v if x[1] is not None]
        values = [x[2] for x in v if x[2] is not None]
        b = statistics.median(bounds) if bounds else float("nan")
        print(f"| {name} | {m} | {','.join(x[0] for x in v)} | {b:.4g} | "
              f"{statistics.median(values) if values else float('nan'):.4g} | "
              f"{b - best.get(name, float('nan')):.3g} | {statistics.median(x[3] for x in v):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
