"""Two source trees side by side on the same cases: did a change keep bab and verify as fast?

Each case runs in a fresh interpreter with ``PYTHONPATH`` set to one tree's ``src``, the two trees
alternating, so both see the same machine load; the report gives medians and the new/old ratio,
and whether node counts, statuses and values agree.

    git worktree add /tmp/old f7af476
    python benchmarks/bench_ab.py --old /tmp/old --new . --repeats 3
    python benchmarks/bench_ab.py --old /tmp/old --new . --cases vnn:4_2:prop_2 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ACAS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "acasxu"
PEAKS = Path(__file__).resolve().parents[1] / "examples" / "peaks" / "models" / "peaks_2-64-64-1.npz"
CASES = ("bab:1_1", "bab-tight:1_1", "prop1:5_6", "prop1:5_8", "peaks", "vnn:1_1:prop_1", "vnn:2_1:prop_2")

#: The code each case runs in the child interpreter (it prints one JSON line).
CHILD = r"""
import json, sys, time
import numpy as np
import reluopt
try:
    from reluopt.verification import load_vnnlib, verify
except ImportError:                      # trees before the verification package
    from reluopt.io.vnnlib import load_vnnlib
    from reluopt.verify import verify
from reluopt.methods.bab import bab_maximize_min
acas, peaks, case = sys.argv[1], sys.argv[2], sys.argv[3]
kind, *args = case.split(":")
net_file = lambda n: f"{acas}/ACASXU_run2a_{n}_batch_2000.onnx"
t = time.perf_counter()
if kind in ("bab", "bab-tight"):
    box = load_vnnlib(f"{acas}/prop_1.vnnlib").boxes[0]
    p = reluopt.Problem.build(reluopt.load(net_file(args[0])), box.lb, box.ub, maximize=0)
    gaps = {"rel_gap": 1e-4, "abs_gap": 0.0} if kind == "bab-tight" else {}
    r = reluopt.solve(p, method="bab", time_limit=120, **gaps)
    out = [r.status, r.stats.get("nodes"), r.value]
elif kind == "prop1":
    box = load_vnnlib(f"{acas}/prop_1.vnnlib").boxes[0]
    o = bab_maximize_min(reluopt.load(net_file(args[0])), box.lb, box.ub, np.eye(5)[:1], [0.0],
                         stop_below=3.9911, time_limit=120)
    out = [o.status, o.nodes, o.bound]
elif kind == "vnn":
    v = verify(reluopt.load(net_file(args[0])), load_vnnlib(f"{acas}/{args[1]}.vnnlib"), timeout=116)
    out = [v.status, v.method, None]
else:
    r = reluopt.solve(reluopt.Problem.build(reluopt.load(peaks), -3, 3, minimize=0), method="bab", time_limit=60)
    out = [r.status, r.stats.get("nodes"), r.value]
print(json.dumps({"t": time.perf_counter() - t, "out": out}))
"""


def run_case(tree: Path, case: str) -> dict:
    """One case in a fresh interpreter on ``tree``'s source; returns ``{"t": seconds, "out": [...]}``."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    done = subprocess.run([sys.executable, "-c", CHILD, str(ACAS), str(PEAKS), case], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Run the cases alternately on both trees and print a markdown table.

    Parameters
    ----------
    argv : list of str or None
        Command-line arguments (``--help`` lists them).

    Returns
    -------
    int
        0.
    """
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=Path, required=True, help="the baseline tree (a worktree of an older commit)")
    ap.add_argument("--new", type=Path, default=Path("."), help="the tree under test (default: here)")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated (default: {','.join(CASES)})")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    times: dict[tuple[str, str], list[float]] = {}
    outs: dict[tuple[str, str], list] = {}
    for _ in range(args.repeats):
        for case in args.cases.split(","):
            for label, tree in (("old", args.old), ("new", args.new)):
                got = run_case(tree.resolve(), case)
                times.setdefault((case, label), []).append(got["t"])
                outs.setdefault((case, label), []).append(got["out"])
                print(f"{label} {case}: {got['t']:.2f} s {got['out']}", file=sys.stderr)
    print("| case | old s | new s | new/old | same answer |\n|---|---|---|---|---|")
    for case in args.cases.split(","):
        old, new = statistics.median(times[(case, "old")]), statistics.median(times[(case, "new")])
        same = outs[(case, "old")] == outs[(case, "new")]
        print(f"| {case} | {old:.2f} | {new:.2f} | {new / old:.2f} | {'yes' if same else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
