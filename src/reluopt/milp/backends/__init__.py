"""MILP solver back-ends behind one interface (``base.Backend``): HiGHS, SCIP and Gurobi.

``get_backend(name)`` is the one place that maps a solver name to its back-end. HiGHS is
always installed; SCIP and Gurobi come with the ``scip`` and ``gurobi`` extras, and asking
for a missing one raises a SolverError that names the extra.
"""

from __future__ import annotations

import importlib

from ...errors import ProblemError, SolverError
from .base import ERROR, Backend, SolveOutput, SolverInstance

#: Back-end names, the default first.
BACKENDS = ("highs", "scip", "gurobi")

#: name -> (module of the back-end, its class, the Python package it needs, the pip extra)
_REGISTRY = {
    "highs": ("highs", "HighsBackend", "highspy", None),
    "scip": ("scip", "ScipBackend", "pyscipopt", "scip"),
    "gurobi": ("gurobi", "GurobiBackend", "gurobipy", "gurobi"),
}


def get_backend(name: str) -> Backend:
    """The back-end called ``name``: the one place that maps a solver name to its back-end.

    Parameters
    ----------
    name : str
        One of `BACKENDS`.

    Returns
    -------
    Backend
        A new back-end object.

    Raises
    ------
    ProblemError
        ``name`` is unknown (the message lists the valid ones).
    SolverError
        The solver's package is missing (the message names the pip extra to install).
    """
    if name not in _REGISTRY:
        raise ProblemError(f"unknown MIP solver {name!r}; choose from {', '.join(BACKENDS)}")
    module, cls, package, extra = _REGISTRY[name]
    try:
        __import__(package)   # the import statement's hook: a test can hide the package
    except ImportError:
        raise SolverError(f"solver {name!r} is not installed: install the {extra!r} extra "
                          f"(pip install reluopt[{extra}])") from None
    backend = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    return backend()


__all__ = ["BACKENDS", "ERROR", "Backend", "SolveOutput", "SolverInstance", "get_backend"]
