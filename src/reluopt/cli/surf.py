"""``reluopt surf CHECKPOINTS ...``: invert a generative network, or do compressed sensing, by
Surfing over its training checkpoints, against direct descent at the same gradient budget.

Targets are in-range images ``G_T(x*)`` (the global minimum is 0 at a known ``x*``, so
success is measurable), held-out 8x8 digits, or rows of a file. Prints, per case and method,
the success rate, the share of targets on which the method found the best value of all
methods, the median objective and the median relative reconstruction error.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from ..errors import ParseError, ProblemError
from .common import BOX_HELP, add_trust_pickle_argument, load_network, parse_box, write_json

DESCRIPTION = """\
Invert a generative network (find the latent x whose image G_T(x) is a target), or do compressed
sensing (find x with A G_T(x) close to measurements), by Surfing: gradient descent that follows the
minimiser across the network's training checkpoints, from the random initialisation to the trained
network G_T. With --compare it also runs direct descent on G_T and random restarts at the same
gradient budget; with --exact, an exact MIQP (SCIP) per target.

""" + __doc__.split("\n\n")[1]

EPILOG = """examples:
  reluopt surf examples/surfing/checkpoints/latent4 --in-range 50 --compare
  reluopt surf examples/surfing/checkpoints/latent4 --in-range 50 --digits 50 \\
      --measurements none --measurements gaussian:32 --measurements gaussian:16 --compare
  reluopt surf ckpt_000.npz ckpt_020.npz ckpt_040.npz --box=-3,3 --target images.npy --json out.json
  reluopt surf examples/surfing/checkpoints/latent4 --in-range 5 --exact 30

CHECKPOINTS: one folder (its index.json lists the files in training order; otherwise files
are ordered by the numbers in their names) or several model files, first = random
initialisation, last = the trained network G_T. The latent box defaults to the folder's
latent_box.json (written by examples/surfing/train_digits_decoder.py).

Success: objective 1/2||A G_T(x) - t||^2 below 1e-6, or ||x - x*|| below 1e-3 for in-range
targets; for miqp (--exact), the share proven optimal. best: the share of targets on which
the method found the best value of all methods run (within 1e-4 relative).
--measurements gaussian:M draws a Gaussian A (M rows, entries N(0, 1/M), seeded).
A --target row as long as the network output is a signal (measured by A and its
reconstruction error reported); a row as long as A's rows is a measurement."""


def register(subparsers) -> None:
    """Add the ``surf`` subcommand and its options to the ``reluopt`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The parser's subcommands.
    """
    import argparse

    p = subparsers.add_parser(
        "surf",
        help="invert a generative network / compressed sensing by Surfing over training checkpoints",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINTS",
                   help="a checkpoint folder, or model files in training order")
    add_trust_pickle_argument(p)
    p.add_argument("--box", help="latent box, " + BOX_HELP + " (default: the folder's latent_box.json)")
    p.add_argument("--in-range", type=int, default=0, metavar="N",
                   help="N targets G_T(x*) with x* uniform in the box")
    p.add_argument("--digits", type=int, default=0, metavar="N",
                   help="N held-out scikit-learn 8x8 digits (pixels in [0, 1]; 64-output decoders)")
    p.add_argument("--target", metavar="FILE", help="targets, one per row (.npy or .csv)")
    p.add_argument("--measurements", action="append", metavar="SPEC",
                   help="'none' (inversion, the default), 'gaussian:M', or a matrix file (.npy/.csv); "
                        "repeatable: each is a separate case")
    p.add_argument("--starts", type=int, default=4, help="random starts per target (default 4)")
    p.add_argument("--steps-per-checkpoint", type=int, default=50, help="Adam steps on each checkpoint")
    p.add_argument("--polish-steps", type=int, default=200, help="Adam steps on G_T at the end")
    p.add_argument("--lr", type=float, default=0.05, help="Adam step size (default 0.05)")
    p.add_argument("--compare", action="store_true",
                   help="also run direct Adam on G_T and random restarts at the same gradient budget")
    p.add_argument("--restarts", type=int, default=4, help="restarts of the restart baseline (default 4)")
    p.add_argument("--exact", type=float, metavar="SECONDS",
                   help="also solve each target exactly (MIQP on SCIP, warm-started at Surfing's answer) "
                        "with this time limit per target")
    p.add_argument("--seed", type=int, default=0, help="random seed of the targets, starts and measurement "
                   "matrices (default 0)")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT ('-' = stdout)")
    p.set_defaults(func=run)


# ----------------------------------------------------------------------------- inputs
def read_checkpoints(paths: list[str], trust_pickle: bool = False):
    """The Surfing checkpoints from one folder or several model files.

    Parameters
    ----------
    paths : list of str
        One checkpoint folder, or model files in training order.
    trust_pickle : bool, optional
        Allow unpickling model files.

    Returns
    -------
    checkpoints : list of Network
        The checkpoints in training order (see `reluopt.methods.surfing.load_checkpoints`).
    folder : Path or None
        The folder, when one was given.
    """
    from ..inversion.surfing import load_checkpoints

    if len(paths) == 1 and Path(paths[0]).is_dir():
        return load_checkpoints(paths[0]), Path(paths[0])
    for p in paths:
        if Path(p).is_dir():
            raise ParseError(f"{p} is a folder: give one checkpoint folder, or several model files")
    return load_checkpoints([load_network(p, trust_pickle=trust_pickle) for p in paths]), None


def read_box(args, net, folder: Path | None):
    """The latent box: ``--box``, or the checkpoint folder's ``latent_box.json``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.
    net : Network
        The generator (for the box's dimension).
    folder : Path or None
        The checkpoint folder.

    Returns
    -------
    tuple of numpy.ndarray
        ``(lb, ub)``.

    Raises
    ------
    ProblemError
        There is no box.
    """
    if args.box:
        return parse_box(args.box, net)
    if folder is not None and (folder / "latent_box.json").exists():
        return parse_box(str(folder / "latent_box.json"), net)
    raise ProblemError("no latent box: give --box (the checkpoint folder has no latent_box.json)")


def read_matrix(path: str, what: str) -> np.ndarray:
    """A finite matrix from a ``.npy`` or CSV file.

    Parameters
    ----------
    path : str
        The file.
    what : str
        What it is, for error messages.

    Returns
    -------
    numpy.ndarray
        The matrix (at least 2-D).

    Raises
    ------
    ParseError
        A missing or unreadable file, or a non-finite entry.
    """
    p = Path(path)
    if not p.is_file():
        raise ParseError(f"{what} file {path!r} does not exist")
    try:
        M = np.load(p) if p.suffix.lower() == ".npy" else np.loadtxt(p, delimiter=",", comments="#")
    except (OSError, ValueError) as exc:
        raise ParseError(f"{what} file {path!r}: cannot read it ({exc}); expected .npy or CSV") from None
    M = np.atleast_2d(np.asarray(M, dtype=np.float64))
    if not np.all(np.isfinite(M)):
        raise ParseError(f"{what} file {path!r} contains a non-finite value")
    return M


def measurement_matrix(spec: str, n_outputs: int, rng) -> np.ndarray | None:
    """The ``--measurements`` matrix: none (identity), ``gaussian:M`` or a file.

    Parameters
    ----------
    spec : str
        The option's value.
    n_outputs : int
        The generator's outputs (the matrix's columns).
    rng : numpy.random.Generator
        Source of a Gaussian matrix.

    Returns
    -------
    numpy.ndarray or None
        The matrix, None for the identity.
    """
    spec = spec.strip()
    if spec.lower() in ("none", "identity"):
        return None
    if spec.lower().startswith("gaussian:"):
        try:
            m = int(spec.split(":", 1)[1])
        except ValueError:
            raise ParseError(f"--measurements {spec!r}: expected gaussian:M with an integer M") from None
        if m < 1:
            raise ParseError(f"--measurements {spec!r}: M must be at least 1")
        return rng.normal(size=(m, n_outputs)) / np.sqrt(m)
    A = read_matrix(spec, "measurement matrix")
    if A.shape[1] != n_outputs:
        raise ProblemError(f"measurement matrix {spec!r} has shape {A.shape}; it needs {n_outputs} "
                           "columns (one per network output)")
    return A


def held_out_digits(n: int, seed: int = 0) -> np.ndarray:
    """The held-out rows of examples/surfing/train_digits_decoder.py's split (same seed).

    Parameters
    ----------
    n : int
        Number of rows.
    seed : int, optional
        The split's seed.

    Returns
    -------
    numpy.ndarray
        Digit images scaled to [0, 1], one per row.
    """
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0
    order = np.random.default_rng(seed).permutation(X.shape[0])
    if n > 200:
        raise ProblemError(f"--digits: at most 200 held-out digits, got {n}")
    return X[order[:n]]


# ----------------------------------------------------------------------------- run
def run(args) -> int:
    """Run ``reluopt surf`` on the parsed command line.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        The exit code (see `reluopt.cli`).
    """
    from ..inversion.comparison import compare_at_equal_budget, relative_errors
    from ..inversion.surfing import surf

    for name in ("in_range", "digits", "starts", "steps_per_checkpoint", "polish_steps", "restarts"):
        if getattr(args, name) < (0 if name in ("in_range", "digits", "polish_steps") else 1):
            raise ProblemError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.lr <= 0:
        raise ProblemError(f"--lr must be positive, got {args.lr}")
    if args.exact is not None and args.exact <= 0:
        raise ProblemError(f"--exact must be a positive number of seconds, got {args.exact}")
    nets, folder = read_checkpoints(args.checkpoints, trust_pickle=args.trust_pickle)
    G = nets[-1]
    lb, ub = read_box(args, G, folder)
    rng = np.random.default_rng(args.seed)
    # (label, signals y (k, m) or None, x_star or None, raw targets or None)
    groups: list[tuple[str, np.ndarray | None, np.ndarray | None, np.ndarray | None]] = []
    if args.in_range:
        x_in = rng.uniform(lb, ub, size=(args.in_range, G.input_dim))
        groups.append(("in range", G.forward(x_in), x_in, None))
    if args.digits:
        if G.output_dim != 64:
            raise ProblemError(f"--digits needs a decoder of 64 outputs (8x8 pixels); this one has {G.output_dim}")
        groups.append(("held-out digits", held_out_digits(args.digits), None, None))
    if args.target:
        groups.append((Path(args.target).name, None, None, read_matrix(args.target, "target")))
    if not groups:
        raise ProblemError("no targets: give --in-range N, --digits N and/or --target FILE")
    specs = args.measurements or ["none"]
    matrices = [(s, measurement_matrix(s, G.output_dim, rng)) for s in specs]
    print(f"checkpoints: {len(nets)} of {G.describe()}; latent box {np.round(lb, 3).tolist()} .. "
          f"{np.round(ub, 3).tolist()}", file=sys.stderr)
    header = f"{'case':40s} {'method':>10s} {'success':>8s} {'best':>6s} {'median obj':>11s} {'median rel.err':>14s}"
    print(header)
    cases = []
    for label, Y, x_star, raw in groups:
        for spec, A in matrices:
            case = f"{label}, " + ("inversion" if A is None else f"m={A.shape[0]} ({spec})")
            Y_sig, targets = Y, None     # a group has signals Y or raw targets (or both)
            if raw is not None:
                if A is not None and raw.shape[1] == A.shape[0] and raw.shape[1] != G.output_dim:
                    targets = raw
                else:
                    Y_sig = raw
            if targets is None:
                assert Y_sig is not None
                if Y_sig.shape[1] != G.output_dim:
                    rows = "" if A is None else f" and A has {A.shape[0]} rows"
                    raise ProblemError(f"{label}: targets have {Y_sig.shape[1]} entries; the network has "
                                       f"{G.output_dim} outputs{rows}")
                targets = Y_sig if A is None else Y_sig @ A.T
            box = (lb, ub)
            opts = dict(starts=args.starts, steps_per_checkpoint=args.steps_per_checkpoint,
                        polish_steps=args.polish_steps, lr=args.lr, seed=args.seed)
            if args.compare:
                res = compare_at_equal_budget(nets, targets, box, A=A, x_star=x_star, y_true=Y_sig,
                                              restarts=args.restarts, **opts)
            else:
                results = surf(nets, targets, box, A=A, **opts)
                values = np.array([r.value for r in results])
                ok = values < 1e-6
                if x_star is not None:
                    ok |= np.linalg.norm(np.array([r.x for r in results]) - x_star, axis=1) < 1e-3
                res = {"surfing": {"results": results, "success": float(np.mean(ok)), "best_rate": 1.0,
                                   "median_value": float(np.median(values)),
                                   "gradient_evaluations": results[0].stats["gradient_evaluations"]}}
                if Y_sig is not None:
                    res["surfing"]["median_rel_error"] = float(np.median(relative_errors(G, results, Y_sig)))
            if args.exact is not None:
                res["miqp"] = exact_runs(G, targets, A, lb, ub, res["surfing"]["results"], args.exact, Y_sig,
                                         args.seed)
            for name, v in res.items():
                rel = v.get("median_rel_error")
                best = "-" if math.isnan(v["best_rate"]) else f"{v['best_rate']:.0%}"
                print(f"{case:40s} {name:>10s} {v['success']:8.0%} {best:>6s} "
                      f"{v['median_value']:11.3e} {'-' if rel is None else f'{rel:.3e}':>14s}", flush=True)
            cases.append({"case": case, "targets": int(targets.shape[0]),
                          "measurements": None if A is None else int(A.shape[0]),
                          "methods": {name: {k: val for k, val in v.items() if k != "results"}
                                      | {"values": [r.value for r in v["results"]],
                                         "x": [r.x.tolist() for r in v["results"]],
                                         "statuses": [r.status for r in v["results"]]}
                                      for name, v in res.items()}})
    if args.json:
        write_json(args.json, {"checkpoints": len(nets), "network": G.describe(), "lb": lb.tolist(),
                               "ub": ub.tolist(), "cases": cases})
    return 0


def exact_runs(G, targets, A, lb, ub, warm, time_limit, Y_sig, seed) -> dict:
    """The exact MIQP per target, warm-started at Surfing's point, summarised like Surfing's runs.

    Parameters
    ----------
    G : Network
        The generator.
    targets : sequence of numpy.ndarray
        The measured outputs.
    A : numpy.ndarray or None
        The measurement matrix.
    lb, ub : numpy.ndarray
        The latent box.
    warm : sequence of Result
        Surfing's result per target.
    time_limit : float
        Seconds per target.
    Y_sig : numpy.ndarray or None
        The true signals, for relative errors.
    seed : int
        Seed of the MIQP.

    Returns
    -------
    dict
        The results and their summary (success rate, median value, bound and error).
    """
    from ..inversion.comparison import relative_errors
    from ..inversion.miqp import solve_miqp
    from ..problem import Domain, LeastSquares, Problem

    results = []
    for t, w in zip(targets, warm, strict=True):
        problem = Problem(G, Domain(lb, ub), LeastSquares(t, A))
        results.append(solve_miqp(problem, time_limit=time_limit, incumbent=w.x, seed=seed))
    values = np.array([r.value for r in results])
    out = {"results": results, "success": float(np.mean([r.status == "optimal" for r in results])),
           "best_rate": float("nan"), "median_value": float(np.median(values)),
           "median_bound": float(np.median([r.bound for r in results])),
           "gradient_evaluations": 0}
    if Y_sig is not None:
        out["median_rel_error"] = float(np.median(relative_errors(G, results, Y_sig)))
    return out
