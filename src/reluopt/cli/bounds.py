"""``reluopt bounds``: certified bounds of every neuron and output over a box, with stability."""

from __future__ import annotations

import argparse

import numpy as np

from ..bounds import BOUND_METHODS
from ..errors import ProblemError
from .common import BOX_HELP, add_model_argument, load_network, parse_box, report_stream, write_json

METHODS = BOUND_METHODS   # the registry's names (reluopt.bounds.compute_bounds)

DESCRIPTION = """\
Bound every neuron's pre-activation and every output over an input box, and count the neurons
that are stable (always active or always inactive there). Stable neurons need no binary in the
MIP, and narrow bounds make small big-M constants, so these numbers predict how hard exact
optimisation will be.

methods:
  ibp          interval arithmetic: instant, loose (what the MIP peers use by default)
  crown        symbolic back-substitution, intersected with ibp: fast and much tighter (default)
  alpha-crown  crown with the relaxation slopes optimised per neuron and output: tighter, slower
  lp-obbt      LP-based tightening, layer by layer: tighter, seconds to minutes
  mip-obbt     LP-OBBT then one MIP per unstable neuron (--time-limit bounds the whole run)
"""


def register(subparsers) -> None:
    """Add the ``bounds`` subcommand and its options to the ``reluopt`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The parser's subcommands.
    """
    p = subparsers.add_parser("bounds", help="neuron and output bounds over a box, stable neurons",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="example:\n  reluopt bounds examples/peaks/models/peaks_2-64-64-1.npz "
                                     "--box=-3,3 --method crown,ibp")
    add_model_argument(p)
    p.add_argument("--box", required=True, metavar="BOX", help=BOX_HELP)
    p.add_argument("--method", default="crown", metavar="M[,M...]",
                   help=f"one or more of {', '.join(METHODS)}, comma-separated (default crown)")
    p.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help="seconds for alpha-crown and the OBBT methods (the bounds so far stay valid when it runs out)")
    p.add_argument("--json", metavar="OUT", help="write all bounds as JSON to OUT ('-' for stdout)")
    p.set_defaults(func=run)


def compute(net, lb, ub, method: str, time_limit: float | None):
    """Neuron bounds of ``net`` over the box by one method, for ``reluopt bounds``.

    Parameters
    ----------
    net : Network
        The network.
    lb, ub : numpy.ndarray
        The box.
    method : str
        One of ``BOUND_METHODS`` (``reluopt.bounds.compute_bounds``).
    time_limit : float or None
        Seconds for OBBT.

    Returns
    -------
    LayerBounds
        The bounds.
    """
    from ..bounds import compute_bounds

    return compute_bounds(net, lb, ub, method, time_limit=time_limit)


def run(args) -> int:
    """Run ``reluopt bounds`` on the parsed command line.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        The exit code (see `reluopt.cli`).
    """
    import time

    net = load_network(args.model, trust_pickle=args.trust_pickle)
    lb, ub = parse_box(args.box, net.input_dim)
    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            raise ProblemError(f"unknown bound method {m!r}; choose from {', '.join(METHODS)}")
    out = report_stream(args)
    print(f"{args.model}: {net.describe()}, box of {net.input_dim} inputs", file=out)
    payload = {"model": str(args.model), "lb": lb.tolist(), "ub": ub.tolist(), "methods": {}}
    for m in methods:
        t = time.perf_counter()
        b = compute(net, lb, ub, m, args.time_limit)
        seconds = time.perf_counter() - t
        stab = b.stability(net)
        stopped = b.stats.get("stopped")
        note = f", stopped early ({stopped}): {b.stats.get('skipped', 0)} neurons kept their earlier bounds" \
            if stopped else ""
        print(f"\n{m} ({seconds:.3f} s{note})", file=out)
        print(f"  {'layer':>5} {'neurons':>8} {'inactive':>9} {'active':>7} {'unstable':>9} "
              f"{'mean width':>11} {'max big-M':>10}", file=out)
        for s in stab:
            active = s["active"] + s["saturated"]
            print(f"  {s['layer']:>5} {s['neurons']:>8} {s['inactive']:>9} {active:>7} {s['unstable']:>9} "
                  f"{s['sum_range'] / max(s['neurons'], 1):>11.4g} {s['max_bigM']:>10.4g}", file=out)
        total = sum(s["neurons"] for s in stab)
        unstable = sum(s["unstable"] for s in stab)
        print(f"  stable {total - unstable}/{total} neurons ({(total - unstable) / max(total, 1):.1%})", file=out)
        for k in range(net.output_dim):
            print(f"  y[{k}] in [{b.out_lower[0, k]:.6g}, {b.out_upper[0, k]:.6g}]", file=out)
        payload["methods"][m] = {
            "seconds": seconds,
            "layers": stab,
            "lower": [np.asarray(a[0]).tolist() for a in b.lower],
            "upper": [np.asarray(a[0]).tolist() for a in b.upper],
            "out_lower": b.out_lower[0].tolist(),
            "out_upper": b.out_upper[0].tolist(),
        }
    if args.json:
        write_json(args.json, payload)
    return 0
