"""Certified bounds on the Relax-and-Walk nets: reluopt (bab-relu, bab, mip) against gurobi-machinelearning.

Tools ``bab-mixed`` and ``bab-input-first`` are ``bab-relu`` with ``branching="fsb-mixed"`` and
``"input-first"`` (an input or a ReLU split per node, ``search.mixed_split``).

Instances: the Relax-and-Walk grid's own nets as ``bench_local_search.torch_net`` makes them
(torch default initialisation, ``torch.manual_seed(seed)``, 10 inputs, 1, 2 or 3 hidden layers
of width 100, one output), maximise the output over [0, 1]^10. Each (instance, tool) runs in
its own subprocess with one thread (BLAS, torch, Gurobi) and the same time limit; the tools
are interleaved within each repeat, so the load hits them alike. Every returned point is
re-evaluated by reluopt's forward pass, and every tool's bound is checked against every
verified incumbent of the instance (a sound upper bound is never beaten).

Gurobi runs under the size-limited licence installed in the venv; a refusal is recorded.

    python benchmarks/bench_relu_peers.py                              # 60 s, 1 repeat, ~12 min
    python benchmarks/bench_relu_peers.py --time-limit 20 --tools bab-relu,gurobiml --depths 2
    python benchmarks/bench_relu_peers.py --tools bab,bab-relu,bab-mixed --inputs 30 --depths 2
    python benchmarks/bench_relu_peers.py --tools auto,auto@base,gurobiml --base-src /tmp/base/src

Writes ``benchmarks/out/relu_peers.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
if os.environ.get("BENCH_RELUOPT_SRC"):      # a tool "NAME@base" runs reluopt from --base-src
    sys.path.insert(0, os.environ["BENCH_RELUOPT_SRC"])
    import reluopt  # noqa: E402  (imported now, before bench_local_search puts ROOT/src first)

    assert reluopt.__file__.startswith(os.environ["BENCH_RELUOPT_SRC"]), reluopt.__file__

TOOLS = ("bab-relu", "bab", "mip", "gurobiml")
EXTRA_TOOLS = {"bab-mixed": ("bab-relu", {"branching": "fsb-mixed"}),
               "bab-input-first": ("bab-relu", {"branching": "input-first"})}
MARK = "@@RESULT "


def instance(seed: int, depth: int, inputs: int = 10):
    """The Relax-and-Walk net ``seed``, ``inputs`` inputs, ``depth`` x 100, maximise y over [0, 1]^inputs."""
    from bench_local_search import torch_net

    from reluopt import Problem

    return Problem.build(torch_net(seed, inputs, depth, 100), 0.0, 1.0, maximize=0)


def run_tool(tool: str, problem, time_limit: float) -> dict:
    """One certified run of ``tool``; the record has the bound, the incumbent and its input."""
    if tool == "gurobiml":
        from bench_mip_peers import run_gurobiml

        rec = run_gurobiml(problem, time_limit)
        rec["seconds"] = rec.get("build_s", 0.0) + rec.get("solve_s", 0.0)
        return rec
    import reluopt

    method, extra = EXTRA_TOOLS.get(tool.split("@")[0], (tool.split("@")[0], {}))
    opts = {"threads": 1, **extra} if method in ("mip", "bab", "bab-relu") else {}
    t0 = time.perf_counter()
    res = reluopt.solve(problem, method, time_limit=time_limit, **opts)
    return {"status": res.status, "bound": res.bound, "incumbent": res.value, "seconds": time.perf_counter() - t0,
            "x": None if res.x is None else res.x.tolist(), "nodes": res.stats.get("nodes"),
            "nodes_per_s": res.stats.get("nodes_per_s"), "input_splits": res.stats.get("input_splits")}


def worker(tool: str, seed: int, depth: int, time_limit: float, inputs: int = 10) -> None:
    """Run one (tool, instance) and print its record on one marked line."""
    import torch

    torch.set_num_threads(1)
    try:
        rec = run_tool(tool, instance(seed, depth, inputs), time_limit)
    except Exception as exc:  # a peer's failure is a result to report
        rec = {"status": "error", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    print(MARK + json.dumps(rec, default=float), flush=True)


def spawn(tool: str, seed: int, depth: int, time_limit: float, inputs: int = 10,
          base_src: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", tool, str(seed), str(depth), "--time-limit", str(time_limit),
           "--inputs", str(inputs)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env.pop("BENCH_RELUOPT_SRC", None)
    if tool.endswith("@base"):
        if not base_src:
            raise SystemExit(f"tool {tool} needs --base-src")
        env["BENCH_RELUOPT_SRC"] = base_src
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=2 * time_limit + 180, env=env)
    except subprocess.TimeoutExpired:
        return {"status": "killed", "wall_s": time.perf_counter() - t0}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"status": "error", "error": f"exit {proc.returncode}: {' | '.join(tail)[:300]}"}
    rec = json.loads(lines[-1][len(MARK):])
    rec["wall_s"] = time.perf_counter() - t0
    return rec


def fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", nargs=3, metavar=("TOOL", "SEED", "DEPTH"))
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=50)
    ap.add_argument("--depths", default="1,2,3")
    ap.add_argument("--tools", default=",".join(TOOLS),
                    help=f"comma-separated, of {', '.join([*TOOLS, *EXTRA_TOOLS])} or any reluopt method "
                         "(e.g. auto); NAME@base runs it from --base-src")
    ap.add_argument("--inputs", type=int, default=10)
    ap.add_argument("--base-src", help="a reluopt src directory for the NAME@base tools (e.g. main's)")
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), int(args.worker[2]), args.time_limit, args.inputs)
        return 0
    tools, depths = args.tools.split(","), [int(d) for d in args.depths.split(",")]
    start = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load0 = os.getloadavg()
    runs: dict[tuple[int, str], list[dict]] = {}
    for r in range(args.repeats):
        for depth in depths:
            order = tools if r % 2 == 0 else tools[::-1]
            for tool in order:
                rec = spawn(tool, args.seed, depth, args.time_limit, args.inputs, args.base_src)
                runs.setdefault((depth, tool), []).append(rec)
                print(f"# repeat {r} depth {depth} {tool}: {rec.get('status')} bound {rec.get('bound')} "
                      f"incumbent {rec.get('incumbent')} nodes {rec.get('nodes')} "
                      f"input splits {rec.get('input_splits')} "
                      f"{rec.get('error', '')}", flush=True)
    lines = ["| net | tool | statuses | median bound | median incumbent | bound / Gurobi's | median s | nodes |",
             "|---|---|---|---|---|---|---|---|"]
    issues = []
    for depth in depths:
        problem = instance(args.seed, depth, args.inputs)
        verified = []
        for tool in tools:
            for rec in runs[(depth, tool)]:
                if rec.get("x") is not None:
                    v = float(problem.objective_values(np.asarray(rec["x"]))[0])
                    verified.append((tool, v))
        best = max((v for _, v in verified), default=None)
        med = {t: statistics.median([x["bound"] for x in runs[(depth, t)] if x.get("bound") is not None] or [math.nan])
               for t in tools}
        for tool in tools:
            recs = runs[(depth, tool)]
            for rec in recs:
                b = rec.get("bound")
                for other, v in verified:
                    if b is not None and b < v - 1e-4 * (1 + abs(v)):
                        issues.append(f"depth {depth}: {tool}'s bound {b:.6g} beaten by {other}'s point {v:.6g}")
            inc = statistics.median([x["incumbent"] for x in recs if x.get("incumbent") is not None] or [math.nan])
            g = med.get("gurobiml", math.nan)
            ratio = med[tool] / g if g and math.isfinite(g) and math.isfinite(med[tool]) else math.nan
            secs = statistics.median([x.get("seconds", x.get("wall_s", math.nan)) for x in recs])
            nodes = [x["nodes"] for x in recs if x.get("nodes") is not None]
            statuses = ",".join(x.get("status", "?") + (f" ({x['error'][:60]})" if x.get("error") else "")
                                for x in recs)
            lines.append(f"| {args.inputs}-{'-'.join(['100'] * depth)}-1 s{args.seed} | {tool} | {statuses} | "
                         f"{fmt(med[tool])} | {fmt(inc)} | {fmt(ratio)} | {secs:.1f} | "
                         f"{fmt(statistics.median(nodes)) if nodes else '-'} |")
        lines.append(f"| | best verified point | | | {fmt(best)} | | | |")
    lines += ["", f"run {start}, `python benchmarks/bench_relu_peers.py --time-limit {args.time_limit:g} "
              f"--repeats {args.repeats} --depths {args.depths} --tools {args.tools} --inputs {args.inputs}"
              f"{' --base-src ' + args.base_src if args.base_src else ''}`, load average "
              f"{load0[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end",
              "soundness cross-check: " + ("; ".join(issues) if issues else "every bound >= every verified point")]
    out = ROOT / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / "relu_peers.json").write_text(json.dumps({f"{d}:{t}": v for (d, t), v in runs.items()}, default=float))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
