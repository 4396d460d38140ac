"""Two networks in one highspy model, sharing their inputs: a robust choice under two surrogates.

Two peaks surrogates of different sizes (``../peaks/models/peaks_2-50-50-1.npz`` and
``peaks_2-64-64-1.npz``) were fitted to the same function and disagree a little. The model
picks one input ``x`` for both (each ``add_network_constr`` call gets the same variables) and
minimises the worse of the two predictions, ``t >= y1`` and ``t >= y2``, plus a cost on
``x0``: the answer is good whichever surrogate is right. The second network's bounds come
from the same input box; nothing else couples them.

    python examples/embed/two_networks.py       # about 5 s
"""

from __future__ import annotations

from pathlib import Path

import highspy

import reluopt
from reluopt.embed.highspy import add_network_constr

MODELS = Path(__file__).resolve().parents[1] / "peaks" / "models"
LB, UB = (-0.2, -2.0), (0.6, -1.2)   # a box around the valley of peaks
COST = 0.5                          # per unit of x0


def solve(time_limit: float = 60.0) -> dict:
    """Minimise ``max(net1(x), net2(x)) + COST * x0`` over the box.

    Parameters
    ----------
    time_limit : float, optional
        Seconds for HiGHS.

    Returns
    -------
    dict
        ``status``, ``value``, ``bound``, ``x``, ``y`` (both predictions at ``x``), ``errors``
        (``get_error()`` of each network) and the networks (``nets``).
    """
    nets = [reluopt.load(MODELS / "peaks_2-50-50-1.npz"), reluopt.load(MODELS / "peaks_2-64-64-1.npz")]
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("time_limit", float(time_limit))
    x = [h.addVariable(lb=lo, ub=hi) for lo, hi in zip(LB, UB, strict=True)]
    t = h.addVariable(lb=-highspy.kHighsInf, ub=highspy.kHighsInf)
    embedded = [add_network_constr(h, net, x) for net in nets]      # the same x for both networks
    for nn in embedded:
        h.addConstr(t >= nn.output_vars[0])
    h.minimize(t + COST * x[0])
    info = h.getInfo()
    return {"status": h.modelStatusToString(h.getModelStatus()), "value": info.objective_function_value,
            "bound": info.mip_dual_bound, "x": [h.val(v) for v in x],
            "y": [h.val(nn.output_vars[0]) for nn in embedded], "errors": [nn.get_error() for nn in embedded],
            "nets": nets}


def main() -> int:
    r = solve()
    print(f"status {r['status']}: min max(y1, y2) + {COST:g} x0 = {r['value']:.4f} (bound {r['bound']:.4f})")
    print(f"  x = [{r['x'][0]:.4f} {r['x'][1]:.4f}], y1 = {r['y'][0]:.4f} (2-50-50-1), y2 = {r['y'][1]:.4f} "
          f"(2-64-64-1); get_error() = {max(r['errors']):.1e}")
    return 0 if r["status"] == "Optimal" and max(r["errors"]) < 1e-6 else 1


if __name__ == "__main__":
    raise SystemExit(main())
