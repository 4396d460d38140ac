"""VNN-COMP 2021 instances (ACAS Xu 186, MNIST-FC 30) through ``reluopt.verification``.

Reports solved counts, median/max time, agreement with acasxu/expected_subset.csv and an
onnxruntime re-check of every SAT counterexample on the original ONNX file (float32).

    .venv/bin/python benchmarks/bench_vnncomp.py --suite acasxu --cap 60 --end-by 10:50
    .venv/bin/python benchmarks/bench_vnncomp.py --suite acasxu --expected-only
    .venv/bin/python benchmarks/bench_vnncomp.py --suite all --limit 10 --only prop_1

Each instance gets ``min(official timeout * --timeout-scale, --cap)`` seconds; with
``--end-by HH:MM`` (UTC) the cap is lowered further, only when needed, so that the remaining
instances fit before that time at the mean wall time per instance so far (the cap actually
used is the ``timeout`` column).

Writes benchmarks/out/vnncomp_<suite>.csv (one row per instance, flushed as it goes) and
prints a markdown table.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "out"
SUITES = {"acasxu": DATA / "acasxu" / "acasxu_instances.csv",
          "mnistfc": DATA / "mnistfc" / "mnistfc_instances.csv"}


def expected_answers() -> dict:
    path = DATA / "acasxu" / "expected_subset.csv"
    if not path.exists():
        return {}
    with path.open() as fh:
        return {(r["onnx"], r["vnnlib"]): {"holds": "unsat", "violated": "sat"}[r["expected"]]
                for r in csv.DictReader(fh)}


class OrtChecker:
    """Runs the original ONNX file in onnxruntime (its own dtype, float32 here)."""

    def __init__(self):
        import onnxruntime as ort

        self.ort = ort
        self.sessions: dict = {}

    def outputs(self, path: Path, x: np.ndarray) -> np.ndarray:
        if path not in self.sessions:
            opts = self.ort.SessionOptions()
            opts.intra_op_num_threads = 1
            self.sessions[path] = self.ort.InferenceSession(
                str(path), opts, providers=["CPUExecutionProvider"])
        sess = self.sessions[path]
        inp = sess.get_inputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        dtype = np.float64 if "double" in inp.type else np.float32
        xin = np.asarray(x, dtype).reshape(shape)
        y = sess.run(None, {inp.name: xin})[0]
        return xin.astype(np.float64).reshape(-1), np.asarray(y, dtype=np.float64).reshape(-1)


def seconds_until(hhmm: str | None) -> float:
    """Seconds from now to the next HH:MM UTC (inf when not given)."""
    if not hhmm:
        return float("inf")
    now = dt.datetime.now(dt.UTC)
    h, m = (int(v) for v in hhmm.split(":"))
    end = now.replace(hour=h, minute=m, second=0, microsecond=0)
    if end < now:
        end += dt.timedelta(days=1)
    return (end - now).total_seconds()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=("acasxu", "mnistfc", "all"), default="all")
    ap.add_argument("--limit", type=int, default=None, help="first N instances of each suite")
    ap.add_argument("--timeout-scale", type=float, default=1.0)
    ap.add_argument("--cap", type=float, default=None, help="per-instance time cap in seconds")
    ap.add_argument("--end-by", default=None, metavar="HH:MM",
                    help="UTC time by which the whole run must end (lowers the cap when needed)")
    ap.add_argument("--expected-only", action="store_true",
                    help="only the instances of acasxu/expected_subset.csv")
    ap.add_argument("--only", default=None,
                    help="substring filter on 'onnx vnnlib' (e.g. '1_1_batch' or 'prop_3.')")
    ap.add_argument("--exact", default="auto", choices=("auto", "bab", "bab-relu", "mip", "none"))
    ap.add_argument("--tag", default="", help="suffix of the output file name")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT / "src"))
    from reluopt.cli.verify import read_instances
    from reluopt.io import load_model
    from reluopt.verification import load_vnnlib, verify

    OUT.mkdir(parents=True, exist_ok=True)
    expected = expected_answers()
    checker = OrtChecker()
    suites = list(SUITES) if args.suite == "all" else [args.suite]
    table = []
    for suite in suites:
        instances = read_instances(SUITES[suite])
        if args.only:
            instances = [i for i in instances if args.only in f"{i[0].name} {i[1].name}"]
        if args.expected_only:
            instances = [i for i in instances if (i[0].name, i[1].name) in expected]
        if args.limit is not None:
            instances = instances[: args.limit]
        out_path = OUT / f"vnncomp_{suite}{('_' + args.tag) if args.tag else ''}.csv"
        rows: list[dict] = []
        models: dict = {}
        counts = {"sat": 0, "unsat": 0, "unknown": 0, "error": 0}
        t_start = time.perf_counter()
        for k, (onnx, vnnlib, timeout) in enumerate(instances, start=1):
            tl = timeout * args.timeout_scale
            if args.cap is not None:
                tl = min(tl, args.cap)
            left = seconds_until(args.end_by)
            if left < float("inf"):
                # reserve the mean wall time so far (at least 3 s) for each later instance
                walls = [float(r["wall"]) for r in rows]
                per = max(3.0, statistics.fmean(walls)) if walls else 10.0
                tl = max(1.0, min(tl, left - per * (len(instances) - k)))
            t0 = time.perf_counter()
            try:
                if onnx not in models:
                    models[onnx] = load_model(onnx)
                net = models[onnx]
                prop = load_vnnlib(vnnlib)
                v = verify(net, prop, timeout=tl, exact=args.exact)
                status, seconds, method, stats = v.status, v.seconds, v.method, v.stats
            except Exception as exc:  # a benchmark row, not a crash: the error is the result
                print(f"  error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                status, seconds, method, stats = "error", time.perf_counter() - t0, "", {}
            counts[status] += 1
            ort_ok = ""
            if status == "sat":
                # the witness as onnxruntime reads it (float32), checked against the exact
                # VNN-LIB semantics: inside the box and every atom of some disjunct
                x32, y = checker.outputs(onnx, v.x)
                ort_ok = str(bool(prop.check(net).is_counterexample(x32, y)))
            exp = expected.get((onnx.name, vnnlib.name), "")
            agree = "" if not exp or status in ("unknown", "error") else str(exp == status)
            rows.append({"onnx": onnx.name, "vnnlib": vnnlib.name, "timeout": f"{tl:.1f}",
                         "result": status, "seconds": f"{seconds:.3f}", "method": method,
                         "ort_ok": ort_ok, "expected": exp, "agree": agree,
                         "wall": f"{time.perf_counter() - t0:.3f}",
                         "phases": " ".join(f"{a}={b:.2f}" for a, b in stats.get("phases", {}).items())})
            with out_path.open("w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
            print(f"[{suite} {k}/{len(instances)}] {onnx.stem} {vnnlib.stem}: {status} "
                  f"{seconds:.2f}s/{tl:.0f}s {method} ort={ort_ok or '-'} exp={exp or '-'} "
                  f"(sat {counts['sat']} unsat {counts['unsat']} unknown {counts['unknown']}"
                  f" error {counts['error']})", flush=True)
        if not rows:
            continue
        times = [float(r["seconds"]) for r in rows]
        solved = [float(r["seconds"]) for r in rows if r["result"] in ("sat", "unsat")]
        caps = [float(r["timeout"]) for r in rows]
        table.append({
            "suite": suite, "n": len(rows), "cap s": f"{min(caps):g}-{max(caps):g}",
            "sat": counts["sat"], "unsat": counts["unsat"], "unknown": counts["unknown"],
            "error": counts["error"],
            "median s": statistics.median(times), "max s": max(times),
            "median solved s": statistics.median(solved) if solved else float("nan"),
            "ort re-check": f"{sum(r['ort_ok'] == 'True' for r in rows)}/{counts['sat']}",
            "expected agree": f"{sum(r['agree'] == 'True' for r in rows)}/"
                              f"{sum(bool(r['expected']) for r in rows)}",
            "wrong": sum(r["agree"] == "False" for r in rows),
            "wall s": time.perf_counter() - t_start,
        })
    if table:
        keys = list(table[0])
        print("\n| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        for r in table:
            print("| " + " | ".join(f"{r[k]:.2f}" if isinstance(r[k], float) else str(r[k])
                                    for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
