"""``reluopt analyze MODEL --box ...``: tractability indicators of a network over a box.

Prints the stable-neuron fraction and big-M statistics under each bound method and the
number of linear regions (exact for 1-D/2-D inputs, sampled otherwise), writes them as
JSON with ``--json``, and draws the linear regions of a 2-D-input network with ``--plot``.
"""

from __future__ import annotations

from pathlib import Path

from ..bounds import BOUND_METHODS
from ..errors import ProblemError
from .common import BOX_HELP, add_model_argument, load_network, parse_box, write_json

EPILOG = """examples:
  reluopt analyze net.onnx --box=-1,1
  reluopt analyze net.npz --box=0.1:0.8,0.8:1.2 --bounds ibp,crown,lp-obbt --json out.json --plot regions.png
  reluopt analyze net.onnx --box=-1,1 --regions sample --samples 100000

Region counts: 'exact' splits the box by every neuron's hyperplane layer by layer (inputs of
dimension 1 or 2); 'sample' counts distinct activation patterns among N uniform samples (a
lower bound) and reports the Chao1 estimate of the total."""


def register(subparsers) -> None:
    """Add the ``analyze`` subcommand and its options to the ``reluopt`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The parser's subcommands.
    """
    import argparse

    p = subparsers.add_parser(
        "analyze",
        help="tractability indicators: stable neurons, big-M sizes, linear regions",
        description=__doc__.split("\n\n")[1],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_argument(p)
    p.add_argument("--box", required=True,
                   help=BOX_HELP + " (write --box=-1,1 when it starts with a minus sign)")
    p.add_argument("--bounds", default="ibp,crown",
                   help=f"comma-separated bound methods among {', '.join(BOUND_METHODS)} (default ibp,crown)")
    p.add_argument("--regions", choices=("auto", "exact", "sample", "none"), default="auto",
                   help="count linear regions exactly (d <= 2), by sampling, or not at all "
                        "(auto: exact when d <= 2 and not too many, else sampled)")
    p.add_argument("--samples", type=int, default=20_000, help="samples for the sampled count")
    p.add_argument("--max-regions", type=int, default=200_000,
                   help="stop exact enumeration beyond this many regions")
    p.add_argument("--seed", type=int, default=0, help="random seed of the region sampling and the plot (default 0)")
    p.add_argument("--json", metavar="OUT", help="write the indicators as JSON to OUT ('-' = stdout)")
    p.add_argument("--plot", metavar="PNG", help="draw the linear regions (2-D inputs only)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``reluopt analyze`` on the parsed command line.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        The exit code (see `reluopt.cli`).
    """
    from ..analysis.indicators import analyze_network, format_report

    net = load_network(args.model, trust_pickle=args.trust_pickle)
    lb, ub = parse_box(args.box, net)
    methods = [m.strip() for m in args.bounds.split(",") if m.strip()]
    for m in methods:
        if m not in BOUND_METHODS:
            raise ProblemError(f"--bounds: unknown method {m!r}; choose from {', '.join(BOUND_METHODS)}")
    if args.samples < 2:
        raise ProblemError(f"--samples must be at least 2, got {args.samples}")
    regions = None if args.regions == "none" else args.regions
    if args.plot and net.input_dim != 2:
        raise ProblemError(f"--plot draws regions of 2-D inputs; this network has {net.input_dim} inputs")
    if args.plot and regions in (None, "sample"):
        regions = "exact"
    report, rc = analyze_network(net, lb, ub, bounds=methods, regions=regions, samples=args.samples,
                                 seed=args.seed, max_regions=args.max_regions)
    report["model"] = str(args.model)
    if args.json != "-":
        print(format_report(report))
    if args.plot:
        from ..analysis.regions import plot_regions

        assert rc is not None       # regions are counted exactly for a plot
        plot_regions(net, lb, ub, args.plot, regions=rc, seed=args.seed,
                     title=f"{Path(args.model).name}: {rc.count} linear regions")
        report["plot"] = str(args.plot)
        if args.json != "-":
            print(f"region plot written to {args.plot}")
    if args.json:
        write_json(args.json, report)
        if args.json != "-":
            print(f"indicators written to {args.json}")
    return 0
