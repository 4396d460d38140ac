"""Invert the digits decoder and do compressed sensing with Surfing, against direct descent.

    .venv/bin/python examples/surfing/run_surfing.py [--latent 4] [--targets 30]

In-range targets ``y = G_T(x*)`` (the global minimum is 0 at ``x*``) and held-out digits
(not exactly in range: the best fit is reported), for inversion (A = I) and compressed
sensing with a Gaussian A of m < 64 rows. Prints success rates at equal gradient budgets.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from reluopt.methods.surfing import compare_at_equal_budget, load_checkpoints  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latent", type=int, default=4)
    ap.add_argument("--targets", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    folder = HERE / "checkpoints" / f"latent{args.latent}"
    if not (folder / "index.json").exists():
        from train_digits_decoder import train

        train(args.latent)
    nets = load_checkpoints(folder)
    box_info = json.loads((folder / "latent_box.json").read_text())
    box = (np.array(box_info["lb"]), np.array(box_info["ub"]))
    rng = np.random.default_rng(args.seed)
    x_star = rng.uniform(box[0], box[1], size=(args.targets, args.latent))
    y_star = nets[-1].forward(x_star)
    from train_digits_decoder import digits

    _, held = digits()
    print(f"decoder {nets[-1].describe()}, {len(nets)} checkpoints, {args.targets} targets per row")
    print(f"{'case':34s} {'surfing':>8s} {'direct':>8s} {'restarts':>9s}")
    for m in (64, 32, 16):
        A = None if m == 64 else rng.normal(size=(m, 64)) / np.sqrt(m)
        name = "inversion" if A is None else f"compressed sensing m={m}"
        targets = y_star if A is None else y_star @ A.T
        res = compare_at_equal_budget(nets, targets, box, A=A, x_star=x_star, seed=args.seed)
        rates = [v["success"] for v in res.values()]
        print(f"{name + ' (in range)':34s} {rates[0]:8.0%} {rates[1]:8.0%} {rates[2]:9.0%}")
    res = compare_at_equal_budget(nets, held[: args.targets], box, seed=args.seed)
    med = [v["median_value"] for v in res.values()]
    print(f"{'held-out digits: median objective':34s} {med[0]:8.4f} {med[1]:8.4f} {med[2]:9.4f}")


if __name__ == "__main__":
    main()
