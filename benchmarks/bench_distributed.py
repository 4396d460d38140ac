"""Speed-up of branch and bound on a Dask cluster: one hard VNN-COMP instance, serial against
``verify(..., workers=N)``, interleaved in one run, each in a fresh interpreter.

    .venv/bin/python benchmarks/bench_distributed.py --repeats 3 --variants serial,2
    .venv/bin/python benchmarks/bench_distributed.py --onnx ACASXU_run2a_4_2_batch_2000.onnx --vnnlib prop_2.vnnlib
    .venv/bin/python benchmarks/bench_distributed.py --in-process 20     # farming's cost without Dask

Each run reports the verdict, wall seconds, CPU seconds of the run's process and of its
children (the local cluster's worker processes, counted once they exit), the nodes bounded
(last progress report of each exact run) and nodes per wall second and per CPU second. The
table gives medians per variant and the serial/variant ratio of the medians. The machine's
load average is printed before and after: on a shared machine it decides what a second worker
can give.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACAS = ROOT.parent / "shared" / "data" / "acasxu"


def one_run(onnx: str, vnnlib: str, workers: int, timeout: float) -> dict:
    """Run one verification in this process and return its figures."""
    import reluopt
    from reluopt.search.cluster import Cluster
    from reluopt.verification import load_vnnlib, verify

    net = reluopt.load(ACAS / onnx)
    prop = load_vnnlib(ACAS / vnnlib)
    nodes: dict = {}
    tasks: dict = {}

    def progress(info):
        if "nodes" in info:
            nodes[info.get("phase", "")] = info["nodes"]

    t0 = time.perf_counter()
    if workers:
        with Cluster(workers=workers) as cluster:
            verdict = verify(net, prop, timeout=timeout, progress=progress, workers=cluster)
            wall = time.perf_counter() - t0
            tasks = {"cluster_started": cluster._client is not None}
    else:
        verdict = verify(net, prop, timeout=timeout, progress=progress)
        wall = time.perf_counter() - t0
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    n = sum(nodes.values())
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return {"status": verdict.status, "method": verdict.method, "wall": wall, "verify_seconds": verdict.seconds,
            "cpu_self": me.ru_utime + me.ru_stime, "cpu_children": kids.ru_utime + kids.ru_stime, "cpu": cpu,
            "nodes": n, "nodes_per_s": n / max(wall, 1e-9), "nodes_per_cpu_s": n / max(cpu, 1e-9), **tasks}


def tasks_in_process(onnx: str, vnnlib: str, cpu_seconds: float, task_seconds: float) -> None:
    """The engine cost of farming without Dask: the instance's only pair searched (a) serially and
    (b) as the driver farms it (tasks of ``task_seconds`` through ``run_subtree``, pickled both
    ways, one after the other in this process), each for ``cpu_seconds`` of CPU time."""
    import math
    import pickle

    import reluopt
    from reluopt.methods.region import RegionLP
    from reluopt.parallel import blas_threads
    from reluopt.search import InputSplit, Limits, Search, Settings
    from reluopt.search.distributed import GapSpec, Task, run_subtree
    from reluopt.tracker import Anytime
    from reluopt.verification import load_vnnlib
    from reluopt.verification.falsify import margin_problem

    net = reluopt.load(ACAS / onnx)
    box = load_vnnlib(ACAS / vnnlib).boxes[0]
    problem = margin_problem(net, box.lb, box.ub, box.disjuncts[0])
    settings = Settings(abs_gap=0.0, rel_gap=0.0, stop_above=0.0, stop_below=0.0)
    for mode in ("serial", "tasks"):
        anytime = Anytime(problem, "bab")
        strategy = InputSplit(problem, anytime, settings, 0, region_lp=RegionLP)
        search = Search(Limits())
        c0 = time.process_time()
        with blas_threads(1):
            roots = strategy.roots(search)
            if mode == "serial":
                search.limits.should_stop = lambda c0=c0: time.process_time() - c0 > cpu_seconds
                search.run(strategy, roots)
            else:
                for node in roots:
                    search.frontier.push(node)
                spec = GapSpec(InputSplit, problem, settings, 0, {"region_lp": RegionLP})
                while search.frontier and time.process_time() - c0 < cpu_seconds:
                    nodes = search.frontier.pop(min(64, max(1, len(search.frontier) // 4)))
                    task = Task(nodes, task_seconds, math.inf, math.inf, search.nodes, anytime.x)
                    report = pickle.loads(pickle.dumps(run_subtree(spec, pickle.loads(pickle.dumps(task)))))
                    search.nodes += report.nodes
                    for node in report.open:
                        search.frontier.push(node)
        cpu = time.process_time() - c0
        print(json.dumps({"mode": mode, "nodes": search.nodes, "cpu": cpu, "nodes_per_cpu_s": search.nodes / cpu}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", default="ACASXU_run2a_4_2_batch_2000.onnx")
    ap.add_argument("--vnnlib", default="prop_2.vnnlib")
    ap.add_argument("--variants", default="serial,2", help="comma list: serial or a worker count")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)   # child mode: workers
    ap.add_argument("--out", default=None, help="append one JSON line per run here")
    ap.add_argument("--in-process", type=float, default=None, metavar="CPU_S",
                    help="no cluster: the serial search against the same tasks run in this process, "
                    "CPU_S CPU seconds each (the engine's cost of farming, without Dask)")
    args = ap.parse_args()
    if args.in_process is not None:
        tasks_in_process(args.onnx, args.vnnlib, args.in_process, 2.0)
        return
    if args.one is not None:
        print(json.dumps(one_run(args.onnx, args.vnnlib, args.one, args.timeout)))
        return
    variants = [0 if v == "serial" else int(v) for v in args.variants.split(",")]
    print(f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; load average before: {os.getloadavg()}")
    runs: dict[int, list[dict]] = {v: [] for v in variants}
    for rep in range(args.repeats):
        order = variants if rep % 2 == 0 else variants[::-1]     # interleaved, alternating order
        for v in order:
            cmd = [sys.executable, __file__, "--onnx", args.onnx, "--vnnlib", args.vnnlib, "--one", str(v),
                   "--timeout", str(args.timeout)]
            load = os.getloadavg()[0]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ)
            rec = json.loads(out.stdout.strip().splitlines()[-1])
            rec.update(variant=v, repeat=rep, load1=load)
            runs[v].append(rec)
            print(json.dumps(rec), flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
    print(f"# load average after: {os.getloadavg()}")
    base = statistics.median(r["wall"] for r in runs[variants[0]])
    print("\n| variant | verdicts | median wall s | median CPU s | median nodes | nodes/wall s | nodes/CPU s "
          "| wall ratio (first/this) |")
    print("|---|---|---|---|---|---|---|---|")
    for v, rs in runs.items():
        wall = statistics.median(r["wall"] for r in rs)
        print(f"| {'serial' if v == 0 else f'{v} workers'} | {', '.join(r['status'] for r in rs)} | {wall:.1f} "
              f"| {statistics.median(r['cpu'] for r in rs):.1f} | {statistics.median(r['nodes'] for r in rs):.0f} "
              f"| {statistics.median(r['nodes_per_s'] for r in rs):.0f} "
              f"| {statistics.median(r['nodes_per_cpu_s'] for r in rs):.0f} | {base / wall:.2f} |")


if __name__ == "__main__":
    main()
