"""Maximise H2 subject to N2 <= 0.34 over the reformer surrogate, with reluopt's exact MIP.

The network (``reformer.npz``, made by ``train_reformer.py``) takes raw inputs (Bypass
Fraction, NG Steam Ratio) and returns raw mole fractions (``y[0]`` = H2, ``y[1]`` = N2), so
the box is the data's own input range. The answer is printed next to the data's best
feasible row (H2 = 0.3316 at (0.1, 1.126)) and the best data row *according to the
surrogate*, which the certified optimum can only match or beat.

    python examples/reformer/solve_reformer.py [--time-limit 60]

The same from the command line:

    reluopt solve examples/reformer/reformer.npz --box 0.1:0.8,0.8:1.2 --maximize 0 \
        --constraint "y[1]<=0.34" --method mip --time-limit 60 --json out.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from reluopt import Problem
from reluopt.io import load_npz
from reluopt.methods.mip import solve_mip

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from train_reformer import MODEL, N2_MAX, best_feasible_row, load_data  # noqa: E402

CONSTRAINT = f"y[1] <= {N2_MAX}"


def reformer_problem(path: Path = MODEL) -> Problem:
    """max H2 s.t. N2 <= 0.34 over the input box stored with the model."""
    net = load_npz(path)
    return Problem.build(net, net.meta["box_lb"], net.meta["box_ub"], maximize=0, constraints=[CONSTRAINT])


def best_surrogate_row(problem: Problem, X: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The data input with the largest surrogate H2 among those feasible for the surrogate."""
    ok = problem.is_feasible(X)
    if not ok.any():
        return None
    vals = np.where(ok, problem.objective_values(X), -np.inf)
    i = int(np.argmax(vals))
    return X[i], float(vals[i])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds for the MIP (default 60)")
    args = parser.parse_args(argv)
    problem = reformer_problem()
    net = problem.network
    res = solve_mip(problem, time_limit=args.time_limit)
    X, Y = load_data()
    xd, yd = best_feasible_row(X, Y)
    row = best_surrogate_row(problem, X)
    print(f"model {MODEL.name} ({net.describe()}), box {problem.domain.lb.tolist()} .. {problem.domain.ub.tolist()}")
    print(f"maximise H2 s.t. {CONSTRAINT}: status {res.status}, {res.seconds:.2f} s, "
          f"{res.stats.get('binaries')} binaries")
    if res.x is None:
        print("no feasible point found")
        return 1
    y = net.forward(res.x)
    print(f"  reluopt MIP       H2 {res.value:.4f} (bound {res.bound:.4f}, gap {res.gap:.1e})  N2 {y[1]:.4f}"
          f"  at ({res.x[0]:.4f}, {res.x[1]:.4f})")
    print(f"  data's best row   H2 {yd[0]:.4f} (N2 {yd[1]:.4f}) at ({xd[0]:.4f}, {xd[1]:.4f}); "
          f"surrogate there H2 {net.forward(xd)[0]:.4f}, N2 {net.forward(xd)[1]:.4f}")
    if row is not None:
        print(f"  best data row by the surrogate: H2 {row[1]:.4f} at ({row[0][0]:.4f}, {row[0][1]:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
