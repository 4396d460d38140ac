"""``reluopt lipschitz``: certified lower and upper bounds on a network's local Lipschitz constant."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from ..bounds import BOUND_METHODS
from ..errors import ParseError
from .common import BOX_HELP, EXIT_NO_PROOF, EXIT_OK, ProgressLine, add_model_argument, load_domain, write_json

DESCRIPTION = """\
Bound the local Lipschitz constant of f(x) = c . y(x) over an input box, for the input norm
p in {1, 2, inf}: the largest dual norm ||grad f(x)||_q (q = inf, 2, 1) over the linear
regions of the network that meet the box. The lower bound is the gradient norm at a witness
point x strictly inside its region (re-checked by a forward pass); the upper bound is
certified. With neither --output nor --objective and several outputs, the vector case for
p = inf (the largest l1 norm of a Jacobian row) or p = 2 (the largest spectral norm of the
Jacobian, l2 -> l2).

methods:
  auto       sample, then branch and bound (<= 8 inputs) or the exact MIP/MIQCQP (default)
  sample     lower bound from sampled points and a local ascent over regions; cheap upper bounds
  bounds     cheap upper bounds only: product of layer norms, interval Jacobian
  bab        branch and bound over the input box with CROWN and interval Jacobians (any norm)
  mip        exact MIP for p = 1 or inf (HiGHS; --solver gurobi if licensed)
  mip-upper  the MIP without the realisability constraints: an upper bound only
  miqcqp     exact for p = 2, a nonconvex MIQCQP (SCIP: pip install reluopt[scip]; or --solver gurobi);
             --formulation paper: the activation regions as the paper's quadratic constraints
"""

EPILOG = """\
examples:
  reluopt lipschitz net.onnx --box=-1,1 --norm inf --output 0 --method mip --time-limit 30
  reluopt lipschitz net.onnx --box box.json --objective "y[3] - y[5]" --norm 1 --json out.json
  reluopt lipschitz net.npz --box 0:1,0:1 --objective c.json --norm 2 --method miqcqp
  reluopt lipschitz net.npz --box=-1,1 --norm 2 --method miqcqp --formulation paper   # l2 -> l2, all outputs

exit codes: 0 proven (lower and upper meet), 1 gap left (time limit, bounds-only method),
2 bad input (model, box, norm, objective, missing solver), 130 interrupted.
"""


def register(subparsers) -> None:
    """Add the ``lipschitz`` subcommand and its options to the ``reluopt`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The parser's subcommands.
    """
    p = subparsers.add_parser("lipschitz", help="certified bounds on the local Lipschitz constant",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(p)
    p.add_argument("--box", required=True, metavar="BOX", help=BOX_HELP + "; must be bounded")
    p.add_argument("--norm", default="inf", metavar="P",
                   help="input norm p: 1, 2 or inf (default inf); the gradient is measured in the dual "
                   "norm q (inf, 2, 1)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--output", type=int, metavar="K", help="the function is output K (an index from 0)")
    target.add_argument("--objective", metavar="C",
                        help="the function is c . y: a JSON file with a list of one coefficient per output "
                        "(or {\"c\": [...]}), an inline list '1,-1,0,...', or an expression 'y[3] - y[5]'")
    p.add_argument("--method", default="auto", metavar="NAME",
                   help="auto (default), sample, bounds, bab, mip, mip-upper, miqcqp (see above)")
    p.add_argument("--time-limit", type=float, default=60.0, metavar="S",
                   help="wall-clock seconds for the whole computation (default 60); the bounds so far "
                   "are returned when it runs out")
    p.add_argument("--bounds", default="crown", metavar="KIND",
                   help=f"neuron bounds for the MIP and the interval Jacobian: {', '.join(BOUND_METHODS)} "
                   "(default crown; alpha-crown and the OBBT methods are paid from the time limit)")
    p.add_argument("--solver", default="highs", metavar="NAME",
                   help="solver of the exact models: highs (default; the l2 MIQCQP then uses SCIP) or "
                   "gurobi (needs a licence for models over 2000 variables or constraints)")
    p.add_argument("--formulation", default="linearised", metavar="NAME",
                   help="the l2 MIQCQP's activation regions: linearised rows (default) or the paper's "
                   "quadratic constraints (Sbihi, Couellan and Jan)")
    p.add_argument("--polytope", metavar="FILE", help="extra input constraints A x <= b as JSON "
                   "{\"A\": [[...], ...], \"b\": [...]}")
    p.add_argument("--samples", type=int, default=20000, metavar="N",
                   help="random points tried for the lower bound before the local ascent (default 20000)")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="solver threads (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the sampling (default 0)")
    p.add_argument("--json", metavar="OUT", help="write the full result (lower, upper, gap, status, witness "
                   "x and its activation pattern, history, statistics) as JSON to OUT ('-' for stdout)")
    p.add_argument("--quiet", "-q", action="store_true", help="no live progress line")
    p.set_defaults(func=run)


def parse_objective(text: str, n_outputs: int) -> np.ndarray:
    """``c`` from a JSON file, an inline list or a linear expression of the outputs.

    Parameters
    ----------
    text : str
        The ``--objective`` value.
    n_outputs : int
        The network's outputs.

    Returns
    -------
    numpy.ndarray
        ``c``, one finite coefficient per output.

    Raises
    ------
    ParseError
        The value cannot be read or has the wrong length.
    """
    from ..problem import parse_linear_expression

    path = Path(text)
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            values = data["c"] if isinstance(data, dict) else data
            c = np.asarray(values, dtype=np.float64).reshape(-1)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ParseError(f"--objective file {text!r}: cannot read it ({exc}); expected a JSON list of "
                             f"{n_outputs} numbers or {{\"c\": [...]}}") from None
    elif "y" in text:
        c, _ = parse_linear_expression(text, n_outputs)
    else:
        try:
            c = np.asarray([float(v) for v in text.split(",")], dtype=np.float64)
        except ValueError:
            raise ParseError(f"--objective {text!r}: not a file, a list of numbers or an expression "
                             "such as 'y[0] - y[1]'") from None
    if c.shape != (n_outputs,):
        raise ParseError(f"--objective {text!r} has {c.size} coefficients; the network has {n_outputs} outputs")
    if not np.all(np.isfinite(c)):
        raise ParseError(f"--objective {text!r}: coefficients must be finite")
    return c


def run(args) -> int:
    """Run ``reluopt lipschitz`` on the parsed command line.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        The exit code (see `reluopt.cli`).
    """
    from ..lipschitz import lipschitz

    net, lb, ub, A, b = load_domain(args)
    c = parse_objective(args.objective, net.output_dim) if args.objective is not None else None
    line = ProgressLine(enabled=not args.quiet)
    try:
        r = lipschitz(net, (lb, ub), norm=args.norm, method=args.method, output=args.output, c=c,
                      time_limit=args.time_limit, seed=args.seed, samples=args.samples, bounds=args.bounds,
                      solver=args.solver, threads=args.threads, A=A, b=b, progress=line,
                      formulation=args.formulation)
    finally:
        line.close()
    if args.json:
        write_json(args.json, {"model": str(args.model), **r.to_dict()})
    out = sys.stderr if args.json == "-" else sys.stdout
    print(f"lipschitz constant of {', '.join(r.stats.get('rows', []))} w.r.t. the l{r.norm} input norm",
          file=out)
    print(r.summary(), file=out)
    print(f"method  {r.method}", file=out)
    if r.x is not None:
        shown = ", ".join(f"{v:.6g}" for v in r.x[:8]) + (", ..." if r.x.size > 8 else "")
        print(f"witness x = [{shown}]", file=out)
    proven = r.status == "optimal" and math.isfinite(r.upper)
    return EXIT_OK if proven else EXIT_NO_PROOF
