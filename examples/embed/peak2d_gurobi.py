"""gurobi-machinelearning's "2DPeakFunction Pytorch" notebook, rebuilt with reluopt's embedding.

The notebook (gurobi-machinelearning, ``notebooks/Functions_approx/2DPeakFunction Pytorch.ipynb``)
fits a torch ``Sequential`` 2-30-30-1 ReLU network to its peak2d function on [-2, 2]^2, then
minimises the network's output in a gurobipy model. This script follows it cell by cell;
the only line that differs is the embedding:

    gurobi-ML:  nn2gurobi = add_predictor_constr(m, model, x, y)
    reluopt:    nn2gurobi = add_network_constr(m, model, x, y)

(``reluopt.embed.gurobipy.add_network_constr`` takes the same torch module and the same
MVars.) To keep it to seconds the training grid is coarser (step 0.05 instead of 0.01) and
the seed fixed. ``--compare`` also runs gurobi-machinelearning's call on the same model when
``gurobi_ml`` is installed.

    python examples/embed/peak2d_gurobi.py              # about 5 s
    python examples/embed/peak2d_gurobi.py --compare --mip-gap 0
"""

from __future__ import annotations

import argparse
import time

import gurobipy as gp
import numpy as np
import torch
from gurobipy import GRB

from reluopt.embed.gurobipy import add_network_constr


def peak2d(xx, yy):
    """The notebook's test function (note its ``xx**4``, where MATLAB's peaks has ``x**3``)."""
    return (3 * (1 - xx) ** 2.0 * np.exp(-(xx**2) - (yy + 1) ** 2)
            - 10 * (xx / 5 - xx**4 - yy**5) * np.exp(-(xx**2) - yy**2)
            - 1 / 3 * np.exp(-((xx + 1) ** 2) - yy**2))


def train(step: float = 0.05, seed: int = 0, hs: int = 30) -> torch.nn.Sequential:
    """The notebook's network and training loop (Adam, lr 0.01, at most 1000 full-batch steps).

    Parameters
    ----------
    step : float, optional
        Grid step on [-2, 2]^2 (the notebook's is 0.01).
    seed : int, optional
        torch's seed.
    hs : int, optional
        Hidden layer width.

    Returns
    -------
    torch.nn.Sequential
    """
    torch.manual_seed(seed)
    x = torch.arange(-2, 2, step, dtype=torch.float32)
    x1, x2 = torch.meshgrid(x, x, indexing="ij")
    z = torch.from_numpy(peak2d(x1.numpy(), x2.numpy())).float()   # the notebook applies it to the tensors
    X = torch.cat([x1.ravel().reshape(-1, 1), x2.ravel().reshape(-1, 1)], axis=1)
    y = z.ravel()
    model = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hs), torch.nn.ReLU(), torch.nn.Linear(hs, hs),
                                torch.nn.ReLU(), torch.nn.Linear(hs, 1))
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(1000):
        optimizer.zero_grad()
        loss = criterion(model(X), y.reshape(-1, 1))
        if loss.item() < 1e-4:
            break
        loss.backward()
        optimizer.step()
    return model


def optimise(model, embed, time_limit: float = 10, mip_gap: float = 0.1) -> dict:
    """The notebook's optimisation model: minimise ``y = model(x)`` over ``x`` in [-2, 2]^2.

    Parameters
    ----------
    model : torch.nn.Module
        The trained network.
    embed : callable
        ``embed(m, model, x, y)``: gurobi-ML's ``add_predictor_constr`` or reluopt's
        ``add_network_constr``.
    time_limit, mip_gap : float, optional
        The notebook's ``TimeLimit`` and ``MIPGap``.

    Returns
    -------
    dict
        ``status``, ``x``, ``y``, ``bound``, ``seconds`` and ``error`` (``get_error()``).
    """
    m = gp.Model()
    m.Params.OutputFlag = 0
    m.Params.Threads = 1
    x = m.addMVar((1, 2), lb=-2, ub=2, name="x")
    y = m.addMVar(1, lb=-GRB.INFINITY, name="y")
    m.setObjective(y.sum(), gp.GRB.MINIMIZE)
    t0 = time.perf_counter()
    nn2gurobi = embed(m, model, x, y)
    m.Params.TimeLimit = time_limit
    m.Params.MIPGap = mip_gap
    m.optimize()
    return {"status": m.Status, "x": x.X[0].copy(), "y": float(y.X[0]), "bound": m.ObjBound,
            "seconds": time.perf_counter() - t0, "error": float(np.max(nn2gurobi.get_error()))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", action="store_true", help="also run gurobi-machinelearning's embedding")
    ap.add_argument("--mip-gap", type=float, default=0.1, help="the notebook's MIPGap (0.1)")
    ap.add_argument("--time-limit", type=float, default=10.0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model = train()
    calls = {"reluopt": add_network_constr}
    if args.compare:
        try:
            from gurobi_ml import add_predictor_constr

            calls["gurobi-ml"] = add_predictor_constr
        except ImportError:
            print("gurobi_ml is not installed: reluopt only")
    ok = True
    for label, embed in calls.items():
        r = optimise(model, embed, args.time_limit, args.mip_gap)
        ok &= r["status"] == GRB.OPTIMAL
        status = {GRB.OPTIMAL: "optimal", GRB.TIME_LIMIT: "time_limit"}.get(r["status"], r["status"])
        print(f"{label:9s} {status} in {r['seconds']:.2f} s: x = [{r['x'][0]:.4f} {r['x'][1]:.4f}], "
              f"y = {r['y']:.4f} (bound {r['bound']:.4f}), peak2d(x) = {peak2d(*r['x']):.4f}, "
              f"get_error() = {r['error']:.1e}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
