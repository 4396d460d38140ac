"""Indicators of how hard a big-M MIP over a network will be (Plate et al., arXiv 2502.03016).

Three numbers predict MIP effort: the fraction of neurons that a bound method proves stable
(each stable neuron needs no binary), the size of the big-M coefficients of the unstable
ones (large M = weak LP relaxation), and the number of linear regions of the network over
the domain (a proxy for how much branching an exact method may need). This module computes
all three and formats them for the ``reluopt analyze`` command.
"""

from __future__ import annotations

import time

import numpy as np

from ..bounds import BOUND_METHODS as BOUND_METHODS  # the names ``reluopt analyze --bounds`` accepts
from ..bounds import LayerBounds, check_method, compute_bounds
from ..errors import ProblemError
from ..network import Network
from .regions import MAX_REGIONS, RegionCount, count_regions


def compute_layer_bounds(net: Network, lb, ub, method: str, **options) -> LayerBounds:
    """Bounds of every neuron by ``method``, the first input to every MIP-hardness indicator.

    Parameters
    ----------
    net : Network
        The network.
    lb, ub : array_like
        The input box.
    method : str
        One of ``BOUND_METHODS`` (``reluopt.bounds.compute_bounds``).
    **options
        Passed to ``compute_bounds`` (OBBT time limits, ...).

    Returns
    -------
    LayerBounds
        Pre-activation bounds of every layer.

    Raises
    ------
    ProblemError
        ``method`` is unknown.
    """
    return compute_bounds(net, lb, ub, method, **options)


def _unstable(layer, L: np.ndarray, U: np.ndarray) -> np.ndarray:
    """The same notion as ``LayerBounds.stability``: not provably in one linear piece."""
    return layer.act.unstable(L, U)


def bigm_statistics(net: Network, bounds: LayerBounds, i: int = 0) -> list[dict]:
    """Per hidden layer, the stability counts plus the big-M sizes that make a MIP weak.

    The rows of ``LayerBounds.stability`` gain the big-M sizes ``max(U, -L)`` of the unstable
    neurons (median, mean) and the sum of ``U - L`` over the unstable neurons only (what actually
    enters the MIP).

    Parameters
    ----------
    net : Network
        The network the bounds belong to.
    bounds : LayerBounds
        Its neuron bounds.
    i : int, optional
        Which box of ``bounds`` (default the first).

    Returns
    -------
    list of dict
        One row per hidden layer.
    """
    rows = bounds.stability(net, i)
    for row, layer, L, U in zip(rows, net.hidden_layers, bounds.lower, bounds.upper, strict=True):
        Li, Ui = L[i], U[i]
        mask = _unstable(layer, Li, Ui)
        bigm = np.maximum(Ui, -Li)[mask]
        row["stable"] = row["neurons"] - row["unstable"]
        row["sum_range_unstable"] = float(np.sum((Ui - Li)[mask]))
        row["median_bigM"] = float(np.median(bigm)) if bigm.size else 0.0
        row["mean_bigM"] = float(np.mean(bigm)) if bigm.size else 0.0
    return rows


def bound_indicators(net: Network, lb, ub, method: str, **options) -> dict:
    """Stable-neuron fraction and big-M statistics under one bound method, with its time.

    Parameters
    ----------
    net : Network
        The network.
    lb, ub : array_like
        The input box.
    method : str
        One of `BOUND_METHODS`.
    **options
        Passed to `compute_layer_bounds`.

    Returns
    -------
    dict
        Totals (``stable_fraction``, ``max_bigM``, ``sum_range``, ...), the per-layer rows of
        `bigm_statistics` under ``"layers"`` and the output bounds.
    """
    start = time.perf_counter()
    bounds = compute_layer_bounds(net, lb, ub, method, **options)
    seconds = time.perf_counter() - start
    layers = bigm_statistics(net, bounds)
    neurons = sum(r["neurons"] for r in layers)
    unstable = sum(r["unstable"] for r in layers)
    bigms = [r["max_bigM"] for r in layers if r["unstable"]]
    return {
        "method": method,
        "seconds": seconds,
        "neurons": neurons,
        "unstable": unstable,
        "stable": neurons - unstable,
        "stable_fraction": 1.0 - unstable / max(neurons, 1),
        "sum_range": float(sum(r["sum_range"] for r in layers)),
        "sum_range_unstable": float(sum(r["sum_range_unstable"] for r in layers)),
        "max_bigM": float(max(bigms)) if bigms else 0.0,
        "layers": layers,
        "output_bounds": [bounds.out_lower[0].tolist(), bounds.out_upper[0].tolist()],
    }


def analyze_network(net: Network, lb, ub, *, bounds=("ibp", "crown"), regions: str | None = "auto",
                    samples: int = 10_000, seed: int = 0, max_regions: int = MAX_REGIONS,
                    obbt_options: dict | None = None) -> tuple[dict, RegionCount | None]:
    """All MIP-hardness indicators of ``net`` over a box, for ``reluopt analyze``.

    Parameters
    ----------
    net : Network
        The network.
    lb, ub : array_like
        The input box, one entry per input.
    bounds : sequence of str, optional
        Bound methods to report (`BOUND_METHODS`).
    regions : str or None, optional
        Region counting mode, ``"exact"``, ``"sample"`` or ``"auto"``; None skips it.
    samples : int, optional
        Number of samples for the sampled region count.
    seed : int, optional
        Seed of those samples.
    max_regions : int, optional
        Cap on the cells of an exact region count.
    obbt_options : dict, optional
        Options of the ``"lp-obbt"`` bound method.

    Returns
    -------
    report : dict
        The indicators, JSON-able.
    regions : RegionCount or None
        The region count (with cells for a 2-D input, for plotting), None when skipped.

    Raises
    ------
    ProblemError
        The box does not match the network's inputs or a bound method is unknown.
    """
    lb = np.asarray(lb, dtype=np.float64).reshape(-1)
    ub = np.asarray(ub, dtype=np.float64).reshape(-1)
    if lb.shape[0] != net.input_dim or ub.shape[0] != net.input_dim:
        raise ProblemError(f"the box has {lb.shape[0]} dimensions; the network has {net.input_dim} inputs")
    report: dict = {
        "network": net.describe(),
        "source": net.source,
        "hidden_sizes": list(net.hidden_sizes),
        "clipped": net.has_clipped,
        "box": {"lb": lb.tolist(), "ub": ub.tolist()},
        "bounds": {},
    }
    for method in bounds:
        check_method(method)
        opts = dict(obbt_options or {}) if method.endswith("-obbt") else {}
        report["bounds"][method] = bound_indicators(net, lb, ub, method, **opts)
    rc = None
    if regions is not None:
        start = time.perf_counter()
        rc = count_regions(net, lb, ub, mode=regions, samples=samples, seed=seed,
                           max_regions=max_regions, keep_cells=net.input_dim == 2)
        report["regions"] = {**rc.to_dict(), "seconds": time.perf_counter() - start}
    return report, rc


def format_report(report: dict) -> str:
    """Plain-text tables of a report: one row per bound method, one per (method, layer), and regions.

    Parameters
    ----------
    report : dict
        A report of `analyze_network`.

    Returns
    -------
    str
        The tables, lines joined by newlines.
    """
    lines = [f"network {report['network']}" + (" (clipped ReLU)" if report.get("clipped") else "")]
    b = report["bounds"]
    if b:
        lines.append("")
        lines.append(f"{'bounds':<9}{'stable':>10}{'stable %':>10}{'sum U-L':>13}{'max big-M':>12}"
                     f"{'seconds':>10}")
        for name, r in b.items():
            lines.append(f"{name:<9}{r['stable']:>5}/{r['neurons']:<4}{100 * r['stable_fraction']:>10.1f}"
                         f"{r['sum_range']:>13.4g}{r['max_bigM']:>12.4g}{r['seconds']:>10.3f}")
        lines.append("")
        lines.append(f"{'bounds':<9}{'layer':>6}{'neurons':>8}{'inact':>7}{'act':>6}{'sat':>5}{'unst':>6}"
                     f"{'sum U-L':>12}{'max M':>11}{'median M':>11}")
        for name, r in b.items():
            for s in r["layers"]:
                lines.append(
                    f"{name:<9}{s['layer']:>6}{s['neurons']:>8}{s['inactive']:>7}{s['active']:>6}"
                    f"{s['saturated']:>5}{s['unstable']:>6}{s['sum_range']:>12.4g}{s['max_bigM']:>11.4g}"
                    f"{s['median_bigM']:>11.4g}"
                )
    r = report.get("regions")
    if r:
        lines.append("")
        if r["exact"]:
            lines.append(f"linear regions: {r['count']} (exact, {r['method']}, {r['seconds']:.2f} s)")
        else:
            lines.append(
                f"linear regions: >= {r['count']} distinct patterns in {r['samples']} samples; "
                f"Chao1 estimate {r['chao1']:.1f}, Chapman {r['chapman']:.1f} "
                f"(f1={r['singletons']}, f2={r['doubletons']}; {r['seconds']:.2f} s)"
            )
    return "\n".join(lines)
