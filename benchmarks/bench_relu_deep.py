"""A deep and wide network: robustness decided by bab-relu against today's MIP path, same instances and time.

Network: 784 inputs, 6 hidden ReLU layers of 100, 10 outputs, trained with torch (seed 0, Adam,
30 epochs) on scikit-learn's digits upsampled from 8x8 to 28x28 (bilinear) and scaled to [0, 1];
images 0-1399 train, the rest are test images. The trained net is saved to
``benchmarks/data/digits_784x6x100.npz`` (native format) and reused when present.

Instances: the first ``--images`` correctly classified test images, ``eps`` in 0.01 / 0.02 / 0.03:
the box ``clip(x -+ eps, 0, 1)``, unsafe where some ``y_j >= y_label`` (nine disjuncts).

* ``mip``: ``reluopt.verify(net, prop, timeout=T, exact="mip")``: today's path for 784 inputs
  (CROWN, alpha-CROWN, falsification, then a big-M MIP per open disjunct on HiGHS).
* ``bab-relu``: the same fast paths (``verify(..., exact="none")``: CROWN and falsification),
  then ``bab-relu`` on each disjunct that CROWN leaves open, ``max y_j - y_label`` with
  ``stop_above=0`` (a counterexample) and ``stop_below=0`` (a proof), each given an equal share
  of the time left; any counterexample is re-checked by a forward pass.

    python benchmarks/bench_relu_deep.py --time-limit 20 --images 10     # ~10-20 min

Prints a markdown table and the per-instance verdicts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import reluopt  # noqa: E402
from reluopt import Network  # noqa: E402
from reluopt.bounds import crown_bounds  # noqa: E402
from reluopt.bounds.crown import linear_output_bounds  # noqa: E402
from reluopt.problem import Domain, MaxMin, Problem  # noqa: E402
from reluopt.verification import parse_vnnlib, verify  # noqa: E402

NET = ROOT / "benchmarks" / "data" / "digits_784x6x100.npz"
EPS = (0.01, 0.02, 0.03)


def digits():
    """Upsampled digits (N, 784) in [0, 1] and labels."""
    import torch
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32)[:, None]
    x = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    return x.reshape(len(d.target), 784).clamp(0, 1).double().numpy(), d.target


def network() -> Network:
    """The trained 784-100x6-10 net (trained once, then read from ``NET``)."""
    from reluopt.io import load_model
    from reluopt.io.native import save_npz

    if NET.exists():
        return load_model(NET)
    import torch

    X, y = digits()
    torch.manual_seed(0)
    sizes = [784] + [100] * 6 + [10]
    mods: list = []
    for i in range(len(sizes) - 1):
        mods.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods).double()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.tensor(X[:1400]), torch.tensor(y[:1400])
    for _ in range(30):
        perm = torch.randperm(1400)
        for k in range(0, 1400, 64):
            idx = perm[k:k + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    lin = [m for m in model if isinstance(m, torch.nn.Linear)]
    net = Network.from_weights([(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in lin])
    NET.parent.mkdir(exist_ok=True)
    save_npz(net, NET)
    return net


def vnnlib(x: np.ndarray, label: int, eps: float) -> str:
    lo, hi = np.clip(x - eps, 0, 1), np.clip(x + eps, 0, 1)
    out = [f"(declare-const X_{i} Real)" for i in range(784)] + [f"(declare-const Y_{j} Real)" for j in range(10)]
    out += [f"(assert (>= X_{i} {float(lo[i])!r}))\n(assert (<= X_{i} {float(hi[i])!r}))" for i in range(784)]
    out.append("(assert (or " + " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(10) if j != label) + "))")
    return "\n".join(out)


def run_bab_relu(net: Network, prop, label: int, timeout: float) -> tuple[str, float]:
    """The fast paths, then bab-relu per disjunct CROWN leaves open (see the module docstring)."""
    t0 = time.perf_counter()
    v = verify(net, prop, timeout=timeout, exact="none")
    if v.status != "unknown":
        return v.status, time.perf_counter() - t0
    box = prop.boxes[0]
    rows = np.stack([-dj.C[0] for dj in box.disjuncts])        # margin e - C y = y_j - y_label
    cb = crown_bounds(net, box.lb, box.ub)
    up = linear_output_bounds(net, box.lb, box.ub, rows, cb)[0][0]
    todo = [k for k in np.argsort(-up) if up[k] >= 0]
    for n, k in enumerate(todo):
        left = timeout - (time.perf_counter() - t0)
        if left <= 0:
            return "unknown", time.perf_counter() - t0
        problem = Problem(net, Domain(box.lb, box.ub), MaxMin(rows[k][None], np.zeros(1)))
        res = reluopt.solve(problem, "bab-relu", time_limit=left / (len(todo) - n), stop_above=0.0,
                            stop_below=0.0, threads=1)
        if res.x is not None and res.value is not None and res.value >= 0:
            y = net.forward(res.x[None])[0]
            assert y[k + (k >= label)] >= y[label] and np.all(res.x >= box.lb) and np.all(res.x <= box.ub)
            return "sat", time.perf_counter() - t0
        if not res.bound < 0:
            return "unknown", time.perf_counter() - t0
    return "unsat", time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--eps", default=",".join(map(str, EPS)))
    args = ap.parse_args(argv)
    start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = os.getloadavg()[0]
    from threadpoolctl import threadpool_limits

    net = network()
    X, y = digits()
    Xt, yt = X[1400:], y[1400:]
    pred = np.argmax(net.forward(Xt), axis=1)
    acc = float(np.mean(pred == yt))
    chosen = [i for i in range(len(yt)) if pred[i] == yt[i]][:args.images]
    table: dict = {}
    lines = []
    with threadpool_limits(1):
        for eps in (float(e) for e in args.eps.split(",")):
            for i in chosen:
                prop = parse_vnnlib(vnnlib(Xt[i], int(yt[i]), eps))
                order = ("mip", "bab-relu") if i % 2 == 0 else ("bab-relu", "mip")   # interleave
                for method in order:
                    if method == "mip":
                        t0 = time.perf_counter()
                        status = verify(net, prop, timeout=args.time_limit, exact="mip").status
                        sec = time.perf_counter() - t0
                    else:
                        status, sec = run_bab_relu(net, prop, int(yt[i]), args.time_limit)
                    table.setdefault((eps, method), []).append((status, sec))
                    line = f"eps {eps} image {i} (label {yt[i]}) {method}: {status} {sec:.1f} s"
                    lines.append(line)
                    print(line, flush=True)
    out = ["| eps | method | sat | unsat | unknown | decided | median s |", "|---|---|---|---|---|---|---|"]
    agree = True
    for eps in (float(e) for e in args.eps.split(",")):
        for method in ("mip", "bab-relu"):
            rs = table[(eps, method)]
            c = {s: sum(1 for r in rs if r[0] == s) for s in ("sat", "unsat", "unknown")}
            out.append(f"| {eps} | {method} | {c['sat']} | {c['unsat']} | {c['unknown']} | "
                       f"{c['sat'] + c['unsat']}/{len(rs)} | {np.median([r[1] for r in rs]):.1f} |")
        for a, b in zip(table[(eps, "mip")], table[(eps, "bab-relu")], strict=True):
            if "unknown" not in (a[0], b[0]) and a[0] != b[0]:
                agree = False
    out += ["", f"network 784-{'-'.join(['100'] * 6)}-10, test accuracy {acc:.3f}; {len(chosen)} images; "
            f"time limit {args.time_limit:g} s per instance; verdicts {'agree' if agree else 'DISAGREE'} "
            "wherever both decided",
            f"run {start}, `python benchmarks/bench_relu_deep.py --time-limit {args.time_limit:g} --images "
            f"{args.images}`, load average {load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"]
    print("\n".join(lines + [""] + out))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
