"""The wall-clock checks that used to be test assertions, measured here instead of asserted on a
shared machine.

The tests now check the same behaviour deterministically (the run reports that the limit stopped
it, OBBT receives half the limit, a parser stops part way, a bad option fails before any method
starts). What they no longer check is how soon: how far a run overshoots its time limit, how long
the MNIST model takes to build, how quickly a refusal comes. This script measures those, next to a
baseline measured in the same run (a fixed NumPy workload on one thread), and prints each against
the bound the test used to assert.

    .venv/bin/python benchmarks/bench_speed_checks.py [--repeats 3] [--json benchmarks/out/speed_checks.json]

Columns: ``seconds`` (best of the repeats), ``old bound`` (the former assertion), ``/bound``
(seconds over that bound: above 1 the old test would have failed), ``/limit`` (for time-limit
checks, seconds over the run's own limit), ``/baseline`` (seconds in units of the baseline
workload, comparable across machines). Exit status 1 with ``--strict`` when any check exceeds
its old bound.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import reluopt
from reluopt import Problem
from reluopt.cli import main as cli_main
from reluopt.errors import ReluoptError
from reluopt.milp.formulation import build_problem_model
from reluopt.parallel import single_threaded_blas
from reluopt.verification import VnnlibTimeout, load_vnnlib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import random_network  # noqa: E402  (the seeded networks of the tests)

DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "out"


def baseline() -> float:
    """A fixed workload: 200 products of 256 x 256 matrices on one BLAS thread."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(256, 256))
    with single_threaded_blas():
        t = time.perf_counter()
        for _ in range(200):
            a = np.tanh(a @ a.T / 256.0)
        return time.perf_counter() - t


# ----------------------------------------------------------------------------- the checks
def _solve(sizes, net_seed, lb, ub, method, limit, **options) -> Callable[[], None]:
    def run() -> None:
        net = random_network(sizes, seed=net_seed)
        problem = Problem.build(net, lb, ub, maximize=0)
        reluopt.solve(problem, method, time_limit=limit, **options)
    return run


def _big_vnnlib(path: Path, n_boxes: int = 30_000) -> None:
    rows = [f"  (and (>= X_0 {k * 1e-3:.4f}) (<= X_0 {0.5 + k * 1e-3:.4f}) (>= X_1 0) (<= X_1 1) (<= Y_0 Y_1))"
            for k in range(n_boxes)]
    path.write_text("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
                    "(declare-const Y_1 Real)\n(assert (or\n" + "\n".join(rows) + "\n))\n")


def _vnnlib_parse(folder: Path) -> Callable[[], None]:
    big = folder / "big.vnnlib"
    _big_vnnlib(big)

    def run() -> None:
        with contextlib.suppress(VnnlibTimeout):
            load_vnnlib(big, time_limit=0.05)
    return run


def _small_net_file(folder: Path) -> Path:
    from reluopt.io import save_npz

    path = folder / "net.npz"
    save_npz(random_network([2, 6, 2], seed=1), path)
    return path


def _quiet_cli(argv) -> Callable[[], None]:
    def run() -> None:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            cli_main([str(a) for a in argv])
    return run


def _verify_parse_timeout(folder: Path) -> Callable[[], None]:
    big = folder / "big.vnnlib"
    if not big.exists():
        _big_vnnlib(big)
    return _quiet_cli(["verify", _small_net_file(folder), big, "--timeout", "0.05",
                       "--counterexample", folder / "ce.txt"])


def _mnist_build() -> Callable[[], None] | None:
    path = DATA / "mnistfc" / "mnist-net_256x2.onnx"
    if not path.is_file():
        return None
    net = reluopt.load(path)
    problem = Problem.build(net, np.zeros(784), np.full(784, 0.05), maximize=3)
    bounds = reluopt.bounds.crown_bounds(net, problem.domain.lb, problem.domain.ub)

    def run() -> None:
        build_problem_model(problem, bounds)
    return run


def checks(folder: Path) -> list[tuple[str, float | None, float, Callable[[], None] | None]]:
    """``(name, the run's own time limit or None, the bound the test asserted, run)``."""
    box5, box8, box4 = (-np.ones(5), np.ones(5)), (-np.ones(8), np.ones(8)), (-np.ones(4), np.ones(4))
    tight = {"abs_gap": 1e-9, "rel_gap": 1e-9}
    out: list[tuple[str, float | None, float, Callable[[], None] | None]] = [
        ("bab 5-60x3-1, limit 0.5 s (test_bab)", 0.5, 3.0, _solve([5, 60, 60, 60, 1], 1, *box5, "bab", 0.5, **tight)),
        ("mip 8-64x3-1, limit 1 s (test_mip)", 1.0, 10.0, _solve([8, 64, 64, 64, 1], 0, *box8, "mip", 1.0)),
        ("mip lp-obbt 4-40x3-1, limit 2 s (test_mip_obbt)", 2.0, 8.0,
         _solve([4, 40, 40, 40, 1], 1, *box4, "mip", 2.0, bounds="lp-obbt", rescale=True)),
        ("ppga 50-100x2-1, limit 0.3 s (test_gradient)", 0.3, 2.0,
         _solve([50, 100, 100, 1], 0, 0, 1, "ppga", 0.3, stall_iterations=None)),
        ("ppga-lr 50-100x2-1, limit 0.3 s (test_gradient)", 0.3, 2.0,
         _solve([50, 100, 100, 1], 0, 0, 1, "ppga-lr", 0.3, stall_iterations=None)),
        ("sampling 20-200x2-1, limit 0.5 s (test_sampling)", 0.5, 3.0,
         _solve([20, 200, 200, 1], 0, 0, 1, "sampling", 0.5, stall_samples=None)),
        ("walk 10-60x2-1, limit 0.5 s (test_walk)", 0.5, 3.0,
         _solve([10, 60, 60, 1], 3, 0, 1, "walk", 0.5, seed=4, stall_walks=None)),
    ]
    no_stall = {"sampling": {"stall_samples": None}, "sampling-mip": {"stall_samples": None},
                "walk": {"stall_walks": None}, "ppga": {"stall_iterations": None},
                "ppga-lr": {"stall_iterations": None}, "auto": {}}
    for method, options in no_stall.items():
        out.append((f"{method} 20-120x2-1, limit 0.6 s (test_local_search)", 0.6, 3.1,
                    _solve([20, 120, 120, 1], 1, 0, 1, method, 0.6, seed=0, **options)))
    out += [
        ("MNIST 784-256x2-10 model build (test_mip)", None, 1.0, _mnist_build()),
        ("VNN-LIB parse, limit 0.05 s (test_bad_input)", 0.05, 0.5, _vnnlib_parse(folder)),
        ("verify CLI, parse timeout 0.05 s (test_bad_input)", 0.05, 1.0, _verify_parse_timeout(folder)),
        ("solve CLI, unknown option refused (test_bad_input)", None, 10.0,
         _quiet_cli(["solve", _small_net_file(folder), "--box=0,1", "--maximize", "0", "-q", "--time-limit", "30",
                     "-o", "foo=1"])),
        ("solve CLI, output folder missing (test_bad_input)", None, 5.0,
         _quiet_cli(["solve", _small_net_file(folder), "--box=0,1", "--maximize", "0", "-q",
                     "--json", folder / "no_such_dir" / "r.json"])),
    ]
    return out


def best_of(run: Callable[[], None], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        try:
            run()
        except ReluoptError:
            pass
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs per check (default 3)")
    parser.add_argument("--json", type=Path, default=OUT / "speed_checks.json")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a check exceeds its old bound")
    args = parser.parse_args(argv)
    base = min(baseline() for _ in range(3))
    print(f"baseline (200 x tanh(A A^T / 256), 256 x 256, one thread): {base:.3f} s\n")
    print(f"| {'check':<58} | seconds | old bound | /bound | /limit | /baseline |")
    print(f"|{'-' * 60}|--------:|----------:|-------:|-------:|----------:|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, limit, bound, run in checks(Path(tmp)):
            if run is None:
                print(f"| {name:<58} | skipped: {DATA} is absent |")
                continue
            s = best_of(run, args.repeats)
            per_limit = "" if limit is None else f"{s / limit:.2f}"
            print(f"| {name:<58} | {s:7.2f} | {bound:9.2f} | {s / bound:6.2f} | {per_limit:>6} | {s / base:9.1f} |",
                  flush=True)
            rows.append({"check": name, "seconds": s, "limit": limit, "old_bound": bound, "baseline": base})
    over = [r["check"] for r in rows if r["seconds"] > r["old_bound"]]
    print(f"\n{len(rows)} checks, {len(over)} over their old bound" + (f": {', '.join(over)}" if over else ""))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"baseline": base, "rows": rows}, indent=1))
    return 1 if args.strict and over else 0


if __name__ == "__main__":
    sys.exit(main())
