"""Differential soundness benchmark: every certificate reluopt gives, against brute force.

Random small problems (tests/bruteforce.py ``random_case``: badly scaled nets with weights
spanning 1e-3..1e3, near-duplicate neurons, mostly stable or mostly unstable layers; tiny,
flat and wide boxes; polytopes that cut or empty the box; output constraints that may be
infeasible; max or min of a linear combination of outputs). Each problem's truth is the
brute force over its activation regions (one LP per region). Then bab, mip (HiGHS), auto
and mip with SCIP, plus a few extras (mip with 2 threads, auto with the MIP, the sampling /
ppga-lr / walk heuristics), run in a seeded random order, ALL IN THIS ONE PROCESS (solvers
keep global state between runs), and every result is checked:

- ``optimal``: the value meets the brute-force optimum within the gap tolerances
  (README "Soundness": max(1e-4, 1e-4 |value|), plus 1e-6 (1 + |value|) bound widening);
- every bound is on the right side of the optimum (short by at most 1e-6 (1 + |optimum|));
- ``infeasible`` only when the brute force finds no point;
- the returned x is feasible up to 1e-6 and its forward pass (computed here) is the value;
- no NaN. A ``ReluoptError`` is a clear refusal (counted, not unsound); ``CertificateError``
  (the method's own check caught a bad result) and any other exception are reported.

A finding explained by the constraint tolerances (feasible only within 1e-5, a bound below
the optimum but above the optimum with constraints tightened by 1e-5) is "borderline", not
unsound. ``truth`` findings mean the brute force disagrees with a point that checks out here
(a harness problem, to look at by hand).

    python benchmarks/differential.py --problems 500 --seed 0 --time-limit 5
    python benchmarks/differential.py --replay benchmarks/out/differential.json --case 0
    python benchmarks/differential.py --replay benchmarks/out/differential.json --case 0 --calls 3,5

Writes the cases with findings (unsound, borderline, truth, crash, cert_error) to
``benchmarks/out/differential.json``, each with the problem, the order, every call's seed and
result, and a Python snippet that rebuilds the problem. ``--minimize`` reruns each unsound
call in fresh processes: alone, and after each single earlier call of its order, to find the
shortest order that reproduces it.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bruteforce import (  # noqa: E402
    CALLS,
    EXACT_CALLS,
    EXTRA_CALLS,
    OUTCOMES,
    Case,
    Truth,
    check_call,
    random_order,
    report_text,
    run_call,
    run_case,
)
from reluopt.result import jsonable  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "differential.json"
KINDS = ("unsound", "status", "borderline", "truth")   # findings; crash and cert_error are outcomes


def _jsonable(obj):
    return jsonable(obj, default=lambda o: o.to_json() if isinstance(o, Case) else o)


def record(rep: dict) -> dict:
    """What the JSON keeps of a report: the case, order, calls and a rebuild snippet."""
    out = {k: rep[k] for k in ("seed", "describe", "order", "truth", "calls", "kinds")}
    out["case"] = rep["case"].to_json()
    out["snippet"] = rep["case"].snippet()
    out["text"] = report_text(rep)
    return _jsonable(out)


def run(args) -> int:
    rng = np.random.default_rng(args.seed)
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=args.problems)]
    per_call = collections.defaultdict(collections.Counter)     # name -> outcome counts
    found = collections.defaultdict(collections.Counter)        # name -> finding kinds
    truths = collections.Counter()
    saved = []
    t0 = time.perf_counter()
    for i, seed in enumerate(seeds):
        base = EXACT_CALLS if not args.base else tuple(args.base.split(","))
        order = random_order(np.random.default_rng([seed, 2]), base, EXTRA_CALLS, (0, args.extras))
        rep = run_case(seed, order=order, size=args.size, time_limit=args.time_limit,
                       heuristic_time=args.heuristic_time)
        truths["feasible" if rep["truth"]["feasible"] else "infeasible"] += 1
        if not rep["truth"]["reliable"]:
            truths["unreliable"] += 1
        for r in rep["calls"]:
            per_call[r["name"]][r["outcome"]] += 1
            for kind, _ in r["findings"]:
                found[r["name"]][kind] += 1
        if rep["kinds"]:
            saved.append(record(rep))
        n_uns = sum(c["unsound"] for c in found.values())
        outs = " ".join(f"{r['name']}={r['outcome']}" for r in rep["calls"])
        tv = rep["truth"]["value"]
        print(f"[{i + 1}/{len(seeds)}] {time.perf_counter() - t0:6.0f}s seed {seed} {rep['describe'].split(' ', 2)[2]} "
              f"truth={'infeasible' if tv is None else f'{tv:.6g}'} regions={rep['truth']['regions']} | {outs} "
              f"| unsound so far {n_uns}", flush=True)
        text = report_text(rep)
        if text:
            print(text, flush=True)
        if saved and (i + 1) % 10 == 0:
            write(saved, args.out)
    if saved:
        write(saved, args.out)
    summary(seeds, per_call, found, truths, time.perf_counter() - t0, args)
    if args.minimize and saved:
        minimize(args.out, args)
    return 1 if any(found[n]["unsound"] or per_call[n]["crash"] or per_call[n]["cert_error"] for n in per_call) else 0


def write(saved: list, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=1))


def summary(seeds, per_call, found, truths, seconds, args) -> None:
    names = sorted(per_call, key=lambda n: (n not in EXACT_CALLS, n))
    print()
    print(f"problems {len(seeds)} (seed {args.seed}, size {args.size}, time limit {args.time_limit} s, "
          f"heuristics {args.heuristic_time} s) in {seconds:.0f} s")
    print(f"truth: feasible {truths['feasible']}, infeasible {truths['infeasible']}, "
          f"unreliable (cross-checks only) {truths['unreliable']}")
    cols = [o for o in OUTCOMES if any(per_call[n][o] for n in names)]
    head = f"{'call':10} {'runs':>5} {'checked':>7} " + " ".join(f"{c:>11}" for c in cols) + " " + " ".join(
        f"{k:>10}" for k in KINDS)
    print(head)
    for n in names:
        runs = sum(per_call[n].values())
        checked = runs - sum(per_call[n][o] for o in ("refused", "crash", "cert_error"))
        print(f"{n:10} {runs:5d} {checked:7d} " + " ".join(f"{per_call[n][c]:11d}" for c in cols) + " "
              + " ".join(f"{found[n][k]:10d}" for k in KINDS))
    total = {k: sum(found[n][k] for n in names) for k in KINDS}
    total.update({k: sum(per_call[n][k] for n in names) for k in ("crash", "cert_error", "refused")})
    print("UNSOUND", total["unsound"], "| false status", total["status"], "| borderline", total["borderline"],
          "| truth disagreements", total["truth"], "| crash", total["crash"], "| cert_error", total["cert_error"],
          "| refused", total["refused"])
    if any(total[k] for k in ("unsound", "status", "borderline", "truth", "crash", "cert_error")):
        print(f"cases with findings written to {args.out}")


# ---------------------------------------------------------------------------- replay / minimise
def replay(args) -> int:
    """Rerun one saved case (or a subset of its calls, in the given order) in this process.
    Exit 1 when the last call has an unsound/crash/cert_error finding."""
    data = json.loads(Path(args.replay).read_text())[args.case]
    case = Case.from_json(data["case"])
    calls = data["calls"]
    idx = [int(v) for v in args.calls.split(",")] if args.calls else list(range(len(calls)))
    problem = case.problem()
    truth = Truth(case)
    print(f"case {data['describe']}; truth {truth.value!r}")
    bad = False
    for k, i in enumerate(idx):
        c = calls[i]
        rec = run_call(problem, c["name"], time_limit=c["time_limit"], heuristic_time=c["time_limit"], seed=c["seed"],
                       incumbent=c.get("incumbent"))
        rec["findings"] = check_call(case, truth, rec)
        print(f"  call {i} {rec['name']} seed {rec['seed']}: {rec['outcome']} value={rec.get('value')!r} "
              f"bound={rec.get('bound')!r} {rec.get('error', '')}")
        for kind, msg in rec["findings"]:
            print(f"    [{kind}] {msg}")
        if k == len(idx) - 1:
            bad = any(kind == "unsound" for kind, _ in rec["findings"]) or rec["outcome"] in ("crash", "cert_error")
    return 1 if bad else 0


def minimize(path: Path, args) -> None:
    """For each unsound call of each saved case, the shortest orders (in fresh processes) that
    reproduce it: the call alone, then each earlier call followed by it."""
    saved = json.loads(Path(path).read_text())
    print("\nminimising (fresh processes):")
    for ci, data in enumerate(saved):
        for j, c in enumerate(data["calls"]):
            kinds = [k for k, _ in c.get("findings", [])]
            if "unsound" not in kinds and c["outcome"] not in ("crash", "cert_error"):
                continue
            tries = [[j]] + [[i, j] for i in range(j)] + [list(range(j + 1))]
            results = []
            for t in tries:
                cmd = [sys.executable, __file__, "--replay", str(path), "--case", str(ci), "--calls",
                       ",".join(map(str, t))]
                rc = subprocess.run(cmd, capture_output=True, text=True).returncode
                names = " -> ".join(data["calls"][i]["name"] for i in t)
                results.append((rc == 1, names))
                if rc == 1 and len(t) <= 2:
                    break
            rep = [n for ok, n in results if ok]
            print(f"  case {ci} (seed {data['seed']}) call {j} {c['name']}: reproduces with "
                  f"{rep[0] if rep else 'none of the tried orders (needs the full in-process history?)'}")
            data.setdefault("minimal", {})[str(j)] = rep[0] if rep else None
    Path(path).write_text(json.dumps(saved, indent=1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=5.0, help="per exact call (bab, mip, auto)")
    ap.add_argument("--heuristic-time", type=float, default=0.3, help="per heuristic call")
    ap.add_argument("--size", default="bench", choices=["tiny", "test", "bench"], help="hidden-neuron budget")
    ap.add_argument("--extras", type=int, default=4, help="at most this many extra calls per problem")
    ap.add_argument("--base", default="", help="comma-separated calls run on every problem instead of the "
                    "exact ones (e.g. bab-relu,bab to test one method against the brute force)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--minimize", action="store_true", help="find the shortest reproducing orders")
    ap.add_argument("--replay", type=Path, help="rerun a case of a saved JSON")
    ap.add_argument("--case", type=int, default=0, help="with --replay: index in the JSON")
    ap.add_argument("--calls", help="with --replay: comma-separated call indices, in order")
    args = ap.parse_args(argv)
    assert set(EXACT_CALLS) <= set(CALLS)
    if args.replay:
        return replay(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
