"""Invert the digits decoder and do compressed sensing with Surfing, against direct descent.

    .venv/bin/python examples/surfing/run_surfing.py [--latent 4] [--targets 30]

Trains the decoder first if its checkpoints are missing, then runs the equivalent of

    reluopt surf examples/surfing/checkpoints/latent4 --in-range 30 --digits 30 \\
        --measurements none --measurements gaussian:32 --measurements gaussian:16 --compare

In-range targets ``y = G_T(x*)`` have global minimum 0 at ``x*`` (success: objective < 1e-6
or ||x - x*|| < 1e-3); held-out digits are not exactly in range, so for them the table shows
how often each method found the best fit of all methods and the median reconstruction error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latent", type=int, default=4)
    ap.add_argument("--targets", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    folder = HERE / "checkpoints" / f"latent{args.latent}"
    if not (folder / "index.json").exists():
        from train_digits_decoder import train

        train(args.latent)
    from reluopt.cli import main as cli

    return cli(["surf", str(folder), "--in-range", str(args.targets), "--digits", str(args.targets),
                "--measurements", "none", "--measurements", "gaussian:32", "--measurements", "gaussian:16",
                "--compare", "--seed", str(args.seed)])


if __name__ == "__main__":
    sys.exit(main())
