"""The reformer surrogate inside a user's own highspy model, with operating costs on its inputs.

The user's model: choose the bypass fraction (continuous) and the NG steam ratio, which the
boiler supplies in steps of 0.05 (an integer number of steps), to maximise the H2 mole fraction
minus operating costs on both inputs, with N2 at most 0.34. The network (``../reformer/
reformer.npz``, 2-10-10-10-10-2, raw units in and out) enters with one call,
``reluopt.embed.highspy.add_network_constr``, which reads the input bounds from the variables,
computes CROWN bounds and adds the big-M formulation without the stable neurons.

    python examples/embed/embed_reformer.py
"""

from __future__ import annotations

from pathlib import Path

import highspy

import reluopt
from reluopt.embed.highspy import add_network_constr

NET = Path(__file__).resolve().parents[1] / "reformer" / "reformer.npz"
STEAM_COST = 0.02     # per unit of NG steam ratio (illustrative prices, in H2 mole-fraction units)
BYPASS_COST = 0.01    # per unit of bypass fraction
STEP = 0.05           # the boiler's steam-ratio step


def main() -> int:
    net = reluopt.load(NET)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    bypass = h.addVariable(lb=0.1, ub=0.8, name="bypass")
    steam = h.addVariable(lb=0.8, ub=1.2, name="steam")
    steps = h.addVariable(lb=0, ub=8, type=highspy.HighsVarType.kInteger, name="steps")
    h.addConstr(steam == 0.8 + STEP * steps)

    nn = add_network_constr(h, net, [bypass, steam])          # y = net(bypass, steam)
    h2, n2 = nn.output_vars
    h.addConstr(n2 <= 0.34)
    h.maximize(h2 - STEAM_COST * steam - BYPASS_COST * bypass)

    status = h.modelStatusToString(h.getModelStatus())
    s = nn.stats
    print(f"network {net.describe()}: {s['binaries']} binaries, {s['stable_neurons']}/{s['hidden_neurons']} "
          f"stable neurons, largest big-M {s['largest_big_m']:.3g} ({s['bounds']} bounds)")
    print(f"status {status}, objective {h.getInfo().objective_function_value:.5f}")
    print(f"  bypass {h.val(bypass):.4f}, steam ratio {h.val(steam):.2f} ({round(h.val(steps))} steps)")
    print(f"  H2 {h.val(h2):.4f}, N2 {h.val(n2):.4f}; get_error() = {nn.get_error():.1e}")
    return 0 if status == "Optimal" and nn.get_error() < 1e-6 else 1


if __name__ == "__main__":
    raise SystemExit(main())
