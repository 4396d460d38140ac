"""The ``reluopt`` command line. Each subcommand lives in its own module of this package
and exposes ``register(subparsers)``; ``main`` wires them together."""

from __future__ import annotations

import argparse
import os
import re
import sys

from ..errors import CertificateError, ReluoptError
from . import analyze, bounds, compare, lipschitz, solve, surf, verify
from .common import (  # the exit codes live in common.py, where the subcommands read them
    EXIT_INFEASIBLE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_NO_PROOF,
    EXIT_OK,
    EXIT_USAGE,
    check_common_args,
)

#: Subcommand modules, in the order ``--help`` lists them.
SUBCOMMANDS = (solve, bounds, compare, verify, analyze, lipschitz, surf)

__all__ = ["EXIT_INFEASIBLE", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_NO_PROOF", "EXIT_OK", "EXIT_USAGE",
           "SUBCOMMANDS", "build_parser", "join_negative_values", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``reluopt`` argument parser, with every subcommand of this installation registered.

    Returns
    -------
    argparse.ArgumentParser
        The parser; each subcommand sets ``func`` to its ``run``.
    """
    parser = argparse.ArgumentParser(
        prog="reluopt",
        description=(
            "Optimise over trained ReLU networks: find the input that maximises or minimises "
            "a linear function of the outputs, with a certified bound on how far from optimal "
            "it is; compute neuron bounds; verify VNN-LIB properties."
        ),
        epilog=(
            "exit codes: 0 solved/proved, 1 stopped without proof (time limit, unknown), "
            "2 bad input, 3 proven infeasible, 4 internal error (a result failed its own "
            "certificate check), 130 interrupted. "
            "Run 'reluopt COMMAND --help' for each command."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"reluopt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


#: Options whose value may start with a minus sign (``--box -3,3``, ``--minimize -y[0]``).
VALUE_OPTIONS = frozenset({"--box", "--maximize", "--minimize", "--objective", "--constraint"})
_NEGATIVE_VALUE = re.compile(r"^-[\d.(xyXY]")


def join_negative_values(argv: list[str]) -> list[str]:
    """Rewrite ``--box -3,3`` as ``--box=-3,3``: argparse would take ``-3,3`` for an option.

    Parameters
    ----------
    argv : list of str
        The command line (without the program name).

    Returns
    -------
    list of str
        The rewritten command line.
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in VALUE_OPTIONS and i + 1 < len(argv) and _NEGATIVE_VALUE.match(argv[i + 1]):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """The ``reluopt`` command: parse ``argv``, run the subcommand, map errors to exit codes.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 solved/proved, 1 stopped without proof, 2 bad input, 3 proven infeasible,
        4 internal error, 130 interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(join_negative_values(sys.argv[1:] if argv is None else list(argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    from ..parallel import single_threaded_blas

    try:
        # one BLAS thread: reluopt's products are small batches, where a threaded BLAS only
        # adds spinning threads (30-40x slower on a loaded machine, benchmarks/PROFILE_local_search.md)
        with single_threaded_blas():
            check_common_args(args)     # --seed, output files: fail before the work, not after
            return int(args.func(args) or 0)
    except CertificateError as exc:
        print(f"reluopt {args.command}: internal error (please report it; no result is given): {exc}",
              file=sys.stderr)
        return EXIT_INTERNAL
    except ReluoptError as exc:
        print(f"reluopt {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:   # the reader went away (e.g. `| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
