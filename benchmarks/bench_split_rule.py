"""Where input splitting (``bab``) stops and ReLU splitting (``bab-relu``) starts: the data behind
``reluopt.methods.portfolio.exact_method``.

Nets of the Relax-and-Walk grid (``bench_local_search.torch_net``: torch's default init, seed
50, width 100, one output), maximise the output over ``[0, 1]^n``; ``bab``, ``bab-relu`` and
``mip`` get the same time limit, one thread, interleaved (every method on a net before the
next net, every net before the next repeat); medians over the repeats.

    python benchmarks/bench_split_rule.py                       # 15 s, 2 repeats: about 7-8 min
    python benchmarks/bench_split_rule.py --time-limit 5 --repeats 1 --nets 10x1,30x2

Prints one line per run and a markdown table of median bounds (lower = tighter).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_local_search import torch_net  # noqa: E402

import reluopt  # noqa: E402
from reluopt import Problem  # noqa: E402

METHODS = ("bab", "bab-relu", "mip")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time-limit", type=float, default=15.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--nets", default="10x1,10x2,10x3,16x2,30x2", help="inputs x hidden layers (width 100)")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args(argv)
    nets = [tuple(int(v) for v in n.split("x")) for n in args.nets.split(",")]
    methods = args.methods.split(",")
    rows: dict[tuple[str, str], list[tuple[str, float, float, float]]] = {}
    for _ in range(args.repeats):
        for n, depth in nets:
            net = torch_net(50, n, depth, 100)
            name = f"{n}-{'-'.join(['100'] * depth)}-1"
            for m in methods:
                problem = Problem.build(net, 0.0, 1.0, maximize=0)
                opts = {} if m == "mip" else {"threads": 1}
                t0 = time.perf_counter()
                r = reluopt.solve(problem, m, time_limit=args.time_limit, **opts)
                s = time.perf_counter() - t0
                rows.setdefault((name, m), []).append((r.status, r.bound, r.value, s))
                print(name, m, r.status, r.bound, r.value, f"{s:.1f}", flush=True)
    print("\n| net | method | statuses | median bound | median incumbent | median s |")
    print("|---|---|---|---|---|---|")
    for (name, m), v in rows.items():
        bounds = [x[1] for x in v if x[1] is not None]
        values = [x[2] for x in v if x[2] is not None]
        print(f"| {name} | {m} | {','.join(x[0] for x in v)} | "
              f"{statistics.median(bounds) if bounds else float('nan'):.4g} | "
              f"{statistics.median(values) if values else float('nan'):.4g} | "
              f"{statistics.median(x[3] for x in v):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
