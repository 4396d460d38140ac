"""An adversarial MNIST example with an l1 budget, in a user's own highspy model.

The classifier is gurobi-machinelearning's ``mnist_model.onnx`` (784-50-50-10, pixels in
[0, 1]; ``../shared/data/gurobi_ml``). The image is a VNN-COMP ``mnistfc`` test image (its
pixels are the centre of the property's L-inf box, recovered where the box is clipped at 0).
The model, as in gurobi-machinelearning's own adversarial notebook: pixels ``x`` in [0, 1],
extra variables ``t`` with ``|x - x0| <= t`` (two rows each) and ``sum t <= eps``, here also
``t <= pixel`` (no pixel moves by more than ``pixel``: this keeps the neuron bounds tight
enough for HiGHS to prove the optimum in seconds; without it every neuron is unstable), the network
``y = net(x)`` added by ``reluopt.embed.highspy.add_network_constr``, and the objective
maximise ``y[wrong] - y[right]``: a positive optimum is an image within l1 distance ``eps``
that the network puts in class ``wrong`` rather than ``right``; a negative optimum proves
none exists.

    python examples/embed/adversarial_mnist.py          # image 14 (a 1), eps 2, pixel 0.03: ~10 s
    python examples/embed/adversarial_mnist.py --eps 1 --pixel 0.02    # none exists: optimum < 0

The MIP starts from the image itself (every column of the embedding by a forward pass,
``nn.embedding.model.point_to_columns``), so HiGHS has an incumbent from the first node.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import highspy
import numpy as np

import reluopt
from reluopt.embed.highspy import add_network_constr
from reluopt.verification.vnnlib import load_vnnlib

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
NET = DATA / "gurobi_ml" / "mnist_model.onnx"
RADIUS = 0.05


def mnist_image(index: int) -> tuple[np.ndarray, int]:
    """Pixels and label of the VNN-COMP mnistfc test image ``index`` (0..14)."""
    path = DATA / "mnistfc" / f"prop_{index}_{RADIUS}.vnnlib"
    box = load_vnnlib(path).boxes[0]
    x0 = np.where(box.lb > 0, box.lb + RADIUS, box.ub - RADIUS)   # box = [x0 - r, x0 + r] clipped to [0, 1]
    label = int(re.search(r"label: (\d+)", path.read_text()).group(1))
    return np.clip(x0, 0.0, 1.0), label


def attack(net, x0: np.ndarray, right: int, wrong: int, eps: float, pixel: float = 1.0,
           time_limit: float = 60.0) -> dict:
    """Maximise ``y[wrong] - y[right]`` over images within l1 distance ``eps`` of ``x0``.

    Parameters
    ----------
    net : Network
        The classifier (logits out).
    x0 : numpy.ndarray
        The image, pixels in [0, 1].
    right, wrong : int
        The true class and the class to push the image into.
    eps : float
        The l1 budget.
    pixel : float, optional
        The most any one pixel may change (an l-inf cap; 1 is none).
    time_limit : float, optional
        Seconds for HiGHS.

    Returns
    -------
    dict
        ``status``, ``margin`` (the objective), ``bound``, ``x`` (the image found), ``error``
        (``get_error()``) and ``stats`` (of the embedding).
    """
    n = len(x0)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("time_limit", float(time_limit))
    lo, hi = np.maximum(0.0, x0 - pixel), np.minimum(1.0, x0 + pixel)
    h.addVars(n, lo, hi)                                     # x: the image, columns 0..n-1
    h.addVars(n, np.zeros(n), np.full(n, pixel))             # t: columns n..2n-1, t_i >= |x_i - x0_i|
    x, t = np.arange(n), n + np.arange(n)
    starts = np.arange(0, 2 * n, 2, dtype=np.int32)         # rows x_i - t_i <= x0_i and x_i + t_i >= x0_i
    index = np.stack([x, t], axis=1).ravel().astype(np.int32)
    h.addRows(n, np.full(n, -np.inf), x0, 2 * n, starts, index, np.tile([1.0, -1.0], n))
    h.addRows(n, x0, np.full(n, np.inf), 2 * n, starts, index, np.ones(2 * n))
    h.addRow(-np.inf, eps, n, t.astype(np.int32), np.ones(n))   # sum t <= eps
    nn = add_network_constr(h, net, x.tolist())
    y = nn.output_vars
    h.setObjective(y[wrong] - y[right], highspy.ObjSense.kMaximize)
    start = highspy.HighsSolution()         # a MIP start: the image itself, every column by a forward pass
    values = np.zeros(h.getNumCol())
    values[:n] = x0
    values[[v.index for v in nn.variables]] = nn.embedding.model.point_to_columns(x0)
    start.col_value = list(values)
    h.setSolution(start)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    found = info.primal_solution_status == 2
    return {"status": status, "margin": info.objective_function_value if found else None,
            "bound": info.mip_dual_bound, "x": np.array(h.getSolution().col_value[:n]) if found else None,
            "error": nn.get_error() if found else None, "stats": nn.stats}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=int, default=14, help="mnistfc test image 0..14")
    ap.add_argument("--eps", type=float, default=2.0, help="l1 budget (sum of pixel changes)")
    ap.add_argument("--pixel", type=float, default=0.03, help="the most one pixel may change")
    ap.add_argument("--wrong", type=int, help="target class (default: the runner-up at the image)")
    ap.add_argument("--time-limit", type=float, default=60.0)
    args = ap.parse_args(argv)
    if not NET.exists():
        print(f"{NET} is absent (see ../shared/data/README.md)")
        return 2
    net = reluopt.load(NET)
    x0, right = mnist_image(args.image)
    logits = net.forward(x0)
    others = np.where(np.arange(len(logits)) == right, -np.inf, logits)
    wrong = args.wrong if args.wrong is not None else int(np.argmax(others))   # the strongest other class
    print(f"image {args.image}: label {right}, predicted {int(np.argmax(logits))}; "
          f"y[{wrong}] - y[{right}] = {logits[wrong] - logits[right]:.4f} at the image")
    r = attack(net, x0, right, wrong, args.eps, args.pixel, args.time_limit)
    s = r["stats"]
    print(f"embedding: {s['binaries']} binaries, {s['stable_neurons']}/{s['hidden_neurons']} stable neurons")
    print(f"status {r['status']}: max y[{wrong}] - y[{right}] within l1 {args.eps:g}, pixel change <= {args.pixel:g}: "
          f"{r['margin'] if r['margin'] is None else round(r['margin'], 4)} (bound {r['bound']:.4f})")
    if r["x"] is not None:
        y = net.forward(r["x"])
        print(f"  found image: l1 distance {np.abs(r['x'] - x0).sum():.4f}, predicted {int(np.argmax(y))}, "
              f"get_error() = {r['error']:.1e}")
        print("  adversarial example found" if r["margin"] > 0 else
              "  no adversarial example within the budget" if r["status"] == "Optimal" else "  undecided")
    return 0 if r["status"] == "Optimal" else 1


if __name__ == "__main__":
    raise SystemExit(main())
