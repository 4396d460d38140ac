"""Falsification: reluopt's attack (``verification.falsify``) against a plain reference PGD.

The reference is the standard attack, written here in numpy on the network's weights with no
reluopt code: per input box, 10 uniform random restarts, 100 steps of fixed size 2.5 eps / 100
(eps = half the box width per input), sign gradient, clipped to the box, on the property's
margin ``max_disjunct min_atom (e_j - C_j y)`` (CW's margin), every iterate checked.
reluopt's side is ``falsify`` (what ``verify`` runs after CROWN) with a 10 s budget, the
driver's ``FALSIFY_MAX``; it stops at its first confirmed counterexample.

Suites: every ACAS Xu instance (186, of which VNN-COMP 2021 lists 47 as violated), the 30
MNIST-FC 256x2 properties, and a deeper net built here: 784-100x6-10 trained with torch (seeded,
one thread) on scikit-learn's digits upsampled to 28x28 (pixels in [0, 1]), with L-inf
robustness properties of the first 20 correctly classified test images at eps 0.01, 0.03,
0.05, 0.08. Each (instance, seed) runs the reference and reluopt alternately; every
counterexample (float32 point) is re-checked by onnxruntime on the ONNX file.

    python benchmarks/bench_falsify.py --suite all --seeds 0 1 2

Writes benchmarks/out/falsify_<suite>.csv and prints markdown tables.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "out"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_vnncomp import OrtChecker  # noqa: E402

from reluopt.cli.verify import read_instances  # noqa: E402
from reluopt.io import load_model  # noqa: E402
from reluopt.verification import load_vnnlib  # noqa: E402
from reluopt.verification.falsify import Found, Pair, falsify, float32_inside  # noqa: E402
from reluopt.verification.vnnlib import parse_vnnlib  # noqa: E402

EPS_DEEP = (0.01, 0.03, 0.05, 0.08)


# ----------------------------------------------------------------- the reference attack
def _forward_backward(layers, X, direction_fn):
    """Outputs of ``X`` and the gradient of ``sum(w * y)`` where ``w = direction_fn(y)``."""
    hs, masks = [X], []
    h = X
    for W, b in layers[:-1]:
        z = h @ W.T + b
        masks.append(z > 0)
        h = np.maximum(z, 0.0)
        hs.append(h)
    W, b = layers[-1]
    y = h @ W.T + b
    w, value = direction_fn(y)
    g = w @ W
    for (W, _), m in zip(reversed(layers[:-1]), reversed(masks), strict=True):
        g = (g * m) @ W
    return y, value, g


def reference_attack(net, prop, seed: int, restarts: int = 10, steps: int = 100):
    """Plain PGD (see the module docstring); returns (x, seconds) of the first counterexample or None."""
    t0 = time.perf_counter()
    layers = [(L.W, L.b) for L in net.layers]
    assert all(L.activation == "relu" for L in net.layers[:-1]) and net.layers[-1].activation == "identity"
    rng = np.random.default_rng(seed)
    for box in prop.boxes:
        djs = [dj for dj in box.disjuncts]
        lb, ub = box.lb, box.ub
        width = ub - lb
        step = 2.5 * (width / 2) / steps

        def direction(y, djs=djs):
            # margin per disjunct: min_j (e_j - C_j y); the loss is the max over disjuncts
            per = [np.min(dj.e[None, :] - y @ dj.C.T, axis=1) if dj.C.shape[0] else np.full(y.shape[0], np.inf)
                   for dj in djs]
            M = np.stack(per, axis=1)
            k = np.argmax(M, axis=1)
            w = np.zeros_like(y)
            for i, kk in enumerate(k):
                dj = djs[kk]
                if dj.C.shape[0]:
                    j = int(np.argmin(dj.e - y[i] @ dj.C.T))
                    w[i] = -dj.C[j]
            return w, M.max(axis=1)

        X = lb + rng.random((restarts, lb.size)) * width
        for _ in range(steps + 1):
            y, _, g = _forward_backward(layers, X, direction)
            ok = np.zeros(X.shape[0], dtype=bool)
            for dj in djs:
                ok |= dj.holds(y)
            if ok.any():
                x = float32_inside(X[np.nonzero(ok)[0][0]][None, :], lb, ub)[0]
                if prop.is_counterexample(x, net.forward(x[None, :])[0]):
                    return x, time.perf_counter() - t0
            X = np.clip(X + step * np.sign(g), lb, ub)
    return None


# ----------------------------------------------------------------- reluopt's falsifier
def reluopt_attack(net, prop, seed: int, budget: float = 10.0, mip_seconds: float = 0.0):
    """``falsify`` as ``verify`` calls it; returns (x, seconds) of the confirmed counterexample or None."""
    t0 = time.perf_counter()
    pairs = [Pair(b, k, box.lb, box.ub, dj) for b, box in enumerate(prop.boxes) for k, dj in enumerate(box.disjuncts)]
    try:
        falsify(net, pairs, np.random.default_rng(seed), t0 + budget, mip_seconds=mip_seconds)
    except Found as found:
        return found.x, time.perf_counter() - t0
    return None


# ----------------------------------------------------------------- the deep digits net
def deep_digits(seed: int = 0):
    """784-100x6-10 trained on upsampled digits; returns (onnx path, images, labels) of the test split."""
    import torch
    from sklearn.datasets import load_digits

    from reluopt import Network
    from reluopt.io.export import save_onnx

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    imgs = torch.nn.functional.interpolate(torch.tensor(X / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8),
                                           size=(28, 28), mode="bilinear", align_corners=False)
    imgs = imgs.reshape(-1, 784).clamp(0, 1)
    perm = np.random.default_rng(seed).permutation(len(y))
    tr, te = perm[:1400], perm[1400:]
    sizes = [784] + [100] * 6 + [10]
    mods: list = []
    for i in range(len(sizes) - 1):
        mods.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    Xt, yt = imgs[tr], torch.tensor(y[tr])
    for _ in range(40):
        for idx in torch.randperm(len(tr)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(Xt[idx]), yt[idx]).backward()
            opt.step()
    lin = [m for m in model if isinstance(m, torch.nn.Linear)]
    net = Network.from_weights([(m.weight.detach().double().numpy(), m.bias.detach().double().numpy()) for m in lin])
    OUT.mkdir(parents=True, exist_ok=True)
    path = save_onnx(net, OUT / "deep_digits_784_100x6.onnx", dtype="float32")
    Xte = imgs[te].double().numpy()
    acc = float(np.mean(np.argmax(net.forward(Xte), axis=1) == y[te]))
    print(f"deep digits net: test accuracy {acc:.3f}", flush=True)
    return path, Xte, y[te]


def robustness_vnnlib(x: np.ndarray, label: int, eps: float, n_out: int = 10) -> str:
    lines = [f"(declare-const X_{i} Real)" for i in range(x.size)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    lo, hi = np.clip(x - eps, 0, 1), np.clip(x + eps, 0, 1)
    for i in range(x.size):
        lines += [f"(assert (>= X_{i} {float(lo[i])!r}))", f"(assert (<= X_{i} {float(hi[i])!r}))"]
    lines.append("(assert (or " + " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(n_out) if j != label) + "))")
    return "\n".join(lines)


def instances(suite: str, images: int = 20):
    """(name, onnx path, Property) per instance."""
    if suite in ("acasxu", "mnistfc"):
        for onnx, vnnlib, _ in read_instances(DATA / suite / f"{suite}_instances.csv"):
            yield f"{onnx.stem} {vnnlib.stem}", onnx, load_vnnlib(vnnlib)
    else:
        path, X, y = deep_digits()
        net = load_model(path)
        pred = np.argmax(net.forward(X), axis=1)
        chosen = [i for i in range(len(y)) if pred[i] == y[i]][:images]
        for eps in EPS_DEEP:
            for i in chosen:
                yield f"img{i}_eps{eps}", path, parse_vnnlib(robustness_vnnlib(X[i], int(y[i]), eps))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=("acasxu", "mnistfc", "deep", "all"), default="all")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--budget", type=float, default=10.0, help="seconds of reluopt's falsify")
    ap.add_argument("--mip-seconds", type=float, default=0.0, help="falsify's MIP attack per pair (0: none)")
    ap.add_argument("--only", default=None)
    ap.add_argument("--images", type=int, default=20, help="deep suite: test images per eps")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    checker = OrtChecker()
    suites = ("acasxu", "mnistfc", "deep") if args.suite == "all" else (args.suite,)
    summary = []
    for suite in suites:
        rows = []
        models: dict = {}
        for name, onnx, prop in instances(suite, args.images):
            if args.only and args.only not in name:
                continue
            if onnx not in models:
                models[onnx] = load_model(onnx)
            net = models[onnx]
            prop = prop.check(net)
            for seed in args.seeds:
                row = {"instance": name, "seed": seed}
                def ours(net, prop, seed):
                    return reluopt_attack(net, prop, seed, args.budget, args.mip_seconds)

                runs = [("ref", reference_attack), ("reluopt", ours)]
                if seed % 2:            # alternate which runs first
                    runs.reverse()
                for tag, fn in runs:
                    out = fn(net, prop, seed)
                    row[f"{tag}_s"] = "" if out is None else f"{out[1]:.4f}"
                    ort = ""
                    if out is not None:
                        x32, y = checker.outputs(onnx, out[0])
                        ort = str(bool(prop.is_counterexample(x32, y)))
                    row[f"{tag}_ort"] = ort
                rows.append(row)
                print(f"[{suite}] {name} seed {seed}: ref {row['ref_s'] or '-'} ({row['ref_ort'] or '-'}) "
                      f"reluopt {row['reluopt_s'] or '-'} ({row['reluopt_ort'] or '-'})", flush=True)
        with (OUT / f"falsify_{suite}{'_mip' if args.mip_seconds else ''}.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        by_inst: dict = {}
        for r in rows:
            by_inst.setdefault(r["instance"], []).append(r)
        ref_any = {k for k, rs in by_inst.items() if any(r["ref_s"] for r in rs)}
        rel_any = {k for k, rs in by_inst.items() if any(r["reluopt_s"] for r in rs)}
        rel_all = {k for k, rs in by_inst.items() if all(r["reluopt_s"] for r in rs)}
        ref_t = [float(r["ref_s"]) for r in rows if r["ref_s"]]
        rel_t = [float(r["reluopt_s"]) for r in rows if r["reluopt_s"]]
        both = [(float(r["ref_s"]), float(r["reluopt_s"])) for r in rows if r["ref_s"] and r["reluopt_s"]]
        summary.append({
            "suite": suite, "instances": len(by_inst), "seeds": len(args.seeds),
            "found by reference (any seed)": len(ref_any), "found by reluopt (any seed)": len(rel_any),
            "found by reluopt (every seed)": len(rel_all), "both": len(ref_any & rel_any),
            "reluopt misses what reference finds": len(ref_any - rel_all),
            "only reluopt": len(rel_any - ref_any),
            "median s ref": statistics.median(ref_t) if ref_t else float("nan"),
            "median s reluopt": statistics.median(rel_t) if rel_t else float("nan"),
            "median ratio reluopt/ref (both found)":
                statistics.median(b / a for a, b in both) if both else float("nan"),
            "ort ok": f"{sum(r['ref_ort'] == 'True' for r in rows) + sum(r['reluopt_ort'] == 'True' for r in rows)}"
                      f"/{len(ref_t) + len(rel_t)}",
        })
        missed = sorted(ref_any - rel_all)
        if missed:
            print(f"reluopt misses ({suite}): {', '.join(missed)}")
    keys = list(summary[0])
    print("\n| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in summary:
        print("| " + " | ".join(f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
