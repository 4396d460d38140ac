"""Minimise the shipped peaks surrogates with reluopt's exact MIP and compare to the truth.

peaks' global minimum on [-3, 3]^2 is -6.5511 at (0.228, -1.626). A surrogate's certified
minimum differs from it by the fit error only, so the answer is printed next to the true
minimum, the true function at the surrogate's minimiser, and the surrogate's own minimum on
a 601 x 601 grid (stored in the model's ``meta`` by ``train_peaks.py``), which the MIP must
match or beat.

    python examples/peaks/solve_peaks.py                      # every model in models/
    python examples/peaks/solve_peaks.py 2-64-64-1 --time-limit 30
    python examples/peaks/solve_peaks.py --method bab        # input-space branch and bound

With two inputs, reluopt's input-space branch and bound (``--method bab``) proves the
optimum in well under a second, while the big-M MIP's LP relaxation is weak on these
surrogates and may stop at the time limit with a loose bound.

The same from the command line:

    reluopt solve examples/peaks/models/peaks_2-64-64-1.npz --box=-3,3 --minimize 0 --method mip --time-limit 60
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from reluopt import Problem, solve
from reluopt.io import load_npz

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"
BOX = (-3.0, 3.0)
TRUE_MIN = -6.551133332835841
TRUE_ARGMIN = (0.228279999979237, -1.625531071954464)


def peaks(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (3 * (1 - x) ** 2 * np.exp(-x**2 - (y + 1) ** 2)
            - 10 * (x / 5 - x**3 - y**5) * np.exp(-x**2 - y**2)
            - np.exp(-(x + 1) ** 2 - y**2) / 3)


def model_paths(names: list[str]) -> list[Path]:
    if not names:
        return sorted(MODELS.glob("peaks_*.npz"), key=lambda p: p.stat().st_size)
    return [MODELS / f"peaks_{n}.npz" if not n.endswith(".npz") else Path(n) for n in names]


def peaks_problem(path: Path) -> Problem:
    return Problem.build(load_npz(path), BOX[0], BOX[1], minimize=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="architectures such as 2-64-64-1 (default: all in models/)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per model (default 60)")
    parser.add_argument("--method", default="mip", help="reluopt method: mip (default), bab, auto, ...")
    args = parser.parse_args(argv)
    paths = model_paths(args.models)
    if not paths:
        print(f"no models in {MODELS}; run examples/peaks/train_peaks.py", file=sys.stderr)
        return 1
    print(f"true minimum {TRUE_MIN:.4f} at ({TRUE_ARGMIN[0]:.3f}, {TRUE_ARGMIN[1]:.3f})")
    for path in paths:
        problem = peaks_problem(path)
        meta = problem.network.meta
        res = solve(problem, args.method, time_limit=args.time_limit)
        line = f"{path.stem:22s} {args.method} {res.status:10s} {res.seconds:6.1f} s"
        if res.x is None:
            print(f"{line}  no incumbent")
            continue
        true_there = float(peaks(res.x[0], res.x[1]))
        grid = f"  grid min {meta['grid_min']:.4f}" if "grid_min" in meta else ""
        print(f"{line}  min {res.value:.4f} (bound {res.bound:.4f}) at ({res.x[0]:.3f}, {res.x[1]:.3f})"
              f"  peaks there {true_there:.4f}{grid}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
