"""Two reformer units in one general model, solved by reluopt's own methods (``reluopt.Model``).

Each unit runs the same surrogate (``../reformer/reformer.npz``: bypass fraction and NG steam
ratio in, H2 and N2 mole fractions out) at its own operating point. The boiler supplies steam
in steps of 0.05 (an integer number of steps per unit) and both units share a steam budget.
Maximise the mean H2 fraction minus operating costs on the inputs, with N2 at most 0.34 in
each unit:

    python examples/model/reformer_units.py [--method auto|mip|bab] [--time-limit 60]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import reluopt

NET = Path(__file__).resolve().parents[1] / "reformer" / "reformer.npz"
STEAM_COST = 0.02     # per unit of NG steam ratio (illustrative prices, in H2 mole-fraction units)
BYPASS_COST = 0.01    # per unit of bypass fraction
STEP = 0.05           # the boiler's steam-ratio step
STEAM_BUDGET = 2.1    # both units' steam ratios together


def build() -> reluopt.Model:
    """The model: two units, integer steam steps, a shared budget, costs on the inputs.

    Returns
    -------
    reluopt.Model
    """
    net = reluopt.load(NET)
    m = reluopt.Model("two reformer units")
    for u in ("a", "b"):
        m.add_var(f"bypass_{u}", 0.1, 0.8)
        m.add_var(f"steps_{u}", 0, 8, integer=True)
        m.add_var(f"steam_{u}", 0.8, 1.2)
        m.add_constraint(f"steam_{u} == 0.8 + {STEP}*steps_{u}")
        m.add_network(net, [f"bypass_{u}", f"steam_{u}"], name=f"y_{u}")     # y = (H2, N2)
        m.add_constraint(f"y_{u}[1] <= 0.34")
    m.add_constraint(f"steam_a + steam_b <= {STEAM_BUDGET}")
    m.maximize(f"0.5*y_a[0] + 0.5*y_b[0] - {STEAM_COST}*(steam_a + steam_b) - {BYPASS_COST}*(bypass_a + bypass_b)")
    return m


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="auto", choices=["auto", "mip", "bab"])
    parser.add_argument("--time-limit", type=float, default=60.0)
    args = parser.parse_args(argv)
    model = build()
    res = model.solve(args.method, time_limit=args.time_limit)
    print(f"{model.describe()}")
    print(f"status {res.status} ({res.method}), objective {res.value:.6f}, bound {res.bound:.6f}")
    for u in ("a", "b"):
        v, y = res.values, res.outputs[f"y_{u}"]
        print(f"  unit {u}: bypass {v[f'bypass_{u}']:.4f}, steam ratio {v[f'steam_{u}']:.2f} "
              f"({round(v[f'steps_{u}'])} steps); H2 {y[0]:.4f}, N2 {y[1]:.4f}")
    print(f"  largest violation {res.violation:.1e}; {res.stats.get('nodes', 0)} nodes, "
          f"{res.seconds:.1f} s")
    return 0 if res.status == "optimal" else 1


if __name__ == "__main__":
    raise SystemExit(main())
