"""``reluopt verify``: decide a VNN-LIB property, or run a VNN-COMP instance list.

    reluopt verify MODEL.onnx PROP.vnnlib [--timeout S] [--counterexample FILE]
    reluopt verify --instances instances.csv [--results results.csv] [--timeout-scale F] [--limit N]

Prints ``sat``, ``unsat`` or ``unknown``; exit 0 when decided, 1 when unknown, 2 on bad input.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

from ..errors import ProblemError, ReluoptError
from ..milp.backends import BACKENDS
from ..network import Network
from .common import (
    EXIT_NO_PROOF,
    EXIT_OK,
    EXIT_USAGE,
    add_cluster_arguments,
    add_model_argument,
    add_progress_arguments,
    cluster_scope,
    load_network,
    progress_line,
)


def register(subparsers) -> None:
    """Add the ``verify`` subcommand and its options to the ``reluopt`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The parser's subcommands.
    """
    p = subparsers.add_parser(
        "verify",
        help="decide a VNN-LIB property (sat = counterexample found, unsat = proved)",
        description=(
            "Decide whether some input in the property's box makes the network's outputs "
            "unsafe. 'sat' comes with a counterexample checked by a forward pass; 'unsat' "
            "rests on certified bounds; otherwise 'unknown'. With --instances, run a "
            "VNN-COMP instance list (CSV rows: onnx, vnnlib, timeout; paths relative to the CSV)."
        ),
        epilog="exit codes: 0 sat/unsat, 1 unknown, 2 bad input",
    )
    add_model_argument(p, nargs="?")
    p.add_argument("property", nargs="?", help="VNN-LIB property file")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument("--counterexample", metavar="FILE",
                   help="write the witness in VNN-COMP format when sat")
    p.add_argument("--instances", metavar="CSV", help="VNN-COMP instance list to run")
    p.add_argument("--results", metavar="CSV", help="write one row per instance here")
    p.add_argument("--timeout-scale", type=float, default=1.0,
                   help="multiply each instance's timeout (e.g. 0.25 for a quick pass)")
    p.add_argument("--limit", type=int, default=None, help="run only the first N instances")
    p.add_argument("--exact", choices=("auto", "bab", "bab-relu", "mip", "none"), default="auto",
                   help="complete method for what the fast paths leave open (default auto)")
    p.add_argument("--solver", default="highs", choices=BACKENDS,
                   help="MILP solver of the exact MIP (default highs; scip and gurobi need their extras)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the falsification (default 0)")
    add_cluster_arguments(p)
    add_progress_arguments(p)
    p.add_argument("--verbose", "-v", action="store_true",
                   help="print how the answer was reached (method, time per phase) on stderr")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``reluopt verify`` on the parsed command line.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        The exit code (see `reluopt.cli`).
    """
    if args.instances:
        if args.model or args.property:
            raise ProblemError("give either MODEL PROPERTY or --instances, not both")
        return run_instances(args)
    if not (args.model and args.property):
        raise ProblemError("give MODEL and PROPERTY files (or --instances CSV)")
    from ..verification import VnnlibTimeout, format_counterexample, load_vnnlib, verify

    if args.timeout <= 0:
        raise ProblemError(f"--timeout must be positive, got {args.timeout}")
    net = load_network(args.model, trust_pickle=args.trust_pickle)
    started = time.perf_counter()
    try:     # the timeout covers reading the property: a 50 MB file can take minutes
        prop = load_vnnlib(args.property, time_limit=args.timeout)
    except VnnlibTimeout as exc:
        return _parse_timeout(args, exc)
    left = max(args.timeout - (time.perf_counter() - started), 1e-3)
    line = progress_line(args)
    try:
        with cluster_scope(args):
            verdict = verify(net, prop, timeout=left, seed=args.seed, progress=line, exact=args.exact,
                             solver=args.solver)
    finally:
        line.close()
    print(verdict.status)
    if args.verbose:
        _explain(verdict)
    if args.counterexample:
        if verdict.status == "sat" and verdict.x is not None and verdict.y is not None:   # sat carries x, y
            text = format_counterexample(verdict.x, verdict.y)
        else:
            text = f"{verdict.status}\n"
        Path(args.counterexample).write_text(text)
    return EXIT_OK if verdict.status in ("sat", "unsat") else EXIT_NO_PROOF


def _parse_timeout(args, exc) -> int:
    """The timeout ran out while reading the property: no answer, so 'unknown' (exit 1)."""
    print("unknown")
    print(f"reluopt verify: unknown: {exc}", file=sys.stderr)
    if args.counterexample:
        Path(args.counterexample).write_text("unknown\n")
    return EXIT_NO_PROOF


def _explain(verdict) -> None:
    phases = ", ".join(f"{k} {v:.2f}s" for k, v in verdict.stats.get("phases", {}).items())
    closed = ", ".join(f"{k} {v}" for k, v in verdict.stats.get("closed_by", {}).items())
    print(f"{verdict.seconds:.2f}s, decided by {verdict.method or '-'}; pairs "
          f"{verdict.stats.get('pairs', '?')} (closed by: {closed or '-'}); phases: {phases or '-'}",
          file=sys.stderr)


def read_instances(path) -> list[tuple[Path, Path, float]]:
    """Rows ``onnx, vnnlib, timeout`` of an instances CSV (a header row is skipped).

    Parameters
    ----------
    path : str or Path
        The CSV; the paths in it are relative to it.

    Returns
    -------
    list of (Path, Path, float)
        One entry per instance.

    Raises
    ------
    ProblemError
        A missing file or a bad row.
    """
    path = Path(path)
    if not path.exists():
        raise ProblemError(f"{path}: no such file")
    out = []
    with path.open(newline="") as fh:
        for i, row in enumerate(csv.reader(fh), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < 3:
                raise ProblemError(f"{path}: line {i}: expected onnx, vnnlib, timeout; got {row}")
            try:
                timeout = float(row[2])
            except ValueError:
                if i == 1:
                    continue  # header
                raise ProblemError(f"{path}: line {i}: timeout {row[2]!r} is not a number") from None
            out.append((path.parent / row[0].strip(), path.parent / row[1].strip(), timeout))
    return out


def run_instances(args) -> int:
    """Run ``reluopt verify --instances``: every instance of the CSV in turn.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        The exit code (see `reluopt.cli`).
    """
    instances = read_instances(args.instances)
    if args.limit is not None:
        instances = instances[: args.limit]
    if args.timeout_scale <= 0:
        raise ProblemError(f"--timeout-scale must be positive, got {args.timeout_scale}")
    with cluster_scope(args):     # one cluster for every instance
        return _run_instances(args, instances)


def _run_instances(args, instances) -> int:
    """The loop of ``run_instances`` (inside its cluster scope)."""
    from ..verification import VnnlibTimeout, load_vnnlib, verify

    counts = {"sat": 0, "unsat": 0, "unknown": 0, "error": 0}
    models: dict[Path, Network] = {}
    rows = []
    start = time.perf_counter()
    for k, (onnx, vnnlib, timeout) in enumerate(instances, start=1):
        t0 = time.perf_counter()
        method = ""
        limit = timeout * args.timeout_scale
        line = progress_line(args)
        try:
            if onnx not in models:
                models[onnx] = load_network(onnx, trust_pickle=args.trust_pickle)
            started = time.perf_counter()
            prop = load_vnnlib(vnnlib, time_limit=limit)
            left = max(limit - (time.perf_counter() - started), 1e-3)
            verdict = verify(models[onnx], prop, timeout=left, seed=args.seed, progress=line,
                             exact=args.exact, solver=args.solver)
            result, seconds, method = verdict.status, verdict.seconds, verdict.method
        except VnnlibTimeout as exc:     # the time ran out while reading the property
            result, seconds = "unknown", time.perf_counter() - t0
            line.close()
            print(f"  unknown: {exc}", file=sys.stderr)
        except ReluoptError as exc:
            result, seconds = "error", time.perf_counter() - t0
            line.close()
            print(f"  error: {exc}", file=sys.stderr)
        finally:
            line.close()
        counts[result] += 1
        rows.append({"onnx": onnx.name, "vnnlib": vnnlib.name, "timeout": f"{limit:g}",
                     "result": result, "seconds": f"{seconds:.3f}", "method": method})
        running = " ".join(f"{key} {v}" for key, v in counts.items() if v or key != "error")
        print(f"[{k}/{len(instances)}] {onnx.stem} {vnnlib.stem}: {result} {seconds:.2f}s "
              f"({running})", flush=True)
        if args.results:
            _write_results(args.results, rows)
    print(f"done: {len(instances)} instances in {time.perf_counter() - start:.1f}s: "
          + ", ".join(f"{key} {v}" for key, v in counts.items()))
    if counts["error"]:
        return EXIT_USAGE
    return EXIT_NO_PROOF if counts["unknown"] else EXIT_OK


def _write_results(path, rows) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["onnx", "vnnlib", "timeout", "result", "seconds", "method"])
        w.writeheader()
        w.writerows(rows)

