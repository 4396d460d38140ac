"""``reluopt solve``: the best input of a trained network, with a certified bound."""

from __future__ import annotations

import argparse
import ast
import json
import math
from pathlib import Path

import numpy as np

from ..errors import ParseError
from ..result import INFEASIBLE, INTERRUPTED, OPTIMAL, format_vector
from . import EXIT_INFEASIBLE, EXIT_INTERRUPTED, EXIT_NO_PROOF, EXIT_OK
from .common import (
    BOX_HELP,
    MODEL_HELP,
    add_objective_arguments,
    add_progress_arguments,
    problem_from_args,
    progress_line,
    report_stream,
)

DESCRIPTION = """\
Find the input x in a box (optionally with A x <= b) that maximises or minimises a linear
function of the network's outputs, subject to linear output constraints, and report how far
from optimal it can be: the value is the network's own forward pass at x, and the bound is
certified (an upper bound for max, a lower bound for min).

methods:
  auto      (default) a short heuristic phase, then the exact method warm-started: bab for
            up to 8 inputs on a bounded box, else the MIP
  mip       exact big-M MIP (HiGHS, or --solver scip/gurobi), CROWN-tightened bounds, stable
            neurons removed
  bab       exact input-space branch and bound with CROWN; best for few inputs (<= ~8)
  ppga, ppga-lr, sampling, sampling-mip, walk
            heuristics: good points fast, no proof of optimality
"""

EPILOG = """\
examples:
  reluopt solve examples/peaks/models/peaks_2-64-64-1.npz --box=-3,3 --minimize 0
  reluopt solve reformer.npz --box 0.1:0.8,0.8:1.2 --maximize 0 --constraint "y[1] <= 0.34"
  reluopt solve net.onnx --box box.json --maximize "y[0] - y[1]" --method bab --time-limit 30 --json out.json
  reluopt solve net.onnx --box 0:1,0:1 --maximize "2*y[0] - 0.5*x[1]" --constraint "x[0] + x[1] <= 1"

expressions: sums of constant multiples of outputs y[i] and inputs x[i] (or the model's names),
e.g. '2*y[0] - y[1]/2 + 1' or 'y[0]*2 - 3e-2*x[0]'; a constraint on inputs only joins A x <= b.

exit codes: 0 optimal (gap within tolerance), 1 stopped without proof (time limit, heuristic),
3 proven infeasible, 2 bad input, 130 interrupted.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("solve", help="optimise over a trained network (certified bound)",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--box", required=True, metavar="BOX", help=BOX_HELP)
    add_objective_arguments(p)
    p.add_argument("--polytope", metavar="FILE", help="input constraints A x <= b as JSON "
                   "{\"A\": [[...], ...], \"b\": [...]}")
    p.add_argument("--method", default="auto", metavar="NAME",
                   help="auto (default), mip, bab, ppga, ppga-lr, sampling, sampling-mip, walk")
    p.add_argument("--time-limit", type=float, default=60.0, metavar="S",
                   help="wall-clock seconds, including bounds and model building (default 60); "
                   "the best point so far is returned when it runs out")
    p.add_argument("--bounds", default=None, metavar="KIND",
                   help="neuron bounds for the MIP: crown (default), ibp (as the MIP peers use), "
                   "lp-obbt or mip-obbt (tighter, costlier)")
    p.add_argument("--solver", default=None, choices=("highs", "scip", "gurobi"),
                   help="MIP solver for --method mip: highs (default, live progress), scip (the 'scip' extra) "
                   "or gurobi (the 'gurobi' extra; its pip licence stops at 2000 variables or constraints)")
    p.add_argument("--incumbent", metavar="X", help="a starting input as 'v1,v2,...' or a JSON file with "
                   "a list (the MIP start / branch-and-bound incumbent)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="extra method option, e.g. -o threads=2 -o rescale=True (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the heuristics (default 0)")
    p.add_argument("--json", metavar="OUT", help="write the full result (x, y(x), value, bound, gap, history, "
                   "statistics) as JSON to OUT ('-' for stdout)")
    add_progress_arguments(p)
    p.set_defaults(func=run)


def parse_options(items: list[str]) -> dict:
    """``['threads=2', 'rescale=True']`` -> ``{'threads': 2, 'rescale': True}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParseError(f"--option {item!r}: expected KEY=VALUE")
        try:
            out[key.strip().replace("-", "_")] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip().replace("-", "_")] = value.strip()
    return out


def _vector_arg(text: str, dim: int, what: str) -> np.ndarray:
    try:
        path = Path(text)
        values = json.loads(path.read_text()) if path.is_file() else [float(v) for v in text.split(",")]
        x = np.asarray(values, dtype=np.float64).reshape(-1)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ParseError(f"{what} {text!r}: cannot read it ({exc})") from None
    if x.shape != (dim,):
        raise ParseError(f"{what} has {x.shape[0]} values; the network has {dim} inputs")
    return x


def run(args) -> int:
    from ..methods import get_method

    problem = problem_from_args(args)
    net = problem.network
    options = parse_options(args.option)
    if args.bounds is not None:
        options["bounds"] = args.bounds
    if args.solver is not None:
        if args.method not in ("mip", "auto"):
            raise ParseError(f"--solver chooses the MIP solver; method {args.method!r} has no MIP "
                             "(use --method mip, or auto)")
        options["solver"] = args.solver
        if args.method == "auto":
            options["exact"] = "mip"    # a chosen MIP solver means the exact phase is the MIP
    if args.incumbent:
        options["incumbent"] = _vector_arg(args.incumbent, net.input_dim, "--incumbent")
    method = get_method(args.method)
    progress = progress_line(args)
    out = report_stream(args)
    print(f"{problem.name}: {problem.describe()}", file=out)
    print(f"method {args.method}, time limit {args.time_limit:g} s", file=out)
    try:
        result = method(problem, time_limit=args.time_limit, seed=args.seed, progress=progress, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise ParseError(f"method {args.method!r} does not take that option: {exc}") from None
        raise
    finally:
        progress.close()
    print(result.summary(), file=out)
    y = None if result.x is None else problem.outputs(result.x)
    if y is not None:
        print(format_vector("y(x)", y), file=out)
    shown = {k: v for k, v in result.stats.items() if isinstance(v, int | float | str) and not isinstance(v, bool)}
    if shown:
        print("stats    " + ", ".join(f"{k} {_short(v)}" for k, v in shown.items()), file=out)
    if args.json:
        from .common import write_json

        payload = result.to_dict()
        payload["y"] = None if y is None else [float(v) for v in y]   # the network's outputs at x
        payload["problem"] = problem.describe()
        payload["model"] = str(args.model)
        write_json(args.json, payload)
    return exit_code(result.status)


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if math.isfinite(v) else str(v)
    return str(v)


def exit_code(status: str) -> int:
    if status == OPTIMAL:
        return EXIT_OK
    if status == INFEASIBLE:
        return EXIT_INFEASIBLE
    if status == INTERRUPTED:
        return EXIT_INTERRUPTED
    return EXIT_NO_PROOF
