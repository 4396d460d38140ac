"""Pieces every subcommand shares: loading a model, reading a box and an objective, JSON output,
checking output files before a long run. Errors are ``reluopt`` errors, which ``main`` prints as
one line with exit code 2. The live progress line is in ``cli/progress.py`` (re-exported here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..errors import ParseError, ReluoptError
from ..network import Network
from .progress import (  # re-exported: the subcommands import them from here
    PHASE_NAMES,
    PROGRESS_HELP,
    ProgressLine,
    add_progress_arguments,
    format_gap,
    format_progress,
    progress_line,
)

__all__ = ["BOX_HELP", "EXIT_INFEASIBLE", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_NO_PROOF", "EXIT_OK",
           "EXIT_USAGE", "MODEL_HELP", "OUTPUT_OPTIONS", "PHASE_NAMES", "PLOT_FORMATS", "PROGRESS_HELP",
           "TRUST_PICKLE_HELP", "ProgressLine", "add_cluster_arguments", "add_model_argument",
           "add_objective_arguments", "add_progress_arguments", "add_trust_pickle_argument", "check_common_args",
           "check_output_file", "cluster_scope",
           "format_gap", "format_progress", "load_domain", "load_network", "objective_kwargs", "parse_box",
           "problem_from_args", "progress_line", "read_polytope", "report_stream", "write_json"]

BOX_HELP = ("input box: 'LO,HI' (the same interval for every input), 'lo1:hi1,lo2:hi2,...' (one "
            "interval per input), or a file: JSON {\"lb\": [...], \"ub\": [...]} or CSV with two "
            "columns lo,hi and one row per input (a header line 'lo,hi' is optional)")

#: Exit codes (documented in ``reluopt --help``).
EXIT_OK = 0            # solved / proved / property answered
EXIT_NO_PROOF = 1      # ran, but stopped without a proof (time limit, unknown)
EXIT_USAGE = 2         # bad command line or bad input (model, box, property)
EXIT_INFEASIBLE = 3    # proven infeasible
EXIT_INTERNAL = 4      # a result failed its own certificate check (a bug: never a certificate)
EXIT_INTERRUPTED = 130


def load_network(path: str | Path, trust_pickle: bool = False) -> Network:
    """Load a model file (see ``MODEL_HELP``), with a clear error.

    Parameters
    ----------
    path : str or Path
        The model file.
    trust_pickle : bool, default False
        ``--trust-pickle``: allow unpickling (``.pkl``, ``.joblib``, a pickled ``nn.Module``).

    Returns
    -------
    Network
    """
    from ..io import load_model

    p = Path(path)
    if p.is_dir():
        raise ReluoptError(f"model file {str(p)!r} is a directory, not a file")
    if not p.exists():
        raise ReluoptError(f"model file {str(p)!r} does not exist")
    return load_model(p, trust_pickle=trust_pickle)


#: Help text of every command's MODEL argument.
MODEL_HELP = ("network file: .onnx, .npz (reluopt native), .skops or .pkl/.joblib (scikit-learn MLP; "
              "pickles need --trust-pickle), .pt (torch nn.Sequential: TorchScript, or a pickled module "
              "with --trust-pickle)")

TRUST_PICKLE_HELP = ("allow loading pickled models (.pkl/.joblib, a whole torch module in .pt): a pickle can "
                     "run arbitrary code when it is loaded, so use this only for files you trust")


def add_model_argument(parser, **kwargs) -> None:
    """Add the MODEL positional argument and ``--trust-pickle``, so that every command reads models alike.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.
    **kwargs
        Override the argument's defaults, e.g. ``nargs="?"``.
    """
    parser.add_argument("model", **{"metavar": "MODEL", "help": MODEL_HELP, **kwargs})
    add_trust_pickle_argument(parser)


def add_trust_pickle_argument(parser) -> None:
    """Add ``--trust-pickle``, for commands that read models but have no MODEL argument.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.
    """
    parser.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)


def parse_box(text: str, dim: int | Network) -> tuple[np.ndarray, np.ndarray]:
    """``(lb, ub)`` from a ``--box`` value (see ``BOX_HELP``) for a network of ``dim`` inputs.

    Parameters
    ----------
    text : str
    dim : int or Network

    Returns
    -------
    tuple of numpy.ndarray
    """
    if isinstance(dim, Network):
        dim = dim.input_dim
    text = str(text).strip()
    if Path(text).is_file():
        lb, ub = _read_box_file(Path(text))
    else:
        parts = [s.strip() for s in text.split(",") if s.strip()]
        try:
            if parts and all(":" in s for s in parts):
                pairs = [tuple(float(v) for v in s.split(":")) for s in parts]
                if any(len(pq) != 2 for pq in pairs):
                    raise ValueError("each entry must be lo:hi")
                lb, ub = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
            elif len(parts) == 2 and not any(":" in s for s in parts):
                lb, ub = np.full(dim, float(parts[0])), np.full(dim, float(parts[1]))
            else:
                raise ValueError("expected 'LO,HI', 'lo1:hi1,lo2:hi2,...' or a file")
        except ValueError as exc:
            raise ParseError(f"--box {text!r}: {exc}") from None
    if lb.shape != (dim,) or ub.shape != (dim,):
        raise ParseError(f"--box {text!r} gives {lb.shape[0]} intervals; the network has {dim} inputs")
    if not (np.all(np.isfinite(lb)) and np.all(np.isfinite(ub))):
        raise ParseError(f"--box {text!r}: bounds must be finite")
    if np.any(lb > ub):
        i = int(np.argmax(lb > ub))
        raise ParseError(f"--box {text!r}: input {i} has lo {lb[i]} > hi {ub[i]}")
    return lb, ub


def _read_box_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            return np.asarray(data["lb"], dtype=np.float64), np.asarray(data["ub"], dtype=np.float64)
        rows = _read_box_csv(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"box file {str(path)!r}: cannot read it ({exc}); expected JSON "
                         "{\"lb\": [...], \"ub\": [...]} or CSV rows 'lo,hi' (an optional header line)") from None
    if rows.shape[1] != 2:
        raise ParseError(f"box file {str(path)!r}: rows have {rows.shape[1]} columns, expected 2 (lo,hi)")
    return rows[:, 0].copy(), rows[:, 1].copy()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_box_csv(path: Path) -> np.ndarray:
    """Rows ``lo,hi`` of a CSV box file; a first line that is not numbers (``lo,hi``) is a
    header, and ``#`` starts a comment."""
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    lines = [line for line in lines if line]
    if lines and not any(_is_number(v) for v in lines[0].split(",")):
        lines = lines[1:]    # a header such as 'lo,hi'
    if not lines:
        raise ValueError("no rows")
    return np.atleast_2d(np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2))


def add_objective_arguments(parser) -> None:
    """Add --maximize / --minimize and --constraint, shared by solve and the commands like it.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser (one of --maximize / --minimize becomes required).
    """
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--maximize", metavar="K", help="maximise output K (an index) or a linear expression "
                       "of outputs y[i] and inputs x[i], such as 'y[0] - y[1]' or '3*y[0] - 0.5*x[1]'")
    group.add_argument("--minimize", metavar="K", help="minimise output K or a linear expression")
    parser.add_argument("--constraint", action="append", default=[], metavar="EXPR",
                        help="linear constraint on outputs and/or inputs, such as 'y[1] <= 0.34', "
                        "'y[0] >= y[2]' or 'x[0] + x[1] <= 1' (inputs only: joins A x <= b); repeatable")


def objective_kwargs(args) -> dict:
    """Keyword arguments for ``Problem.build`` from --maximize/--minimize.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    dict
    """
    text = args.maximize if args.maximize is not None else args.minimize
    key = "maximize" if args.maximize is not None else "minimize"
    text = str(text).strip()
    return {key: int(text) if text.lstrip("-").isdigit() else text}


def read_polytope(path: str) -> tuple[np.ndarray, np.ndarray]:
    """``A, b`` of ``A x <= b`` from a JSON file ``{"A": [[...]], "b": [...]}`` (``--polytope``).

    Parameters
    ----------
    path : str

    Returns
    -------
    tuple of numpy.ndarray
    """
    try:
        data = json.loads(Path(path).read_text())
        return np.asarray(data["A"], dtype=np.float64), np.asarray(data["b"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"--polytope {path!r}: cannot read it ({exc}); expected JSON "
                         "{\"A\": [[...]], \"b\": [...]}") from None


def load_domain(args):
    """``(network, lb, ub, A, b)`` from ``args.model``, ``--box`` and ``--polytope`` (if any).

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    tuple
    """
    net = load_network(args.model, trust_pickle=getattr(args, "trust_pickle", False))
    lb, ub = parse_box(args.box, net.input_dim)
    A, b = read_polytope(args.polytope) if getattr(args, "polytope", None) else (None, None)
    return net, lb, ub, A, b


def problem_from_args(args):
    """The Problem that ``solve`` and ``compare`` share: domain, objective, ``--constraint``.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    Problem
    """
    from ..problem import Problem

    net, lb, ub, A, b = load_domain(args)
    return Problem.build(net, lb, ub, constraints=args.constraint or None, A=A, b=b,
                         name=Path(args.model).name, **objective_kwargs(args))


def report_stream(args):
    """Where the human-readable report goes, so that ``--json -`` keeps stdout pure JSON.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (its ``json`` attribute, if any).

    Returns
    -------
    file
        ``sys.stderr`` when ``--json -`` claims stdout, else ``sys.stdout``.
    """
    return sys.stderr if getattr(args, "json", None) == "-" else sys.stdout


def write_json(target: str, payload) -> None:
    """Write ``payload`` as indented JSON to a file, or to stdout for '-'.

    Parameters
    ----------
    target : str
        A file name, or '-' for stdout.
    payload : object
        Anything ``json.dumps`` takes.

    Raises
    ------
    ReluoptError
        When the file cannot be written (one line, for ``main`` to print).
    """
    text = json.dumps(payload, indent=2)
    if target == "-":
        print(text)
    else:
        try:
            Path(target).write_text(text + "\n")
        except OSError as exc:
            raise ReluoptError(f"--json {target!r}: cannot write it ({exc.strerror or exc})") from None


#: Output files of the commands (attribute, flag): ``check_common_args`` checks that they can be
#: written before the work starts, so that a typo in a folder name does not lose a long run.
OUTPUT_OPTIONS = (("json", "--json"), ("plot", "--plot"), ("counterexample", "--counterexample"),
                  ("results", "--results"))

#: File types ``--plot`` can write (matplotlib's savefig formats).
PLOT_FORMATS = ("png", "pdf", "svg", "svgz", "eps", "ps", "jpg", "jpeg", "tif", "tiff", "webp", "pgf", "raw",
                "rgba")


def check_output_file(target, flag: str) -> None:
    """Check that an output file can be written, before a long run rather than after it.

    Parameters
    ----------
    target : str or None
        The file name; None or '-' (stdout) pass.
    flag : str
        The option that named it (``--json``, ``--plot``, ...), for the message; ``--plot`` also
        checks the image type.

    Raises
    ------
    ReluoptError
        A one-line message when ``target`` is a folder, its folder is missing or not writable, or
        (``--plot``) its suffix is not an image type matplotlib writes.
    """
    import os

    if target is None or target == "-":
        return
    p = Path(target)
    if str(target).strip() == "" or p.is_dir():
        example = {"--plot": "out.png", "--results": "results.csv", "--counterexample": "counterexample.txt"}
        raise ReluoptError(f"{flag} {str(target)!r} is a folder, not a file name; give e.g. "
                           f"{str(p / example.get(flag, 'out.json'))!r}")
    parent = p.parent
    if not parent.exists():
        raise ReluoptError(f"{flag} {str(target)!r}: the folder {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise ReluoptError(f"{flag} {str(target)!r}: {str(parent)!r} is not a folder")
    if p.exists() and not os.access(p, os.W_OK):
        raise ReluoptError(f"{flag} {str(target)!r}: the file is not writable")
    if not p.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise ReluoptError(f"{flag} {str(target)!r}: cannot create a file in {str(parent)!r} (permission denied)")
    if flag == "--plot" and p.suffix and p.suffix[1:].lower() not in PLOT_FORMATS:
        raise ReluoptError(f"{flag} {str(target)!r}: unknown image type {p.suffix!r}; use one of "
                           f"{', '.join('.' + f for f in PLOT_FORMATS[:6])}, ...")


def add_cluster_arguments(parser) -> None:
    """Add ``--workers N`` and ``--scheduler ADDR``: branch and bound on a Dask cluster.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, default=None, metavar="N",
                       help="farm branch and bound out to a local Dask cluster of N one-thread workers, "
                       "started only when a search is still open after a short warm-up (the 'dask' extra)")
    group.add_argument("--scheduler", default=None, metavar="ADDR",
                       help="the same on a running Dask cluster, e.g. tcp://host:8786 "
                       "(see the README, 'Scale-out on a cluster')")


def cluster_scope(args):
    """The cluster scope of ``--workers`` / ``--scheduler`` (a no-op context without them).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    contextlib.AbstractContextManager
        ``search.cluster.scope``.
    """
    from ..search.cluster import scope

    return scope(getattr(args, "workers", None), getattr(args, "scheduler", None))


def check_common_args(args) -> None:
    """Check what every command checks before it starts, so that bad input fails fast.

    ``--seed`` must be a non-negative integer and the output files (``OUTPUT_OPTIONS``) must be
    writable.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Raises
    ------
    ReluoptError
        On a bad seed or an output file that cannot be written.
    """
    seed = getattr(args, "seed", None)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ReluoptError(f"--seed must be a non-negative integer, got {seed}")
    for attr, flag in OUTPUT_OPTIONS:
        check_output_file(getattr(args, attr, None), flag)
