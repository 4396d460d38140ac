"""``reluopt compare MODEL --box ... --maximize K --methods a,b,c --time-limit S``.

Runs several methods on one problem at the same time limit and seed, prints a table (value,
bound, status, time to the best value, number of improvements) and optionally writes JSON
and a PNG of each method's incumbent against time.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from ..errors import ProblemError
from .common import (
    BOX_HELP,
    EXIT_OK,
    add_model_argument,
    add_objective_arguments,
    problem_from_args,
    report_stream,
    write_json,
)

EPILOG = """examples:
  reluopt compare net.onnx --box=0,1 --maximize 0 --methods ppga-lr,sampling,walk,mip --time-limit 10
  reluopt compare net.npz --box=-1,1 --minimize 2 --constraint "y[0] <= 0.3" \\
      --methods ppga,ppga-lr,sampling-mip --time-limit 5 --plot race.png --json race.json"""


def register(subparsers) -> None:
    """Add the ``compare`` subcommand and its options to the ``reluopt`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The parser's subcommands.
    """
    import argparse

    p = subparsers.add_parser(
        "compare",
        help="run several methods on one problem and compare their anytime incumbents",
        description=__doc__.split("\n\n")[1],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_argument(p)
    p.add_argument("--box", required=True, metavar="BOX", help=BOX_HELP)
    add_objective_arguments(p)
    p.add_argument("--polytope", metavar="FILE", help="input constraints A x <= b as JSON "
                   "{\"A\": [[...], ...], \"b\": [...]}")
    p.add_argument("--methods", default="ppga-lr,ppga,sampling,walk",
                   help="comma-separated method names (default ppga-lr,ppga,sampling,walk)")
    p.add_argument("--time-limit", type=float, default=10.0, metavar="S",
                   help="seconds per method (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the methods compared (default 0)")
    p.add_argument("--plot", metavar="PNG", help="write a plot of incumbent against time")
    p.add_argument("--json", metavar="OUT", help="write every Result as JSON to OUT ('-' = stdout)")
    p.set_defaults(func=run)


# ----------------------------------------------------------------------------- helpers
def _fmt(v, digits: int = 6) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}g}"


def table(results) -> str:
    """A markdown table of the results, best value first in the table's sense.

    Parameters
    ----------
    results : list of (str, Result)
        Method name and result, in table order.

    Returns
    -------
    str
        The table.
    """
    rows = ["| method | status | value | bound | seconds | time to best | improvements |",
            "|---|---|---|---|---|---|---|"]
    for name, r in results:
        t_best = None
        for t, v, _, _ in r.history:  # values of batched passes may differ in the last bits
            if v is not None and r.value is not None and abs(v - r.value) <= 1e-9 * (1 + abs(r.value)):
                t_best = t
                break
        n_imp = sum(1 for i, (_, v, _, _) in enumerate(r.history)
                    if v is not None and (i == 0 or v != r.history[i - 1][1]))
        rows.append(f"| {name} | {r.status} | {_fmt(r.value, 10)} | {_fmt(r.bound, 10)} | "
                    f"{r.seconds:.2f} | {_fmt(t_best, 3)} | {n_imp} |")
    return "\n".join(rows)


def plot(results, path: str, title: str, time_limit: float, sense: str = "max") -> None:
    """Save each method's incumbent against time, and its distance to the best value found.

    Left: the incumbents; right: the distance to the best value any method found, on a log
    scale (the differences that the left panel squashes).

    Parameters
    ----------
    results : list of (str, Result)
        Method name and result.
    path : str
        The PNG to write.
    title : str
        The figure title.
    time_limit : float
        The time axis' end.
    sense : str, optional
        ``"max"`` or ``"min"``: which values are better.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sign = 1.0 if sense == "max" else -1.0
    finals = [r.value for _, r in results if r.value is not None]
    best = (max if sense == "max" else min)(finals) if finals else None
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    floor = 1e-10 * max(1.0, abs(best)) if best is not None else 1e-10
    for name, r in results:
        pts = [(t, v) for t, v, _, _ in r.history if v is not None]
        if not pts:
            continue
        ts = [t for t, _ in pts] + [max(r.seconds, pts[-1][0])]
        vs = [v for _, v in pts] + [pts[-1][1]]
        line, = ax.step(ts, vs, where="post", label=f"{name} ({_fmt(r.value)})")
        ax.plot(ts[:-1], vs[:-1], "o", ms=3, color=line.get_color())
        gaps = [max(sign * (best - v), floor) for v in vs]
        ax2.step(ts, gaps, where="post", color=line.get_color(), label=name)
    for a in (ax, ax2):
        a.set_xlabel("seconds")
        a.set_xlim(0, time_limit * 1.02)
        a.grid(alpha=0.3)
    ax.set_ylabel("incumbent")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax2.set_yscale("log")
    ax2.set_ylabel("distance to the best value found")
    ax2.set_title(f"best found {_fmt(best)}; floor {floor:.0e} = reached", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- command
def run(args) -> int:
    """Run ``reluopt compare`` on the parsed command line.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        The exit code (see `reluopt.cli`).
    """
    from ..methods import get_method
    from ..result import check_time_limit

    problem = problem_from_args(args)
    check_time_limit(args.time_limit)
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not names:
        raise ProblemError("--methods is empty; give e.g. --methods ppga-lr,sampling")
    fns = [(n, get_method(n)) for n in names]  # fail on an unknown name before running any
    import scipy.stats.qmc  # noqa: F401  (a ~1 s first import: keep it out of the first method's clock)
    results = []
    for name, fn in fns:
        print(f"running {name} for {args.time_limit:g} s ...", file=sys.stderr, flush=True)
        results.append((name, fn(problem, time_limit=args.time_limit, seed=args.seed)))
    out = report_stream(args)
    print(problem.describe(), file=out)
    print(table(results), file=out)
    if args.plot:
        plot(results, args.plot, f"{Path(args.model).name}: {problem.describe()}", args.time_limit,
             problem.sense)
        print(f"plot written to {args.plot}", file=sys.stderr)
    if args.json:
        write_json(args.json, {"problem": problem.describe(), "time_limit": args.time_limit,
                               "seed": args.seed, "results": {name: r.to_dict() for name, r in results}})
    return EXIT_OK
