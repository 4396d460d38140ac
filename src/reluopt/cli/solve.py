"""``reluopt solve``: the best input of a trained network, with a certified bound."""

from __future__ import annotations

import argparse
import ast
import json
import math
from pathlib import Path

import numpy as np

from ..bounds import BOUND_METHODS
from ..errors import ParseError
from ..milp.backends import BACKENDS
from ..result import INFEASIBLE, INTERRUPTED, OPTIMAL, format_vector
from .common import (
    BOX_HELP,
    EXIT_INFEASIBLE,
    EXIT_INTERRUPTED,
    EXIT_NO_PROOF,
    EXIT_OK,
    add_cluster_arguments,
    add_model_argument,
    add_objective_arguments,
    add_progress_arguments,
    cluster_scope,
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
  reluopt solve net.onnx --box 0:1,0:1 --maximize 0 --method mip --write model.mps   # the MIP for any solver

expressions: sums of constant multiples of outputs y[i] and inputs x[i] (or the model's names),
e.g. '2*y[0] - y[1]/2 + 1' or 'y[0]*2 - 3e-2*x[0]'; a constraint on inputs only joins A x <= b.

exit codes: 0 optimal (gap within tolerance), 1 stopped without proof (time limit, heuristic),
3 proven infeasible, 2 bad input, 130 interrupted.
"""


def register(subparsers) -> None:
    """Add the ``solve`` subcommand and its options to the ``reluopt`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The parser's subcommands.
    """
    p = subparsers.add_parser("solve", help="optimise over a trained network (certified bound)",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(p)
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
                   help=f"neuron bounds for the MIP: {', '.join(BOUND_METHODS)} (default crown; ibp is what "
                   "the MIP peers use; alpha-crown and the OBBT methods are tighter, costlier)")
    p.add_argument("--solver", default=None, choices=BACKENDS,
                   help="MIP solver for --method mip: highs (default), scip (the 'scip' extra) "
                   "or gurobi (the 'gurobi' extra; its pip licence stops at 2000 variables or constraints)")
    p.add_argument("--incumbent", metavar="X", help="a starting input as 'v1,v2,...' or a JSON file with "
                   "a list (the MIP start / branch-and-bound incumbent)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="extra method option, e.g. -o threads=2 -o rescale=True (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the heuristics (default 0)")
    p.add_argument("--json", metavar="OUT", help="write the full result (x, y(x), value, bound, gap, history, "
                   "statistics) as JSON to OUT ('-' for stdout)")
    p.add_argument("--write", metavar="FILE", help="also write reluopt's MIP of the problem (the --bounds "
                   "bounds, stable neurons removed; columns x_i, y_k, h0_i, z0_i) to FILE.mps or FILE.lp "
                   "before solving, in the problem's own sense, for any MIP solver")
    add_cluster_arguments(p)
    add_progress_arguments(p)
    p.set_defaults(func=run)


#: Options that the command line sets itself: ``-o`` cannot give them.
RESERVED_OPTIONS = {"time_limit": "--time-limit", "seed": "--seed", "incumbent": "--incumbent",
                    "progress": None, "executor": None}

#: What the known numeric and boolean method options must be: (kind, lowest value, highest value,
#: None allowed). Checked before the run, so a wrong type is one clear error, not a traceback
#: from deep inside a method after a heuristic phase.
OPTION_TYPES: dict[str, tuple[str, float | None, float | None, bool]] = {
    "threads": ("int", 1, None, False),
    "starts": ("int", 1, None, False),
    "batch": ("int", 1, None, False),
    "batch_size": ("int", 1, None, False),
    "steps": ("int", 1, None, False),
    "max_steps": ("int", 1, None, False),
    "patience": ("int", 1, None, False),
    "max_iter": ("int", 1, None, True),
    "max_samples": ("int", 1, None, True),
    "max_walks": ("int", 1, None, True),
    "node_limit": ("int", 0, None, True),
    "max_rounds": ("int", 0, None, False),
    "max_perturb": ("int", 0, None, False),
    "start_samples": ("int", 0, None, False),
    "grad_steps": ("int", 0, None, False),
    "mult_steps": ("int", 0, None, False),
    "region_steps": ("int", 0, None, False),
    "slope_steps": ("int", 0, None, False),
    "leaf_unstable": ("int", 0, None, False),
    "lr": ("float", 0, None, True),
    "min_lr": ("float", 0, None, False),
    "sigma": ("float", 0, None, False),
    "mu": ("float", 0, None, True),
    "polish": ("float", 0, None, False),
    "feas_tol": ("float", 0, None, False),
    "abs_gap": ("float", 0, None, False),
    "rel_gap": ("float", 0, None, False),
    "eps": ("float", 0, None, False),
    "cross": ("float", 0, None, False),
    "min_width": ("float", 0, None, False),
    "gap_rule": ("float", 0, None, False),
    "nbhd_time": ("float", 0, None, False),
    "relax_fraction": ("float", 0, 1, False),
    "heuristic_fraction": ("float", 0, 1, True),
    "rescale": ("bool", None, None, False),
    "leaf_mip": ("bool", None, None, False),
}

#: Known options whose value is a name: its choices, or None when the method checks the name.
#: ``heuristics`` may also be a list of names.
NAME_OPTIONS: dict[str, tuple[str, ...] | None] = {
    "bounds": None, "solver": None, "design": None, "branching": None, "exact": None, "heuristics": None,
    "relax_solver": ("ipm", "simplex"),
}


def parse_options(items: list[str]) -> dict:
    """``['threads=2', 'rescale=True']`` -> ``{'threads': 2, 'rescale': True}``.

    Values are Python literals (a bare word stays a string). The options in ``OPTION_TYPES``
    must have their type and range, and ``RESERVED_OPTIONS`` are refused; ``ParseError`` otherwise.

    Parameters
    ----------
    items : list of str
        The ``--option`` values.

    Returns
    -------
    dict
        Option name to value.
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ParseError(f"--option {item!r}: expected KEY=VALUE")
        if key in RESERVED_OPTIONS:
            flag = RESERVED_OPTIONS[key]
            raise ParseError(f"--option {item!r}: {key} is set by " + (f"{flag}, not by -o" if flag else
                             "reluopt itself and cannot be given on the command line"))
        try:
            out[key] = ast.literal_eval(value.strip())
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            out[key] = value.strip()
        if key in OPTION_TYPES:
            _check_option(item, key, out[key])
        elif key in NAME_OPTIONS:
            _check_name_option(item, key, out[key])
    return out


def _check_name_option(item: str, key: str, value) -> None:
    names = list(value) if key == "heuristics" and isinstance(value, list | tuple) else [value]
    choices = NAME_OPTIONS[key]
    for name in names:
        if not isinstance(name, str) or (choices is not None and name not in choices):
            what = f"one of {', '.join(choices)}" if choices else "a name"
            raise ParseError(f"--option {item!r}: {key} must be {what}, got {name!r}")


def _check_option(item: str, key: str, value) -> None:
    kind, lo, hi, none_ok = OPTION_TYPES[key]
    if value is None and none_ok:
        return
    if kind == "bool":
        ok, what = isinstance(value, bool), "True or False"
        if key == "rescale":   # a flag or a rule's name
            from ..milp.rescale import RESCALE_RULES

            ok = ok or value in RESCALE_RULES
            what += f" or one of {', '.join(RESCALE_RULES)}"
    else:
        number = isinstance(value, int) if kind == "int" else isinstance(value, int | float) and math.isfinite(value)
        ok = number and not isinstance(value, bool) and (lo is None or value >= lo) and (hi is None or value <= hi)
        noun = "integer" if kind == "int" else "finite number"
        bound = f"a positive {noun}" if lo == 1 else f"a non-negative {noun}"     # lo is 0 or 1 when hi is None
        what = bound if hi is None else f"a {noun} in [{lo}, {hi}]"
    if not ok:
        raise ParseError(f"--option {item!r}: {key} must be {what}" + (" (or None)" if none_ok else "")
                         + f", got {value!r}")


#: Names ``solve_bab`` passes to ``bab_maximize_min`` itself (not options of ``--method bab``).
_BAB_SET_BY_SOLVE = {"network", "lb", "ub", "C", "e", "time_limit", "node_limit", "abs_gap", "rel_gap",
                     "incumbent", "progress", "seed", "out_C", "out_e", "A", "b", "on_incumbent", "on_bound",
                     "should_stop", "stop_above", "stop_below"}


def method_option_names(name: str, options: dict, problem) -> set[str] | None:
    """The option names ``--method name`` takes, or None when it passes any on unchecked.

    Parameters
    ----------
    name : str
        The method.
    options : dict
        The options given (``auto`` looks at ``exact``).
    problem : Problem
        The problem (``auto`` chooses its exact method by it).

    Returns
    -------
    set of str or None
        The names, None when they cannot be checked.
    """
    import inspect

    from ..methods import METHODS, get_method

    params = inspect.signature(get_method(name)).parameters.values()
    names = {p.name for p in params if p.kind is p.KEYWORD_ONLY} - {"time_limit", "seed", "progress"}
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        return names
    if name == "bab":
        from ..methods.bab import bab_maximize_min

        inner = inspect.signature(bab_maximize_min).parameters.values()
        return names | ({p.name for p in inner if p.kind is p.KEYWORD_ONLY} - _BAB_SET_BY_SOLVE)
    if name == "auto":
        from ..methods.portfolio import choose_exact

        exact = options.get("exact") or choose_exact(problem)
        if not isinstance(exact, str) or exact not in METHODS or exact == "auto":
            return None          # solve_auto reports a bad exact method itself
        inner_names = method_option_names(exact, {}, problem)
        return None if inner_names is None else names | inner_names
    return None


def check_method_options(name: str, options: dict, problem) -> None:
    """Refuse option names the method does not take before it runs.

    ``auto`` would otherwise complain only after its heuristic phase.

    Parameters
    ----------
    name : str
        The method.
    options : dict
        The parsed ``--option`` values.
    problem : Problem
        The problem.

    Raises
    ------
    ParseError
        An option the method does not take.
    """
    allowed = method_option_names(name, options, problem)
    if allowed is None:
        return
    unknown = sorted(set(options) - allowed)
    if unknown:
        if name == "auto":
            from ..methods.portfolio import choose_exact

            name = f"auto' (exact phase: {options.get('exact') or choose_exact(problem)})"
        else:
            name += "'"
        raise ParseError(f"method '{name} does not take that option: {unknown[0]!r} (its options: "
                         f"{', '.join(sorted(allowed - set(RESERVED_OPTIONS)))})")


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
    """Run ``reluopt solve`` on the parsed command line.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        The exit code (see `reluopt.cli`).
    """
    from ..methods import CLUSTER_METHODS, get_method

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
    check_method_options(args.method, options, problem)
    if (args.workers is not None or args.scheduler is not None) and args.method not in CLUSTER_METHODS:
        raise ParseError(f"--workers/--scheduler farm out branch and bound: method {args.method!r} has none "
                         f"(use {', '.join(CLUSTER_METHODS)})")
    out = report_stream(args)
    if args.write:
        _write(problem, args.write, options, args.time_limit, out)
    progress = progress_line(args)
    print(f"{problem.name}: {problem.describe()}", file=out)
    print(f"method {args.method}, time limit {args.time_limit:g} s", file=out)
    from ..io.sklearn import classifier_note

    note = classifier_note(problem.user_network)
    if note:
        print(f"note: {note}", file=out)
    try:
        with cluster_scope(args):
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


def _write(problem, path: str, options: dict, time_limit: float, out) -> None:
    """``--write``: the MIP of the problem as MPS or LP (``methods.mip.write_problem_model``)."""
    from ..methods.mip import write_problem_model

    bounds = options.get("bounds", "crown")
    if bounds not in BOUND_METHODS:
        raise ParseError(f"--write needs a bound method of {', '.join(BOUND_METHODS)}, got {bounds!r}")
    stats = write_problem_model(problem, path, bounds=bounds, rescale=bool(options.get("rescale", False)),
                                time_limit=0.5 * time_limit if math.isfinite(time_limit) else None)
    print(f"wrote {path}: {stats['columns']} columns, {stats['rows']} rows, {stats['binaries']} binaries "
          f"({stats['stable_neurons']}/{stats['hidden_neurons']} stable neurons, {bounds} bounds)", file=out)


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if math.isfinite(v) else str(v)
    return str(v)


def exit_code(status: str) -> int:
    """The exit code of a result's status.

    Parameters
    ----------
    status : str
        The result's status.

    Returns
    -------
    int
        0 optimal, 3 infeasible, 130 interrupted, else 1 (no proof).
    """
    if status == OPTIMAL:
        return EXIT_OK
    if status == INFEASIBLE:
        return EXIT_INFEASIBLE
    if status == INTERRUPTED:
        return EXIT_INTERRUPTED
    return EXIT_NO_PROOF
