"""Exceptions raised by reluopt.

Every error a user can trigger with bad input is a ``ReluoptError`` whose message names
the problem and where it is (layer, node, file, line), so the CLI can print it without a
traceback from deep inside numpy or a solver.
"""

from __future__ import annotations


class ReluoptError(Exception):
    """Base class of all errors reluopt raises on purpose."""


class ModelError(ReluoptError):
    """A network is malformed: inconsistent shapes, non-finite weights, bad activation."""


class UnsupportedError(ReluoptError):
    """A model contains something reluopt cannot represent (an op, a layer, an attribute)."""


class ProblemError(ReluoptError):
    """An optimisation problem is malformed: bad box, unknown output, wrong dimension."""


class UnknownOptionError(ProblemError, TypeError):
    """A method was given an option it does not take; the message names the valid ones.

    A ``ProblemError`` (bad input) that is also a ``TypeError``, the error Python raises for an
    unexpected keyword argument, so code catching either keeps working.
    """


class SolverError(ReluoptError):
    """A solver failed or is not installed."""


class ParseError(ReluoptError):
    """A text input (constraint expression, VNN-LIB file) cannot be read."""


class EmptyInputSet(ReluoptError):
    """The input set of a problem is empty (for example ``A x <= b`` misses the box).

    Not bad input: every method answers it with status ``infeasible`` and this reason.
    """


class CertificateError(ReluoptError):
    """A method produced a result that fails its own invariants (a bug, not bad input).

    Raised instead of returning a bound on the wrong side of a value, a NaN, or an
    ``optimal`` that the gap test does not support.
    """
